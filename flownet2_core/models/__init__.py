"""FlowNet 2.0 models: sub-networks, stacks, builders and checkpoint loading.

Builders (``flownet2()``, ``flownet2_c()``, ``flownet2_cs()``, ``flownet2_css()``,
``flownet2_s()``, ``flownet2_sd()``, and the Caffe-only S stacks ``flownet2_ss()``,
``flownet2_sss()``) take keyword-only ``width=``, ``weights=`` (an entry of
:mod:`flownet2_core.weights` or a checkpoint path), ``batch_norm=`` and the
convention flags; see :mod:`.stacks` for the forward contract.
"""

from .builders import (
    BUILDERS,
    LOWERCASE_WIDTH,
    build_model,
    display_name,
    flownet2,
    flownet2_c,
    flownet2_cs,
    flownet2_css,
    flownet2_s,
    flownet2_sd,
    flownet2_ss,
    flownet2_sss,
)
from .checkpoint import (
    detect_architecture,
    inspect_checkpoint,
    load_checkpoint,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from .flownet_c import FlowNetC
from .flownet_fusion import FlowNetFusion
from .flownet_s import FlowNetS
from .flownet_sd import FlowNetSD
from .stacks import (
    FlowNet2,
    FlowNet2C,
    FlowNet2CS,
    FlowNet2CSS,
    FlowNet2S,
    FlowNet2SD,
    FlowNet2SS,
    FlowNet2SSS,
)

__all__ = [
    "BUILDERS", "FlowNet2", "FlowNet2C", "FlowNet2CS", "FlowNet2CSS", "FlowNet2S",
    "FlowNet2SD", "FlowNet2SS", "FlowNet2SSS", "FlowNetC", "FlowNetFusion", "FlowNetS", "FlowNetSD", "LOWERCASE_WIDTH",
    "build_model", "detect_architecture", "display_name", "flownet2", "flownet2_c",
    "flownet2_cs", "flownet2_css", "flownet2_s", "flownet2_sd", "flownet2_ss", "flownet2_sss",
    "inspect_checkpoint",
    "load_checkpoint", "load_weights", "read_checkpoint", "save_checkpoint",
]
