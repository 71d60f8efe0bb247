"""FlowNet's training augmentation, batched, on the batch's device.

Three pieces:

* :class:`GeometricAugment`: a random global affine transform T1 for image 1
  and T2 = (small relative transform) ∘ T1 for image 2, sampled straight into
  the output crop; the flow is transformed exactly and its valid mask updated;
* :class:`PhotometricAugment`: colour, gamma, brightness, contrast and
  Gaussian noise, one draw for both images plus a small relative change for
  image 2;
* :class:`FlowAugment`: ``aug(batch, generator) -> batch``, geometric then
  photometric (both ending in the crop), or only a centre crop when disabled.

The geometric parts are also plain functions: :func:`affine_sample` (images),
:func:`affine_flow` (flow and valid) and :func:`center_crop`.

Batch: a dict of tensors

* ``"img1"``, ``"img2"``: (B, 3, H, W) floating point RGB in 0..255;
* ``"flow"``: (B, 2, H, W) in pixels, channel 0 = u (right, x), 1 = v (down,
  y), from image 1 to image 2;
* ``"valid"``: (B, 1, H, W) bool (optional on input: all valid if absent).

Other keys are passed through unchanged.

Convention: pixel (row i, column j) has its centre at (x=j, y=i). An affine
transform is a (B, 3, 3) homogeneous matrix ``A`` that maps *output*
coordinates ``x'`` (pixel centres of the crop, 0 … w−1, 0 … h−1) to *input*
coordinates ``p = A·x'`` (0 … W−1, 0 … H−1). Images are sampled bilinearly with
``grid_sample(align_corners=True)``, normalising ``p`` by ``2p / (size − 1) − 1``
so that integer ``p`` falls exactly on a pixel centre. For output pixel ``x'``
of image 1 with ``p = A1·x'`` and ``q = p + flow(p)`` (bilinear sample of the
input flow), the output flow is ``A2⁻¹·q − x'``.

Where the default values come from (each cited at its field):

* [FlowNet] Dosovitskiy et al., "FlowNet: Learning Optical Flow with
  Convolutional Networks", ICCV 2015, §4.3 "Data Augmentation": translation
  [−20 %, 20 %] of the image size, rotation [−17°, 17°], scaling [0.9, 2.0],
  Gaussian noise σ ∈ [0, 0.04], contrast [−0.8, 0.4], multiplicative colour
  per RGB channel [0.5, 2], gamma [0.7, 1.5], additive brightness Gaussian
  σ 0.2. (The paper gives no numbers for the relative transform of image 2.)
* [Caffe] lmb-freiburg/flownet2, ``src/caffe/layers/augmentation_layer_base.cpp``
  and ``data_augmentation_layer.cu`` (how the parameters are used: squeeze
  multiplies the x zoom and divides the y zoom, the crop is resampled until its
  four corners lie inside the source and falls back to no transform, the
  colour change keeps each pixel's brightness, the order colour → gamma →
  brightness → contrast), and the FlowNet2 training configuration as
  transcribed by sampepose/flownet2-tf ``src/dataset_configs.py`` (the
  ``augmentation_param`` blocks of the Caffe prototxts): squeeze
  exp(U[−0.3, 0.3]); image 2 relative translation N(0, 0.03) × crop size,
  rotation N(0, 0.03) rad, zoom exp(N(0, 0.03)), gamma, contrast and colour
  exp(N(0, 0.02)), brightness N(0, 0.02); FlowNet2's image-1 values (translate
  U[−0.4, 0.4] × crop size, rotate U[−0.4, 0.4] rad, zoom exp(U[−0.2, 0.6])) are
  available as :meth:`GeometricAugment.flownet2_caffe`.

Not reproduced: Caffe's "chromatic eigen" augmentation (FlowNet2's
``lmult_*``/``sat_*``/``col_*`` parameters), mirroring (off in FlowNet's
configurations) and the schedule that ramps image 2's relative parameters from
half to full strength over the first ~50k iterations
(``coeff_schedule_param``); build new settings to change strength over time.
Caffe also looks the flow up with nearest-neighbour rounding; here it is
sampled bilinearly.

Randomness: every draw comes from the ``torch.Generator`` given. The
parameters (a few numbers per sample) are drawn on the generator's device and
moved to the batch's device; the per-pixel noise field is drawn on the batch's
device, from the generator itself when it lives there, else from a generator
seeded by one draw of it. So a call is deterministic for a given generator
state and batch device; a CPU and a CUDA run draw the same parameters from the
same CPU generator but different noise fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "FlowAugment", "GeometricAugment", "PhotometricAugment",
    "affine_flow", "affine_sample", "center_crop",
]

_KEYS = ("img1", "img2", "flow", "valid")
# Slack for floating-point rounding in the "inside the image" tests (pixels).
_EPS_PX = 1e-3
# A bilinear sample of the valid mask counts as all-valid above this.
_VALID_MIN = 1.0 - 1e-3


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
def _check_crop(crop, name: str = "crop") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in crop)
        ok = (h, w) == tuple(crop)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 2 or w < 2:
        raise ValueError(f"{name} must be (h, w) with integers ≥ 2, got {crop!r}")
    return h, w


def _check_range(name: str, rng, low: float | None = None, positive: bool = False) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in rng)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair of numbers, got {rng!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or a > b:
        raise ValueError(f"{name} must be a finite (min, max) with min ≤ max, got {rng!r}")
    if positive and a <= 0:
        raise ValueError(f"{name} must be positive, got {rng!r}")
    if low is not None and a < low:
        raise ValueError(f"{name} must not go below {low}, got {rng!r}")
    return a, b


def _check_nonneg(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and ≥ 0, got {value!r}")
    return v


def _check_batch(batch) -> tuple[int, int, int]:
    """Validate a batch dict; returns (B, H, W)."""
    if not isinstance(batch, dict):
        raise ValueError(f"batch must be a dict of tensors, got {type(batch).__name__}")
    for k in ("img1", "img2", "flow"):
        if k not in batch:
            raise ValueError(f"batch lacks {k!r} (needs img1, img2, flow; valid optional)")
        if not isinstance(batch[k], Tensor) or not batch[k].is_floating_point():
            raise ValueError(f"batch[{k!r}] must be a floating-point tensor")
    img1, img2, flow = batch["img1"], batch["img2"], batch["flow"]
    if img1.dim() != 4 or img1.shape[1] != 3:
        raise ValueError(f"img1 must be (B, 3, H, W), got {tuple(img1.shape)}")
    b, _, h, w = img1.shape
    if tuple(img2.shape) != tuple(img1.shape):
        raise ValueError(f"img2 {tuple(img2.shape)} must have img1's shape {tuple(img1.shape)}")
    if tuple(flow.shape) != (b, 2, h, w):
        raise ValueError(f"flow must be (B, 2, H, W) = {(b, 2, h, w)}, got {tuple(flow.shape)}")
    valid = batch.get("valid")
    if valid is not None:
        if not isinstance(valid, Tensor) or valid.dtype != torch.bool or tuple(valid.shape) != (b, 1, h, w):
            raise ValueError(f"valid must be a (B, 1, H, W) = {(b, 1, h, w)} bool tensor")
    devices = {t.device for k, t in batch.items() if k in _KEYS and isinstance(t, Tensor)}
    if len(devices) > 1:
        raise ValueError(f"batch tensors are on several devices: {sorted(map(str, devices))}")
    if h < 2 or w < 2:
        raise ValueError(f"images must be at least 2 × 2, got {w}×{h}")
    return b, h, w


def _check_fits(crop: tuple[int, int], size: tuple[int, int]) -> None:
    if crop[0] > size[0] or crop[1] > size[1]:
        raise ValueError(f"crop {crop} (h, w) is larger than the input {size}")


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.default_generator
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _gen_on(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """``generator`` itself if it lives on ``device``, else one on ``device`` seeded from it."""
    if generator.device.type == device.type and (
            device.type == "cpu" or generator.device.index == (device.index or 0)):
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator(device=device).manual_seed(seed)


# --------------------------------------------------------------------------
# Affine matrices (float64 (..., 3, 3))
# --------------------------------------------------------------------------
def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    m = torch.zeros(tx.shape + (3, 3), dtype=tx.dtype, device=tx.device)
    m[..., 0, 0] = m[..., 1, 1] = m[..., 2, 2] = 1
    m[..., 0, 2] = tx
    m[..., 1, 2] = ty
    return m


def _linear(a: Tensor, b: Tensor, c: Tensor, d: Tensor) -> Tensor:
    m = torch.zeros(a.shape + (3, 3), dtype=a.dtype, device=a.device)
    m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1] = a, b, c, d
    m[..., 2, 2] = 1
    return m


def _center_offset(size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the centre crop; integer, so the identity transform is a plain crop."""
    return (size[0] - crop[0]) // 2, (size[1] - crop[1]) // 2


