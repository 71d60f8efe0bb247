"""Flow colour coding (Middlebury colour wheel, Baker et al., ICCV 2007).

Direction becomes hue, magnitude becomes saturation: no motion is white, and a
motion of length ``max_flow`` or more gets the fully saturated wheel colour.
The wheel has 55 entries made of six linear ramps: red→yellow (15),
yellow→green (6), green→cyan (4), cyan→blue (11), blue→magenta (13),
magenta→red (6). This is the same wheel and the same angle mapping as the
Middlebury ``flowToColor`` code and ``torchvision.utils.flow_to_image``; the
difference is the scale: torchvision always divides by the largest flow
length of the image, while :func:`flow_to_color` also takes a fixed
``max_flow`` so that every frame of a video shares one scale.

Convention: flow is (H, W, 2) in pixels, channel 0 = u (towards +x, right),
channel 1 = v (towards +y, **down**), as everywhere in this package. Hues
of the four axis directions at full saturation (RGB, exact values)::

    right (+u)  (255,   0,   0)  red
    down  (+v)  (255, 229,   0)  orange-yellow
    left  (-u)  (  0, 209, 255)  cyan-blue
    up    (-v)  ( 88,   0, 255)  violet

Diagonals in between: down-right orange, down-left green, up-left blue,
up-right magenta. :func:`color_wheel_legend` draws this key.

Example:
    >>> import numpy as np
    >>> flow = np.zeros((4, 5, 2), np.float32); flow[..., 0] = 3.0
    >>> flow_to_color(flow, max_flow=3.0)[0, 0].tolist()
    [255, 0, 0]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "make_colorwheel",
    "flow_to_color",
    "color_wheel_legend",
    "flow_to_color_with_legend",
]

# Length of each ramp of the Middlebury wheel and the colour it starts from;
# each ramp runs towards the start colour of the next one.
_RAMPS = (
    (15, (255, 0, 0)),  # red -> yellow
    (6, (255, 255, 0)),  # yellow -> green
    (4, (0, 255, 0)),  # green -> cyan
    (11, (0, 255, 255)),  # cyan -> blue
    (13, (0, 0, 255)),  # blue -> magenta
    (6, (255, 0, 255)),  # magenta -> red
)

# Flow components above this are "unknown" in the Middlebury .flo convention.
_UNKNOWN_FLOW = 1e9


def make_colorwheel() -> np.ndarray:
    """The 55-entry Middlebury colour wheel as a (55, 3) float64 array in 0..255.

    Within a ramp of length ``n`` the changing channel takes the values
    ``floor(255 * i / n)`` (rising) or ``255 - floor(255 * i / n)`` (falling),
    ``i = 0 … n-1``, as in the reference code.
    """
    rows = []
    for k, (n, start) in enumerate(_RAMPS):
        end = np.asarray(_RAMPS[(k + 1) % len(_RAMPS)][1], np.float64)
        start = np.asarray(start, np.float64)
        step = np.floor(255.0 * np.arange(n) / n)[:, None]  # 0 .. <255
        # Each ramp changes exactly one channel by ±255.
        rows.append(start + np.sign(end - start) * step)
    return np.concatenate(rows, axis=0)


_WHEEL = make_colorwheel()


def _as_flow(flow) -> np.ndarray:
    if not isinstance(flow, np.ndarray):
        raise ValueError(f"flow must be a numpy array, got {type(flow).__name__}")
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    if not (np.issubdtype(flow.dtype, np.floating) or np.issubdtype(flow.dtype, np.integer)):
        raise ValueError(f"flow must be a real-valued array, got dtype {flow.dtype}")
    return flow.astype(np.float64, copy=False)


def _as_color(color, name: str) -> np.ndarray:
    c = np.asarray(color)
    if c.shape != (3,) or np.any(c < 0) or np.any(c > 255):
        raise ValueError(f"{name} must be an RGB triple in 0..255, got {color!r}")
    return c.astype(np.uint8)


def _valid_mask(flow: np.ndarray, valid) -> np.ndarray:
    """Given mask AND finite AND not Middlebury-unknown (|component| > 1e9)."""
    ok = np.all(np.isfinite(flow), axis=2)
    ok &= np.all(np.abs(np.where(ok[..., None], flow, 0.0)) <= _UNKNOWN_FLOW, axis=2)
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape != flow.shape[:2]:
            raise ValueError(f"valid must have shape {flow.shape[:2]}, got {valid.shape}")
        ok &= valid.astype(bool)
    return ok


def _wheel_colors(u: np.ndarray, v: np.ndarray, overflow: str) -> np.ndarray:
    """Normalised flow (radius 1 = full saturation) → float colours in 0..1."""
    rad = np.sqrt(u * u + v * v)
    # Angle as in the reference code: a = atan2(-v, -u)/pi in [-1, 1], mapped
    # onto wheel positions 0 … ncols-1; +x motion (v = +0) lands on entry 0.
    ncols = _WHEEL.shape[0]
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1.0) / 2.0 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int64)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = ((1.0 - f) * _WHEEL[k0] + f * _WHEEL[k1]) / 255.0
    inside = rad <= 1.0
    r = np.minimum(rad, 1.0)[..., None]
    col = 1.0 - r * (1.0 - col)  # blend towards white as the length shrinks
    if overflow == "darken":
        col = np.where(inside[..., None], col, col * 0.75)
    return col


def flow_to_color(
    flow: np.ndarray,
    max_flow: float | None = None,
    valid: np.ndarray | None = None,
    invalid_color: Sequence[int] = (0, 0, 0),
    *,
    overflow: str = "clip",
) -> np.ndarray:
    """Colour-code a flow field with the Middlebury wheel.

    Args:
        flow: (H, W, 2) real array, pixels; ch0 = u (right), ch1 = v (down).
        max_flow: flow length (pixels) that gets the fully saturated colour.
            ``None`` divides by the largest length among the valid pixels of
            this image (plus float32 eps), like ``torchvision.utils.flow_to_image``;
            give a fixed value to colour a whole video on one scale.
        valid: optional (H, W) bool mask; False pixels are painted
            ``invalid_color``. Non-finite flow and components above 1e9 (the
            Middlebury "unknown" marker) are always treated as invalid.
        invalid_color: RGB triple for invalid pixels.
        overflow: what happens to lengths beyond ``max_flow``. ``"clip"``
            (default): the length is clipped to ``max_flow``, so the pixel keeps
            its hue at full saturation (all such pixels look alike).
            ``"darken"``: the Middlebury reference behaviour, the saturated
            colour is multiplied by 0.75 so overflowing pixels stand out.

    Returns:
        (H, W, 3) uint8 RGB image; colour channel = ``floor(255 * c)``.

    Raises:
        ValueError: bad shapes, a non-positive ``max_flow``, an unknown
            ``overflow`` mode or a bad colour.
    """
    flow = _as_flow(flow)
    if overflow not in ("clip", "darken"):
        raise ValueError(f"overflow must be 'clip' or 'darken', got {overflow!r}")
    bad = _as_color(invalid_color, "invalid_color")
    ok = _valid_mask(flow, valid)
    clean = np.where(ok[..., None], flow, 0.0)
    if max_flow is None:
        max_norm = float(np.sqrt((clean**2).sum(axis=2)).max()) if clean.size else 0.0
        # Same normalisation as torchvision: divide by (max length + eps).
        scale = max_norm + float(np.finfo(np.float32).eps)
    else:
        scale = float(max_flow)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"max_flow must be a positive number, got {max_flow!r}")
    col = _wheel_colors(clean[..., 0] / scale, clean[..., 1] / scale, overflow)
    img = np.floor(255.0 * np.clip(col, 0.0, 1.0)).astype(np.uint8)
    img[~ok] = bad
    return img


def color_wheel_legend(
    size: int = 151, background: Sequence[int] = (255, 255, 255)
) -> np.ndarray:
    """The key of the colour coding: a (size, size, 3) uint8 RGB image.

    Each pixel inside the disc is coloured as the flow equal to its offset
    from the centre, (dx, dy) in image axes (x right, y down), with the rim
    (radius (size-1)/2) at full saturation; so the legend reads directly:
    the colour at the right edge is motion to the right. The centre is white
    (no motion) for odd ``size``; pixels outside the disc get ``background``.
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    bg = _as_color(background, "background")
    c = (size - 1) / 2.0
    radius = max(c, 0.5)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u, v = (xs - c) / radius, (ys - c) / radius
    col = _wheel_colors(u, v, "clip")
    img = np.floor(255.0 * np.clip(col, 0.0, 1.0)).astype(np.uint8)
    img[u * u + v * v > 1.0] = bg
    return img


def flow_to_color_with_legend(
    flow: np.ndarray,
    max_flow: float | None = None,
    valid: np.ndarray | None = None,
    invalid_color: Sequence[int] = (0, 0, 0),
    *,
    overflow: str = "clip",
    gap: int = 4,
    background: Sequence[int] = (255, 255, 255),
) -> np.ndarray:
    """:func:`flow_to_color` with the wheel key to its right.

    The legend is an H×H :func:`color_wheel_legend` whose rim stands for the
    scale used (``max_flow``, or the image's largest flow length when None),
    separated from the flow image by ``gap`` columns of ``background``.

    Returns:
        (H, W + gap + H, 3) uint8 RGB image.
    """
    img = flow_to_color(flow, max_flow, valid, invalid_color, overflow=overflow)
    if not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"gap must be a non-negative integer, got {gap!r}")
    h = img.shape[0]
    bg = _as_color(background, "background")
    if h == 0:
        return np.zeros((0, img.shape[1] + gap, 3), np.uint8)
    legend = color_wheel_legend(h, background=bg)
    sep = np.empty((h, gap, 3), np.uint8)
    sep[:] = bg
    return np.concatenate([img, sep, legend], axis=1)
