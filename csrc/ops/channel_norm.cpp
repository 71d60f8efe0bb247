// Schema of flownet2::channel_norm (L2 norm over channels) and its backward.
// Kernels: cpu/channel_norm_kernel.cpp, cuda/channel_norm_kernel.cu.
// Autograd, fake (meta) kernel and FLOP formula are registered from Python
// (flownet2_core/ops/_compiled.py). Semantics: flownet2_core/ops/channel_norm.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(flownet2, m) {
  m.def("channel_norm(Tensor input) -> Tensor", {at::Tag::pt2_compliant_tag});
  // The backward takes the forward's output (the norm) so it need not recompute it.
  m.def("_channel_norm_backward(Tensor grad_output, Tensor input, Tensor norm) -> Tensor",
        {at::Tag::pt2_compliant_tag});
}
