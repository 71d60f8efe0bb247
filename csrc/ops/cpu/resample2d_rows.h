// Row kernels of the CPU resample2d (bilinear warp).
//
// No include guard on purpose: resample2d_kernel.cpp includes this file once
// per instruction set, in namespace `base` and in `avx2` (compiled for AVX2 +
// FMA, see simd.h); `Footprints` comes from flownet2::cpu.
//
// A row is done in two phases. footprints() computes, for every pixel, the
// top-left neighbour's offset in the plane, which of the four neighbours lie
// inside the image, the fractional position and the clamp gradient: plain
// arithmetic over contiguous arrays, which the compiler vectorises. The
// per-channel loops then only gather and weight; on AVX2 they use masked
// gathers for float (a neighbour outside the image is never read, as in the
// twin).

// Footprints of row y: sampling positions x + u[x * su], y + v[x * su].
template <typename T, typename F, bool Contiguous>
FLOWNET2_INLINE void footprints_impl(const F* u, const F* v, int64_t su, int64_t y, int64_t H,
                                     int64_t W, bool border, Footprints<T>& fp, int32_t xstart) {
  const T xmax = static_cast<T>(W - 1), ymax = static_cast<T>(H - 1);
  // "zeros": beyond one pixel outside every neighbour is outside; clamping
  // there keeps the integer conversion defined without changing any result.
  const T xlo = border ? T(0) : T(-2), xhi = border ? xmax : static_cast<T>(W + 1);
  const T ylo = border ? T(0) : T(-2), yhi = border ? ymax : static_cast<T>(H + 1);
  const T zero_or_one = border ? T(0) : T(1);  // gradient factor where clamped
  const int32_t Wi = static_cast<int32_t>(W), Hi = static_cast<int32_t>(H);
  const T yf = static_cast<T>(y);
  int32_t* __restrict i00 = fp.i00;
  int32_t* __restrict k00 = fp.k00;
  int32_t* __restrict k01 = fp.k01;
  int32_t* __restrict k10 = fp.k10;
  int32_t* __restrict k11 = fp.k11;
  T* __restrict txs = fp.tx;
  T* __restrict tys = fp.ty;
  T* __restrict gmx = fp.gmx;
  T* __restrict gmy = fp.gmy;
  for (int32_t x = xstart; x < Wi; ++x) {
    const int64_t j = Contiguous ? x : x * su;
    T px = static_cast<T>(x) + static_cast<T>(u[j]);
    T py = yf + static_cast<T>(v[j]);
    const bool ok = px == px && py == py;  // NaN flow samples nothing
    px = ok ? px : T(0);
    py = ok ? py : T(0);
    // d(position)/d(flow): 0 where "border" clamped (grid_sample's convention).
    gmx[x] = (px < T(0) || px > xmax) ? zero_or_one : T(1);
    gmy[x] = (py < T(0) || py > ymax) ? zero_or_one : T(1);
    px = std::min(std::max(px, xlo), xhi);
    py = std::min(std::max(py, ylo), yhi);
    const T fx = std::floor(px), fy = std::floor(py);
    const int32_t x0 = static_cast<int32_t>(fx), y0 = static_cast<int32_t>(fy);
    txs[x] = px - fx;
    tys[x] = py - fy;
    const bool in_x0 = x0 >= 0 && x0 < Wi, in_x1 = x0 + 1 >= 0 && x0 + 1 < Wi;
    const bool in_y0 = ok && y0 >= 0 && y0 < Hi, in_y1 = ok && y0 + 1 >= 0 && y0 + 1 < Hi;
    i00[x] = y0 * Wi + x0;
    k00[x] = in_y0 && in_x0 ? -1 : 0;
    k01[x] = in_y0 && in_x1 ? -1 : 0;
    k10[x] = in_y1 && in_x0 ? -1 : 0;
    k11[x] = in_y1 && in_x1 ? -1 : 0;
  }
}

template <typename T, typename F>
inline void footprints(const F* u, const F* v, int64_t su, int64_t y, int64_t H, int64_t W,
                       bool border, Footprints<T>& fp) {
  if (su == 1) {
    footprints_impl<T, F, true>(u, v, su, y, H, W, border, fp, 0);
  } else {
    footprints_impl<T, F, false>(u, v, su, y, H, W, border, fp, 0);
  }
}

