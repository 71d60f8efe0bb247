"""Compiled kernels (``flownet2_core._C``) behind the public op functions.

Importing this module (``flownet2_core.ops`` does) tries to load the compiled
library built from ``csrc/``. When it loads and provides every op, this
module registers, through :mod:`torch.library`:

* autograd: the backward of each op calls its private backward op
  (``flownet2::_correlation_backward`` and so on);
* fake (meta) kernels, so ``torch.compile``, meta tensors and
  ``torch.library.opcheck`` work;
* FLOP formulas (:mod:`torch.utils.flop_counter`), so FLOP counts of the
  models include the correlation;

and then points the dispatch entry of each op (``_IMPL`` in
``correlation.py``, ``resample2d.py``, ``channel_norm.py``) at the compiled
version. All of that happens, or none of it: if the library is missing, fails
to load, lacks an op or a registration fails, every op keeps its
pure-PyTorch twin, the registrations made so far are undone, and the original
error is kept for :func:`backend`. With ``FLOWNET2_REQUIRE_COMPILED=1`` (set
by ``make test`` and CI) that fallback is an error instead: importing
``flownet2_core.ops`` raises ``ImportError`` carrying the original error, so a
broken build cannot pass unnoticed. The same holds for a library built
without CUDA kernels on a machine where torch sees a GPU.

Tensors on a device the library has no kernels for (CUDA tensors with a
CPU-only build, say) go to the twin; :func:`backend` lists the devices. Three
more cases go to the twin on purpose:

* CUDA tensors, until the CUDA kernels have passed their tests on a GPU
  (:data:`CUDA_KERNELS_VALIDATED`): they compile in CI but have never run.
  Opt in with ``FLOWNET2_CUDA_KERNELS=1`` (read at import and by
  ``use_cuda_kernels(None)``) or :func:`use_cuda_kernels`; ``FLOWNET2_CUDA_KERNELS=0`` opts out once they
  serve by default.
* correlation on CPU with ``kernel_size > 1`` or ``stride1 > 1``: no FlowNet
  model uses them, so the compiled CPU kernel is the kernel-1, stride-1 path
  only (the CUDA kernel is general).
* resample2d on CUDA under ``torch.use_deterministic_algorithms(True)`` when a
  gradient will be needed: the kernel's backward scatters with atomic adds
  (it raises PyTorch's non-determinism alert when called there), and the
  twin's gather form has a deterministic backward.
"""

from __future__ import annotations

import importlib
import os
import traceback
from math import prod
from typing import Any

import torch
from torch import Tensor

# The op modules by their full names: inside the package, `correlation` etc.
# are rebound to the public functions of the same names.
_correlation_mod = importlib.import_module(f"{__package__}.correlation")
_resample2d_mod = importlib.import_module(f"{__package__}.resample2d")
_channel_norm_mod = importlib.import_module(f"{__package__}.channel_norm")

__all__ = ["backend", "use_cuda_kernels", "CUDA_ENV", "CUDA_KERNELS_VALIDATED", "REQUIRE_ENV",
           "correlation_compiled", "resample2d_compiled", "channel_norm_compiled"]

REQUIRE_ENV = "FLOWNET2_REQUIRE_COMPILED"
CUDA_ENV = "FLOWNET2_CUDA_KERNELS"
# The CUDA kernels compile in CI but have not yet run on a GPU. Once
# `FLOWNET2_REQUIRE_COMPILED=1 pytest -m cuda tests/ops tests/models` has
# passed on one (the tests opt in themselves; record the GPU and commit in
# docs/benchmarks.md), set this to True: CUDA tensors then use the kernels
# unless FLOWNET2_CUDA_KERNELS=0.
CUDA_KERNELS_VALIDATED = False
_LIBRARY = "flownet2_core._C"
_OPS = ("correlation", "_correlation_backward", "resample2d", "_resample2d_backward",
        "channel_norm", "_channel_norm_backward")
_PUBLIC = {"correlation": _correlation_mod, "resample2d": _resample2d_mod,
           "channel_norm": _channel_norm_mod}

# Outcome of the load, filled in by _load() at import: "built" are the
# devices the library has kernels for, "devices" those whose tensors use them.
_state: dict[str, Any] = {"loaded": False, "reason": None, "built": (), "devices": (),
                          "cuda_version": None, "cuda_override": None, "cuda_why": ""}


