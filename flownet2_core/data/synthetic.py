"""Synthetic scenes with exact optical flow.

A scene is a stack of textured layers (a background and foreground shapes),
each moving by its own affine motion over time. Frames are rendered by warping
each layer's texture with the same motion the flow describes, so the flow is
exact, not estimated: for a pixel ``x`` of frame ``t0`` showing layer ``k``,

    flow(x) = M_k(t1) · M_k(t0)⁻¹ · x − x

where ``M_k(t)`` maps the layer's texture coordinates to image coordinates.

Two ready-made generators build random scenes:

* :func:`make_pair`: a FlyingChairs-like pair (``mode="chairs"``) or a
  ChairsSDHom-like small-displacement pair (``mode="sd"``: sub-pixel to a few
  pixels, also plain and gradient backgrounds);
* :func:`make_sequence`: ``N`` frames with forward and backward flow for every
  consecutive pair and per-frame instance masks.

Downstream generators (mini-UCF101, FBMS-layout sequences, benchmark folder
trees) build :class:`Scene` objects with motions of their choosing and render
them with :func:`render` and :func:`scene_flow`.

Convention: pixel ``(row i, column j)`` has its centre at ``(x=j, y=i)``;
images are (H, W, 3) uint8 RGB; flow is (H, W, 2) float32 in pixels,
channel 0 = u (x, right), channel 1 = v (y, down). ``valid`` marks pixels of
the first frame that are visible in the second (not occluded, inside the
image); instance ids are 0 for the background and 1..K for the objects in
drawing order (K on top).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "AffineMotion", "Layer", "Scene", "FlowPair", "FlowSequence",
    "random_texture", "random_shape_mask", "render", "scene_flow",
    "make_pair", "make_sequence", "write_pair", "write_sequence",
]

TEXTURES = ("noise", "stripes", "gradient", "checker")


# --------------------------------------------------------------------------
# Motion
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class AffineMotion:
    """A layer's pose over time: texture coordinates ``p`` → image ``x``.

    ``x = c(t) + s(t) · R(θ(t)) · (p − anchor)`` with

    * ``c(t) = center + velocity·t + ½·accel·t² + amplitude·sin(2πt/period)``,
    * ``θ(t) = angle + angular_velocity·t`` (radians),
    * ``s(t) = scale · exp(scale_rate·t)`` (so expansion compounds per frame).

    ``t`` is a frame index (float allowed). All vectors are (x, y) in pixels.
    """

    center: tuple[float, float]
    anchor: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    accel: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    angular_velocity: float = 0.0
    scale: float = 1.0
    scale_rate: float = 0.0
    amplitude: tuple[float, float] = (0.0, 0.0)
    period: float = 0.0

    def matrix(self, t: float) -> np.ndarray:
        """(3, 3) float64 homogeneous matrix mapping texture → image at time ``t``."""
        cx = self.center[0] + self.velocity[0] * t + 0.5 * self.accel[0] * t * t
        cy = self.center[1] + self.velocity[1] * t + 0.5 * self.accel[1] * t * t
        if self.period:
            phase = math.sin(2.0 * math.pi * t / self.period)
            cx += self.amplitude[0] * phase
            cy += self.amplitude[1] * phase
        th = self.angle + self.angular_velocity * t
        s = self.scale * math.exp(self.scale_rate * t)
        a, b = s * math.cos(th), s * math.sin(th)
        ax, ay = self.anchor
        return np.array([
            [a, -b, cx - (a * ax - b * ay)],
            [b, a, cy - (b * ax + a * ay)],
            [0.0, 0.0, 1.0],
        ])


@dataclass(frozen=True)
class Layer:
    """A textured layer: ``texture`` (h, w, 3) float32 0..255 in texture space,
    ``mask`` (h, w) bool (None = infinite, for backgrounds), and its motion.

    Outside the texture rectangle the texture repeats by mirroring, so a
    background may move without running out of texture.
    """

    texture: np.ndarray
    motion: AffineMotion
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class Scene:
    """``layers[0]`` is the background; later layers are drawn on top."""

    size: tuple[int, int]  # (H, W)
    layers: tuple[Layer, ...]

    def __post_init__(self):
        if not self.layers or self.layers[0].mask is not None:
            raise ValueError("a Scene needs a background layer (mask=None) first")


# --------------------------------------------------------------------------
# Textures and shapes
# --------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """(h, w) float32 noise in [0, 1], correlated over ``cell`` pixels."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = rng.random((gh, gw), dtype=np.float32)
    out = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random, mutually distinct RGB colours (n, 3) float32."""
    cols = rng.uniform(20, 235, size=(n, 3)).astype(np.float32)
    # Push apart the first two so two-colour textures have contrast.
    if n >= 2 and np.abs(cols[0] - cols[1]).sum() < 150:
        cols[1] = 255.0 - cols[0]
    return cols


def random_texture(rng: np.random.Generator, h: int, w: int, kind: str | None = None) -> np.ndarray:
    """A procedural (h, w, 3) float32 texture with values in 0..255.

    ``kind`` is one of ``noise`` (multi-octave coloured noise), ``stripes``
    (oriented sinusoid), ``gradient`` (linear colour ramp plus faint noise),
    ``checker`` (rotated smooth checkerboard), or ``plain`` (one colour); random
    among the first four when None. Textures are band-limited (blurred) so that
    bilinear resampling, which rendering and warping both do, stays accurate.
    """
    if kind is None:
        kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cols = _palette(rng, 3)
    if kind == "plain":
        return np.broadcast_to(cols[0], (h, w, 3)).astype(np.float32).copy()
    if kind == "noise":
        t = 0.6 * _smooth_noise(rng, h, w, rng.uniform(12, 32)) + 0.4 * _smooth_noise(rng, h, w, rng.uniform(3, 6))
        t2 = _smooth_noise(rng, h, w, rng.uniform(8, 24))
        img = cols[0] * t[..., None] + cols[1] * (1 - t[..., None])
        img = img * (0.7 + 0.3 * t2[..., None]) + cols[2] * 0.3 * (1 - t2[..., None])
    elif kind == "stripes":
        th = rng.uniform(0, np.pi)
        period = rng.uniform(12, 28)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(th) + yy * np.sin(th)) / period + rng.uniform(0, 6.3))
        n = _smooth_noise(rng, h, w, 10)
        s = 0.8 * s + 0.2 * n
        img = cols[0] * s[..., None] + cols[1] * (1 - s[..., None])
    elif kind == "gradient":
        th = rng.uniform(0, 2 * np.pi)
        g = xx * np.cos(th) + yy * np.sin(th)
        g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
        n = _smooth_noise(rng, h, w, 4)
        img = cols[0] * g[..., None] + cols[1] * (1 - g[..., None]) + 12.0 * (n[..., None] - 0.5)
    elif kind == "checker":
        th = rng.uniform(0, np.pi)
        cell = rng.uniform(10, 28)
        u = (xx * np.cos(th) + yy * np.sin(th)) / cell
        v = (-xx * np.sin(th) + yy * np.cos(th)) / cell
        c = cv2.GaussianBlur(((np.floor(u) + np.floor(v)) % 2).astype(np.float32), (0, 0), 1.5)
        img = cols[0] * c[..., None] + cols[1] * (1 - c[..., None])
        img += 20.0 * (_smooth_noise(rng, h, w, 5)[..., None] - 0.5)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; known: {', '.join(TEXTURES + ('plain',))}")
    if kind in ("stripes", "checker"):
        # Break the period with a slowly varying tint: purely periodic
        # patterns make matching ambiguous everywhere, which no real scene is.
        tint = _smooth_noise(rng, h, w, rng.uniform(16, 40))[..., None]
        fine = _smooth_noise(rng, h, w, rng.uniform(4, 7))[..., None]
        img = img * (0.6 + 0.4 * tint) + cols[2] * 0.4 * (1 - tint) + 40.0 * (fine - 0.5)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    return np.clip(img, 0, 255).astype(np.float32)


def random_shape_mask(rng: np.random.Generator, h: int, w: int, kind: str | None = None) -> np.ndarray:
    """A (h, w) bool mask: an ellipse or a random star-shaped polygon filling the box."""
    if kind is None:
        kind = ("ellipse", "polygon")[int(rng.integers(2))]
    mask = np.zeros((h, w), np.uint8)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    if kind == "ellipse":
        axes = (max(2, int(w / 2 * rng.uniform(0.7, 0.95))), max(2, int(h / 2 * rng.uniform(0.7, 0.95))))
        cv2.ellipse(mask, (round(cx), round(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == "polygon":
        n = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.55, 0.95, n)
        pts = np.stack([cx + rad * (w / 2) * np.cos(ang), cy + rad * (h / 2) * np.sin(ang)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:
        raise ValueError(f"unknown shape kind {kind!r}; known: ellipse, polygon")
    return mask.astype(bool)


# --------------------------------------------------------------------------
# Rendering and exact flow
# --------------------------------------------------------------------------
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    return xx.astype(np.float64), yy.astype(np.float64)


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]


def _inside_mask(mask: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Nearest lookup of ``mask`` at texture points; False outside the texture.

    Rendering, flow and visibility all use this one rule, which keeps the
    layer a pixel belongs to consistent between frames.
    """
    h, w = mask.shape
    ix = np.floor(px + 0.5).astype(np.int64)
    iy = np.floor(py + 0.5).astype(np.int64)
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.zeros(px.shape, bool)
    out[ok] = mask[iy[ok], ix[ok]]
    return out