#ifdef FLOWNET2_RESAMPLE_AVX2
// float on AVX2, contiguous flow rows: the same arithmetic, eight pixels at a time.
template <>
inline void footprints<float, float>(const float* u, const float* v, int64_t su, int64_t y,
                                     int64_t H, int64_t W, bool border, Footprints<float>& fp) {
  if (su != 1) return footprints_impl<float, float, false>(u, v, su, y, H, W, border, fp, 0);
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256 xmax = _mm256_set1_ps(static_cast<float>(W - 1));
  const __m256 ymax = _mm256_set1_ps(static_cast<float>(H - 1));
  const __m256 xlo = border ? zero : _mm256_set1_ps(-2.0f);
  const __m256 xhi = border ? xmax : _mm256_set1_ps(static_cast<float>(W + 1));
  const __m256 ylo = border ? zero : _mm256_set1_ps(-2.0f);
  const __m256 yhi = border ? ymax : _mm256_set1_ps(static_cast<float>(H + 1));
  const __m256 clamped_grad = border ? zero : one;
  const __m256i Wv = _mm256_set1_epi32(static_cast<int32_t>(W));
  const __m256i Wm1 = _mm256_set1_epi32(static_cast<int32_t>(W - 1));
  const __m256i Hv = _mm256_set1_epi32(static_cast<int32_t>(H));
  const __m256i Hm1 = _mm256_set1_epi32(static_cast<int32_t>(H - 1));
  const __m256i m1 = _mm256_set1_epi32(-1), m2 = _mm256_set1_epi32(-2);
  const __m256 yv = _mm256_set1_ps(static_cast<float>(y));
  __m256 xv = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 eight = _mm256_set1_ps(8.0f);
  auto store_i = [](int32_t* p, __m256i a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), a); };
  int32_t x = 0;
  for (; x + 8 <= W; x += 8, xv = _mm256_add_ps(xv, eight)) {
    __m256 px = _mm256_add_ps(xv, _mm256_loadu_ps(u + x));
    __m256 py = _mm256_add_ps(yv, _mm256_loadu_ps(v + x));
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(px, px, _CMP_ORD_Q), _mm256_cmp_ps(py, py, _CMP_ORD_Q));
    px = _mm256_and_ps(px, ok);  // NaN -> 0 (and samples nothing, below)
    py = _mm256_and_ps(py, ok);
    const __m256 outx = _mm256_or_ps(_mm256_cmp_ps(px, zero, _CMP_LT_OQ), _mm256_cmp_ps(px, xmax, _CMP_GT_OQ));
    const __m256 outy = _mm256_or_ps(_mm256_cmp_ps(py, zero, _CMP_LT_OQ), _mm256_cmp_ps(py, ymax, _CMP_GT_OQ));
    _mm256_storeu_ps(fp.gmx + x, _mm256_blendv_ps(one, clamped_grad, outx));
    _mm256_storeu_ps(fp.gmy + x, _mm256_blendv_ps(one, clamped_grad, outy));
    px = _mm256_min_ps(_mm256_max_ps(px, xlo), xhi);
    py = _mm256_min_ps(_mm256_max_ps(py, ylo), yhi);
    const __m256 fx = _mm256_floor_ps(px), fy = _mm256_floor_ps(py);
    _mm256_storeu_ps(fp.tx + x, _mm256_sub_ps(px, fx));
    _mm256_storeu_ps(fp.ty + x, _mm256_sub_ps(py, fy));
    const __m256i x0 = _mm256_cvttps_epi32(fx), y0 = _mm256_cvttps_epi32(fy);
    const __m256i oki = _mm256_castps_si256(ok);
    const __m256i in_x0 = _mm256_and_si256(_mm256_cmpgt_epi32(x0, m1), _mm256_cmpgt_epi32(Wv, x0));
    const __m256i in_x1 = _mm256_and_si256(_mm256_cmpgt_epi32(x0, m2), _mm256_cmpgt_epi32(Wm1, x0));
    const __m256i in_y0 = _mm256_and_si256(
        oki, _mm256_and_si256(_mm256_cmpgt_epi32(y0, m1), _mm256_cmpgt_epi32(Hv, y0)));
    const __m256i in_y1 = _mm256_and_si256(
        oki, _mm256_and_si256(_mm256_cmpgt_epi32(y0, m2), _mm256_cmpgt_epi32(Hm1, y0)));
    store_i(fp.i00 + x, _mm256_add_epi32(_mm256_mullo_epi32(y0, Wv), x0));
    store_i(fp.k00 + x, _mm256_and_si256(in_y0, in_x0));
    store_i(fp.k01 + x, _mm256_and_si256(in_y0, in_x1));
    store_i(fp.k10 + x, _mm256_and_si256(in_y1, in_x0));
    store_i(fp.k11 + x, _mm256_and_si256(in_y1, in_x1));
  }
  footprints_impl<float, float, true>(u, v, su, y, H, W, border, fp, x);
}
#endif  // FLOWNET2_RESAMPLE_AVX2

