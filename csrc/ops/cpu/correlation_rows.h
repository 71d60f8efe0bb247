// Row kernels of the CPU correlation (the fast path: kernel_size 1, stride1 1).
//
// No include guard on purpose: correlation_kernel.cpp includes this file once
// per instruction set, inside namespace `base` and inside `avx2` (compiled for
// AVX2 + FMA); see simd.h. It expects `VecF` (float lanes) and `VecD` (double
// lanes) to be declared in the enclosing namespace, and `CorrPacked<T>` in
// flownet2::cpu.
//
// Layouts (built by the driver in correlation_kernel.cpp; zero outside the
// image, widths multiples of the lane count L):
//   A   [B][OH][C][lda]      f1 row y+off, column x+off at A[..][a0 + x]
//                            (a0 = 0 forward, 2R backward)
//   Bs  [B][OH+2R][C][WB]    f2 row yy+off-R, column xx+off-R at Bs[..][xx]
//   G   [B][OH][D*D][WG]     grad_output at G[..][2R + x] (backward only)
// Output (y, x) at displacement (p, o), both in [0, D), multiplies A row y,
// column x with Bs row y + s2*p, column x + s2*o, summed over channels.
//
// Blocking. Vectors run along x, so every load is contiguous. Rows y and
// y + s2 meet the same Bs row (at p and p - 1), so rows are processed in such
// pairs: each Bs vector loaded feeds two FMAs (about 0.6 loads per FMA
// instead of 1.1) and each Bs row is read from memory once per pair instead
// of once per row. A tile holds 2 rows x <= 6 displacements (forward) or
// channels (backward) x one vector of accumulators in registers. Forward
// loops: column blocks of XW = 8 vectors (one Bs block in L2 at a time), the
// Bs rows a pair meets, column vectors, channel chunks small enough for L1,
// displacement blocks. Backward loops: column blocks, the Bs (A) rows a pair
// meets, channel blocks, column vectors, with the sums over displacements in
// the tile. The hardware prefetchers follow these strided streams; explicit
// prefetches measured no faster. (The driver orders the pairs by row parity,
// so the pairs one thread runs in a row share most of their Bs rows, which
// then come from L3.)

// Forward tile: NR (1 or 2) rows x OB displacements, one vector of columns.
template <typename V, int NR, int OB>
FLOWNET2_INLINE void fwd_tile(const typename V::value_type* a0, const typename V::value_type* a1,
                              const typename V::value_type* b, typename V::value_type* t0,
                              typename V::value_type* t1, typename V::value_type* d0,
                              typename V::value_type* d1, int64_t cc, int64_t lda, int64_t ldb,
                              int64_t s2, int64_t ldt, int64_t ldd, bool first, bool last,
                              typename V::value_type scale) {
  // Partial sums live in t0/t1 (rows ldt apart) between channel chunks; the
  // last chunk writes the scaled result to d0/d1 (rows ldd apart). Keeping the
  // two apart matters: output channels lie H*W apart, a multiple of 4 KiB for
  // FlowNetC's sizes, and re-reading such rows thrashes one L1 set.
  V acc0[OB], acc1[OB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
    acc0[o] = first ? V::zero() : V::load(t0 + o * ldt);
    if constexpr (NR == 2) acc1[o] = first ? V::zero() : V::load(t1 + o * ldt);
  }
  for (int64_t c = 0; c < cc; ++c) {
    const V av0 = V::load(a0 + c * lda);
    V av1;
    if constexpr (NR == 2) av1 = V::load(a1 + c * lda);
    const auto* bc = b + c * ldb;
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      V bv = V::load(bc + o * s2);
      if constexpr (NR == 2) bv.pin();
      acc0[o] = fmadd(av0, bv, acc0[o]);
      if constexpr (NR == 2) acc1[o] = fmadd(av1, bv, acc1[o]);
    }
  }
  if (last) {
    const V vs = V::set1(scale);
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      (acc0[o] * vs).store(d0 + o * ldd);
      if constexpr (NR == 2) (acc1[o] * vs).store(d1 + o * ldd);
    }
  } else {
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      acc0[o].store(t0 + o * ldt);
      if constexpr (NR == 2) acc1[o].store(t1 + o * ldt);
    }
  }
}

