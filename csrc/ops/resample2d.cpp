// Schema of flownet2::resample2d (bilinear warp) and its backward. Kernels:
// cpu/resample2d_kernel.cpp, cuda/resample2d_kernel.cu. Autograd, fake (meta)
// kernel and FLOP formula are registered from Python
// (flownet2_core/ops/_compiled.py). Semantics: flownet2_core/ops/resample2d.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(flownet2, m) {
  m.def("resample2d(Tensor input, Tensor flow, str padding_mode) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "_resample2d_backward(Tensor grad_output, Tensor input, Tensor flow, str padding_mode) "
      "-> (Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
}