def _labels_at(scene: Scene, t: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index of the topmost layer at image points (x, y) at time ``t`` (int32)."""
    labels = np.zeros(x.shape, np.int32)
    for k, layer in enumerate(scene.layers[1:], start=1):
        px, py = _apply(np.linalg.inv(layer.motion.matrix(t)), x, y)
        labels[_inside_mask(layer.mask, px, py)] = k
    return labels


def render(scene: Scene, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame at time ``t``: ((H, W, 3) uint8 RGB image, (H, W) int32 instance ids)."""
    h, w = scene.size
    x, y = _grid(h, w)
    img = np.empty((h, w, 3), np.float32)
    labels = np.zeros((h, w), np.int32)
    for k, layer in enumerate(scene.layers):
        inv = np.linalg.inv(layer.motion.matrix(t))
        px, py = _apply(inv, x, y)
        # Sample the texture everywhere (cheap) and composite by the mask.
        sampled = cv2.remap(layer.texture, px.astype(np.float32), py.astype(np.float32),
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if layer.mask is None:
            img[:] = sampled
        else:
            inside = _inside_mask(layer.mask, px, py)
            img[inside] = sampled[inside]
            labels[inside] = k
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), labels


def scene_flow(scene: Scene, t0: float, t1: float, labels0: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow from frame ``t0`` to frame ``t1`` and its validity.

    Returns ((H, W, 2) float32 flow, (H, W) bool valid). A pixel is valid when
    the point it moves to lies inside the image and shows the same layer at
    ``t1`` (it is not occluded there). ``labels0`` (the instance ids of frame
    ``t0``, from :func:`render`) saves recomputing them.
    """
    h, w = scene.size
    x, y = _grid(h, w)
    if labels0 is None:
        labels0 = _labels_at(scene, t0, x, y)
    fx = np.zeros((h, w))
    fy = np.zeros((h, w))
    for k, layer in enumerate(scene.layers):
        sel = labels0 == k
        if not sel.any():
            continue
        a = layer.motion.matrix(t1) @ np.linalg.inv(layer.motion.matrix(t0))
        x1, y1 = _apply(a, x[sel], y[sel])
        fx[sel] = x1 - x[sel]
        fy[sel] = y1 - y[sel]
    x1, y1 = x + fx, y + fy
    inside = (x1 >= -0.5) & (x1 <= w - 0.5) & (y1 >= -0.5) & (y1 <= h - 0.5)
    valid = inside & (_labels_at(scene, t1, x1, y1) == labels0)
    return np.stack([fx, fy], -1).astype(np.float32), valid


# --------------------------------------------------------------------------
# Random scenes
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ranges:
    """Motion ranges for a mode; translations are per frame, in pixels."""

    bg_translation: float
    obj_translation: float
    bg_rotation_deg: float
    obj_rotation_deg: float
    bg_scale: float  # log-scale range per frame
    obj_scale: float
    backgrounds: tuple[str, ...]


_MODES = {
    # FlyingChairs: large, varied motions of objects over a moving background.
    "chairs": _Ranges(8.0, 16.0, 3.0, 8.0, 0.04, 0.08, TEXTURES),
    # ChairsSDHom: sub-pixel to a few pixels; flat and gradient backgrounds too.
    "sd": _Ranges(1.5, 2.5, 0.3, 0.8, 0.005, 0.01, TEXTURES + ("plain", "gradient")),
}


def _random_scene(rng: np.random.Generator, size: tuple[int, int], mode: str, num_objects: int,
                  motion: str, max_translation: float | None, num_frames: int = 2) -> Scene:
    if mode not in _MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {', '.join(_MODES)}")
    if motion not in ("affine", "translation"):
        raise ValueError(f"unknown motion {motion!r}; known: affine, translation")
    r = _MODES[mode]
    h, w = size
    if h < 16 or w < 16:
        raise ValueError(f"size {size} too small; need at least 16×16")
    affine = motion == "affine"
    obj_t = r.obj_translation if max_translation is None else max_translation
    bg_t = r.bg_translation if max_translation is None else max_translation * r.bg_translation / r.obj_translation

    def rand_motion(center, anchor, max_t, max_rot, max_scale, extent) -> AffineMotion:
        v = rng.uniform(-max_t, max_t, 2)
        return AffineMotion(
            center=tuple(center), anchor=tuple(anchor), velocity=(float(v[0]), float(v[1])),
            angle=float(rng.uniform(-np.pi, np.pi)) if extent == "object" else 0.0,
            angular_velocity=float(np.deg2rad(rng.uniform(-max_rot, max_rot))) if affine else 0.0,
            scale_rate=float(rng.uniform(-max_scale, max_scale)) if affine else 0.0,
        )

    # Background: a texture larger than the frame, so borders rarely mirror.
    bh, bw = int(h * 1.4) + 8, int(w * 1.4) + 8
    bg_kind = r.backgrounds[int(rng.integers(len(r.backgrounds)))]
    background = Layer(
        texture=random_texture(rng, bh, bw, bg_kind),
        motion=rand_motion(((w - 1) / 2, (h - 1) / 2), ((bw - 1) / 2, (bh - 1) / 2),
                           bg_t, r.bg_rotation_deg, r.bg_scale, "background"),
    )
    layers = [background]
    span = max(num_frames - 1, 1)
    for _ in range(num_objects):
        side = rng.uniform(0.25, 0.5) * min(h, w)
        oh, ow = int(side * rng.uniform(0.7, 1.3)) + 4, int(side * rng.uniform(0.7, 1.3)) + 4
        mo = rand_motion((0.0, 0.0), ((ow - 1) / 2, (oh - 1) / 2), obj_t, r.obj_rotation_deg,
                         r.obj_scale, "object")
        # Place the object so its centre stays inside the frame over the clip.
        end = np.array(mo.velocity) * span
        lo = np.maximum([0.1 * w, 0.1 * h], [0.1 * w - end[0], 0.1 * h - end[1]])
        hi = np.minimum([0.9 * w, 0.9 * h], [0.9 * w - end[0], 0.9 * h - end[1]])
        c = rng.uniform(np.minimum(lo, hi), np.maximum(lo, hi))
        mo = dataclasses.replace(mo, center=(float(c[0]), float(c[1])))
        layers.append(Layer(random_texture(rng, oh, ow), mo, random_shape_mask(rng, oh, ow)))
    return Scene((h, w), tuple(layers))


@dataclass(frozen=True)
class FlowPair:
    """Two frames and the exact flow between them (see module docstring)."""

    img1: np.ndarray   # (H, W, 3) uint8 RGB
    img2: np.ndarray   # (H, W, 3) uint8 RGB
    flow: np.ndarray   # (H, W, 2) float32, img1 → img2
    valid: np.ndarray  # (H, W) bool
    labels1: np.ndarray  # (H, W) int32 instance ids of img1
    scene: Scene = field(repr=False)


@dataclass(frozen=True)
class FlowSequence:
    """``N`` frames with forward/backward flow between consecutive frames."""

    frames: np.ndarray    # (N, H, W, 3) uint8 RGB
    flow_fw: np.ndarray   # (N-1, H, W, 2) float32: frame t → t+1
    flow_bw: np.ndarray   # (N-1, H, W, 2) float32: frame t+1 → t
    valid_fw: np.ndarray  # (N-1, H, W) bool
    valid_bw: np.ndarray  # (N-1, H, W) bool
    masks: np.ndarray     # (N, H, W) int32 instance ids, 0 = background
    scene: Scene = field(repr=False)

    @property
    def num_objects(self) -> int:
        return len(self.scene.layers) - 1


def _check_size(size) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), got {size!r}") from None
    return h, w


def make_pair(seed: int = 0, size: tuple[int, int] = (256, 320), *, mode: str = "chairs",
              num_objects: int | None = None, motion: str = "affine",
              max_translation: float | None = None) -> FlowPair:
    """A random FlyingChairs-like (``mode="chairs"``) or ChairsSDHom-like
    (``mode="sd"``) pair with exact forward flow. Deterministic in ``seed``.

    ``motion="translation"`` drops rotation and scaling; ``max_translation``
    (pixels) overrides the mode's largest object translation (the background's
    scales with it). ``num_objects`` defaults to 2–6 at random.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7)) if num_objects is None else int(num_objects)
    scene = _random_scene(rng, _check_size(size), mode, n, motion, max_translation)
    img1, labels1 = render(scene, 0.0)
    img2, _ = render(scene, 1.0)
    flow, valid = scene_flow(scene, 0.0, 1.0, labels1)
    return FlowPair(img1, img2, flow, valid, labels1, scene)


