// CPU kernels of flownet2::correlation and flownet2::_correlation_backward.
//
// Fast path (kernel_size 1, stride1 1: FlowNetC and every released model):
// the inputs are first repacked into row-major blocks [row][channel][column]
// in the working type (float for float/half/bfloat16, double for double),
// zero-filled outside the image and padded to whole SIMD vectors (see
// correlation_rows.h). The cost volume is then a banded product of those
// rows, computed by register tiles of 2 output rows x <= 6 displacements x 8
// columns that stream over channel chunks held in L1. Parallel over pairs of
// output rows (at::parallel_for); AVX2/FMA or portable code chosen at run time
// (simd.h). The backward gathers (no atomics, no races): one pass for the
// gradient of each input, each parallel over the rows it writes.
//
// That is the only path: no FlowNet model uses kernel_size > 1 or stride1 > 1,
// and for those settings the Python side calls the pure-PyTorch twin instead
// (flownet2_core/ops/_compiled.py); called with them directly, these kernels
// raise.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "../common.h"
#include "simd.h"



namespace flownet2::cpu {

template <typename T>
struct CorrPacked {
  int64_t C = 0, D = 0, s2 = 1, R = 0, OH = 0, OW = 0;
  int64_t Wx = 0;     // output columns rounded up to whole vectors
  int64_t WB = 0;     // row width of Bs
  int64_t WG = 0;     // row width of G (backward)
  int64_t lda = 0;    // row width of A
  int64_t chunk = 0;  // channels per L1 block (forward)
  // Bs rows [by0, by1) lie inside f2; the others are all zero: the kernels
  // skip them (zero output, no gradient) and the driver does not pack them.
  int64_t by0 = 0, by1 = 0;
  // Likewise Bs columns [bx0, bx1) lie inside f2, and output columns
  // [x1lo, x1hi) inside f1 (backward: the tiles skip displacements that only
  // meet zeros).
  int64_t bx0 = 0, bx1 = 0, x1lo = 0, x1hi = 0;
  const T* A = nullptr;
  const T* Bs = nullptr;
  const T* G = nullptr;
};

namespace base {
using VecF = VecG<float, 8>;
using VecD = VecG<double, 4>;
#include "correlation_rows.h"
}  // namespace base

#if FLOWNET2_HAVE_AVX2_PATH
FLOWNET2_AVX2_BEGIN
namespace avx2 {
using VecF = Vec8f;
using VecD = Vec4d;
#include "correlation_rows.h"
}  // namespace avx2
FLOWNET2_AVX2_END
#endif

namespace {

using ops::CorrGeometry;

// float for float / half / bfloat16 (converted while packing), double for double.
template <typename scalar_t>
using work_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

template <typename T>
constexpr int64_t lanes() {
  return std::is_same_v<T, double> ? 4 : 8;
}

inline int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

// dst[b][r][c][x] = src[b][c][r + roff][x + coff] (zero outside src), for
// r < rows, x < width; src may have any strides and dtype. With
// skip_outside, rows entirely outside src are left unwritten (never read).
template <typename scalar_t, typename T>
void pack_rows(const at::Tensor& src, T* dst, int64_t rows, int64_t width, int64_t roff,
               int64_t coff, bool skip_outside = false) {
  const int64_t B = src.size(0), C = src.size(1), H = src.size(2), W = src.size(3);
  const int64_t sB = src.stride(0), sC = src.stride(1), sH = src.stride(2), sW = src.stride(3);
  const scalar_t* sp = src.const_data_ptr<scalar_t>();
  const int64_t xlo = std::clamp<int64_t>(-coff, 0, width);
  const int64_t xhi = std::clamp<int64_t>(W - coff, xlo, width);
  at::parallel_for(0, B * rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / rows, r = i % rows, Y = r + roff;
      T* d = dst + i * C * width;
      if (Y < 0 || Y >= H) {
        if (!skip_outside) std::fill(d, d + C * width, T(0));
        continue;
      }
      for (int64_t c = 0; c < C; ++c, d += width) {
        const scalar_t* s = sp + b * sB + c * sC + Y * sH + (xlo + coff) * sW;
        std::fill(d, d + xlo, T(0));
        if (sW == 1) {
          for (int64_t x = xlo; x < xhi; ++x) d[x] = static_cast<T>(s[x - xlo]);
        } else {
          for (int64_t x = xlo; x < xhi; ++x) d[x] = static_cast<T>(s[(x - xlo) * sW]);
        }
        std::fill(d + xhi, d + width, T(0));
      }
    }
  });
}

