// Schema of flownet2::correlation and its backward. Kernels:
// cpu/correlation_kernel.cpp, cuda/correlation_kernel.cu. Autograd, fake
// (meta) kernel and FLOP formula are registered from Python
// (flownet2_core/ops/_compiled.py). Semantics: flownet2_core/ops/correlation.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(flownet2, m) {
  m.def(
      "correlation(Tensor input1, Tensor input2, int pad_size, int kernel_size, "
      "int max_displacement, int stride1, int stride2) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "_correlation_backward(Tensor grad_output, Tensor input1, Tensor input2, int pad_size, "
      "int kernel_size, int max_displacement, int stride1, int stride2) -> (Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
}