def _identity_matrix(batch: int, size, crop, device) -> Tensor:
    top, left = _center_offset(size, crop)
    z = torch.full((batch,), float(left), dtype=torch.float64, device=device)
    return _translation(z, torch.full_like(z, float(top)))


def _corners_inside(a: Tensor, size: tuple[int, int], crop: tuple[int, int]) -> Tensor:
    """(...) bool: the four corner pixel centres of the crop map inside the source."""
    h, w = crop
    c = torch.tensor([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]],
                     dtype=a.dtype, device=a.device)
    p = torch.einsum("...ij,kj->...ki", a[..., :2, :], c)
    inside = ((p[..., 0] >= -_EPS_PX) & (p[..., 0] <= size[1] - 1 + _EPS_PX)
              & (p[..., 1] >= -_EPS_PX) & (p[..., 1] <= size[0] - 1 + _EPS_PX))
    return inside.all(dim=-1)


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class GeometricAugment:
    """Settings of the random affine transforms (FlowNet's "geometric" augmentation).

    Per sample, image 1 gets ``p = c + t + Z⁻¹·Rot(θ)·(x' − c')`` (output
    ``x'`` → input ``p``; ``c'`` the crop's centre, ``c`` the source centre of the
    centre crop, ``Z = diag(zoom·s, zoom/s)``), and image 2 gets
    ``A2 = A1 ∘ R⁻¹`` with the relative transform, in output coordinates,
    ``R·x' = c' + t_r + z_r·Rot(θ_r)·(x' − c')``. ``R`` is the motion the
    augmentation adds to the scene: with a static scene (zero flow) the output
    flow is ``R·x' − x'``. ``zoom > 1`` magnifies; θ > 0 turns the sampling grid
    clockwise on screen (x right, y down), so the content turns anticlockwise.

    Attributes:
        translate: t ~ U[−translate, translate] × (W, H) in input pixels, i.e. a
            fraction of the source size. 0.2: [FlowNet] "[−20 %, 20 %] of the
            image width for x and y" (used here with the height for y).
        rotate: θ ~ U[−rotate, rotate] degrees. 17: [FlowNet] "[−17°, 17°]".
        zoom: (min, max), zoom ~ log-uniform on it. (0.9, 2.0): [FlowNet]
            "scaling from [0.9, 2.0]"; the paper gives no distribution, the
            Caffe layer draws zoom as exp(uniform), hence log-uniform.
        squeeze: (min, max) aspect factor s ~ log-uniform: x zoom × s, y zoom ÷ s.
            (e^−0.3, e^0.3) ≈ (0.741, 1.350): [Caffe] FlowNet2 ``squeeze`` exp
            U[−0.3, 0.3] (FlowNet's paper lists no squeeze).
        rel_translate: t_r ~ N(0, rel_translate) × (w, h), a fraction of the crop
            size. 0.03: [Caffe] FlowNet2 image-2 ``translate`` gaussian, spread 0.03.
        rel_rotate: θ_r ~ N(0, rel_rotate) degrees. 0.03 rad ≈ 1.72°: [Caffe]
            FlowNet2 image-2 ``rotate`` gaussian, spread 0.03 (radians there).
        rel_zoom: z_r = exp(N(0, rel_zoom)). 0.03: [Caffe] FlowNet2 image-2
            ``zoom`` gaussian, exp, spread 0.03.
        keep_inside: redraw (up to ``tries`` candidates per sample, drawn at
            once) until the four corners of both crops lie inside the source,
            and fall back to the plain centre crop with no relative transform
            when none does, as the Caffe layer does (50 tries there).
        tries: candidates per sample when ``keep_inside``.
        invalidate_out_of_view: mark flow invalid where its target
            ``A2⁻¹·q`` falls outside the output crop (it is always invalid where
            ``p`` falls outside image 1 or the input mask is not all-valid).
    """

    translate: float = 0.2
    rotate: float = 17.0
    zoom: tuple[float, float] = (0.9, 2.0)
    squeeze: tuple[float, float] = (math.exp(-0.3), math.exp(0.3))
    rel_translate: float = 0.03
    rel_rotate: float = math.degrees(0.03)
    rel_zoom: float = 0.03
    keep_inside: bool = True
    tries: int = 50
    invalidate_out_of_view: bool = True

    def __post_init__(self):
        for name in ("translate", "rotate", "rel_translate", "rel_rotate", "rel_zoom"):
            _check_nonneg(f"GeometricAugment.{name}", getattr(self, name))
        _check_range("GeometricAugment.zoom", self.zoom, positive=True)
        _check_range("GeometricAugment.squeeze", self.squeeze, positive=True)
        if isinstance(self.tries, bool) or not isinstance(self.tries, int) or self.tries < 1:
            raise ValueError(f"GeometricAugment.tries must be an integer ≥ 1, got {self.tries!r}")

    @classmethod
    def flownet2_caffe(cls, **overrides) -> GeometricAugment:
        """FlowNet2's Caffe image-1 ranges ([Caffe] FlyingChairs configuration).

        translate ±0.4 (there a fraction of the crop size applied before the
        zoom, here of the source size), rotate ±0.4 rad ≈ ±22.9°, zoom
        exp(U[−0.2, 0.6]) ≈ [0.819, 1.822]; squeeze and the relative transform
        are the defaults, which already follow that configuration.
        """
        values = dict(translate=0.4, rotate=math.degrees(0.4), zoom=(math.exp(-0.2), math.exp(0.6)))
        values.update(overrides)
        return cls(**values)

    @property
    def is_identity(self) -> bool:
        """True when every range is empty: the transform is the plain centre crop."""
        return (self.translate == 0 and self.rotate == 0 and tuple(self.zoom) == (1.0, 1.0)
                and tuple(self.squeeze) == (1.0, 1.0) and self.rel_translate == 0
                and self.rel_rotate == 0 and self.rel_zoom == 0)

    def sample(self, batch_size: int, size: tuple[int, int], crop: tuple[int, int],
               generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Draw the transforms of a batch.

        Args:
            batch_size: B.
            size: (H, W) of the input images.
            crop: (h, w) of the output.
            generator: source of randomness (its device is where the draws happen).
            device: where the matrices go (default: the generator's device).

        Returns:
            ``(A1, A2)``, each (B, 3, 3) float64: output → input coordinates of
            image 1 and image 2 (see the module's convention).
        """
        crop = _check_crop(crop)
        size = _check_crop(size, "size")
        _check_fits(crop, size)
        gen = _generator(generator)
        device = torch.device(device) if device is not None else gen.device
        bsz = int(batch_size)
        if self.is_identity:
            a1 = _identity_matrix(bsz, size, crop, device)
            return a1, a1.clone()
        k = self.tries if self.keep_inside else 1
        f64 = dict(dtype=torch.float64, device=gen.device)
        u = torch.rand((bsz, k, 5), generator=gen, **f64)
        n = torch.randn((bsz, k, 4), generator=gen, **f64)

        def lerp(x, lo, hi):
            return lo + (hi - lo) * x

        (hh, ww), (ch, cw) = size, crop
        tx = lerp(u[..., 0], -self.translate, self.translate) * ww
        ty = lerp(u[..., 1], -self.translate, self.translate) * hh
        th = torch.deg2rad(lerp(u[..., 2], -self.rotate, self.rotate))
        zoom = torch.exp(lerp(u[..., 3], math.log(self.zoom[0]), math.log(self.zoom[1])))
        sq = torch.exp(lerp(u[..., 4], math.log(self.squeeze[0]), math.log(self.squeeze[1])))
        zx, zy = zoom * sq, zoom / sq

        top, left = _center_offset(size, crop)
        cx, cy = (cw - 1) / 2, (ch - 1) / 2        # crop centre (output coords)
        sx, sy = left + cx, top + cy                # its source position when untransformed
        cos, sin = torch.cos(th), torch.sin(th)
        # A1 = T(c + t) · Z⁻¹ · Rot(θ) · T(−c')
        a1 = (_translation(sx + tx, sy + ty)
              @ _linear(cos / zx, -sin / zx, sin / zy, cos / zy)
              @ _translation(torch.full_like(tx, -cx), torch.full_like(ty, -cy)))
        # R = T(c' + t_r) · z_r Rot(θ_r) · T(−c');  A2 = A1 · R⁻¹
        rtx, rty = n[..., 0] * self.rel_translate * cw, n[..., 1] * self.rel_translate * ch
        rth = torch.deg2rad(n[..., 2] * self.rel_rotate)
        rz = torch.exp(n[..., 3] * self.rel_zoom)
        rc, rs = torch.cos(rth) * rz, torch.sin(rth) * rz
        rel = (_translation(cx + rtx, cy + rty) @ _linear(rc, -rs, rs, rc)
               @ _translation(torch.full_like(tx, -cx), torch.full_like(ty, -cy)))
        a2 = a1 @ torch.linalg.inv(rel)

        if self.keep_inside:
            ok = _corners_inside(a1, size, crop) & _corners_inside(a2, size, crop)   # (B, k)
            first = ok.to(torch.int8).argmax(dim=1)                                  # first True (0 if none)
            found = ok.any(dim=1)
            idx = torch.arange(bsz, device=gen.device)
            a1, a2 = a1[idx, first], a2[idx, first]
            fallback = _identity_matrix(bsz, size, crop, gen.device)
            a1 = torch.where(found[:, None, None], a1, fallback)
            a2 = torch.where(found[:, None, None], a2, fallback)
        else:
            a1, a2 = a1[:, 0], a2[:, 0]
        return a1.to(device), a2.to(device)


@dataclass(frozen=True)
class PhotometricAugment:
    """Settings of the colour changes (on the 0..1 scale; images are 0..255).

    Applied per image in the Caffe layer's order ([Caffe]
    ``ColorContrastAugmentation``): ``x ← x·color`` (per channel; with
    ``color_keeps_brightness`` rescaled per pixel so the channel sum is kept,
    as Caffe does), clamp to [0, 1], ``x ← x^gamma``, ``x ← x + brightness``,
    ``x ← 0.5 + (x − 0.5)·(1 + contrast)``, ``x ← x + N(0, noise_sigma)``,
    clamp to [0, 1]. Image 1 and image 2 share one draw; image 2's gamma,
    contrast factor and colour are then multiplied by exp(N(0, rel_*)) and
    N(0, rel_brightness) added to its brightness (the Caffe layer combines
    image 2's parameters with image 1's this way). Noise fields are drawn
    independently per image, with the shared σ.

    Attributes:
        noise: (min, max) of σ, uniform. (0, 0.04): [FlowNet] "Gaussian noise
            has a sigma uniformly sampled from [0, 0.04]".
        contrast: (min, max), uniform; the factor is 1 + contrast. (−0.8, 0.4):
            [FlowNet] "contrast is sampled within [−0.8, 0.4]".
        color: (min, max) per-channel multiplier, uniform. (0.5, 2): [FlowNet]
            "multiplicative color changes to the RGB channels per image from
            [0.5, 2]".
        gamma: (min, max), uniform. (0.7, 1.5): [FlowNet].
        brightness: σ of the additive Gaussian. 0.2: [FlowNet].
        color_keeps_brightness: rescale after the colour change so each
            pixel's R+G+B is unchanged ([Caffe]: ``sum_in / (sum_out + 0.01)``).
        rel_gamma, rel_contrast, rel_color: σ of image 2's log factor. 0.02:
            [Caffe] FlowNet2 image-2 ``gamma``/``contrast``/``color`` gaussian,
            exp, spread 0.02.
        rel_brightness: σ of image 2's extra brightness. 0.02: [Caffe] FlowNet2
            image-2 ``brightness`` gaussian, spread 0.02.
    """

    noise: tuple[float, float] = (0.0, 0.04)
    contrast: tuple[float, float] = (-0.8, 0.4)
    color: tuple[float, float] = (0.5, 2.0)
    gamma: tuple[float, float] = (0.7, 1.5)
    brightness: float = 0.2
    color_keeps_brightness: bool = True
    rel_gamma: float = 0.02
    rel_brightness: float = 0.02
    rel_contrast: float = 0.02
    rel_color: float = 0.02

    def __post_init__(self):
        _check_range("PhotometricAugment.noise", self.noise, low=0.0)
        _check_range("PhotometricAugment.contrast", self.contrast, low=-1.0)
        _check_range("PhotometricAugment.color", self.color, positive=True)
        _check_range("PhotometricAugment.gamma", self.gamma, positive=True)
        for name in ("brightness", "rel_gamma", "rel_brightness", "rel_contrast", "rel_color"):
            _check_nonneg(f"PhotometricAugment.{name}", getattr(self, name))

    @property
    def is_identity(self) -> bool:
        """True when every range is empty and the changes are no-ops."""
        return (tuple(self.noise) == (0.0, 0.0) and tuple(self.contrast) == (0.0, 0.0)
                and tuple(self.color) == (1.0, 1.0) and tuple(self.gamma) == (1.0, 1.0)
                and self.brightness == 0 and self.rel_gamma == 0 and self.rel_brightness == 0
                and self.rel_contrast == 0 and self.rel_color == 0)

    def sample(self, batch_size: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> dict[str, Tensor]:
        """Draw the parameters of a batch.

        Returns:
            dict of float64 tensors with a leading (2, B) for (image 1, image 2):
            ``gamma``, ``brightness``, ``contrast`` (the factor 1 + c),
            ``noise_sigma`` of shape (2, B), ``color`` of shape (2, B, 3).
        """
        gen = _generator(generator)
        device = torch.device(device) if device is not None else gen.device
        bsz = int(batch_size)
        f64 = dict(dtype=torch.float64, device=gen.device)
        u = torch.rand((bsz, 6), generator=gen, **f64)
        n = torch.randn((bsz, 7), generator=gen, **f64)

        def lerp(x, rng):
            return rng[0] + (rng[1] - rng[0]) * x

        gamma = lerp(u[:, 0], self.gamma)
        contrast = 1 + lerp(u[:, 1], self.contrast)
        sigma = lerp(u[:, 2], self.noise)
        color = lerp(u[:, 3:6], self.color)
        brightness = n[:, 0] * self.brightness
        out = {
            "gamma": torch.stack((gamma, gamma * torch.exp(n[:, 1] * self.rel_gamma))),
            "brightness": torch.stack((brightness, brightness + n[:, 2] * self.rel_brightness)),
            "contrast": torch.stack((contrast, contrast * torch.exp(n[:, 3] * self.rel_contrast))),
            "noise_sigma": torch.stack((sigma, sigma)),
            "color": torch.stack((color, color * torch.exp(n[:, 4:7] * self.rel_color))),
        }
        return {k: v.to(device) for k, v in out.items()}

    def apply(self, img1: Tensor, img2: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Augment a pair of (B, 3, H, W) 0..255 images; returns new tensors in 0..255."""
        if self.is_identity:
            return img1.clone(), img2.clone()
        gen = _generator(generator)
        params = self.sample(img1.shape[0], gen, device=img1.device)
        noise_gen = _gen_on(gen, img1.device)
        outs = []
        for i, img in enumerate((img1, img2)):
            p = {k: v[i] for k, v in params.items()}
            noise = None
            if float(self.noise[1]) > 0:
                noise = gaussian_noise(img.shape, i, noise_gen, img.device,
                                       torch.promote_types(img.dtype, torch.float32))
            outs.append(_photometric(img, p, noise, self.color_keeps_brightness))
        return outs[0], outs[1]


#: Standard normal values drawn once per (device, dtype) from a fixed seed; per-pixel noise is
#: a window of it at a random offset. Drawing 2 × 2 M normals a batch was a quarter of the
#: generator's time on a CPU (randn ≈ 8 ms per 8×3×256×320); a window costs nothing.
NOISE_BANK_SIZE = 1 << 23
_NOISE_BANKS: dict[tuple[str, torch.dtype], Tensor] = {}


def gaussian_noise(shape: tuple[int, ...], image: int, generator: torch.Generator, device: torch.device,
                   dtype: torch.dtype) -> Tensor:
    """N(0, 1) noise of ``shape`` for image ``image`` (0 or 1) of a pair: a window of a fixed
    bank at an offset drawn from ``generator``. The two images' windows come from disjoint
    halves of the bank, so their noise is independent (overlapping windows would be one
    noise pattern shifted between the images: a false correspondence for a flow network);
    shapes larger than half the bank are drawn afresh."""
    numel = math.prod(shape)
    half = NOISE_BANK_SIZE // 2
    if numel > half:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    key = (str(device), dtype)
    bank = _NOISE_BANKS.get(key)
    if bank is None:
        g = torch.Generator(device=device).manual_seed(20170721)  # fixed: the same bank everywhere
        bank = _NOISE_BANKS[key] = torch.randn(NOISE_BANK_SIZE, generator=g, device=device, dtype=dtype)
    start = int(torch.randint(0, half - numel + 1, (1,), generator=generator, device=generator.device))
    start += image * half
    return bank[start:start + numel].view(shape)


def _photometric(img: Tensor, p: dict[str, Tensor], noise: Tensor | None, keep_brightness: bool) -> Tensor:
    dtype = torch.promote_types(img.dtype, torch.float32)
    x = img.to(dtype) / 255.0                   # a new tensor: the rest works in place

    def col(v):  # (B,) → (B, 1, 1, 1)
        return v.to(dtype).view(-1, 1, 1, 1)

    before = x.sum(dim=1, keepdim=True) if keep_brightness else None
    x.mul_(p["color"].to(dtype).view(-1, 3, 1, 1))
    if keep_brightness:
        # [Caffe] divides by (sum_out + 0.01), which also darkens dark pixels
        # (by 25 % at R+G+B = 0.03); here the guard only avoids 0 / 0.
        x.mul_(before.div_(x.sum(dim=1, keepdim=True).clamp_min_(1e-6)))
    x.clamp_(0.0, 1.0).pow_(col(p["gamma"]))
    # brightness then contrast: 0.5 + (x + b − 0.5)·k = x·k + (0.5 + (b − 0.5)·k)
    k = col(p["contrast"])
    x.mul_(k).add_(0.5 + (col(p["brightness"]) - 0.5) * k)
    if noise is not None:
        x.addcmul_(noise.to(dtype), col(p["noise_sigma"]))
    return x.clamp_(0.0, 1.0).mul_(255.0).to(img.dtype)


# --------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------
def _grid(a: Tensor, crop: tuple[int, int], channels_first: bool = False) -> Tensor:
    """Positions ``A·x'`` of the output pixel centres: (B, h, w, 2), or (B, 2, h, w) with
    ``channels_first``; float64, so that an integer translation stays integer to ~1e-12 px."""
    h, w = crop
    a = a.to(torch.float64)
    ys = torch.arange(h, device=a.device, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(w, device=a.device, dtype=torch.float64).view(1, 1, w)
    out = torch.empty((a.shape[0], 2, h, w) if channels_first else (a.shape[0], h, w, 2),
                      dtype=torch.float64, device=a.device)
    for i in range(2):   # x then y: one full-size operation each
        row = a[:, i, :, None, None]
        dest = out[:, i] if channels_first else out[..., i]
        torch.add(row[:, 0] * xs, row[:, 1] * ys + row[:, 2], out=dest)
    return out


def _normalizer(size: tuple[int, int], device) -> Tensor:
    """(3, 3): pixels → grid_sample's [−1, 1] for align_corners=True (centre i ↔ 2i/(n−1) − 1)."""
    h, w = size
    return torch.tensor([[2.0 / (w - 1), 0.0, -1.0], [0.0, 2.0 / (h - 1), -1.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64, device=device)


def _check_matrix(a: Tensor, batch: int, name: str) -> None:
    if not isinstance(a, Tensor) or tuple(a.shape) != (batch, 3, 3):
        raise ValueError(f"{name} must be a (B, 3, 3) = {(batch, 3, 3)} tensor, "
                         f"got {tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__}")


def affine_sample(img: Tensor, a: Tensor, crop: tuple[int, int], padding_mode: str = "border") -> Tensor:
    """Resample ``img`` into a crop through an affine map: ``out[b, :, y', x'] = img[b] at A[b]·(x', y', 1)``.

    Args:
        img: (B, C, H, W) floating point.
        a: (B, 3, 3) output → input coordinates (any float dtype, any device).
        crop: (h, w) of the output.
        padding_mode: ``grid_sample``'s; "border" (default, like Caffe's
            clamped lookup) or "zeros".

    Returns:
        (B, C, h, w), bilinear samples, in ``img``'s dtype.

    Convention: pixel centres at integer coordinates; ``align_corners=True``
    with normalisation by (size − 1), so an integer translation is a crop.
    """
    crop = _check_crop(crop)
    if not isinstance(img, Tensor) or img.dim() != 4 or not img.is_floating_point():
        raise ValueError("img must be a floating-point (B, C, H, W) tensor")
    _check_matrix(a, img.shape[0], "a")
    size = tuple(img.shape[2:])
    if size[0] < 2 or size[1] < 2:
        raise ValueError(f"img must be at least 2 × 2, got {size}")
    dtype = torch.promote_types(img.dtype, torch.float32)
    grid = _grid(_normalizer(size, img.device) @ a.to(device=img.device, dtype=torch.float64), crop).to(dtype)
    out = F.grid_sample(img.to(dtype), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)
    return out.to(img.dtype)


def affine_flow(flow: Tensor, valid: Tensor | None, a1: Tensor, a2: Tensor, crop: tuple[int, int],
                invalidate_out_of_view: bool = True) -> tuple[Tensor, Tensor]:
    """Transform a flow field exactly through the affine maps of its two images.

    For output pixel ``x'``: ``p = A1·x'``, ``q = p + flow(p)`` (bilinear),
    ``flow'(x') = A2⁻¹·q − x'``.

    Args:
        flow: (B, 2, H, W) in pixels, (u, v), image 1 → image 2.
        valid: (B, 1, H, W) bool, or None for all valid.
        a1, a2: (B, 3, 3) output → input coordinates of image 1 and image 2.
        crop: (h, w) of the output.
        invalidate_out_of_view: also invalid where ``A2⁻¹·q`` leaves the crop
            (outside [0, w−1] × [0, h−1]).

    Returns:
        ``(flow', valid')``: (B, 2, h, w) in ``flow``'s dtype, zero where
        invalid, and (B, 1, h, w) bool. Invalid where ``p`` falls outside image 1
        or any input pixel with a non-zero bilinear weight at ``p`` is invalid
        (up to rounding), and, with the flag, where the target leaves the crop.
    """
    crop = _check_crop(crop)
    if not isinstance(flow, Tensor) or flow.dim() != 4 or flow.shape[1] != 2 or not flow.is_floating_point():
        raise ValueError("flow must be a floating-point (B, 2, H, W) tensor")
    b, _, hh, ww = flow.shape
    if hh < 2 or ww < 2:
        raise ValueError(f"flow must be at least 2 × 2, got {(hh, ww)}")
    if valid is not None and (valid.dtype != torch.bool or tuple(valid.shape) != (b, 1, hh, ww)):
        raise ValueError(f"valid must be a (B, 1, H, W) = {(b, 1, hh, ww)} bool tensor or None")
    _check_matrix(a1, b, "a1")
    _check_matrix(a2, b, "a2")
    dtype = torch.promote_types(flow.dtype, torch.float32)
    dev = flow.device
    f = flow.to(dtype)
    finite = torch.isfinite(f).all(dim=1, keepdim=True)
    ok = finite if valid is None else (finite & valid)
    f = torch.where(ok, f, torch.zeros((), dtype=dtype, device=dev))    # no NaN / 1e9 leaks into neighbours

    a1 = a1.to(device=dev, dtype=torch.float64)
    inv2 = torch.linalg.inv(a2.to(device=dev, dtype=torch.float64))
    g = _grid(_normalizer((hh, ww), dev) @ a1, crop).to(dtype)          # (B, h, w, 2)
    fs = F.grid_sample(f, g, mode="bilinear", padding_mode="zeros", align_corners=True)
    vs = F.grid_sample(ok.to(dtype), g, mode="bilinear", padding_mode="zeros", align_corners=True)
    # A2⁻¹·(A1·x' + f) − x' = (A2⁻¹·A1 − I)·x' + L2⁻¹·f, with L2⁻¹ the linear part of
    # A2⁻¹: the same value without subtracting large coordinates.
    eye = torch.eye(3, dtype=torch.float64, device=dev)
    out = _grid(inv2 @ a1 - eye, crop, channels_first=True).to(dtype)
    out += torch.einsum("bij,bjhw->bihw", inv2[:, :2, :2].to(dtype), fs)
    new_valid = vs >= _VALID_MIN
    if invalidate_out_of_view:
        h, w = crop
        tx = out[:, 0] + torch.arange(w, device=dev, dtype=dtype).view(1, 1, w)
        ty = out[:, 1] + torch.arange(h, device=dev, dtype=dtype).view(1, h, 1)
        inside = ((tx >= -_EPS_PX) & (tx <= w - 1 + _EPS_PX) & (ty >= -_EPS_PX) & (ty <= h - 1 + _EPS_PX))
        new_valid = new_valid & inside[:, None]
    out = torch.where(new_valid, out, torch.zeros((), dtype=dtype, device=dev))
    return out.to(flow.dtype), new_valid


def center_crop(batch: dict, crop: tuple[int, int]) -> dict:
    """Centre crop of every (B, C, H, W) entry of a batch (img1, img2, flow, valid).

    The window starts at ``((H − h) // 2, (W − w) // 2)``; values are copied, not
    resampled. A missing "valid" becomes all-true. Other keys are passed through.
    """
    crop = _check_crop(crop)
    _, hh, ww = _check_batch(batch)
    _check_fits(crop, (hh, ww))
    top, left = _center_offset((hh, ww), crop)
    out = dict(batch)
    if out.get("valid") is None:
        f = batch["flow"]
        out["valid"] = torch.ones((f.shape[0], 1, hh, ww), dtype=torch.bool, device=f.device)
    for k in _KEYS:
        out[k] = out[k][:, :, top:top + crop[0], left:left + crop[1]].clone()
    return out


# --------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------
class FlowAugment:
    """FlowNet's training augmentation: ``aug(batch, generator) -> batch``.

    Geometric (a random affine per image, sampled into the crop, flow and
    valid transformed exactly), then photometric; with ``enabled=False`` (for
    validation) only a centre crop. ``geometric=None`` or identity settings
    mean a plain centre crop; ``photometric=None`` or identity settings mean no
    colour change (both exact copies, no resampling).

    Args:
        crop: (h, w) of the output; must fit in the input.
        geometric: :class:`GeometricAugment` settings (defaults: FlowNet's).
        photometric: :class:`PhotometricAugment` settings (defaults: FlowNet's).
        enabled: False → centre crop only.

    Call:
        ``aug(batch, generator=None)``: ``batch`` as in the module docstring
        (img1, img2 (B, 3, H, W) 0..255; flow (B, 2, H, W); valid (B, 1, H, W)
        bool, optional); returns a new dict with the same keys (valid always
        present) at (h, w), on the batch's device. ``generator``: a CPU or CUDA
        ``torch.Generator`` (None: torch's default CPU generator); parameters
        are drawn on its device and moved, see the module docstring.

    Example:
        >>> aug = FlowAugment((32, 48))
        >>> batch = {"img1": torch.rand(2, 3, 40, 64) * 255, "img2": torch.rand(2, 3, 40, 64) * 255,
        ...          "flow": torch.zeros(2, 2, 40, 64)}
        >>> out = aug(batch, torch.Generator().manual_seed(0))
        >>> tuple(out["flow"].shape), out["valid"].dtype
        ((2, 2, 32, 48), torch.bool)
    """

    def __init__(self, crop: tuple[int, int], geometric: GeometricAugment | None = GeometricAugment(),
                 photometric: PhotometricAugment | None = PhotometricAugment(), enabled: bool = True):
        self.crop = _check_crop(crop)
        if geometric is not None and not isinstance(geometric, GeometricAugment):
            raise ValueError(f"geometric must be GeometricAugment or None, got {type(geometric).__name__}")
        if photometric is not None and not isinstance(photometric, PhotometricAugment):
            raise ValueError(f"photometric must be PhotometricAugment or None, got {type(photometric).__name__}")
        self.geometric = geometric
        self.photometric = photometric
        self.enabled = bool(enabled)

    def __repr__(self) -> str:
        return (f"FlowAugment(crop={self.crop}, geometric={self.geometric!r}, "
                f"photometric={self.photometric!r}, enabled={self.enabled})")

    def __call__(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        gen = _generator(generator)
        return self.recolor(self.warp(batch, gen), gen)

    @property
    def renders_geometry(self) -> bool:
        """True when :meth:`warp` draws random transforms (a synthetic source can then
        render straight into them: ``geometric.sample`` gives the same maps)."""
        return self.enabled and self.geometric is not None and not self.geometric.is_identity

    def warp(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """The geometric half and the crop (a centre crop when disabled or identity)."""
        b, hh, ww = _check_batch(batch)
        _check_fits(self.crop, (hh, ww))
        gen = _generator(generator)
        if not self.enabled:
            return center_crop(batch, self.crop)
        geo = self.geometric
        if geo is None or geo.is_identity:
            out = center_crop(batch, self.crop)
            if geo is not None and geo.invalidate_out_of_view:
                # Exact crop of the flow; only the out-of-view rule can change valid.
                h, w = self.crop
                f = out["flow"]
                tx = f[:, 0] + torch.arange(w, device=f.device, dtype=f.dtype).view(1, 1, w)
                ty = f[:, 1] + torch.arange(h, device=f.device, dtype=f.dtype).view(1, h, 1)
                inside = (tx >= -_EPS_PX) & (tx <= w - 1 + _EPS_PX) & (ty >= -_EPS_PX) & (ty <= h - 1 + _EPS_PX)
                out["valid"] = out["valid"] & inside[:, None]
                out["flow"] = torch.where(out["valid"], f, torch.zeros((), dtype=f.dtype, device=f.device))
        else:
            dev = batch["img1"].device
            a1, a2 = geo.sample(b, (hh, ww), self.crop, gen, device=dev)
            out = dict(batch)
            out["img1"] = affine_sample(batch["img1"], a1, self.crop)
            out["img2"] = affine_sample(batch["img2"], a2, self.crop)
            out["flow"], out["valid"] = affine_flow(batch["flow"], batch.get("valid"), a1, a2, self.crop,
                                                    geo.invalidate_out_of_view)
        return out

    def recolor(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """The photometric half (nothing when disabled): a new dict, images replaced."""
        out = dict(batch)
        if self.enabled and self.photometric is not None and not self.photometric.is_identity:
            out["img1"], out["img2"] = self.photometric.apply(out["img1"], out["img2"],
                                                              _generator(generator))
        return out