template <typename T>
void forward_rows(const CorrPacked<T>& P, int64_t b, int64_t y0, int nrows, T* d0, T* d1,
                  int64_t ld_ch, T* tmp, T scale) {
#if FLOWNET2_HAVE_AVX2_PATH
  if (use_avx2()) return avx2::forward_rows(P, b, y0, nrows, d0, d1, ld_ch, tmp, scale);
#endif
  base::forward_rows(P, b, y0, nrows, d0, d1, ld_ch, tmp, scale);
}

template <typename T>
void backward_a_rows(const CorrPacked<T>& P, int64_t b, int64_t y0, int nrows, T* buf0, T* buf1,
                     int64_t ld) {
#if FLOWNET2_HAVE_AVX2_PATH
  if (use_avx2()) return avx2::backward_a_rows(P, b, y0, nrows, buf0, buf1, ld);
#endif
  base::backward_a_rows(P, b, y0, nrows, buf0, buf1, ld);
}

template <typename T>
void backward_b_rows(const CorrPacked<T>& P, int64_t b, int64_t yy0, int nrows, int64_t xs,
                     int64_t nbx, T* buf0, T* buf1, int64_t ld) {
#if FLOWNET2_HAVE_AVX2_PATH
  if (use_avx2()) return avx2::backward_b_rows(P, b, yy0, nrows, xs, nbx, buf0, buf1, ld);
#endif
  base::backward_b_rows(P, b, yy0, nrows, xs, nbx, buf0, buf1, ld);
}

// Rows [lo, hi) grouped as the row kernels want them: pairs (y, y + s2) where
// both exist, single rows otherwise, ordered by y mod s2 first, so that
// consecutive groups (run by the same thread) share most Bs rows. Returns
// (first row, number of rows).
std::vector<std::pair<int64_t, int>> row_groups(int64_t lo, int64_t hi, int64_t s2) {
  std::vector<std::pair<int64_t, int>> groups;
  for (int64_t j = 0; j < s2; ++j) {
    for (int64_t y = lo + j; y < hi; y += 2 * s2) {
      groups.emplace_back(y, y + s2 < hi ? 2 : 1);
    }
  }
  return groups;
}

template <typename T>
CorrPacked<T> base_geometry(const CorrGeometry& g) {
  CorrPacked<T> P;
  constexpr int64_t L = lanes<T>();
  P.C = g.channels;
  P.D = g.grid;
  P.s2 = g.stride2;
  P.R = g.reach;
  P.OH = g.out_h;
  P.OW = g.out_w;
  P.Wx = round_up(g.out_w, L);
  P.WB = round_up(P.Wx + 2 * g.reach, L);
  // Bs row yy holds f2 row yy + off - R.
  P.by0 = std::clamp<int64_t>(g.reach - g.off, 0, g.out_h + 2 * g.reach);
  P.by1 = std::clamp<int64_t>(g.reach - g.off + g.height, P.by0, g.out_h + 2 * g.reach);
  // Bs column xx holds f2 column xx + off - R; output column x, f1 column x + off.
  P.bx0 = g.reach - g.off;
  P.bx1 = g.reach - g.off + g.width;
  P.x1lo = std::max<int64_t>(0, -g.off);
  P.x1hi = std::min<int64_t>(g.out_w, g.width - g.off);
  return P;
}

// ---------------------------------------------------------------- fast path

