// Shape rules and argument checks shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

namespace flownet2::ops {

// Geometry of a correlation (see flownet2_core/ops/correlation.py for the
// definition). Coordinates below are in the *unpadded* input: the patch of
// output (y, x) covers f1 rows y*stride1 + off + j, j in [0, kernel), with
// off = max_displacement - pad; displacement (p, o) in [-radius, radius]²
// compares it with f2 at (+stride2*p, +stride2*o); anything outside the input
// is zero. Channel (p + radius) * grid + (o + radius): dy is the major index.
struct CorrGeometry {
  int64_t batch, channels, height, width;
  int64_t pad, kernel, max_disp, stride1, stride2;
  int64_t radius;  // max_displacement / stride2
  int64_t grid;    // 2 * radius + 1
  int64_t reach;   // radius * stride2, the largest shift in pixels
  int64_t off;     // max_displacement - pad
  int64_t out_h, out_w;
};

inline CorrGeometry correlation_geometry(const at::Tensor& input1, const at::Tensor& input2,
                                         int64_t pad, int64_t kernel, int64_t max_disp,
                                         int64_t stride1, int64_t stride2) {
  TORCH_CHECK(input1.dim() == 4, "correlation: input1 must be (B, C, H, W), got ", input1.sizes());
  TORCH_CHECK(input1.sizes() == input2.sizes(), "correlation: input1 and input2 differ in shape: ",
              input1.sizes(), " vs ", input2.sizes());
  TORCH_CHECK(input1.scalar_type() == input2.scalar_type(),
              "correlation: input1 and input2 differ in dtype");
  TORCH_CHECK(input1.device() == input2.device(), "correlation: input1 and input2 differ in device");
  TORCH_CHECK(at::isFloatingType(input1.scalar_type()),
              "correlation: inputs must be floating point, got ", input1.scalar_type());
  TORCH_CHECK(pad >= 0 && kernel >= 1 && max_disp >= 0 && stride1 >= 1 && stride2 >= 1,
              "correlation: need pad_size >= 0, kernel_size >= 1, max_displacement >= 0, "
              "stride1 >= 1, stride2 >= 1; got ", pad, ", ", kernel, ", ", max_disp, ", ", stride1,
              ", ", stride2);
  CorrGeometry g{};
  g.batch = input1.size(0);
  g.channels = input1.size(1);
  g.height = input1.size(2);
  g.width = input1.size(3);
  TORCH_CHECK(g.channels > 0, "correlation: inputs need at least one channel");
  g.pad = pad;
  g.kernel = kernel;
  g.max_disp = max_disp;
  g.stride1 = stride1;
  g.stride2 = stride2;
  g.radius = max_disp / stride2;
  g.grid = 2 * g.radius + 1;
  g.reach = g.radius * stride2;
  g.off = max_disp - pad;
  const int64_t border = max_disp + (kernel - 1) / 2;
  const int64_t span_h = g.height + 2 * pad - 2 * border;
  const int64_t span_w = g.width + 2 * pad - 2 * border;
  TORCH_CHECK(span_h > 0 && span_w > 0, "correlation: input ", g.height, "x", g.width,
              " is too small for pad_size=", pad, ", kernel_size=", kernel,
              ", max_displacement=", max_disp);
  g.out_h = (span_h + stride1 - 1) / stride1;
  g.out_w = (span_w + stride1 - 1) / stride1;
  return g;
}

// Geometry of a correlation backward, with grad_output checked against it
// (shape of the forward output, the inputs' dtype and device).
inline CorrGeometry correlation_backward_geometry(const at::Tensor& grad_output,
                                                  const at::Tensor& input1,
                                                  const at::Tensor& input2, int64_t pad,
                                                  int64_t kernel, int64_t max_disp,
                                                  int64_t stride1, int64_t stride2) {
  const CorrGeometry g =
      correlation_geometry(input1, input2, pad, kernel, max_disp, stride1, stride2);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == g.batch &&
                  grad_output.size(1) == g.grid * g.grid && grad_output.size(2) == g.out_h &&
                  grad_output.size(3) == g.out_w,
              "_correlation_backward: grad_output has shape ", grad_output.sizes(), ", expected (",
              g.batch, ", ", g.grid * g.grid, ", ", g.out_h, ", ", g.out_w, ")");
  TORCH_CHECK(grad_output.scalar_type() == input1.scalar_type(),
              "_correlation_backward: grad_output dtype ", grad_output.scalar_type(),
              " differs from the inputs' ", input1.scalar_type());
  TORCH_CHECK(grad_output.device() == input1.device(),
              "_correlation_backward: grad_output and inputs differ in device");
  return g;
}

enum class PaddingMode : int { Border = 0, Zeros = 1 };

inline PaddingMode parse_padding_mode(c10::string_view mode) {
  if (mode == "border") return PaddingMode::Border;
  if (mode == "zeros") return PaddingMode::Zeros;
  TORCH_CHECK(false, "resample2d: padding_mode must be 'border' or 'zeros', got '", mode, "'");
}

inline void check_resample2d(const at::Tensor& input, const at::Tensor& flow) {
  TORCH_CHECK(input.dim() == 4, "resample2d: input must be (B, C, H, W), got ", input.sizes());
  TORCH_CHECK(flow.dim() == 4 && flow.size(1) == 2, "resample2d: flow must be (B, 2, H, W), got ",
              flow.sizes());
  TORCH_CHECK(input.size(0) == flow.size(0) && input.size(2) == flow.size(2) &&
                  input.size(3) == flow.size(3),
              "resample2d: input ", input.sizes(), " and flow ", flow.sizes(),
              " differ in batch size or HxW");
  TORCH_CHECK(input.scalar_type() == flow.scalar_type(), "resample2d: input and flow differ in dtype");
  TORCH_CHECK(input.device() == flow.device(), "resample2d: input and flow differ in device");
  TORCH_CHECK(at::isFloatingType(input.scalar_type()),
              "resample2d: inputs must be floating point, got ", input.scalar_type());
}

inline void check_channel_norm(const at::Tensor& input) {
  TORCH_CHECK(input.dim() == 4, "channel_norm: input must be (B, C, H, W), got ", input.sizes());
  TORCH_CHECK(at::isFloatingType(input.scalar_type()),
              "channel_norm: input must be floating point, got ", input.scalar_type());
}

}  // namespace flownet2::ops
