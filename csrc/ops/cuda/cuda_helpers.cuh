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

namespace flownet2::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (capped; the loop covers the rest).
inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned int>(std::clamp<int64_t>(blocks, 1, int64_t(1) << 16));
}

#define FLOWNET2_GRID_STRIDE_LOOP(i, n)                                                \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace flownet2::cuda