template <typename scalar_t>
void forward_fast(const at::Tensor& input1, const at::Tensor& input2, const CorrGeometry& g,
                  at::Tensor& out) {
  using T = work_t<scalar_t>;
  CorrPacked<T> P = base_geometry<T>(g);
  const int64_t B = g.batch, C = P.C, D = P.D, OH = P.OH, OW = P.OW, R = P.R;
  P.lda = P.Wx;
  // Channels per chunk: per channel, two A vectors and one Bs strip of L + 2R
  // columns, in about 24 KiB of L1; a multiple of 8.
  {
    const int64_t L = lanes<T>(), sz = static_cast<int64_t>(sizeof(T));
    P.chunk = std::clamp<int64_t>((24 * 1024) / ((3 * L + 2 * R) * sz) / 8 * 8, 8, 256);
  }
  const auto wopt = input1.options().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor A = at::empty({B * OH * C * P.lda}, wopt);
  at::Tensor Bs = at::empty({B * (OH + 2 * R) * C * P.WB}, wopt);
  pack_rows<scalar_t>(input1, A.mutable_data_ptr<T>(), OH, P.lda, g.off, g.off);
  pack_rows<scalar_t>(input2, Bs.mutable_data_ptr<T>(), OH + 2 * R, P.WB, g.off - R, g.off - R,
                      /*skip_outside=*/true);
  P.A = A.const_data_ptr<T>();
  P.Bs = Bs.const_data_ptr<T>();

  const T scale = T(1) / static_cast<T>(C);
  // Tiles store whole vectors: straight into the output when its rows are whole
  // vectors wide and of the working type, else through a row buffer.
  const bool direct = std::is_same_v<scalar_t, T> && OW == P.Wx;
  scalar_t* op = out.mutable_data_ptr<scalar_t>();  // contiguous
  const auto groups = row_groups(0, OH, P.s2);
  const int64_t ng = static_cast<int64_t>(groups.size());
  at::parallel_for(0, B * ng, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> tmp(2 * D * lanes<T>());  // partial sums of one column vector
    std::vector<T> rows(direct ? 0 : 2 * D * D * P.Wx);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / ng;
      const auto [y0, nrows] = groups[i % ng];
      scalar_t* o0 = op + (b * D * D * OH + y0) * OW;  // channel 0, row y0
      scalar_t* o1 = o0 + P.s2 * OW;                   // channel 0, row y0 + s2
      if (direct) {
        forward_rows<T>(P, b, y0, nrows, reinterpret_cast<T*>(o0), reinterpret_cast<T*>(o1),
                        OH * OW, tmp.data(), scale);
      } else {
        T* r0 = rows.data();
        T* r1 = r0 + D * D * P.Wx;
        forward_rows<T>(P, b, y0, nrows, r0, r1, P.Wx, tmp.data(), scale);
        for (int r = 0; r < nrows; ++r) {
          for (int64_t ch = 0; ch < D * D; ++ch) {
            const T* t = (r == 0 ? r0 : r1) + ch * P.Wx;
            scalar_t* o = (r == 0 ? o0 : o1) + ch * OH * OW;
            for (int64_t x = 0; x < OW; ++x) o[x] = static_cast<scalar_t>(t[x]);
          }
        }
      }
    }
  });
}

template <typename scalar_t>
void backward_fast(const at::Tensor& grad_out, const at::Tensor& input1, const at::Tensor& input2,
                   const CorrGeometry& g, at::Tensor& grad1, at::Tensor& grad2) {
  using T = work_t<scalar_t>;
  constexpr int64_t L = lanes<T>();
  CorrPacked<T> P = base_geometry<T>(g);
  const int64_t B = g.batch, C = P.C, D = P.D, OH = P.OH, OW = P.OW, R = P.R;
  const int64_t H = g.height, W = g.width, off = g.off;
  // grad of f2 is gathered for Bs columns xs .. xe (those inside f2) and rows ys .. ye.
  const int64_t xs = std::max<int64_t>(0, R - off), xe = R - off + W;
  const int64_t nbx = xe > xs ? (xe - xs + L - 1) / L : 0;
  const int64_t ys = std::max<int64_t>(0, R - off), ye = std::min<int64_t>(OH + 2 * R, R - off + H);
  // G and A are read at 2R + x (grad of f1, x < Wx) and at 2R + xx - s2*o
  // (grad of f2, xs <= xx < xs + nbx*L, 0 <= s2*o <= 2R).
  P.WG = round_up(std::max(2 * R + P.Wx, 2 * R + xs + nbx * L), L);
  P.lda = P.WG;
  const auto wopt = input1.options().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor A = at::empty({B * OH * C * P.lda}, wopt);
  at::Tensor Bs = at::empty({B * (OH + 2 * R) * C * P.WB}, wopt);
  at::Tensor G = at::empty({B * OH * D * D * P.WG}, wopt);
  pack_rows<scalar_t>(input1, A.mutable_data_ptr<T>(), OH, P.lda, off, off - 2 * R);
  pack_rows<scalar_t>(input2, Bs.mutable_data_ptr<T>(), OH + 2 * R, P.WB, off - R, off - R,
                      /*skip_outside=*/true);
  pack_rows<scalar_t>(grad_out, G.mutable_data_ptr<T>(), OH, P.WG, 0, -2 * R);
  P.A = A.const_data_ptr<T>();
  P.Bs = Bs.const_data_ptr<T>();
  P.G = G.const_data_ptr<T>();

  const T scale = T(1) / static_cast<T>(C);
  scalar_t* g1 = grad1.mutable_data_ptr<scalar_t>();  // contiguous, zero-filled
  scalar_t* g2 = grad2.mutable_data_ptr<scalar_t>();
  // grad of f1: output row y <-> f1 row y + off, column x <-> x + off.
  const int64_t x1lo = std::max<int64_t>(0, -off), x1hi = std::min<int64_t>(OW, W - off);
  const int64_t y1lo = std::max<int64_t>(0, -off), y1hi = std::min<int64_t>(OH, H - off);
  const auto groups1 = row_groups(y1lo, std::max(y1lo, y1hi), P.s2);
  const int64_t ng1 = static_cast<int64_t>(groups1.size());
  at::parallel_for(0, B * ng1, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> buf(2 * C * P.Wx);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / ng1;
      const auto [y0, nrows] = groups1[i % ng1];
      backward_a_rows<T>(P, b, y0, nrows, buf.data(), buf.data() + C * P.Wx, P.Wx);
      for (int r = 0; r < nrows; ++r) {
        const int64_t Y = y0 + r * P.s2 + off;
        for (int64_t c = 0; c < C; ++c) {
          const T* s = buf.data() + (r * C + c) * P.Wx;
          scalar_t* d = g1 + ((b * C + c) * H + Y) * W + off;
          for (int64_t x = x1lo; x < x1hi; ++x) d[x] = static_cast<scalar_t>(s[x] * scale);
        }
      }
    }
  });
  // grad of f2: Bs row yy <-> f2 row yy + off - R, column xx <-> xx + off - R.
  const int64_t ld = nbx * L;
  const auto groups2 = row_groups(ys, std::max(ys, ye), P.s2);
  const int64_t ng2 = static_cast<int64_t>(groups2.size());
  at::parallel_for(0, B * ng2, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> buf(2 * C * ld);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / ng2;
      const auto [yy0, nrows] = groups2[i % ng2];
      backward_b_rows<T>(P, b, yy0, nrows, xs, nbx, buf.data(), buf.data() + C * ld, ld);
      for (int r = 0; r < nrows; ++r) {
        const int64_t Y = yy0 + r * P.s2 + off - R;
        for (int64_t c = 0; c < C; ++c) {
          const T* s = buf.data() + (r * C + c) * ld;
          scalar_t* d = g2 + ((b * C + c) * H + Y) * W + (xs + off - R);
          for (int64_t x = 0; x < xe - xs; ++x) d[x] = static_cast<scalar_t>(s[x] * scale);
        }
      }
    }
  });
}