template <typename V, int NR>
inline void fwd_tile_n(int n, const typename V::value_type* a0, const typename V::value_type* a1,
                       const typename V::value_type* b, typename V::value_type* t0,
                       typename V::value_type* t1, typename V::value_type* d0,
                       typename V::value_type* d1, int64_t cc, int64_t lda, int64_t ldb, int64_t s2,
                       int64_t ldt, int64_t ldd, bool first, bool last,
                       typename V::value_type scale) {
  switch (n) {
#define FLOWNET2_CASE(N)                                                                      \
  case N:                                                                                     \
    return fwd_tile<V, NR, N>(a0, a1, b, t0, t1, d0, d1, cc, lda, ldb, s2, ldt, ldd, first, \
                              last, scale);
    FLOWNET2_CASE(1) FLOWNET2_CASE(2) FLOWNET2_CASE(3)
    FLOWNET2_CASE(4) FLOWNET2_CASE(5) FLOWNET2_CASE(6)
#undef FLOWNET2_CASE
    default:
      break;
  }
}

// Backward tile, NR rows x CB channels x one vector of columns:
//   acc_r[c] += Σ_o G_r[o * gstep] · X[c * ldx + o * xstep].
// grad of A: X = Bs, steps (ldg, s2) (G_r[o][x] · Bs[c][x + s2·o]);
// grad of Bs: X = A, steps (ldg - s2, -s2) (G_r[o][xx - s2·o] · A[c][xx - s2·o]).
// z_r: start row r from zero instead of the buffer (its first contribution).
template <typename V, int NR, int CB>
FLOWNET2_INLINE void bwd_tile(const typename V::value_type* g0, const typename V::value_type* g1,
                              const typename V::value_type* x, typename V::value_type* o0,
                              typename V::value_type* o1, int64_t D, int64_t gstep, int64_t xstep,
                              int64_t ldx, int64_t ldo, bool z0, bool z1) {
  V acc0[CB], acc1[CB];
#pragma GCC unroll 8
  for (int c = 0; c < CB; ++c) {
    acc0[c] = z0 ? V::zero() : V::load(o0 + c * ldo);
    if constexpr (NR == 2) acc1[c] = z1 ? V::zero() : V::load(o1 + c * ldo);
  }
  for (int64_t o = 0; o < D; ++o) {
    const V gv0 = V::load(g0 + o * gstep);
    V gv1;
    if constexpr (NR == 2) gv1 = V::load(g1 + o * gstep);
    const auto* xo = x + o * xstep;
#pragma GCC unroll 8
    for (int c = 0; c < CB; ++c) {
      V xv = V::load(xo + c * ldx);
      if constexpr (NR == 2) xv.pin();
      acc0[c] = fmadd(gv0, xv, acc0[c]);
      if constexpr (NR == 2) acc1[c] = fmadd(gv1, xv, acc1[c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < CB; ++c) {
    acc0[c].store(o0 + c * ldo);
    if constexpr (NR == 2) acc1[c].store(o1 + c * ldo);
  }
}

template <typename V, int NR, bool IsA>
inline void bwd_tile_n(int n, const typename V::value_type* g0, const typename V::value_type* g1,
                       const typename V::value_type* x, typename V::value_type* o0,
                       typename V::value_type* o1, int64_t D, int64_t ldg, int64_t ldx, int64_t s2,
                       int64_t ldo, bool z0, bool z1) {
  const int64_t gstep = IsA ? ldg : ldg - s2, xstep = IsA ? s2 : -s2;
  switch (n) {
#define FLOWNET2_CASE(N) \
  case N:                \
    return bwd_tile<V, NR, N>(g0, g1, x, o0, o1, D, gstep, xstep, ldx, ldo, z0, z1);
    FLOWNET2_CASE(1) FLOWNET2_CASE(2) FLOWNET2_CASE(3)
    FLOWNET2_CASE(4) FLOWNET2_CASE(5) FLOWNET2_CASE(6)
#undef FLOWNET2_CASE
    default:
      break;
  }
}

// Forward of output row y0 (nrows 1) or rows y0, y0 + s2 (nrows 2), all D*D
// channels: row r, channel ch, column x goes to dst_r[ch * ld_ch + x] for
// x < Wx, scaled by `scale`. `tmp` holds 2 * D * L partial sums.
//
// Loop order (outer to inner): column block, Bs row, column vector, channel
// chunk, displacement block. All partial sums of one column vector (2 x D
// vectors) and the chunk's A and Bs data (two A vectors and one Bs strip of
// L + 2R columns per channel) stay in L1 while the displacement blocks run
// over them; each output vector is written once, scaled, by the last chunk.
template <typename V>
inline void forward_rows_impl(const CorrPacked<typename V::value_type>& P, int64_t b, int64_t y0,
                              int nrows, typename V::value_type* dst0,
                              typename V::value_type* dst1, int64_t ld_ch,
                              typename V::value_type* tmp, typename V::value_type scale) {
  using T = typename V::value_type;
  constexpr int L = V::size;
  constexpr int64_t XW = 8 * L;
  const int64_t D = P.D, C = P.C, s2 = P.s2, Wx = P.Wx;
  const int64_t nob = (D + 5) / 6;  // displacement blocks of <= 6
  const T* a0 = P.A + (b * P.OH + y0) * C * P.lda;
  const T* a1 = nrows == 2 ? a0 + s2 * C * P.lda : a0;
  const T* bbase = P.Bs + b * (P.OH + 2 * P.R) * C * P.WB;
  T* t0 = tmp;
  T* t1 = tmp + D * L;
  const int64_t nk = D + nrows - 1;  // Bs rows y0 + s2*k
  // Column blocks outermost: the pair's A blocks and one Bs block then fit L2
  // also for wide rows.
  for (int64_t xb = 0; xb < Wx; xb += XW) {
    const int64_t xw = std::min(XW, Wx - xb);
    for (int64_t k = 0; k < nk; ++k) {
      const T* brow = bbase + (y0 + s2 * k) * C * P.WB;
      const bool on0 = k < D, on1 = nrows == 2 && k >= 1;  // row 0 at p = k, row 1 at p = k - 1
      T* d0 = dst0 + k * D * ld_ch;
      T* d1 = dst1 + (k - 1) * D * ld_ch;
      if (y0 + s2 * k < P.by0 || y0 + s2 * k >= P.by1) {  // a zero row of f2's padding
        for (int64_t o = 0; o < D; ++o) {
          if (on0) std::fill_n(d0 + o * ld_ch + xb, xw, T(0));
          if (on1) std::fill_n(d1 + o * ld_ch + xb, xw, T(0));
        }
        continue;
      }
      for (int64_t x0 = xb; x0 < xb + xw; x0 += L) {
        for (int64_t c0 = 0; c0 < C; c0 += P.chunk) {
          const int64_t cc = std::min<int64_t>(P.chunk, C - c0);
          const bool first = c0 == 0, last = c0 + cc >= C;
          const T* ac0 = a0 + c0 * P.lda + x0;
          const T* ac1 = a1 + c0 * P.lda + x0;
          for (int64_t j = 0; j < nob; ++j) {
            const int64_t o0 = j * D / nob, n = (j + 1) * D / nob - o0;
            const T* bp = brow + c0 * P.WB + x0 + s2 * o0;
            T* dd0 = d0 + o0 * ld_ch + x0;
            T* dd1 = d1 + o0 * ld_ch + x0;
            if (on0 && on1) {
              fwd_tile_n<V, 2>(n, ac0, ac1, bp, t0 + o0 * L, t1 + o0 * L, dd0, dd1, cc, P.lda,
                               P.WB, s2, L, ld_ch, first, last, scale);
            } else if (on0) {
              fwd_tile_n<V, 1>(n, ac0, nullptr, bp, t0 + o0 * L, nullptr, dd0, nullptr, cc, P.lda,
                               P.WB, s2, L, ld_ch, first, last, scale);
            } else {
              fwd_tile_n<V, 1>(n, ac1, nullptr, bp, t1 + o0 * L, nullptr, dd1, nullptr, cc, P.lda,
                               P.WB, s2, L, ld_ch, first, last, scale);
            }
          }
        }
      }
    }
  }
}

// Displacements o in [0, D) with lo <= s2*o <= hi, as (first, count): the
// backward tiles skip those that only meet zero padding.
inline std::pair<int64_t, int64_t> displacement_range(int64_t lo, int64_t hi, int64_t s2,
                                                      int64_t D) {
  const auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  const int64_t first = std::max<int64_t>(0, -floor_div(-lo, s2));  // ceil(lo / s2)
  const int64_t last = std::min<int64_t>(D - 1, floor_div(hi, s2));
  return {first, std::max<int64_t>(0, last - first + 1)};
}

// Zero the columns xb .. xb + xw of every channel of the buffer rows no
// non-zero input row reached (their gradient is zero).
template <typename T>
inline void clear_unseen(T* buf0, T* buf1, int nrows, bool seen0, bool seen1, int64_t C,
                         int64_t ld, int64_t xb, int64_t xw) {
  for (int r = 0; r < nrows; ++r) {
    if (r == 0 ? seen0 : seen1) continue;
    T* buf = r == 0 ? buf0 : buf1;
    for (int64_t c = 0; c < C; ++c) std::fill_n(buf + c * ld + xb, xw, T(0));
  }
}

// Grad of A for row y0 (and y0 + s2 when nrows is 2): buf_r[c * ld + x] =
// Σ_{p,o} G · Bs for x < Wx. Zero rows of Bs (f2's padding) are skipped; the
// first other Bs row a row meets starts its sums from zero, and a row that
// meets none is cleared, so the buffers need no clearing beforehand.
template <typename V>
inline void backward_a_rows_impl(const CorrPacked<typename V::value_type>& P, int64_t b,
                                 int64_t y0, int nrows, typename V::value_type* buf0,
                                 typename V::value_type* buf1, int64_t ld) {
  using T = typename V::value_type;
  constexpr int L = V::size;
  constexpr int64_t XW = 8 * L;
  const int64_t D = P.D, C = P.C, s2 = P.s2;
  const T* bbase = P.Bs + b * (P.OH + 2 * P.R) * C * P.WB;
  const T* gbase0 = P.G + (b * P.OH + y0) * D * D * P.WG + 2 * P.R;
  const T* gbase1 = gbase0 + s2 * D * D * P.WG;
  const int64_t nk = D + nrows - 1;
  for (int64_t xb = 0; xb < P.Wx; xb += XW) {
    const int64_t xw = std::min(XW, P.Wx - xb);
    bool seen0 = false, seen1 = false;
    for (int64_t k = 0; k < nk; ++k) {
      if (y0 + s2 * k < P.by0 || y0 + s2 * k >= P.by1) continue;
      const T* brow = bbase + (y0 + s2 * k) * C * P.WB;
      const bool on0 = k < D, on1 = nrows == 2 && k >= 1;
      const bool z0 = on0 && !seen0, z1 = on1 && !seen1;
      seen0 = seen0 || on0;
      seen1 = seen1 || on1;
      const T* g0 = gbase0 + k * D * P.WG;        // row 0 at p = k
      const T* g1 = gbase1 + (k - 1) * D * P.WG;  // row 1 at p = k - 1
      for (int64_t c0 = 0; c0 < C; c0 += 6) {
        const int n = static_cast<int>(std::min<int64_t>(6, C - c0));
        const T* bp = brow + c0 * P.WB;
        for (int64_t x0 = xb; x0 < xb + xw; x0 += L) {
          // Only the displacements whose Bs columns x0 + s2*o + [0, L) reach inside f2.
          const auto [olo, no] = displacement_range(P.bx0 - x0 - (L - 1), P.bx1 - 1 - x0, s2, D);
          const int64_t go = x0 + olo * P.WG, bo = x0 + olo * s2;
          if (on0 && on1) {
            bwd_tile_n<V, 2, true>(n, g0 + go, g1 + go, bp + bo, buf0 + c0 * ld + x0,
                                   buf1 + c0 * ld + x0, no, P.WG, P.WB, s2, ld, z0, z1);
          } else if (on0) {
            bwd_tile_n<V, 1, true>(n, g0 + go, nullptr, bp + bo, buf0 + c0 * ld + x0, nullptr, no,
                                   P.WG, P.WB, s2, ld, z0, false);
          } else {
            bwd_tile_n<V, 1, true>(n, g1 + go, nullptr, bp + bo, buf1 + c0 * ld + x0, nullptr, no,
                                   P.WG, P.WB, s2, ld, z1, false);
          }
        }
      }
    }
    clear_unseen<T>(buf0, buf1, nrows, seen0, seen1, C, ld, xb, xw);
  }
}

// Grad of Bs for row yy0 (and yy0 + s2 when nrows is 2), columns xs .. xs +
// nbx*L: buf_r[c * ld + (xx - xs)]. As for A, the first A row a row meets
// starts its sums from zero; a row that meets none is cleared.
template <typename V>
inline void backward_b_rows_impl(const CorrPacked<typename V::value_type>& P, int64_t b,
                                 int64_t yy0, int nrows, int64_t xs, int64_t nbx,
                                 typename V::value_type* buf0, typename V::value_type* buf1,
                                 int64_t ld) {
  using T = typename V::value_type;
  constexpr int L = V::size;
  constexpr int64_t XW = 8 * L;
  const int64_t D = P.D, C = P.C, s2 = P.s2;
  const int64_t width = nbx * L;
  // A row y = yy0 - s2*k meets row 0 at p = k and row 1 at p = k + 1.
  const int64_t kmin = nrows == 2 ? -1 : 0;
  for (int64_t xb = 0; xb < width; xb += XW) {
    const int64_t xw = std::min(XW, width - xb);
    bool seen0 = false, seen1 = false;
    for (int64_t k = kmin; k < D; ++k) {
      const int64_t y = yy0 - s2 * k;
      if (y < 0 || y >= P.OH) continue;
      const bool on0 = k >= 0, on1 = nrows == 2 && k + 1 < D;
      const bool z0 = on0 && !seen0, z1 = on1 && !seen1;
      seen0 = seen0 || on0;
      seen1 = seen1 || on1;
      const T* arow = P.A + (b * P.OH + y) * C * P.lda + 2 * P.R + xs;
      const T* g0 = P.G + ((b * P.OH + y) * D * D + k * D) * P.WG + 2 * P.R + xs;
      const T* g1 = g0 + D * P.WG;
      for (int64_t c0 = 0; c0 < C; c0 += 6) {
        const int n = static_cast<int>(std::min<int64_t>(6, C - c0));
        const T* ap = arow + c0 * P.lda;
        for (int64_t x0 = xb; x0 < xb + xw; x0 += L) {
          // Only the displacements whose output columns xs + x0 - s2*o + [0, L)
          // reach [x1lo, x1hi), where f1 and grad_output are non-zero.
          const int64_t X = xs + x0;
          const auto [olo, no] =
              displacement_range(X - (P.x1hi - 1), X + (L - 1) - P.x1lo, s2, D);
          const int64_t go = x0 + olo * (P.WG - s2), ao = x0 - olo * s2;
          if (on0 && on1) {
            bwd_tile_n<V, 2, false>(n, g0 + go, g1 + go, ap + ao, buf0 + c0 * ld + x0,
                                    buf1 + c0 * ld + x0, no, P.WG, P.lda, s2, ld, z0, z1);
          } else if (on0) {
            bwd_tile_n<V, 1, false>(n, g0 + go, nullptr, ap + ao, buf0 + c0 * ld + x0, nullptr,
                                    no, P.WG, P.lda, s2, ld, z0, false);
          } else {
            bwd_tile_n<V, 1, false>(n, g1 + go, nullptr, ap + ao, buf1 + c0 * ld + x0, nullptr,
                                    no, P.WG, P.lda, s2, ld, z1, false);
          }
        }
      }
    }
    clear_unseen<T>(buf0, buf1, nrows, seen0, seen1, C, ld, xb, xw);
  }
}

// Entry points, one per working type, for the driver's run-time dispatch.
inline void forward_rows(const CorrPacked<float>& P, int64_t b, int64_t y0, int nrows, float* d0,
                         float* d1, int64_t ld_ch, float* tmp, float scale) {
  forward_rows_impl<VecF>(P, b, y0, nrows, d0, d1, ld_ch, tmp, scale);
}
inline void forward_rows(const CorrPacked<double>& P, int64_t b, int64_t y0, int nrows,
                         double* d0, double* d1, int64_t ld_ch, double* tmp, double scale) {
  forward_rows_impl<VecD>(P, b, y0, nrows, d0, d1, ld_ch, tmp, scale);
}
inline void backward_a_rows(const CorrPacked<float>& P, int64_t b, int64_t y0, int nrows,
                            float* buf0, float* buf1, int64_t ld) {
  backward_a_rows_impl<VecF>(P, b, y0, nrows, buf0, buf1, ld);
}
inline void backward_a_rows(const CorrPacked<double>& P, int64_t b, int64_t y0, int nrows,
                            double* buf0, double* buf1, int64_t ld) {
  backward_a_rows_impl<VecD>(P, b, y0, nrows, buf0, buf1, ld);
}
inline void backward_b_rows(const CorrPacked<float>& P, int64_t b, int64_t yy0, int nrows,
                            int64_t xs, int64_t nbx, float* buf0, float* buf1, int64_t ld) {
  backward_b_rows_impl<VecF>(P, b, yy0, nrows, xs, nbx, buf0, buf1, ld);
}
inline void backward_b_rows(const CorrPacked<double>& P, int64_t b, int64_t yy0, int nrows,
                            int64_t xs, int64_t nbx, double* buf0, double* buf1, int64_t ld) {
  backward_b_rows_impl<VecD>(P, b, yy0, nrows, xs, nbx, buf0, buf1, ld);
}
