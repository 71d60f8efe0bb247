// CPU kernels of flownet2::resample2d (bilinear backward warp) and its backward.
//
// out[b, c, y, x] = bilinear sample of input[b, c] at (x + u, y + v), flow =
// (u, v) in pixels. "border" clamps the sampling position to [0, W-1] x
// [0, H-1] first; "zeros" does not, and neighbours outside the image count
// as 0 (in both modes a neighbour outside the image contributes nothing, as
// in grid_sample). Equal to the pure-PyTorch twin (grid_sample with
// align_corners semantics), including its gradients: the clamp passes no
// gradient to the flow where the position was clamped.
//
// Parallel over output rows; per row, the footprints (neighbour offsets,
// inside-masks, fractions) are computed once in vectorised arithmetic and
// every channel then only gathers (AVX2 masked gathers for float, chosen at
// run time; see resample2d_rows.h). The input gradient is a scatter-add into
// per-thread accumulators (or, for many channels, one plane per task), so no
// two threads write the same memory. (grid_sample's CPU backward is parallel
// over the batch only.)
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../common.h"
#include "simd.h"

namespace flownet2::cpu {

// Per-pixel bilinear footprints of one row (see resample2d_rows.h).
template <typename T>
struct Footprints {
  int32_t* i00;                  // offset of the top-left neighbour in the plane
  int32_t *k00, *k01, *k10, *k11;  // -1 where that neighbour lies inside the image, else 0
  T* tx;                         // fractional position
  T* ty;
  T* gmx;                        // d(position)/d(flow): 0 where "border" clamped
  T* gmy;
};

namespace base {
#include "resample2d_rows.h"
}  // namespace base

#if FLOWNET2_HAVE_AVX2_PATH
FLOWNET2_AVX2_BEGIN
namespace avx2 {
#define FLOWNET2_RESAMPLE_AVX2
#include "resample2d_rows.h"
#undef FLOWNET2_RESAMPLE_AVX2
}  // namespace avx2
FLOWNET2_AVX2_END
#endif

namespace {

using ops::PaddingMode;

// Scratch for the footprints of one row, owned by one task.
template <typename T>
struct RowScratch {
  std::vector<int32_t> ints;
  std::vector<T> reals;
  Footprints<T> fp;
  explicit RowScratch(int64_t W) : ints(5 * W), reals(4 * W) {
    fp = {ints.data(), ints.data() + W, ints.data() + 2 * W, ints.data() + 3 * W,
          ints.data() + 4 * W, reals.data(), reals.data() + W, reals.data() + 2 * W,
          reals.data() + 3 * W};
  }
};

// Run-time choice of the instruction set (simd.h).
#if FLOWNET2_HAVE_AVX2_PATH
#define FLOWNET2_ISA_CALL(fn, ...) \
  (use_avx2() ? avx2::fn(__VA_ARGS__) : base::fn(__VA_ARGS__))
#else
#define FLOWNET2_ISA_CALL(fn, ...) base::fn(__VA_ARGS__)
#endif

template <typename scalar_t>
void forward_impl(const at::Tensor& input, const at::Tensor& flow, at::Tensor& out,
                  PaddingMode mode) {
  using T = at::opmath_type<scalar_t>;
  const int64_t B = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t HW = H * W;
  const scalar_t* ip = input.const_data_ptr<scalar_t>();  // contiguous
  const scalar_t* fp = flow.const_data_ptr<scalar_t>();
  const int64_t fB = flow.stride(0), fC = flow.stride(1), fH = flow.stride(2), fW = flow.stride(3);
  scalar_t* op = out.mutable_data_ptr<scalar_t>();  // contiguous
  const bool border = mode == PaddingMode::Border;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, W * (C + 4)));
  at::parallel_for(0, B * H, grain, [&](int64_t begin, int64_t end) {
    RowScratch<T> scratch(W);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, y = i % H;
      const scalar_t* u = fp + b * fB + y * fH;
      FLOWNET2_ISA_CALL(footprints, u, u + fC, fW, y, H, W, border, scratch.fp);
      for (int64_t c = 0; c < C; ++c) {
        FLOWNET2_ISA_CALL(sample_row, ip + (b * C + c) * HW, W, scratch.fp,
                          op + (b * C + c) * HW + y * W);
      }
    }
  });
}