def make_sequence(seed: int = 0, num_frames: int = 10, size: tuple[int, int] = (240, 320), *,
                  mode: str = "chairs", num_objects: int = 3, motion: str = "affine",
                  max_translation: float | None = 4.0, scene: Scene | None = None) -> FlowSequence:
    """``num_frames`` frames of one random scene (or of ``scene`` when given)
    with exact forward and backward flow and instance masks.

    ``max_translation`` is per frame; the default (4 px) keeps objects in view
    over a few dozen frames. Deterministic in ``seed``.
    """
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    if scene is None:
        rng = np.random.default_rng(seed)
        scene = _random_scene(rng, _check_size(size), mode, num_objects, motion, max_translation,
                              num_frames)
    rendered = [render(scene, float(t)) for t in range(num_frames)]
    frames = np.stack([f for f, _ in rendered])
    masks = np.stack([m for _, m in rendered])
    fw = [scene_flow(scene, t, t + 1, masks[t]) for t in range(num_frames - 1)]
    bw = [scene_flow(scene, t + 1, t, masks[t + 1]) for t in range(num_frames - 1)]
    return FlowSequence(
        frames=frames,
        flow_fw=np.stack([f for f, _ in fw]), valid_fw=np.stack([v for _, v in fw]),
        flow_bw=np.stack([f for f, _ in bw]), valid_bw=np.stack([v for _, v in bw]),
        masks=masks, scene=scene,
    )


