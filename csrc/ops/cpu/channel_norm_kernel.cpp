// CPU kernels of flownet2::channel_norm and its backward.
//
// norm[b, 0, y, x] = sqrt(sum_c input[b, c, y, x]^2), exact (no epsilon);
// grad_input = input * grad / norm, defined as 0 where norm == 0 (the finite
// subgradient the twin chooses). Half and bfloat16 accumulate in float (their
// squares overflow beyond |x| > 256), as the twin does.
//
// Parallel over (batch, block of pixels); the inner loops run over contiguous
// pixels, so the compiler vectorises them (one pass over each channel plane).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "../common.h"

namespace flownet2::cpu {
namespace {

constexpr int64_t kBlock = 1024;  // pixels per inner block (accumulators stay in L1)

template <typename scalar_t>
void forward_impl(const at::Tensor& input, at::Tensor& out) {
  using T = at::opmath_type<scalar_t>;
  const int64_t B = input.size(0), C = input.size(1), HW = input.size(2) * input.size(3);
  const scalar_t* ip = input.const_data_ptr<scalar_t>();  // contiguous
  scalar_t* op = out.mutable_data_ptr<scalar_t>();
  const int64_t nblk = (HW + kBlock - 1) / kBlock;
  at::parallel_for(0, B * nblk, 1, [&](int64_t begin, int64_t end) {
    T acc[kBlock];
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / nblk, p0 = (i % nblk) * kBlock, n = std::min(kBlock, HW - p0);
      std::fill(acc, acc + n, T(0));
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* s = ip + (b * C + c) * HW + p0;
        for (int64_t p = 0; p < n; ++p) {
          const T v = static_cast<T>(s[p]);
          acc[p] += v * v;
        }
      }
      scalar_t* d = op + b * HW + p0;
      for (int64_t p = 0; p < n; ++p) d[p] = static_cast<scalar_t>(std::sqrt(acc[p]));
    }
  });
}

template <typename scalar_t>
void backward_impl(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& norm,
                   at::Tensor& grad_input) {
  using T = at::opmath_type<scalar_t>;
  const int64_t B = input.size(0), C = input.size(1), HW = input.size(2) * input.size(3);
  const scalar_t* ip = input.const_data_ptr<scalar_t>();  // all contiguous
  const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
  const scalar_t* np = norm.const_data_ptr<scalar_t>();
  scalar_t* dp = grad_input.mutable_data_ptr<scalar_t>();
  const int64_t nblk = (HW + kBlock - 1) / kBlock;
  at::parallel_for(0, B * nblk, 1, [&](int64_t begin, int64_t end) {
    T scale[kBlock];
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / nblk, p0 = (i % nblk) * kBlock, n = std::min(kBlock, HW - p0);
      const scalar_t* g = gp + b * HW + p0;
      const scalar_t* nr = np + b * HW + p0;
      if constexpr (std::is_same_v<scalar_t, T>) {
        for (int64_t p = 0; p < n; ++p) scale[p] = static_cast<T>(nr[p]);
      } else {
        // The stored norm was rounded to scalar_t; the twin's backward uses the float one.
        std::fill(scale, scale + n, T(0));
        for (int64_t c = 0; c < C; ++c) {
          const scalar_t* s = ip + (b * C + c) * HW + p0;
          for (int64_t p = 0; p < n; ++p) {
            const T v = static_cast<T>(s[p]);
            scale[p] += v * v;
          }
        }
        for (int64_t p = 0; p < n; ++p) scale[p] = std::sqrt(scale[p]);
      }
      for (int64_t p = 0; p < n; ++p) {
        const T nv = scale[p];
        scale[p] = nv > T(0) ? static_cast<T>(g[p]) / nv : T(0);
      }
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* s = ip + (b * C + c) * HW + p0;
        scalar_t* d = dp + (b * C + c) * HW + p0;
        for (int64_t p = 0; p < n; ++p) d[p] = static_cast<scalar_t>(static_cast<T>(s[p]) * scale[p]);
      }
    }
  });
}

at::Tensor channel_norm_forward_kernel(const at::Tensor& input) {
  ops::check_channel_norm(input);
  at::Tensor out = at::empty({input.size(0), 1, input.size(2), input.size(3)}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor x = input.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "channel_norm_forward_cpu", [&] { forward_impl<scalar_t>(x, out); });
  return out;
}

at::Tensor channel_norm_backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                                        const at::Tensor& norm) {
  ops::check_channel_norm(input);
  const auto expected = std::vector<int64_t>{input.size(0), 1, input.size(2), input.size(3)};
  TORCH_CHECK(grad_output.sizes() == expected && norm.sizes() == expected,
              "_channel_norm_backward: grad_output ", grad_output.sizes(), " and norm ",
              norm.sizes(), " must be ", c10::IntArrayRef(expected));
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type() &&
                  norm.scalar_type() == input.scalar_type(),
              "_channel_norm_backward: grad_output, input and norm differ in dtype");
  at::Tensor grad_input = at::empty(input.sizes(), input.options());
  if (grad_input.numel() == 0) return grad_input;
  const at::Tensor x = input.contiguous(), g = grad_output.contiguous(), n = norm.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "channel_norm_backward_cpu",
                                  [&] { backward_impl<scalar_t>(g, x, n, grad_input); });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(flownet2, CPU, m) {
  m.impl("channel_norm", &channel_norm_forward_kernel);
  m.impl("_channel_norm_backward", &channel_norm_backward_kernel);
}

}  // namespace flownet2::cpu