void check_fast_path(const CorrGeometry& g, const char* op) {
  TORCH_CHECK(g.kernel == 1 && g.stride1 == 1, op,
              ": the CPU kernel takes kernel_size 1 and stride1 1 only (FlowNetC's setting), got "
              "kernel_size ", g.kernel, ", stride1 ", g.stride1,
              "; flownet2_core.ops.correlation computes other settings with the pure-PyTorch twin");
}

at::Tensor correlation_forward_kernel(const at::Tensor& input1, const at::Tensor& input2,
                                      int64_t pad_size, int64_t kernel_size,
                                      int64_t max_displacement, int64_t stride1, int64_t stride2) {
  const CorrGeometry g = ops::correlation_geometry(input1, input2, pad_size, kernel_size,
                                                   max_displacement, stride1, stride2);
  check_fast_path(g, "correlation");
  at::Tensor out = at::empty({g.batch, g.grid * g.grid, g.out_h, g.out_w}, input1.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input1.scalar_type(),
                                  "correlation_forward_cpu",
                                  [&] { forward_fast<scalar_t>(input1, input2, g, out); });
  return out;
}

std::tuple<at::Tensor, at::Tensor> correlation_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& input1, const at::Tensor& input2,
    int64_t pad_size, int64_t kernel_size, int64_t max_displacement, int64_t stride1,
    int64_t stride2) {
  const CorrGeometry g = ops::correlation_backward_geometry(
      grad_output, input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2);
  check_fast_path(g, "_correlation_backward");
  // With pad == max_displacement the kernel writes every element of both
  // gradients; otherwise the elements no output reaches must be zero.
  const bool covered = g.off == 0;
  at::Tensor grad1 = covered ? at::empty(input1.sizes(), input1.options())
                             : at::zeros(input1.sizes(), input1.options());
  at::Tensor grad2 = covered ? at::empty(input2.sizes(), input2.options())
                             : at::zeros(input2.sizes(), input2.options());
  if (grad_output.numel() == 0 || input1.numel() == 0) return {grad1.zero_(), grad2.zero_()};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input1.scalar_type(),
                                  "correlation_backward_cpu", [&] {
                                    backward_fast<scalar_t>(grad_output, input1, input2, g, grad1,
                                                            grad2);
                                  });
  return {grad1, grad2};
}

}  // namespace

TORCH_LIBRARY_IMPL(flownet2, CPU, m) {
  m.impl("correlation", &correlation_forward_kernel);
  m.impl("_correlation_backward", &correlation_backward_kernel);
}

}  // namespace flownet2::cpu