template <typename scalar_t>
void backward_impl(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& flow,
                   at::Tensor& grad_input, at::Tensor& grad_flow, PaddingMode mode) {
  using T = at::opmath_type<scalar_t>;
  const int64_t B = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t HW = H * W;
  const scalar_t* ip = input.const_data_ptr<scalar_t>();  // input, grad_out contiguous
  const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
  const scalar_t* fp = flow.const_data_ptr<scalar_t>();
  const int64_t fB = flow.stride(0), fC = flow.stride(1), fH = flow.stride(2), fW = flow.stride(3);
  const bool border = mode == PaddingMode::Border;

  // grad of the input is a scatter-add (accumulated in T), grad of the flow a
  // gather summed over channels. With few planes (an image: B * C small) one
  // pass over rows does both from the same footprints, each thread scattering
  // into its own copy of grad_input (summed at the end); with many planes the
  // scatter runs one (batch, channel) plane per task instead, so no two threads
  // write the same plane, and the flow gradient has its own pass over rows.
  const int64_t nthreads = at::get_num_threads();
  const bool fused = nthreads == 1 || B * C < 2 * nthreads;
  const auto acc_dtype = grad_input.options().dtype(c10::CppTypeToScalarType<T>::value);
  const bool acc_in_place = std::is_same_v<scalar_t, T>;
  at::Tensor gin_acc = acc_in_place ? grad_input : at::zeros(grad_input.sizes(), acc_dtype);
  std::vector<at::Tensor> extra;  // private accumulators of threads 1 ..
  if (fused) {
    for (int64_t t = 1; t < nthreads; ++t) extra.push_back(at::zeros(grad_input.sizes(), acc_dtype));
  }
  scalar_t* gf = grad_flow.mutable_data_ptr<scalar_t>();  // contiguous
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, W * (C + 4)));
  at::parallel_for(0, B * H, grain, [&](int64_t begin, int64_t end) {
    RowScratch<T> scratch(W);
    std::vector<T> gxy(2 * W);
    const int tid = at::get_thread_num();
    T* gi = fused ? reinterpret_cast<T*>(tid == 0 ? gin_acc.mutable_data_ptr()
                                                   : extra[tid - 1].mutable_data_ptr())
                  : nullptr;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, y = i % H;
      const scalar_t* u = fp + b * fB + y * fH;
      FLOWNET2_ISA_CALL(footprints, u, u + fC, fW, y, H, W, border, scratch.fp);
      std::fill(gxy.begin(), gxy.end(), T(0));
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* g = gp + (b * C + c) * HW + y * W;
        FLOWNET2_ISA_CALL(flow_grad_row, ip + (b * C + c) * HW, g, W, scratch.fp, gxy.data(),
                          gxy.data() + W);
        if (fused) FLOWNET2_ISA_CALL(scatter_row, g, W, scratch.fp, gi + (b * C + c) * HW);
      }
      scalar_t* gu = gf + (b * 2 * H + y) * W;
      scalar_t* gv = gu + HW;
      for (int64_t x = 0; x < W; ++x) {
        gu[x] = static_cast<scalar_t>(gxy[x] * scratch.fp.gmx[x]);
        gv[x] = static_cast<scalar_t>(gxy[W + x] * scratch.fp.gmy[x]);
      }
    }
  });
  if (fused) {
    for (const at::Tensor& e : extra) gin_acc.add_(e);
  } else {
    T* gi = reinterpret_cast<T*>(gin_acc.mutable_data_ptr());  // contiguous, zero-filled
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      RowScratch<T> scratch(W);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / C;
        for (int64_t y = 0; y < H; ++y) {
          const scalar_t* u = fp + b * fB + y * fH;
          FLOWNET2_ISA_CALL(footprints, u, u + fC, fW, y, H, W, border, scratch.fp);
          FLOWNET2_ISA_CALL(scatter_row, gp + i * HW + y * W, W, scratch.fp, gi + i * HW);
        }
      }
    });
  }
  if (!acc_in_place) grad_input.copy_(gin_acc);
}

#undef FLOWNET2_ISA_CALL

at::Tensor resample2d_forward_kernel(const at::Tensor& input, const at::Tensor& flow,
                                     c10::string_view padding_mode) {
  ops::check_resample2d(input, flow);
  const PaddingMode mode = ops::parse_padding_mode(padding_mode);
  at::Tensor out = at::empty(input.sizes(), input.options());
  if (out.numel() == 0) return out;
  TORCH_CHECK((input.size(2) + 2) * (input.size(3) + 2) < (int64_t(1) << 31),
              "resample2d: images of more than 2^31 pixels are not supported");
  const at::Tensor in = input.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "resample2d_forward_cpu",
                                  [&] { forward_impl<scalar_t>(in, flow, out, mode); });
  return out;
}

std::tuple<at::Tensor, at::Tensor> resample2d_backward_kernel(const at::Tensor& grad_output,
                                                              const at::Tensor& input,
                                                              const at::Tensor& flow,
                                                              c10::string_view padding_mode) {
  ops::check_resample2d(input, flow);
  const PaddingMode mode = ops::parse_padding_mode(padding_mode);
  TORCH_CHECK(grad_output.sizes() == input.sizes(), "_resample2d_backward: grad_output has shape ",
              grad_output.sizes(), ", expected ", input.sizes());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(),
              "_resample2d_backward: grad_output and input differ in dtype");
  at::Tensor grad_input = at::zeros(input.sizes(), input.options());
  at::Tensor grad_flow = at::zeros(flow.sizes(), flow.options());
  if (input.numel() == 0 && flow.numel() == 0) return {grad_input, grad_flow};
  TORCH_CHECK((input.size(2) + 2) * (input.size(3) + 2) < (int64_t(1) << 31),
              "resample2d: images of more than 2^31 pixels are not supported");
  const at::Tensor in = input.contiguous(), g = grad_output.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "resample2d_backward_cpu", [&] {
                                    backward_impl<scalar_t>(g, in, flow, grad_input, grad_flow,
                                                            mode);
                                  });
  return {grad_input, grad_flow};
}

}  // namespace

TORCH_LIBRARY_IMPL(flownet2, CPU, m) {
  m.impl("resample2d", &resample2d_forward_kernel);
  m.impl("_resample2d_backward", &resample2d_backward_kernel);
}

}  // namespace flownet2::cpu