def _env_flag(name: str) -> bool | None:
    """``True``/``False`` for a set variable ("1"/"0", "true"/"false", ...), ``None`` if unset."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    return value not in ("0", "false", "no", "off")


def _require_compiled() -> bool:
    return bool(_env_flag(REQUIRE_ENV))


def _refresh_devices() -> None:
    """Decide which built devices serve tensors (CUDA: validated, opted in or out)."""
    override = _state["cuda_override"]
    env = _env_flag(CUDA_ENV)
    if override is not None:
        use_cuda, why = override, f"use_cuda_kernels({override})"
    elif env is not None:
        use_cuda, why = env, f"{CUDA_ENV}={os.environ[CUDA_ENV].strip()}"
    else:
        use_cuda, why = CUDA_KERNELS_VALIDATED, "default"
    _state["cuda_why"] = why
    _state["devices"] = tuple(d for d in _state["built"] if d != "cuda" or use_cuda)


def use_cuda_kernels(enabled: bool | None = True) -> bool | None:
    """Opt CUDA tensors in to (``True``) or out of (``False``) the compiled CUDA kernels.

    ``None`` returns to the default: ``FLOWNET2_CUDA_KERNELS`` when set, else
    :data:`CUDA_KERNELS_VALIDATED`. Applies to calls made from now on, in this
    process; returns the previous setting, so that it can be restored.
    :func:`backend` reports the outcome (a build without CUDA kernels keeps
    the twin whatever is asked).

    Example:
        >>> from flownet2_core.ops import use_cuda_kernels
        >>> previous = use_cuda_kernels(True)
        >>> _ = use_cuda_kernels(previous)
    """
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"use_cuda_kernels: enabled must be True, False or None, got {enabled!r}")
    previous = _state["cuda_override"]
    _state["cuda_override"] = enabled
    _refresh_devices()
    return previous


def _has_kernels(t: Tensor) -> bool:
    """True when the compiled ops can take ``t``: a device with kernels, or meta (fake kernels)."""
    return t.device.type in _state["devices"] or t.device.type == "meta"


def _correlation_cpu_kernel(kernel_size: int, stride1: int) -> bool:
    """The compiled CPU correlation is FlowNetC's path only: kernel 1, stride1 1."""
    return kernel_size == 1 and stride1 == 1


def _deterministic_backward_needed(img: Tensor, flow: Tensor) -> bool:
    """CUDA resample2d whose gradient will be computed under deterministic algorithms.

    The compiled CUDA backward scatters with atomic adds; the twin's gather
    form is deterministic there.
    """
    return (img.device.type == "cuda" and torch.are_deterministic_algorithms_enabled()
            and torch.is_grad_enabled() and (img.requires_grad or flow.requires_grad))


def _describe(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(err), err)).strip()


# ----------------------------------------------------------------- wrappers
# Same argument checks (and ValueErrors) as the twins, then the compiled op.

def _correlation_compiled(f1: Tensor, f2: Tensor, pad_size: int = 20, kernel_size: int = 1,
                          max_displacement: int = 20, stride1: int = 1,
                          stride2: int = 2) -> Tensor:
    """Compiled :func:`~flownet2_core.ops.correlation`; the twin where it does not serve.

    The twin serves devices without (enabled) kernels and, on CPU, the
    general settings (``kernel_size > 1`` or ``stride1 > 1``).
    """
    _correlation_mod._check_inputs(f1, f2)
    _, out_h, out_w = _correlation_mod.correlation_output_shape(
        f1.shape[2], f1.shape[3], pad_size, kernel_size, max_displacement, stride1, stride2)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"correlation: input {f1.shape[3]}×{f1.shape[2]} is too small for "
                         f"pad_size={pad_size}, kernel_size={kernel_size}, "
                         f"max_displacement={max_displacement}")
    if not _has_kernels(f1) or (f1.device.type == "cpu"
                                and not _correlation_cpu_kernel(kernel_size, stride1)):
        return _correlation_mod._correlation_twin(f1, f2, pad_size, kernel_size,
                                                  max_displacement, stride1, stride2)
    return torch.ops.flownet2.correlation(f1, f2, pad_size, kernel_size, max_displacement,
                                          stride1, stride2)