// Portable loops (any input type S, working type T).

template <typename T, typename S>
inline T corner(const S* s, int32_t i, int32_t k) {
  return k != 0 ? static_cast<T>(s[i]) : T(0);
}

// out[x] = bilinear sample of plane s (row stride W) for pixels [x0, W).
template <typename T, typename S>
inline void sample_row_generic(const S* s, int64_t W, const Footprints<T>& fp, S* out,
                               int64_t x0) {
  const int32_t Wi = static_cast<int32_t>(W);
  for (int64_t x = x0; x < W; ++x) {
    const int32_t i = fp.i00[x];
    const T tx = fp.tx[x], ty = fp.ty[x];
    const T v00 = corner<T>(s, i, fp.k00[x]), v01 = corner<T>(s, i + 1, fp.k01[x]);
    const T v10 = corner<T>(s, i + Wi, fp.k10[x]), v11 = corner<T>(s, i + Wi + 1, fp.k11[x]);
    out[x] = static_cast<S>((T(1) - tx) * (T(1) - ty) * v00 + tx * (T(1) - ty) * v01 +
                            (T(1) - tx) * ty * v10 + tx * ty * v11);
  }
}

// gx[x] += g[x] · d(sample)/dx, gy[x] += g[x] · d(sample)/dy for pixels [x0, W).
template <typename T, typename S>
inline void flow_grad_row_generic(const S* s, const S* g, int64_t W, const Footprints<T>& fp,
                                  T* gx, T* gy, int64_t x0) {
  const int32_t Wi = static_cast<int32_t>(W);
  for (int64_t x = x0; x < W; ++x) {
    const int32_t i = fp.i00[x];
    const T tx = fp.tx[x], ty = fp.ty[x], gv = static_cast<T>(g[x]);
    const T v00 = corner<T>(s, i, fp.k00[x]), v01 = corner<T>(s, i + 1, fp.k01[x]);
    const T v10 = corner<T>(s, i + Wi, fp.k10[x]), v11 = corner<T>(s, i + Wi + 1, fp.k11[x]);
    gx[x] += gv * ((v01 - v00) * (T(1) - ty) + (v11 - v10) * ty);
    gy[x] += gv * ((v10 - v00) * (T(1) - tx) + (v11 - v01) * tx);
  }
}

template <typename T, typename S>
inline void sample_row(const S* s, int64_t W, const Footprints<T>& fp, S* out) {
  sample_row_generic<T, S>(s, W, fp, out, 0);
}

template <typename T, typename S>
inline void flow_grad_row(const S* s, const S* g, int64_t W, const Footprints<T>& fp, T* gx,
                          T* gy) {
  flow_grad_row_generic<T, S>(s, g, W, fp, gx, gy, 0);
}

