"""Running a FlowNet2 model on images of any size: size policy, batching, devices, precision.

The networks need H and W divisible by 64. Two ways to get there
(``size_policy``):

* ``"resize"`` (default; the original Caffe release script, ptlflow and
  mmflow): bilinearly resize both frames to the next multiples of 64
  (H', W'), run, resize the flow back to (H, W) bilinearly and rescale it:
  ``u *= W / W'``, ``v *= H / H'``. With ``min_size=S``, images whose shorter side is
  below S are enlarged so that it is S first (same aspect ratio): a network trained on
  384×512 scenes sees a 96×128 video's objects and motions at the scale it learned.
  With ``zoom=Z`` the network runs at Z times the image's size, or at ``min_size``'s
  enlargement where that is larger (a floor, not a second factor): the model trained here is
  measured more accurate at 1.25 on 512×384 frames (``docs/trained_model.md``).
* ``"crop"`` (the PyTorch port's evaluation): run on the centre crop of the
  largest multiple-of-64 size that fits. The flow exists only inside the crop;
  the cropped-out border is filled according to ``crop_fill``: ``"nan"``
  (default; NaN is the Middlebury ``.flo`` mark for "unknown", so nothing
  mistakes it for an estimate), ``"zero"``, or ``"edge"`` (the nearest
  estimated vector, repeated outward — plausible, but invented). Images
  smaller than 64 in either direction cannot be cropped (``ValueError``).

Self-ensemble (``ensemble``, either policy): the network also sees the pair rotated by
180° (``ensemble=2``) and, with ``ensemble=4``, mirrored left–right and top–bottom; each
estimate is turned back (flow vectors mirrored with the images) and the estimates are
averaged. A network equivariant to these symmetries returns the same flow; a trained one
returns its systematic errors with opposite signs, so a constant offset cancels exactly
(the identical-image flow of an undertrained regression). It costs one forward pass per
copy, batched together.

Example::

    from flownet2_core.inference import FlowNet2Inference
    runner = FlowNet2Inference.from_checkpoint("FlowNet2_checkpoint.pth.tar")
    flow = runner(img1, img2)        # (H, W, 3) uint8 RGB ×2 → (H, W, 2) float32
"""

from __future__ import annotations

import math
import os
import types
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import onednn

__all__ = [
    "ACTIVATION_BYTES_PER_PIXEL", "CROP_FILLS", "ENSEMBLES", "FlowNet2Inference", "MAX_AUTO_BATCH", "MAX_ZOOM",
    "PRECISIONS", "SIZE_POLICIES",
    "available_memory", "cast_convolutions", "keep_heads_in_float32", "resolve_device",
]

SIZE_POLICIES = ("resize", "crop")
CROP_FILLS = ("nan", "zero", "edge")
#: ``precision`` → the autocast dtype (None: plain float32). Names as the trainer's ``--precision``.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# Modules kept in float32 under autocast: the flow heads (a 3×3 convolution to 2 channels and
# the learned ×2 upsampling of a flow), cheap, and where bfloat16's 8-bit mantissa would
# round flow itself (0.25 px steps at 50 px).
_FP32_HEADS = ("predict_flow", "upsampled_flow")


#: The automatic batch: at most this many pairs per forward pass (8 gets most of the gain).
MAX_AUTO_BATCH = 8
#: Peak activation bytes per network-input pixel of one pair at width 1 (FlowNet2, fp32).
ACTIVATION_BYTES_PER_PIXEL = 3000