def _resample2d_compiled(img: Tensor, flow: Tensor, padding_mode: str = "border") -> Tensor:
    """Compiled :func:`~flownet2_core.ops.resample2d`; the twin where it does not serve.

    The twin serves devices without (enabled) kernels and CUDA tensors that
    need a deterministic gradient (see :func:`_deterministic_backward_needed`).
    """
    _resample2d_mod._check(img, flow, padding_mode)
    if not _has_kernels(img) or _deterministic_backward_needed(img, flow):
        return _resample2d_mod._resample2d_twin(img, flow, padding_mode)
    dtype = torch.promote_types(img.dtype, flow.dtype)
    return torch.ops.flownet2.resample2d(img.to(dtype), flow.to(dtype), padding_mode)


def _channel_norm_compiled(x: Tensor) -> Tensor:
    """Compiled :func:`~flownet2_core.ops.channel_norm`; the twin for devices without (enabled) kernels."""
    if not isinstance(x, Tensor):
        raise ValueError(f"channel_norm: x must be a tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"channel_norm: x must be (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"channel_norm: x must be floating point, got {x.dtype}")
    if not _has_kernels(x):
        return _channel_norm_mod._channel_norm_twin(x)
    return torch.ops.flownet2.channel_norm(x)


_COMPILED = {"correlation": _correlation_compiled, "resample2d": _resample2d_compiled,
             "channel_norm": _channel_norm_compiled}

# The wrappers under public names (re-exported by flownet2_core.ops), for benchmarks and
# comparisons: always the compiled op where it serves, whatever the dispatch tables hold.
correlation_compiled = _correlation_compiled
resample2d_compiled = _resample2d_compiled
channel_norm_compiled = _channel_norm_compiled


# ------------------------------------------------------------ fake kernels

def _ceil_div(a, b):
    return -((-a) // b)


def _correlation_fake(f1, f2, pad_size, kernel_size, max_displacement, stride1, stride2):
    torch._check(f1.dim() == 4 and f1.shape == f2.shape,
                 lambda: f"correlation: inputs must be (B, C, H, W) of one shape, got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")
    torch._check(f1.dtype == f2.dtype, lambda: "correlation: inputs differ in dtype")
    bsz, _, h, w = f1.shape
    border = max_displacement + (kernel_size - 1) // 2
    out_h = _ceil_div(h + 2 * pad_size - 2 * border, stride1)
    out_w = _ceil_div(w + 2 * pad_size - 2 * border, stride1)
    grid = 2 * (max_displacement // stride2) + 1
    return f1.new_empty((bsz, grid * grid, out_h, out_w))


def _correlation_backward_fake(grad_output, f1, f2, pad_size, kernel_size, max_displacement,
                               stride1, stride2):
    return f1.new_empty(f1.shape), f2.new_empty(f2.shape)


def _resample2d_fake(img, flow, padding_mode):
    torch._check(img.dim() == 4 and flow.dim() == 4 and flow.shape[1] == 2,
                 lambda: "resample2d: expected img (B, C, H, W) and flow (B, 2, H, W)")
    torch._check(img.dtype == flow.dtype, lambda: "resample2d: img and flow differ in dtype")
    return img.new_empty(img.shape)


def _resample2d_backward_fake(grad_output, img, flow, padding_mode):
    return img.new_empty(img.shape), flow.new_empty(flow.shape)


def _channel_norm_fake(x):
    torch._check(x.dim() == 4, lambda: "channel_norm: expected (B, C, H, W)")
    return x.new_empty((x.shape[0], 1, x.shape[2], x.shape[3]))


def _channel_norm_backward_fake(grad_output, x, norm):
    return x.new_empty(x.shape)


# ---------------------------------------------------------------- autograd

def _correlation_setup(ctx, inputs, output):
    f1, f2, *params = inputs
    ctx.save_for_backward(f1, f2)
    ctx.params = params


def _correlation_backward(ctx, grad):
    f1, f2 = ctx.saved_tensors
    g1, g2 = torch.ops.flownet2._correlation_backward(grad, f1, f2, *ctx.params)
    return (g1, g2) + (None,) * len(ctx.params)


def _resample2d_setup(ctx, inputs, output):
    img, flow, padding_mode = inputs
    ctx.save_for_backward(img, flow)
    ctx.padding_mode = padding_mode


def _resample2d_backward(ctx, grad):
    img, flow = ctx.saved_tensors
    g_img, g_flow = torch.ops.flownet2._resample2d_backward(grad, img, flow, ctx.padding_mode)
    return g_img, g_flow, None


def _channel_norm_setup(ctx, inputs, output):
    (x,) = inputs
    ctx.save_for_backward(x, output)


def _channel_norm_backward(ctx, grad):
    x, norm = ctx.saved_tensors
    return torch.ops.flownet2._channel_norm_backward(grad, x, norm)


# ----------------------------------------------------------- FLOP formulas
# Two FLOPs per multiply-add, as torch's own formulas count convolutions.

def _correlation_flop(f1_shape, f2_shape, pad_size, kernel_size, max_displacement, stride1,
                      stride2, *args, out_shape=None, **kwargs) -> int:
    """Each output element is a sum of kernel² · C products."""
    return 2 * prod(out_shape) * kernel_size * kernel_size * f1_shape[1]


def _correlation_backward_flop(grad_shape, f1_shape, f2_shape, pad_size, kernel_size,
                               max_displacement, stride1, stride2, *args, out_shape=None,
                               **kwargs) -> int:
    """Gradients of both inputs: twice the forward."""
    return 4 * prod(grad_shape) * kernel_size * kernel_size * f1_shape[1]


def _resample2d_flop(img_shape, flow_shape, padding_mode, *args, out_shape=None, **kwargs) -> int:
    """Four weighted neighbours per output element."""
    return 2 * 4 * prod(img_shape)


def _resample2d_backward_flop(grad_shape, img_shape, flow_shape, padding_mode, *args,
                              out_shape=None, **kwargs) -> int:
    """Scatter of four weights, plus the flow gradient from four differences, per element."""
    return 2 * 8 * prod(img_shape)


def _channel_norm_flop(x_shape, *args, out_shape=None, **kwargs) -> int:
    """One multiply-add per input element (the square root is not counted)."""
    return 2 * prod(x_shape)


def _channel_norm_backward_flop(grad_shape, x_shape, norm_shape, *args, out_shape=None,
                                **kwargs) -> int:
    """One multiply per input element."""
    return prod(x_shape)


_FAKE = {"correlation": _correlation_fake, "_correlation_backward": _correlation_backward_fake,
         "resample2d": _resample2d_fake, "_resample2d_backward": _resample2d_backward_fake,
         "channel_norm": _channel_norm_fake, "_channel_norm_backward": _channel_norm_backward_fake}
_AUTOGRAD = {"correlation": (_correlation_backward, _correlation_setup),
             "resample2d": (_resample2d_backward, _resample2d_setup),
             "channel_norm": (_channel_norm_backward, _channel_norm_setup)}
_FLOPS = {"correlation": _correlation_flop, "_correlation_backward": _correlation_backward_flop,
          "resample2d": _resample2d_flop, "_resample2d_backward": _resample2d_backward_flop,
          "channel_norm": _channel_norm_flop, "_channel_norm_backward": _channel_norm_backward_flop}


# ------------------------------------------------------------------- load

def _register() -> tuple[torch.library.Library, list]:
    """Register fake kernels, autograd and FLOP formulas; undo everything if one step fails."""
    from torch.utils import flop_counter

    lib = torch.library.Library("flownet2", "FRAGMENT")  # owns the registrations
    flop_targets: list = []
    try:
        for name, fake in _FAKE.items():
            torch.library.register_fake(f"flownet2::{name}", fake, lib=lib)
        for name, (backward, setup) in _AUTOGRAD.items():
            torch.library.register_autograd(f"flownet2::{name}", backward, setup_context=setup,
                                            lib=lib)
        for name, formula in _FLOPS.items():
            target = getattr(torch.ops.flownet2, name)
            flop_counter.register_flop_formula(target)(formula)
            flop_targets.append(target)
    except BaseException:
        for target in flop_targets:
            flop_counter.flop_registry.pop(target, None)
        lib._destroy()
        raise
    return lib, flop_targets


def _load() -> None:
    try:
        importlib.import_module(_LIBRARY)
        missing = [op for op in _OPS if not hasattr(torch.ops.flownet2, op)]
        if missing:
            raise RuntimeError(f"{_LIBRARY} lacks the ops {missing}: a stale or partial build")
        devices = tuple(dev for dev, key in (("cpu", "CPU"), ("cuda", "CUDA"))
                        if all(torch._C._dispatch_has_kernel_for_dispatch_key(f"flownet2::{op}", key)
                               for op in _OPS))
        if "cpu" not in devices:
            raise RuntimeError(f"{_LIBRARY} has no CPU kernels for every op")
        cuda_version = int(torch.ops.flownet2._cuda_version())
        _state["lib"], _state["flop_targets"] = _register()
    except Exception as err:  # any failure: keep the twins, remember why
        _state.update(loaded=False, reason=f"{_LIBRARY} did not load: {_describe(err)}",
                      built=(), devices=(), cuda_version=None, error=err)
        return
    for op, fn in _COMPILED.items():
        _PUBLIC[op]._IMPL[op] = fn
    _state.update(loaded=True, reason=None, built=devices, cuda_version=cuda_version)
    _refresh_devices()


_OPT_IN = f"opt in with {CUDA_ENV}=1 or flownet2_core.ops.use_cuda_kernels()"
_NOTES = {
    "correlation": ["CPU tensors with kernel_size > 1 or stride1 > 1 use the twin: the compiled "
                    "CPU kernel is the kernel-1, stride-1 path of FlowNetC only"],
    "resample2d": ["CUDA tensors under torch.use_deterministic_algorithms(True) that need a "
                   "gradient use the twin (gather form): the CUDA backward uses atomic adds"],
    "channel_norm": [],
}


def _cuda_note() -> str | None:
    """What CUDA tensors use, and why."""
    if "cuda" not in _state["built"]:
        return f"{_LIBRARY} was built without CUDA kernels: CUDA tensors use the pure-PyTorch twin"
    why = _state["cuda_why"]
    if "cuda" in _state["devices"]:
        if CUDA_KERNELS_VALIDATED:
            return None
        return f"CUDA kernels in use ({why}), not yet validated on a GPU"
    if why == "default":
        return ("CUDA kernels built but not yet validated on a GPU: CUDA tensors use the "
                f"pure-PyTorch twin ({_OPT_IN})")
    return f"CUDA kernels built but switched off ({why}): CUDA tensors use the pure-PyTorch twin"


def backend() -> dict[str, dict[str, Any]]:
    """Which implementation serves each op, on which devices, and why not when it falls back.

    Returns, per op (``"correlation"``, ``"resample2d"``, ``"channel_norm"``)::

        {"implementation": "compiled" or "twin",
         "devices": ("cpu", "cuda") or a part of it: devices whose tensors use
                    the compiled kernels,
         "built": the devices the library has kernels for,
         "notes": [which tensors use the twin and why, one line each],
         "reason": the notes joined by "; ", or None when there are none
                   (for "twin": the original build/load error)}

    Example:
        >>> from flownet2_core.ops import backend
        >>> backend()["correlation"]["implementation"] in ("compiled", "twin")
        True
    """
    out = {}
    cuda_note = _cuda_note()
    for op, mod in _PUBLIC.items():
        if mod._IMPL[op] is _COMPILED[op]:
            notes = [cuda_note] if cuda_note else []
            notes += [n for n in _NOTES[op]
                      if not n.startswith("CUDA") or "cuda" in _state["devices"]]
            out[op] = {"implementation": "compiled", "devices": _state["devices"],
                       "built": _state["built"], "notes": notes,
                       "reason": "; ".join(notes) or None}
        else:
            reason = _state["reason"] or "the dispatch entry was replaced after loading"
            out[op] = {"implementation": "twin", "devices": (), "built": _state["built"],
                       "notes": [reason], "reason": reason}
    return out


_load()

if _require_compiled():
    if not _state["loaded"]:
        raise ImportError(f"{REQUIRE_ENV} is set but the compiled ops are unavailable: "
                          f"{_state['reason']}") from _state.get("error")
    if "cuda" not in _state["devices"] and torch.cuda.is_available():
        raise ImportError(f"{REQUIRE_ENV} is set and a GPU is visible, but {_LIBRARY} was built "
                          "without CUDA kernels (rebuild with FORCE_CUDA=1)")