#ifdef FLOWNET2_RESAMPLE_AVX2
// float on AVX2: eight pixels at a time with masked gathers.
template <>
inline void sample_row<float, float>(const float* s, int64_t W, const Footprints<float>& fp,
                                     float* out) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  const __m256i dW = _mm256_set1_epi32(static_cast<int32_t>(W)), d1 = _mm256_set1_epi32(1);
  int64_t x = 0;
  for (; x + 8 <= W; x += 8) {
    const __m256i i00 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(fp.i00 + x));
    const __m256i i10 = _mm256_add_epi32(i00, dW);
    const auto mask = [&](const int32_t* k) {
      return _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + x)));
    };
    const __m256 v00 = _mm256_mask_i32gather_ps(zero, s, i00, mask(fp.k00), 4);
    const __m256 v01 = _mm256_mask_i32gather_ps(zero, s, _mm256_add_epi32(i00, d1), mask(fp.k01), 4);
    const __m256 v10 = _mm256_mask_i32gather_ps(zero, s, i10, mask(fp.k10), 4);
    const __m256 v11 = _mm256_mask_i32gather_ps(zero, s, _mm256_add_epi32(i10, d1), mask(fp.k11), 4);
    const __m256 tx = _mm256_loadu_ps(fp.tx + x), ty = _mm256_loadu_ps(fp.ty + x);
    const __m256 sx = _mm256_sub_ps(one, tx), sy = _mm256_sub_ps(one, ty);
    // Same association as the portable loop: ((w00 v00 + w01 v01) + w10 v10) + w11 v11.
    __m256 acc = _mm256_mul_ps(_mm256_mul_ps(sx, sy), v00);
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(tx, sy), v01));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(sx, ty), v10));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(tx, ty), v11));
    _mm256_storeu_ps(out + x, acc);
  }
  sample_row_generic<float, float>(s, W, fp, out, x);
}

template <>
inline void flow_grad_row<float, float>(const float* s, const float* g, int64_t W,
                                        const Footprints<float>& fp, float* gx, float* gy) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  const __m256i dW = _mm256_set1_epi32(static_cast<int32_t>(W)), d1 = _mm256_set1_epi32(1);
  int64_t x = 0;
  for (; x + 8 <= W; x += 8) {
    const __m256i i00 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(fp.i00 + x));
    const __m256i i10 = _mm256_add_epi32(i00, dW);
    const auto mask = [&](const int32_t* k) {
      return _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + x)));
    };
    const __m256 v00 = _mm256_mask_i32gather_ps(zero, s, i00, mask(fp.k00), 4);
    const __m256 v01 = _mm256_mask_i32gather_ps(zero, s, _mm256_add_epi32(i00, d1), mask(fp.k01), 4);
    const __m256 v10 = _mm256_mask_i32gather_ps(zero, s, i10, mask(fp.k10), 4);
    const __m256 v11 = _mm256_mask_i32gather_ps(zero, s, _mm256_add_epi32(i10, d1), mask(fp.k11), 4);
    const __m256 tx = _mm256_loadu_ps(fp.tx + x), ty = _mm256_loadu_ps(fp.ty + x);
    const __m256 gv = _mm256_loadu_ps(g + x);
    const __m256 dx = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v01, v00), _mm256_sub_ps(one, ty)),
                                    _mm256_mul_ps(_mm256_sub_ps(v11, v10), ty));
    const __m256 dy = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v10, v00), _mm256_sub_ps(one, tx)),
                                    _mm256_mul_ps(_mm256_sub_ps(v11, v01), tx));
    _mm256_storeu_ps(gx + x, _mm256_add_ps(_mm256_loadu_ps(gx + x), _mm256_mul_ps(gv, dx)));
    _mm256_storeu_ps(gy + x, _mm256_add_ps(_mm256_loadu_ps(gy + x), _mm256_mul_ps(gv, dy)));
  }
  flow_grad_row_generic<float, float>(s, g, W, fp, gx, gy, x);
}
#endif  // FLOWNET2_RESAMPLE_AVX2

// grad of the input plane d (row stride W) += the weights of row y's samples × g.
template <typename T, typename S>
inline void scatter_row(const S* g, int64_t W, const Footprints<T>& fp, T* d) {
  const int32_t Wi = static_cast<int32_t>(W);
  for (int64_t x = 0; x < W; ++x) {
    const T gv = static_cast<T>(g[x]);
    if (gv == T(0)) continue;
    const int32_t i = fp.i00[x];
    const T tx = fp.tx[x], ty = fp.ty[x];
    if (fp.k00[x]) d[i] += (T(1) - tx) * (T(1) - ty) * gv;
    if (fp.k01[x]) d[i + 1] += tx * (T(1) - ty) * gv;
    if (fp.k10[x]) d[i + Wi] += (T(1) - tx) * ty * gv;
    if (fp.k11[x]) d[i + Wi + 1] += tx * ty * gv;
  }
}