def available_memory(device: torch.device) -> int:
    """Bytes free for new tensors on ``device``: CUDA's free memory, or the CPU's
    ``MemAvailable`` (``/proc/meminfo``; 4 GiB where that cannot be read)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2 ** 30


def keep_heads_in_float32(model: nn.Module) -> int:
    """Make the flow heads of ``model`` (modules named ``predict_flow*`` / ``upsampled_flow*``)
    run in float32 under autocast, by wrapping their ``forward`` on the instance (module
    structure and state-dict keys unchanged). The ``upsampled_flow*`` heads hand their
    float32 result on in the autocast type: it only enters the decoder's ``cat``, whose
    result the next convolution would cast down anyway, and a float32 part would make the
    whole ``cat`` float32 (twice the bytes, then a cast back). Returns how many were wrapped."""
    n = 0
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1].startswith(_FP32_HEADS) and not getattr(module, "_fp32_head", False):
            # a bound method, not a closure: a deep copy of the model rebinds it to the copy
            module._fp32_inner = module.forward
            module.forward = types.MethodType(_float32_head_forward, module)
            module._fp32_head = True
            module._fp32_hand_on = name.rsplit(".", 1)[-1].startswith("upsampled_flow")
            n += 1
    return n


def _float32_head_forward(self: nn.Module, x: Tensor) -> Tensor:
    device = x.device.type
    autocast = torch.is_autocast_enabled(device)
    with torch.autocast(device, enabled=False):
        y = self._fp32_inner(x.float())
    if autocast and getattr(self, "_fp32_hand_on", False):
        y = y.to(torch.get_autocast_dtype(device))
    return y


def cast_convolutions(model: nn.Module, dtype: torch.dtype) -> int:
    """Store the weights of ``model``'s convolutions (all but the float32 flow heads of
    :func:`keep_heads_in_float32`) in ``dtype`` once, so that autocast does not cast them
    again on every forward pass: on the CPU those casts re-read all float32 weights each
    time (650 MB for FlowNet2, ≈ 11 % of a bf16 forward at 320×256). Autocast runs the same
    convolutions on the same rounded weights either way. Returns how many were cast."""
    n = 0
    heads = [m for m in model.modules() if getattr(m, "_fp32_head", False)]
    kept = {id(p) for h in heads for p in h.parameters()}
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and id(module.weight) not in kept:
            module.to(dtype)
            n += 1
    return n


_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_MULTIPLE = 64

#: ``ensemble`` → the image axes each copy of the pair is mirrored along ((N, C, H, W): 2 = rows,
#: 3 = columns); mirroring both is the rotation by 180°, which comes first because it alone
#: cancels a constant flow offset in u and v.
ENSEMBLES = {1: ((),), 2: ((), (2, 3)), 4: ((), (2, 3), (3,), (2,))}
#: ``zoom`` is a positive factor up to this.
MAX_ZOOM = 4.0


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` → CUDA when available, else CPU; a CUDA device without CUDA → ``ValueError``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


def _as_batch(x: Any, name: str) -> tuple[Tensor, bool]:
    """Images → (N, 3, H, W) float tensor 0..255 on CPU (or its device), and whether it was single.

    numpy: (H, W, 3) or (N, H, W, 3), uint8 or float in 0..255, RGB.
    torch: (3, H, W) or (N, 3, H, W), any real dtype, 0..255, RGB.
    """
    if isinstance(x, np.ndarray):
        if x.ndim not in (3, 4) or x.shape[-1] != 3:
            raise ValueError(f"{name}: numpy images must be (H, W, 3) or (N, H, W, 3), got {x.shape}")
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"{name}: numpy images must be uint8 or float, got {x.dtype}")
        single = x.ndim == 3
        t = torch.from_numpy(np.ascontiguousarray(x[None] if single else x)).permute(0, 3, 1, 2)
        return t, single
    if isinstance(x, Tensor):
        if x.dim() not in (3, 4) or x.shape[-3] != 3:
            raise ValueError(f"{name}: tensor images must be (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
        if x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"{name}: unsupported tensor dtype {x.dtype}")
        single = x.dim() == 3
        return (x[None] if single else x), single
    raise ValueError(f"{name}: expected a numpy array or a torch tensor, got {type(x).__name__}")


def _next_multiple(n: int) -> int:
    return int(math.ceil(n / _MULTIPLE) * _MULTIPLE)


class FlowNet2Inference:
    """Runs a FlowNet2 model (any module with the :mod:`flownet2_core.models.stacks` contract).

    Args:
        model: the network; it is moved to ``device`` (and ``dtype``) and put in eval mode;
            with ``precision`` bf16/fp16 its convolutions (not the flow heads) are stored in
            that type (:func:`cast_convolutions`): give a copy to keep a float32 model.
        device: ``None`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
        batch_size: pairs per forward pass (each with its ``ensemble`` copies); ``None``
            (default): chosen by memory per image size (:meth:`pairs_per_forward`: up to 8, as
            many as fit a quarter of the available memory; on this CPU FlowNet2 at 320×256 runs
            1.3× faster per pair at 4–8 than at 1).
        size_policy: ``"resize"`` (default) or ``"crop"``; see the module docstring.
        min_size: ``"resize"`` only: enlarge images whose shorter side is below this many
            pixels to it before the network (``0``, default: never); the flow comes back
            at the input's size, in its pixels.
        zoom: ``"resize"`` only: run the network at this factor (0 < zoom ≤ 4) times the
            image's size (1.0, default), or at ``min_size``'s enlargement where that is larger;
            rounded up to multiples of 64.
        ensemble: 1 (default: the pair as given), 2 (also rotated by 180°) or 4 (also
            mirrored each way): forward passes per pair, averaged (module docstring).
        crop_fill: what the crop policy puts outside the crop: ``"nan"``, ``"zero"``, ``"edge"``.
        precision: ``"fp32"`` (default), ``"bf16"`` (CPU and CUDA) or ``"fp16"`` (CUDA): run
            under ``torch.autocast`` in that type, with the flow heads kept in float32
            (:func:`keep_heads_in_float32`); the returned flow is float32 either way. Speed
            and accuracy of each: ``docs/benchmarks.md``.
        dtype: ``None`` (keep the model's) or ``"float32"`` / ``"float64"`` for weights and inputs.
        channels_last: the channels-last memory format for weights and activations; ``None``
            (default): on the CPU, where oneDNN runs FlowNet2 1.5× faster in it (fp32 at
            1024×448, ``docs/benchmarks.md``), not on CUDA (not measured there yet).
        prepack: run the convolutions with their weights packed once for oneDNN and LeakyReLU
            fused (:mod:`flownet2_core.onednn`; same float32 numbers); ``None`` (default): on
            the CPU in channels-last, float32 or bf16.
        name: who to name in errors (the flow method): the network's output is checked to be
            finite, so broken weights raise ``ValueError`` instead of giving NaN flow.

    Calling the object with two images or batches returns float32 numpy flow
    in pixels: (H, W, 2) for single images, (N, H, W, 2) for batches.
    """

    def __init__(self, model: nn.Module, device: str | torch.device | None = None,
                 batch_size: int | None = None, size_policy: str = "resize", crop_fill: str = "nan",
                 precision: str = "fp32", dtype: str | torch.dtype | None = None,
                 channels_last: bool | None = None, prepack: bool | None = None,
                 name: str = "the model", min_size: int = 0, zoom: float = 1.0,
                 ensemble: int = 1) -> None:
        if size_policy not in SIZE_POLICIES:
            raise ValueError(f"size_policy must be one of {SIZE_POLICIES}, got {size_policy!r}")
        if isinstance(min_size, bool) or not isinstance(min_size, int) or not 0 <= min_size <= 4096:
            raise ValueError(f"min_size must be an integer number of pixels in 0..4096, got {min_size!r}")
        if min_size and size_policy != "resize":
            raise ValueError(f"min_size={min_size} needs size_policy='resize' (a crop cannot enlarge)")
        self.min_size = min_size
        if isinstance(zoom, bool) or not isinstance(zoom, (int, float)) or not 0 < zoom <= MAX_ZOOM:
            raise ValueError(f"zoom must be a number in (0, {MAX_ZOOM:g}], got {zoom!r}")
        if zoom != 1 and size_policy != "resize":
            raise ValueError(f"zoom={zoom} needs size_policy='resize' (a crop runs at the image's own scale)")
        self.zoom = float(zoom)
        if isinstance(ensemble, bool) or ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {', '.join(map(str, ENSEMBLES))} (forward passes per "
                             f"pair), got {ensemble!r}")
        self.ensemble = int(ensemble)
        if crop_fill not in CROP_FILLS:
            raise ValueError(f"crop_fill must be one of {CROP_FILLS}, got {crop_fill!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None (by memory), got {batch_size!r}")
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            from .memory import reuse_freed_memory

            reuse_freed_memory()  # page faults were a fifth of a forward pass (flownet2_core.memory)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError(f"precision='fp16' is offered on CUDA only (device is {self.device}); "
                             "'bf16' runs on the CPU too")
        if precision != "fp32" and dtype not in (None, "float32", torch.float32):
            raise ValueError(f"precision={precision!r} runs float32 weights under autocast; dtype={dtype!r} "
                             "does not combine with it")
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
            dtype = _DTYPES[dtype]
        elif dtype is not None and dtype not in _DTYPES.values():
            raise ValueError(f"dtype must be None, torch.float32 or torch.float64, got {dtype!r}")
        self.name = name
        self.batch_size = batch_size
        self.size_policy = size_policy
        self.crop_fill = crop_fill
        self.precision = precision
        if channels_last is None:  # oneDNN's fast path is float32/bfloat16; float64 stays NCHW
            channels_last = self.device.type == "cpu" and dtype in (None, torch.float32)
        self.channels_last = bool(channels_last)
        model = model.to(self.device)
        if dtype is not None:
            model = model.to(dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        param = next(model.parameters(), None)
        self.dtype = dtype or (param.dtype if param is not None else torch.float32)
        if prepack is None:
            prepack = self.device.type == "cpu" and self.channels_last and self.dtype == torch.float32
        # packed first: the float32 heads wrap the packed layers, and the packed layers
        # follow the later cast of the other convolutions' weights
        self.prepacked = onednn.pack_convolutions(model) if prepack else 0
        if precision != "fp32":
            keep_heads_in_float32(model)
            cast_convolutions(model, PRECISIONS[precision])
        self.model = model.eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **options) -> FlowNet2Inference:
        """Build the model a checkpoint file holds (detected), load it, and wrap it."""
        from .models.checkpoint import load_checkpoint

        return cls(load_checkpoint(path), **options)

    # -- the network on one chunk -------------------------------------------------------
    def _forward(self, a: Tensor, b: Tensor) -> Tensor:
        """(B, 3, H', W') ×2 at a size the network takes → (B, 2, H', W') float32 flow,
        averaged over the ``ensemble``'s mirrored copies (one batched pass)."""
        mirrors = ENSEMBLES[self.ensemble]
        if len(mirrors) == 1:
            return self._network(a, b)
        n = a.shape[0]
        flows = self._network(torch.cat([a.flip(d) if d else a for d in mirrors]),
                              torch.cat([b.flip(d) if d else b for d in mirrors]))
        total = torch.zeros_like(flows[:n])
        for i, dims in enumerate(mirrors):
            f = flows[i * n:(i + 1) * n]
            if dims:
                # mirrored columns negate u, mirrored rows negate v
                sign = f.new_tensor([-1.0 if 3 in dims else 1.0, -1.0 if 2 in dims else 1.0])
                f = f.flip(dims) * sign.view(1, 2, 1, 1)
            total += f
        return total / len(mirrors)

    def _network(self, a: Tensor, b: Tensor) -> Tensor:
        if self.channels_last:
            a = a.contiguous(memory_format=torch.channels_last)
            b = b.contiguous(memory_format=torch.channels_last)
        if self.precision != "fp32":
            with torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision]):
                flow = self.model(a, b)
        else:
            flow = self.model(a, b)
        if not isinstance(flow, Tensor) or flow.dim() != 4 or flow.shape[1] != 2 \
                or flow.shape[2:] != a.shape[2:]:
            raise ValueError("the model must return (B, 2, H, W) flow in eval mode, got "
                             f"{tuple(flow.shape) if isinstance(flow, Tensor) else type(flow).__name__}")
        finite = torch.isfinite(flow)
        if not bool(finite.all()):  # broken weights: never hand NaN/inf on as flow
            from .methods.base import non_finite_error

            raise non_finite_error(self.name, int((~finite).sum()), flow.numel())
        return flow.float()

    def _network_size(self, h: int, w: int) -> tuple[int, int]:
        """(H', W') the resize policy runs the network at for an H×W input."""
        # min_size is a floor: a frame it already enlarges is not enlarged again by zoom
        zoom = max(self.zoom, self.min_size / min(h, w))
        return _next_multiple(round(h * zoom)), _next_multiple(round(w * zoom))

    def _run_resize(self, a: Tensor, b: Tensor) -> Tensor:
        h, w = a.shape[-2:]
        h2, w2 = self._network_size(h, w)
        if (h2, w2) == (h, w):
            return self._forward(a, b)
        a = F.interpolate(a, size=(h2, w2), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(h2, w2), mode="bilinear", align_corners=False)
        flow = self._forward(a, b)
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        scale = torch.tensor([w / w2, h / h2], dtype=flow.dtype, device=flow.device)
        return flow * scale.view(1, 2, 1, 1)

    def _run_crop(self, a: Tensor, b: Tensor) -> Tensor:
        h, w = a.shape[-2:]
        hc, wc = (h // _MULTIPLE) * _MULTIPLE, (w // _MULTIPLE) * _MULTIPLE
        if hc == 0 or wc == 0:
            raise ValueError(f"size_policy='crop' needs images of at least 64×64, got {w}×{h}; "
                             "use size_policy='resize'")
        top, left = (h - hc) // 2, (w - wc) // 2
        flow = self._forward(a[..., top:top + hc, left:left + wc], b[..., top:top + hc, left:left + wc])
        pads = (left, w - wc - left, top, h - hc - top)
        if self.crop_fill == "edge":
            return F.pad(flow, pads, mode="replicate")
        fill = float("nan") if self.crop_fill == "nan" else 0.0
        return F.pad(flow, pads, mode="constant", value=fill)

    def predict(self, imgs1: Tensor, imgs2: Tensor) -> Tensor:
        """(N, 3, H, W) ×2, RGB 0..255, any size → (N, 2, H, W) float32 flow on the model's device."""
        if imgs1.shape != imgs2.shape:
            raise ValueError(f"image batches differ in shape: {tuple(imgs1.shape)} vs {tuple(imgs2.shape)}")
        if imgs1.shape[0] == 0:
            return torch.zeros((0, 2, *imgs1.shape[2:]), device=self.device)
        outs = []
        run = self._run_resize if self.size_policy == "resize" else self._run_crop
        step = self.pairs_per_forward(*imgs1.shape[2:])
        with torch.inference_mode():
            for start in range(0, imgs1.shape[0], step):
                a = imgs1[start:start + step].to(self.device, self.dtype)
                b = imgs2[start:start + step].to(self.device, self.dtype)
                outs.append(run(a, b))
        return torch.cat(outs, dim=0)

    def pairs_per_forward(self, h: int, w: int) -> int:
        """Pairs per forward pass for (h, w) images: ``batch_size`` if given, else as many as
        fit a quarter of the memory available now (at most :data:`MAX_AUTO_BATCH`). A pair
        needs about ``ACTIVATION_BYTES_PER_PIXEL`` × width bytes per network pixel (FlowNet2
        at width 1 peaked at ≈ 2.7 kB per pixel on the CPU, 1024×448), times ``ensemble``
        (its copies run in the same pass)."""
        if self.batch_size is not None:
            return self.batch_size
        hn, wn = (h, w) if self.size_policy == "crop" else self._network_size(h, w)
        per_pair = (ACTIVATION_BYTES_PER_PIXEL * max(getattr(self.model, "width", 1.0), 0.125) * hn * wn
                    * self.ensemble)
        return int(max(1, min(MAX_AUTO_BATCH, available_memory(self.device) // 4 // max(per_pair, 1))))

    def __call__(self, imgs1: Any, imgs2: Any) -> np.ndarray:
        """Images (numpy (H, W, 3)/(N, H, W, 3) or tensors (3, H, W)/(N, 3, H, W), RGB 0..255)
        → float32 numpy flow (H, W, 2) or (N, H, W, 2), pixels, channel 0 = u, 1 = v."""
        a, single_a = _as_batch(imgs1, "imgs1")
        b, single_b = _as_batch(imgs2, "imgs2")
        if a.shape != b.shape:
            raise ValueError(f"images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)} (N, 3, H, W)")
        if a.shape[0] == 0:
            return np.zeros((0, *a.shape[2:], 2), np.float32)
        flow = self.predict(a, b).permute(0, 2, 3, 1).cpu().numpy().astype(np.float32, copy=False)
        flow = np.ascontiguousarray(flow)
        return flow[0] if (single_a and single_b) else flow
