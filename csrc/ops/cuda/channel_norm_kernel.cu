// CUDA kernels of flownet2::channel_norm and its backward.
//
// norm = sqrt(sum_c x²) per pixel, exact; grad = x * grad_norm / norm, and 0
// where norm == 0 (same definition as the CPU kernel and the Python twin).
// One thread per pixel, looping over channels (reads coalesce along the
// pixels); half / bfloat16 accumulate in float, and their backward recomputes
// the norm in float, as the twin does. Index arithmetic is 32-bit when the
// sizes allow.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <type_traits>

#include "../common.h"
#include "cuda_helpers.cuh"

namespace flownet2::cuda {
namespace {

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void channel_norm_forward_kernel(const scalar_t* __restrict__ x,  // (B, C, HW)
                                            scalar_t* __restrict__ out,      // (B, 1, HW)
                                            index_t B, index_t C, index_t HW) {
  FLOWNET2_GRID_STRIDE_LOOP(index_t, idx, B * HW) {
    const index_t p = idx % HW, b = idx / HW;
    acc_t acc = 0;
    for (index_t c = 0; c < C; ++c) {
      const acc_t v = static_cast<acc_t>(x[(b * C + c) * HW + p]);
      acc += v * v;
    }
    out[idx] = static_cast<scalar_t>(sqrt(acc));
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void channel_norm_backward_kernel(const scalar_t* __restrict__ grad,  // (B, 1, HW)
                                             const scalar_t* __restrict__ x,     // (B, C, HW)
                                             const scalar_t* __restrict__ norm,  // (B, 1, HW)
                                             scalar_t* __restrict__ grad_x,      // (B, C, HW)
                                             index_t B, index_t C, index_t HW) {
  FLOWNET2_GRID_STRIDE_LOOP(index_t, idx, B * HW) {
    const index_t p = idx % HW, b = idx / HW;
    acc_t nv;
    if constexpr (std::is_same_v<scalar_t, acc_t>) {
      nv = norm[idx];
    } else {  // the stored norm was rounded; the twin's backward uses the float one
      acc_t acc = 0;
      for (index_t c = 0; c < C; ++c) {
        const acc_t v = static_cast<acc_t>(x[(b * C + c) * HW + p]);
        acc += v * v;
      }
      nv = sqrt(acc);
    }
    const acc_t scale = nv > acc_t(0) ? static_cast<acc_t>(grad[idx]) / nv : acc_t(0);
    for (index_t c = 0; c < C; ++c) {
      const index_t i = (b * C + c) * HW + p;
      grad_x[i] = static_cast<scalar_t>(static_cast<acc_t>(x[i]) * scale);
    }
  }
}

at::Tensor channel_norm_forward_cuda(const at::Tensor& input) {
  ops::check_channel_norm(input);
  c10::cuda::CUDAGuard device_guard(input.device());
  at::Tensor out = at::empty({input.size(0), 1, input.size(2), input.size(3)}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor x = input.contiguous();
  const int64_t B = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "channel_norm_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        with_index_type({x.numel()}, [&](auto index) {
          using index_t = decltype(index);
          channel_norm_forward_kernel<scalar_t, acc_t, index_t>
              <<<blocks_for(B * HW), kThreads, 0, stream>>>(
                  x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                  static_cast<index_t>(B), static_cast<index_t>(C), static_cast<index_t>(HW));
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return out;
}

at::Tensor channel_norm_backward_cuda(const at::Tensor& grad_output, const at::Tensor& input,
                                      const at::Tensor& norm) {
  ops::check_channel_norm(input);
  const std::vector<int64_t> expected{input.size(0), 1, input.size(2), input.size(3)};
  TORCH_CHECK(grad_output.sizes() == c10::IntArrayRef(expected) &&
                  norm.sizes() == c10::IntArrayRef(expected),
              "_channel_norm_backward: grad_output ", grad_output.sizes(), " and norm ",
              norm.sizes(), " must be ", c10::IntArrayRef(expected));
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type() &&
                  norm.scalar_type() == input.scalar_type(),
              "_channel_norm_backward: grad_output, input and norm differ in dtype");
  c10::cuda::CUDAGuard device_guard(input.device());
  at::Tensor grad_input = at::empty(input.sizes(), input.options());
  if (grad_input.numel() == 0) return grad_input;
  const at::Tensor g = grad_output.contiguous(), x = input.contiguous(), nr = norm.contiguous();
  const int64_t B = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "channel_norm_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        with_index_type({x.numel()}, [&](auto index) {
          using index_t = decltype(index);
          channel_norm_backward_kernel<scalar_t, acc_t, index_t>
              <<<blocks_for(B * HW), kThreads, 0, stream>>>(
                  g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                  nr.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(),
                  static_cast<index_t>(B), static_cast<index_t>(C), static_cast<index_t>(HW));
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(flownet2, CUDA, m) {
  m.impl("channel_norm", &channel_norm_forward_cuda);
  m.impl("_channel_norm_backward", &channel_norm_backward_cuda);
}

}  // namespace flownet2::cuda
