// Library init of flownet2_core._C: the op namespace `flownet2`, the Python
// module stub, and _cuda_version.
//
// The extension holds no Python functions: importing `flownet2_core._C` loads
// the shared library, whose static initialisers (TORCH_LIBRARY /
// TORCH_LIBRARY_FRAGMENT / TORCH_LIBRARY_IMPL in csrc/ops/**) register the
// ops with the dispatcher; Python then reaches them as torch.ops.flownet2.*.
// The schemas are in csrc/ops/<op>.cpp, the kernels in csrc/ops/{cpu,cuda}/.

#include <Python.h>

#include <torch/library.h>

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

TORCH_LIBRARY(flownet2, m) {
  m.def("_cuda_version", &cuda_version);
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
