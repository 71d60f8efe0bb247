// CUDA kernels of flownet2::correlation and flownet2::_correlation_backward.
//
// Same definition as the CPU kernels and the Python twin (general form: pad,
// kernel size, max displacement, both strides; dy-major channels; divided by
// kernel² · C; zero outside the inputs). float64 / float32 / float16 /
// bfloat16, accumulated in at::opmath_type (float for the half types).
//
// Forward: one block per output pixel on channels-last copies of the inputs;
// each warp takes displacements in turn, its lanes stride over the channels
// (coalesced loads) and reduce with shuffles. Backward: one thread per input
// element gathers everything that touched it (no atomics), with threads along
// x so that the grad_output and input reads coalesce. Index arithmetic is
// 32-bit when the sizes allow.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "../common.h"
#include "cuda_helpers.cuh"

namespace flownet2::cuda {
namespace {

using ops::CorrGeometry;

template <typename index_t>
struct CorrDims {
  index_t B, C, H, W, OH, OW;
  index_t k, s1, s2, off, r, D;
};

template <typename index_t>
CorrDims<index_t> dims_of(const CorrGeometry& g) {
  auto i = [](int64_t v) { return static_cast<index_t>(v); };
  return {i(g.batch), i(g.channels), i(g.height), i(g.width), i(g.out_h), i(g.out_w),
          i(g.kernel), i(g.stride1), i(g.stride2), i(g.off), i(g.radius), i(g.grid)};
}

constexpr int kWarps = 4;  // warps per block in the forward

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void correlation_forward_kernel(const scalar_t* __restrict__ f1,  // (B, H, W, C)
                                           const scalar_t* __restrict__ f2,  // (B, H, W, C)
                                           scalar_t* __restrict__ out, CorrDims<index_t> d,
                                           acc_t scale) {
  const index_t pix = static_cast<index_t>(blockIdx.x);
  const index_t x = pix % d.OW, y = (pix / d.OW) % d.OH, b = pix / (d.OW * d.OH);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const index_t nd = d.D * d.D;
  for (index_t disp = warp; disp < nd; disp += kWarps) {
    const index_t p = disp / d.D - d.r, o = disp % d.D - d.r;
    acc_t sum = 0;
    for (index_t j = 0; j < d.k; ++j) {
      const index_t Y = y * d.s1 + d.off + j, Y2 = Y + d.s2 * p;
      if (Y < 0 || Y >= d.H || Y2 < 0 || Y2 >= d.H) continue;
      for (index_t i = 0; i < d.k; ++i) {
        const index_t X = x * d.s1 + d.off + i, X2 = X + d.s2 * o;
        if (X < 0 || X >= d.W || X2 < 0 || X2 >= d.W) continue;
        const scalar_t* a = f1 + ((b * d.H + Y) * d.W + X) * d.C;
        const scalar_t* c2 = f2 + ((b * d.H + Y2) * d.W + X2) * d.C;
        for (index_t c = lane; c < d.C; c += 32) {
          sum += static_cast<acc_t>(a[c]) * static_cast<acc_t>(c2[c]);
        }
      }
    }
    for (int delta = 16; delta > 0; delta /= 2) sum += __shfl_down_sync(0xffffffffu, sum, delta);
    if (lane == 0) out[((b * nd + disp) * d.OH + y) * d.OW + x] = static_cast<scalar_t>(sum * scale);
  }
}

// Output index whose patch covers input index u at patch offset j, or -1.
template <typename index_t>
__device__ __forceinline__ index_t covering(index_t u, index_t j, index_t off, index_t stride,
                                            index_t n_out) {
  const index_t t = u - off - j;
  if (t < 0 || t % stride != 0) return -1;
  const index_t v = t / stride;
  return v < n_out ? v : -1;
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void correlation_backward_input1_kernel(const scalar_t* __restrict__ grad,  // (B, D², OH, OW)
                                                   const scalar_t* __restrict__ f2,    // (B, C, H, W)
                                                   scalar_t* __restrict__ grad1,
                                                   CorrDims<index_t> d, acc_t scale, int64_t n) {
  FLOWNET2_GRID_STRIDE_LOOP(index_t, idx, n) {
    const index_t X = idx % d.W, Y = (idx / d.W) % d.H, c = (idx / (d.W * d.H)) % d.C;
    const index_t b = idx / (d.W * d.H * d.C);
    acc_t sum = 0;
    for (index_t j = 0; j < d.k; ++j) {
      const index_t y = covering(Y, j, d.off, d.s1, d.OH);
      if (y < 0) continue;
      for (index_t i = 0; i < d.k; ++i) {
        const index_t x = covering(X, i, d.off, d.s1, d.OW);
        if (x < 0) continue;
        for (index_t p = 0; p < d.D; ++p) {
          const index_t Y2 = Y + d.s2 * (p - d.r);
          if (Y2 < 0 || Y2 >= d.H) continue;
          for (index_t o = 0; o < d.D; ++o) {
            const index_t X2 = X + d.s2 * (o - d.r);
            if (X2 < 0 || X2 >= d.W) continue;
            sum += static_cast<acc_t>(grad[((b * d.D * d.D + p * d.D + o) * d.OH + y) * d.OW + x]) *
                   static_cast<acc_t>(f2[((b * d.C + c) * d.H + Y2) * d.W + X2]);
          }
        }
      }
    }
    grad1[idx] = static_cast<scalar_t>(sum * scale);
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void correlation_backward_input2_kernel(const scalar_t* __restrict__ grad,  // (B, D², OH, OW)
                                                   const scalar_t* __restrict__ f1,    // (B, C, H, W)
                                                   scalar_t* __restrict__ grad2,
                                                   CorrDims<index_t> d, acc_t scale, int64_t n) {
  FLOWNET2_GRID_STRIDE_LOOP(index_t, idx, n) {
    const index_t X = idx % d.W, Y = (idx / d.W) % d.H, c = (idx / (d.W * d.H)) % d.C;
    const index_t b = idx / (d.W * d.H * d.C);
    acc_t sum = 0;
    for (index_t p = 0; p < d.D; ++p) {
      const index_t Y1 = Y - d.s2 * (p - d.r);  // f2 at Y is displacement p away from f1 at Y1
      if (Y1 < 0 || Y1 >= d.H) continue;
      for (index_t o = 0; o < d.D; ++o) {
        const index_t X1 = X - d.s2 * (o - d.r);
        if (X1 < 0 || X1 >= d.W) continue;
        acc_t g = 0;
        for (index_t j = 0; j < d.k; ++j) {
          const index_t y = covering(Y1, j, d.off, d.s1, d.OH);
          if (y < 0) continue;
          for (index_t i = 0; i < d.k; ++i) {
            const index_t x = covering(X1, i, d.off, d.s1, d.OW);
            if (x < 0) continue;
            g += static_cast<acc_t>(grad[((b * d.D * d.D + p * d.D + o) * d.OH + y) * d.OW + x]);
          }
        }
        sum += g * static_cast<acc_t>(f1[((b * d.C + c) * d.H + Y1) * d.W + X1]);
      }
    }
    grad2[idx] = static_cast<scalar_t>(sum * scale);
  }
}

at::Tensor correlation_forward_cuda(const at::Tensor& input1, const at::Tensor& input2,
                                    int64_t pad_size, int64_t kernel_size,
                                    int64_t max_displacement, int64_t stride1, int64_t stride2) {
  const CorrGeometry g = ops::correlation_geometry(input1, input2, pad_size, kernel_size,
                                                   max_displacement, stride1, stride2);
  TORCH_CHECK(input1.is_cuda(), "correlation: expected CUDA tensors");
  c10::cuda::CUDAGuard device_guard(input1.device());
  at::Tensor out = at::empty({g.batch, g.grid * g.grid, g.out_h, g.out_w}, input1.options());
  if (out.numel() == 0) return out;
  // Channels-last copies: a warp's lanes then read consecutive channels.
  const at::Tensor f1 = input1.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor f2 = input2.permute({0, 2, 3, 1}).contiguous();
  const int64_t pixels = g.batch * g.out_h * g.out_w;
  TORCH_CHECK(pixels < (int64_t(1) << 31), "correlation: too many output pixels for one launch");
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input1.scalar_type(), "correlation_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const acc_t scale = acc_t(1) / static_cast<acc_t>(g.kernel * g.kernel * g.channels);
        with_index_type({f1.numel(), out.numel()}, [&](auto index) {
          using index_t = decltype(index);
          correlation_forward_kernel<scalar_t, acc_t, index_t>
              <<<static_cast<unsigned int>(pixels), kWarps * 32, 0, stream>>>(
                  f1.const_data_ptr<scalar_t>(), f2.const_data_ptr<scalar_t>(),
                  out.mutable_data_ptr<scalar_t>(), dims_of<index_t>(g), scale);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return out;
}

std::tuple<at::Tensor, at::Tensor> correlation_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input1, const at::Tensor& input2,
    int64_t pad_size, int64_t kernel_size, int64_t max_displacement, int64_t stride1,
    int64_t stride2) {
  const CorrGeometry g = ops::correlation_backward_geometry(
      grad_output, input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2);
  c10::cuda::CUDAGuard device_guard(input1.device());
  at::Tensor grad1 = at::empty(input1.sizes(), input1.options());
  at::Tensor grad2 = at::empty(input2.sizes(), input2.options());
  const int64_t n = grad1.numel();
  if (n == 0) return {grad1, grad2};
  if (grad_output.numel() == 0) return {grad1.zero_(), grad2.zero_()};
  const at::Tensor go = grad_output.contiguous();
  const at::Tensor f1 = input1.contiguous();
  const at::Tensor f2 = input2.contiguous();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input1.scalar_type(), "correlation_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const acc_t scale = acc_t(1) / static_cast<acc_t>(g.kernel * g.kernel * g.channels);
        with_index_type({n, go.numel()}, [&](auto index) {
          using index_t = decltype(index);
          const CorrDims<index_t> d = dims_of<index_t>(g);
          correlation_backward_input1_kernel<scalar_t, acc_t, index_t>
              <<<blocks_for(n), kThreads, 0, stream>>>(go.const_data_ptr<scalar_t>(),
                                                       f2.const_data_ptr<scalar_t>(),
                                                       grad1.mutable_data_ptr<scalar_t>(), d,
                                                       scale, n);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          correlation_backward_input2_kernel<scalar_t, acc_t, index_t>
              <<<blocks_for(n), kThreads, 0, stream>>>(go.const_data_ptr<scalar_t>(),
                                                       f1.const_data_ptr<scalar_t>(),
                                                       grad2.mutable_data_ptr<scalar_t>(), d,
                                                       scale, n);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return {grad1, grad2};
}

}  // namespace

TORCH_LIBRARY_IMPL(flownet2, CUDA, m) {
  m.impl("correlation", &correlation_forward_cuda);
  m.impl("_correlation_backward", &correlation_backward_cuda);
}

}  // namespace flownet2::cuda
