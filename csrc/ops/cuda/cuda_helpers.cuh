// Launch helpers shared by the CUDA kernels.
//
// Only c10/cuda headers (device guard, current stream, launch checks): not
// ATen/cuda/CUDAContext.h, which pulls in cuBLAS / cuSPARSE headers that a
// bare CUDA toolkit need not have.
#pragma once

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <utility>

namespace flownet2::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (capped; the loop covers the rest).
inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned int>(std::clamp<int64_t>(blocks, 1, int64_t(1) << 16));
}

// True when 32-bit index arithmetic is exact for tensors of these sizes:
// divisions and remainders are several times cheaper in 32 bits on a GPU.
// Half the int32 range, so that offsets computed next to an index (a
// neighbour one row outside the image, a displaced position before its
// bounds check) cannot overflow either.
inline bool fits_int32(std::initializer_list<int64_t> numels) {
  constexpr int64_t limit = std::numeric_limits<int32_t>::max() / 2;
  return std::all_of(numels.begin(), numels.end(), [](int64_t n) { return n <= limit; });
}

// Calls f(int32_t{}) when the sizes fit 32-bit indexing, else f(int64_t{}):
// the kernels take the index type as a template argument.
template <typename F>
void with_index_type(std::initializer_list<int64_t> numels, F&& f) {
  if (fits_int32(numels)) {
    std::forward<F>(f)(int32_t{});
  } else {
    std::forward<F>(f)(int64_t{});
  }
}

// Grid-stride loop over [0, n): the counter is 64-bit (it may step past the
// int32 range on its last increment), the index i handed to the body is index_t.
#define FLOWNET2_GRID_STRIDE_LOOP(index_t, i, n)                                           \
  for (int64_t i##_step = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;    \
       i##_step < static_cast<int64_t>(n);                                                 \
       i##_step += static_cast<int64_t>(blockDim.x) * gridDim.x)                           \
    if (const index_t i = static_cast<index_t>(i##_step); true)

}  // namespace flownet2::cuda
