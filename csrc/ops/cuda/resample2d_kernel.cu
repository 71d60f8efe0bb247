// CUDA kernels of flownet2::resample2d (bilinear backward warp) and its backward.
//
// Same definition as the CPU kernel (cpu/resample2d_kernel.cpp) and the Python
// twin: sample input[b, :] at (x + u, y + v); "border" clamps the position to
// the image first (and then passes no gradient to the flow), "zeros" lets
// neighbours outside the image count as 0; a NaN position samples nothing. One thread per output pixel, which
// computes the four weights once and loops over channels (writes coalesce
// along x). The input gradient is a scatter: atomics into an accumulator of
// at::opmath_type (float for half / bfloat16, converted at the end), so the
// backward is not deterministic and raises PyTorch's alert under
// torch.use_deterministic_algorithms(True) (the Python side uses the twin's
// gather form there). Index arithmetic is 32-bit when the sizes allow.
#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <torch/library.h>

#include "../common.h"
#include "cuda_helpers.cuh"

namespace flownet2::cuda {
namespace {

using ops::PaddingMode;

template <typename T, typename index_t>
struct Footprint {
  index_t x0, y0;
  T tx, ty;
  bool in_x0, in_x1, in_y0, in_y1;
  T gmx, gmy;  // d(position)/d(flow): 0 where "border" clamped
  bool valid;  // false for a NaN position
};

template <typename T, typename index_t>
__device__ __forceinline__ Footprint<T, index_t> footprint(T px, T py, index_t H, index_t W,
                                                          bool border) {
  // Same rules as the CPU kernel: a NaN position samples nothing; infinite
  // ones clamp ("border") or fall outside ("zeros").
  Footprint<T, index_t> f;
  f.valid = !(isnan(px) || isnan(py));
  if (!f.valid) {
    px = T(0);
    py = T(0);
  }
  const T xmax = static_cast<T>(W - 1), ymax = static_cast<T>(H - 1);
  f.gmx = border && (px < T(0) || px > xmax) ? T(0) : T(1);
  f.gmy = border && (py < T(0) || py > ymax) ? T(0) : T(1);
  // "zeros": beyond one pixel outside every neighbour is outside; clamping
  // there keeps the integer conversion defined without changing any result.
  const T xlo = border ? T(0) : T(-2), xhi = border ? xmax : static_cast<T>(W + 1);
  const T ylo = border ? T(0) : T(-2), yhi = border ? ymax : static_cast<T>(H + 1);
  px = px < xlo ? xlo : (px > xhi ? xhi : px);
  py = py < ylo ? ylo : (py > yhi ? yhi : py);
  const T fx = floor(px), fy = floor(py);
  f.x0 = static_cast<index_t>(fx);
  f.y0 = static_cast<index_t>(fy);
  f.tx = px - fx;
  f.ty = py - fy;
  f.in_x0 = f.valid && f.x0 >= 0 && f.x0 < W;
  f.in_x1 = f.valid && f.x0 + 1 >= 0 && f.x0 + 1 < W;
  f.in_y0 = f.y0 >= 0 && f.y0 < H;
  f.in_y1 = f.y0 + 1 >= 0 && f.y0 + 1 < H;
  return f;
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void resample2d_forward_kernel(const scalar_t* __restrict__ input,  // (B, C, H, W)
                                          const scalar_t* __restrict__ flow,   // (B, 2, H, W)
                                          scalar_t* __restrict__ out, index_t B, index_t C,
                                          index_t H, index_t W, bool border) {
  const index_t HW = H * W;
  FLOWNET2_GRID_STRIDE_LOOP(index_t, idx, B * HW) {
    const index_t pix = idx % HW, b = idx / HW;
    const index_t x = pix % W, y = pix / W;
    const acc_t u = static_cast<acc_t>(flow[(b * 2) * HW + pix]);
    const acc_t v = static_cast<acc_t>(flow[(b * 2 + 1) * HW + pix]);
    const Footprint<acc_t, index_t> f = footprint<acc_t, index_t>(
        static_cast<acc_t>(x) + u, static_cast<acc_t>(y) + v, H, W, border);
    const acc_t nw = (acc_t(1) - f.tx) * (acc_t(1) - f.ty), ne = f.tx * (acc_t(1) - f.ty);
    const acc_t sw = (acc_t(1) - f.tx) * f.ty, se = f.tx * f.ty;
    const bool k00 = f.in_y0 && f.in_x0, k01 = f.in_y0 && f.in_x1;
    const bool k10 = f.in_y1 && f.in_x0, k11 = f.in_y1 && f.in_x1;
    const index_t o00 = f.y0 * W + f.x0;
    for (index_t c = 0; c < C; ++c) {
      const scalar_t* s = input + (b * C + c) * HW;
      acc_t val = 0;
      if (k00) val += nw * static_cast<acc_t>(s[o00]);
      if (k01) val += ne * static_cast<acc_t>(s[o00 + 1]);
      if (k10) val += sw * static_cast<acc_t>(s[o00 + W]);
      if (k11) val += se * static_cast<acc_t>(s[o00 + W + 1]);
      out[(b * C + c) * HW + pix] = static_cast<scalar_t>(val);
    }
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void resample2d_backward_kernel(const scalar_t* __restrict__ grad,   // (B, C, H, W)
                                           const scalar_t* __restrict__ input,  // (B, C, H, W)
                                           const scalar_t* __restrict__ flow,   // (B, 2, H, W)
                                           acc_t* __restrict__ grad_input,      // (B, C, H, W), zeroed
                                           scalar_t* __restrict__ grad_flow,    // (B, 2, H, W)
                                           index_t B, index_t C, index_t H, index_t W,
                                           bool border) {
  const index_t HW = H * W;
  FLOWNET2_GRID_STRIDE_LOOP(index_t, idx, B * HW) {
    const index_t pix = idx % HW, b = idx / HW;
    const index_t x = pix % W, y = pix / W;
    const acc_t u = static_cast<acc_t>(flow[(b * 2) * HW + pix]);
    const acc_t v = static_cast<acc_t>(flow[(b * 2 + 1) * HW + pix]);
    const Footprint<acc_t, index_t> f = footprint<acc_t, index_t>(
        static_cast<acc_t>(x) + u, static_cast<acc_t>(y) + v, H, W, border);
    acc_t gx = 0, gy = 0;
    if (f.valid) {
      const acc_t nw = (acc_t(1) - f.tx) * (acc_t(1) - f.ty), ne = f.tx * (acc_t(1) - f.ty);
      const acc_t sw = (acc_t(1) - f.tx) * f.ty, se = f.tx * f.ty;
      const bool k00 = f.in_y0 && f.in_x0, k01 = f.in_y0 && f.in_x1;
      const bool k10 = f.in_y1 && f.in_x0, k11 = f.in_y1 && f.in_x1;
      const index_t o00 = f.y0 * W + f.x0;
      for (index_t c = 0; c < C; ++c) {
        const acc_t g = static_cast<acc_t>(grad[(b * C + c) * HW + pix]);
        const scalar_t* s = input + (b * C + c) * HW;
        acc_t* d = grad_input + (b * C + c) * HW;
        const acc_t v00 = k00 ? static_cast<acc_t>(s[o00]) : acc_t(0);
        const acc_t v01 = k01 ? static_cast<acc_t>(s[o00 + 1]) : acc_t(0);
        const acc_t v10 = k10 ? static_cast<acc_t>(s[o00 + W]) : acc_t(0);
        const acc_t v11 = k11 ? static_cast<acc_t>(s[o00 + W + 1]) : acc_t(0);
        gx += g * ((v01 - v00) * (acc_t(1) - f.ty) + (v11 - v10) * f.ty);
        gy += g * ((v10 - v00) * (acc_t(1) - f.tx) + (v11 - v01) * f.tx);
        if (g != acc_t(0)) {
          if (k00) gpuAtomicAdd(d + o00, nw * g);
          if (k01) gpuAtomicAdd(d + o00 + 1, ne * g);
          if (k10) gpuAtomicAdd(d + o00 + W, sw * g);
          if (k11) gpuAtomicAdd(d + o00 + W + 1, se * g);
        }
      }
    }
    grad_flow[(b * 2) * HW + pix] = static_cast<scalar_t>(gx * f.gmx);
    grad_flow[(b * 2 + 1) * HW + pix] = static_cast<scalar_t>(gy * f.gmy);
  }
}

at::Tensor resample2d_forward_cuda(const at::Tensor& input, const at::Tensor& flow,
                                   c10::string_view padding_mode) {
  ops::check_resample2d(input, flow);
  const bool border = ops::parse_padding_mode(padding_mode) == PaddingMode::Border;
  c10::cuda::CUDAGuard device_guard(input.device());
  at::Tensor out = at::empty(input.sizes(), input.options());
  if (out.numel() == 0) return out;
  const at::Tensor in = input.contiguous(), fl = flow.contiguous();
  const int64_t B = in.size(0), C = in.size(1), H = in.size(2), W = in.size(3);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "resample2d_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        with_index_type({in.numel(), fl.numel()}, [&](auto index) {
          using index_t = decltype(index);
          resample2d_forward_kernel<scalar_t, acc_t, index_t>
              <<<blocks_for(B * H * W), kThreads, 0, stream>>>(
                  in.const_data_ptr<scalar_t>(), fl.const_data_ptr<scalar_t>(),
                  out.mutable_data_ptr<scalar_t>(), static_cast<index_t>(B),
                  static_cast<index_t>(C), static_cast<index_t>(H), static_cast<index_t>(W),
                  border);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return out;
}

std::tuple<at::Tensor, at::Tensor> resample2d_backward_cuda(const at::Tensor& grad_output,
                                                            const at::Tensor& input,
                                                            const at::Tensor& flow,
                                                            c10::string_view padding_mode) {
  ops::check_resample2d(input, flow);
  const bool border = ops::parse_padding_mode(padding_mode) == PaddingMode::Border;
  TORCH_CHECK(grad_output.sizes() == input.sizes(), "_resample2d_backward: grad_output has shape ",
              grad_output.sizes(), ", expected ", input.sizes());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type() &&
                  grad_output.device() == input.device(),
              "_resample2d_backward: grad_output and input differ in dtype or device");
  // Atomic adds into grad_input: the order of the additions varies from run to run.
  at::globalContext().alertNotDeterministic("flownet2::_resample2d_backward (CUDA)");
  c10::cuda::CUDAGuard device_guard(input.device());
  const int64_t B = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  at::Tensor grad_flow = at::empty(flow.sizes(), flow.options());
  if (B * H * W == 0) return {at::zeros(input.sizes(), input.options()), grad_flow};
  const at::Tensor g = grad_output.contiguous(), in = input.contiguous(), fl = flow.contiguous();
  const auto acc_type = at::toOpMathType(input.scalar_type());
  at::Tensor grad_acc = at::zeros(input.sizes(), input.options().dtype(acc_type));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "resample2d_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        with_index_type({in.numel(), fl.numel()}, [&](auto index) {
          using index_t = decltype(index);
          resample2d_backward_kernel<scalar_t, acc_t, index_t>
              <<<blocks_for(B * H * W), kThreads, 0, stream>>>(
                  g.const_data_ptr<scalar_t>(), in.const_data_ptr<scalar_t>(),
                  fl.const_data_ptr<scalar_t>(), grad_acc.mutable_data_ptr<acc_t>(),
                  grad_flow.mutable_data_ptr<scalar_t>(), static_cast<index_t>(B),
                  static_cast<index_t>(C), static_cast<index_t>(H), static_cast<index_t>(W),
                  border);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  at::Tensor grad_input =
      acc_type == input.scalar_type() ? grad_acc : grad_acc.to(input.scalar_type());
  return {grad_input, grad_flow};
}

}  // namespace

TORCH_LIBRARY_IMPL(flownet2, CUDA, m) {
  m.impl("resample2d", &resample2d_forward_cuda);
  m.impl("_resample2d_backward", &resample2d_backward_cuda);
}

}  // namespace flownet2::cuda
