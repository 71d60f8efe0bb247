"""The three special layers of FlowNet 2.0: correlation, resample2d (warp), channel norm.

Each op is one public function plus a thin ``nn.Module``. Every function
calls through a one-entry dispatch table (``_IMPL`` in its module). When the
compiled library ``flownet2_core._C`` (C++ for CPU, CUDA for GPU, built from
``csrc/``) loads, :mod:`._compiled` points the tables at it; otherwise they
keep the pure-PyTorch twins. :func:`backend` says which is in use per op and, for a
fallback, why; ``FLOWNET2_REQUIRE_COMPILED=1`` turns a fallback into an error.
CUDA tensors use the twins until the CUDA kernels have passed their tests on a
GPU, unless you opt in (``FLOWNET2_CUDA_KERNELS=1`` or
:func:`use_cuda_kernels`); ``python -m flownet2_core.ops`` prints all of it.

Both implementations of each op are public here, for references, comparisons and
benchmarks (``evaluations/bench_ops.py``), whatever the dispatch tables hold:

* :func:`correlation_twin`, :func:`resample2d_twin`, :func:`channel_norm_twin`: the
  pure-PyTorch twins, the reference implementations (always available);
* :func:`correlation_compiled`, :func:`resample2d_compiled`, :func:`channel_norm_compiled`:
  the compiled ops behind the same argument checks; where the library or its kernels
  for the tensors' device are missing they fall back to the twins, as the public
  functions do (:func:`backend` says which serves).
"""

from __future__ import annotations

from . import channel_norm as _channel_norm_mod
from . import correlation as _correlation_mod
from . import resample2d as _resample2d_mod
from .channel_norm import ChannelNorm, channel_norm, channel_norm_twin
from .correlation import Correlation, correlation, correlation_output_shape, correlation_twin
from .resample2d import Resample2d, resample2d, resample2d_twin

# Loads the compiled kernels (flownet2_core._C) and points the dispatch tables
# at them, or keeps the twins and remembers why; see _compiled.py.
from ._compiled import (backend, channel_norm_compiled, correlation_compiled, resample2d_compiled,
                        use_cuda_kernels)

__all__ = [
    "ChannelNorm", "Correlation", "Resample2d", "backend", "channel_norm", "correlation",
    "correlation_output_shape", "implementations", "resample2d", "use_cuda_kernels",
    "correlation_twin", "resample2d_twin", "channel_norm_twin",
    "correlation_compiled", "resample2d_compiled", "channel_norm_compiled",
]


def implementations() -> dict[str, str]:
    """Which function serves each op now, e.g. ``{"correlation": "..._correlation_twin"}``."""
    out = {}
    for mod in (_correlation_mod, _resample2d_mod, _channel_norm_mod):
        for op, fn in mod._IMPL.items():
            out[op] = f"{fn.__module__}.{getattr(fn, '__qualname__', repr(fn))}"
    return out
