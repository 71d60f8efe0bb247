// Library init of flownet2_core._C: the op namespace `flownet2`, the Python
// module stub, and _cuda_version.
//
// The extension holds no Python functions: importing `flownet2_core._C` loads
// the shared library, whose static initialisers (TORCH_LIBRARY /
// TORCH_LIBRARY_FRAGMENT / TORCH_LIBRARY_IMPL in csrc/ops/**) register the
// ops with the dispatcher; Python then reaches them as torch.ops.flownet2.*.
// The schemas are in csrc/ops/<op>.cpp, the kernels in csrc/ops/{cpu,cuda}/.

#include <Python.h>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <mutex>
#include <set>
#include <thread>

#ifdef WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace flownet2 {

// CUDA runtime version the library was compiled against (e.g. 13000), -1
// when it was built without CUDA.
int64_t cuda_version() {
#ifdef WITH_CUDA
  return CUDART_VERSION;
#else
  return -1;
#endif
}

// Number of distinct threads at::parallel_for ran `n` one-element tasks on.
// A test compares it with torch.get_num_threads(): at::parallel_for is
// compiled into this library, and a build without the parallel backend's
// flags (-fopenmp) would silently run every CPU kernel on one thread.
int64_t parallel_probe(int64_t n) {
  std::mutex mutex;
  std::set<std::thread::id> ids;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    // Long enough that no thread finishes before the others start.
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (end - begin)));
    std::lock_guard<std::mutex> lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int64_t>(ids.size());
}

TORCH_LIBRARY(flownet2, m) {
  m.def("_cuda_version", &cuda_version);
  m.def("_parallel_probe", &parallel_probe);
}

}  // namespace flownet2

extern "C" {
// An empty module named _C, so that `import flownet2_core._C` loads this
// library (and runs the registrations above); see PyTorch's custom-op
// tutorial (extension-cpp).
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",
      "Compiled FlowNet2 ops; use them through flownet2_core.ops (torch.ops.flownet2.*).",
      -1,
      nullptr,
  };
  return PyModule_Create(&module_def);
}
}