# --------------------------------------------------------------------------
# Writers (generic layouts; dataset-specific trees live beside their readers)
# --------------------------------------------------------------------------
def write_pair(pair: FlowPair, out_dir: str | os.PathLike, stem: str = "00001") -> dict[str, Path]:
    """Write a pair as FlyingChairs does: ``<stem>_img1.ppm``, ``<stem>_img2.ppm``,
    ``<stem>_flow.flo``. Returns the written paths by role."""
    from ..io import write_flo, write_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"img1": out / f"{stem}_img1.ppm", "img2": out / f"{stem}_img2.ppm",
             "flow": out / f"{stem}_flow.flo"}
    write_image(paths["img1"], pair.img1)
    write_image(paths["img2"], pair.img2)
    write_flo(paths["flow"], pair.flow)
    return paths


def write_sequence(seq: FlowSequence, out_dir: str | os.PathLike, *, image_ext: str = "png",
                   video: str | None = None, fps: float = 25.0) -> Path:
    """Write a sequence in plain formats::

        out_dir/frames/frame_0000.<image_ext>   RGB frames (png or jpg)
        out_dir/flow_fw/frame_0000.flo          frame t → t+1
        out_dir/flow_bw/frame_0001.flo          frame t+1 → t (named by its source frame)
        out_dir/masks/frame_0000.png            instance ids, 8-bit
        out_dir/<video>                         optional video of the frames (e.g. "clip.avi")
    """
    from ..io import write_flo, write_image, write_video

    out = Path(out_dir)
    for sub in ("frames", "flow_fw", "flow_bw", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if image_ext not in ("png", "jpg"):
        raise ValueError(f"image_ext must be 'png' or 'jpg', got {image_ext!r}")
    for t, frame in enumerate(seq.frames):
        write_image(out / "frames" / f"frame_{t:04d}.{image_ext}", frame)
        if seq.masks.max() > 255:
            raise ValueError("more than 255 instances cannot be written as 8-bit masks")
        cv2.imwrite(str(out / "masks" / f"frame_{t:04d}.png"), seq.masks[t].astype(np.uint8))
    for t in range(len(seq.flow_fw)):
        write_flo(out / "flow_fw" / f"frame_{t:04d}.flo", seq.flow_fw[t])
        write_flo(out / "flow_bw" / f"frame_{t + 1:04d}.flo", seq.flow_bw[t])
    if video:
        write_video(out / video, seq.frames, fps=fps)
    return out
