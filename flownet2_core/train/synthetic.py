"""Synthetic training data generated on the fly, on any device: exact flow, no files.

A sample is a stack of layers: one background and K foreground objects, each a
textured region moving by its own similarity transform (translation, rotation,
scale) between the two frames, composited front to back with anti-aliased
edges. The flow of a pixel of frame 1 is the exact motion of the topmost layer
there; ``valid`` is False where that point is occluded in frame 2 (another
layer is on top at its new position) or leaves the image.

Three kinds, after the paper's datasets (§3, §5):

* ``chairs``: FlyingChairs-like. Textured background under a mild global motion,
  several objects under independent motions; displacements up to about 40 px at
  384×512 (scaled with the image size).
* ``sdhom``: ChairsSDHom-like small displacements: most motions under 1–2 px;
  backgrounds are also homogeneous colours and smooth gradients, as the paper
  describes, so the network also learns where there is nothing to match.
* ``things``: FlyingThings3D-like: more and larger objects, larger motions,
  scale changes and a mild lighting change per object between the frames.

Textures are crops of real photographs that the dependencies ship
(scikit-image's sample images, scikit-learn's ``load_sample_images``) and
procedural patterns, with random rotations, zooms and colour changes. The
``train`` and ``test`` texture sets share no photograph (and scikit-image's
motorcycle stereo pair, a real test pair here, is in neither), so a held-out
test set made with ``split="test"`` and another seed sees other textures.

Convention: a batch is a dict of tensors on one device: ``img1``, ``img2``
(B, 3, H, W) float32 RGB 0..255; ``flow`` (B, 2, H, W) float32 in pixels,
channel 0 = u (x, right), channel 1 = v (y, down), from img1 to img2;
``valid`` (B, 1, H, W) bool. Pixel (row i, column j) has its centre at
(x = j, y = i). Generation is deterministic in (``seed``, ``index``): batch
``index`` is the same on every call, so a resumed run sees the same data.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KINDS", "MotionRanges", "ShapeBank", "SyntheticFlow", "TextureBank"]

#: Photographs used as textures, by split. Names are files of scikit-image's
#: ``skimage/data`` folder or scikit-learn's sample images (``sklearn:<name>``);
#: all ship inside the packages (nothing is downloaded).
PHOTOS = {
    "train": ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg",
              "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png", "sklearn:china.jpg",
              "camera.png"),
    "test": ("sklearn:flower.jpg", "coins.png", "moon.png", "page.png", "horse.png", "color.png",
             "clock_motion.png", "text.png"),
}


def _photo(name: str) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB of a shipped photograph, or None if it is not there."""
    if name.startswith("sklearn:"):
        import sklearn.datasets

        path = Path(sklearn.datasets.__file__).parent / "images" / name.split(":", 1)[1]
    else:
        import skimage

        path = Path(skimage.__file__).parent / "data" / name
    if not path.is_file():
        return None
    from PIL import Image  # quiet about the sample images' colour profiles, unlike libpng via OpenCV

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _smooth_noise(gen: torch.Generator, n: int, size: int, cells: Tensor, device) -> Tensor:
    """(n, 3, size, size) smooth colour noise, 0..1, one feature size per texture."""
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        c = int(cells[i])
        coarse = torch.rand(1, 3, c, c, generator=gen)
        out[i] = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    return out.clamp(0, 1).to(device)


class TextureBank:
    """A set of (N, 3, S, S) float32 textures, RGB 0..255, on one device.

    Half photographs (random square crops, zooms, rotations and colour gains of
    the ``split``'s photos), half procedural (smooth noise at several feature
    sizes, stripes, checkers, noise × stripes), all built from ``seed``.
    """

    def __init__(self, textures: Tensor) -> None:
        if textures.dim() != 4 or textures.shape[1] != 3:
            raise ValueError(f"textures must be (N, 3, S, S), got {tuple(textures.shape)}")
        self.textures = textures

    @classmethod
    def build(cls, split: str = "train", count: int = 64, size: int = 256, seed: int = 0,
              device: torch.device | str = "cpu") -> TextureBank:
        """The bank for these settings; built once per process and shared (read-only)."""
        return _cached_textures(split, int(count), int(size), int(seed), str(torch.device(device)))

    @classmethod
    def _build(cls, split: str, count: int, size: int, seed: int, device: str) -> TextureBank:
        if split not in PHOTOS:
            raise ValueError(f"split must be one of {tuple(PHOTOS)}, got {split!r}")
        if count < 2 or size < 16:
            raise ValueError(f"need count ≥ 2 and size ≥ 16, got count={count}, size={size}")
        import cv2

        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        photos = [p for p in (_photo(n) for n in PHOTOS[split]) if p is not None]
        n_photo = count // 2 if photos else 0
        tex = np.empty((count, size, size, 3), np.float32)
        for i in range(n_photo):
            img = photos[i % len(photos)]
            h, w = img.shape[:2]
            side = int(rng.uniform(0.3, 1.0) * min(h, w))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = img[y:y + side, x:x + side]
            rot = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(0, 360), 1.0)
            crop = cv2.warpAffine(crop, rot, (side, side), borderMode=cv2.BORDER_REFLECT)
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            gains = rng.uniform(0.6, 1.4, 3) if rng.random() < 0.7 else np.ones(3)
            tex[i] = np.clip(crop.astype(np.float32) * gains, 0, 255)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        n_proc = count - n_photo
        cells = torch.randint(3, 40, (n_proc,), generator=gen)
        proc = _smooth_noise(gen, n_proc, size, cells, "cpu")
        yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                                torch.arange(size, dtype=torch.float32), indexing="ij")
        for i in range(n_proc):
            kind = i % 4
            if kind == 0:
                continue  # smooth noise as is
            ang = float(torch.rand(1, generator=gen)) * math.pi
            period = 4 + float(torch.rand(1, generator=gen)) * 28
            t = (xx * math.cos(ang) + yy * math.sin(ang)) * (2 * math.pi / period)
            c1, c2 = torch.rand(2, 3, 1, 1, generator=gen)
            if kind == 1:    # stripes in two colours
                m = (0.5 + 0.5 * torch.sin(t))[None]
            elif kind == 2:  # checker
                t2 = (-xx * math.sin(ang) + yy * math.cos(ang)) * (2 * math.pi / period)
                m = ((torch.sin(t) * torch.sin(t2)) > 0).float()[None]
            else:            # noise modulated by stripes
                m = (0.5 + 0.5 * torch.sin(t))[None] * proc[i].mean(0, keepdim=True)
            proc[i] = c1 * m + c2 * (1 - m)
        tex[n_photo:] = proc.permute(0, 2, 3, 1).numpy() * 255
        t = torch.from_numpy(tex).permute(0, 3, 1, 2).contiguous()
        return cls(t.to(device))

    def __len__(self) -> int:
        return self.textures.shape[0]


@functools.lru_cache(maxsize=8)
def _cached_textures(split: str, count: int, size: int, seed: int, device: str) -> TextureBank:
    return TextureBank._build(split, count, size, seed, device)


@functools.lru_cache(maxsize=8)
def _cached_shapes(count: int, size: int, seed: int, device: str) -> ShapeBank:
    return ShapeBank._build(count, size, seed, device)


@dataclass(frozen=True)
class MotionRanges:
    """Random scene settings of one kind; pixel values are for a 384×512 image
    and scale with the image's size.

    Motions are drawn per layer as translation (px, Gaussian σ, clipped at
    ``max_shift``), rotation (degrees, σ) and log-scale (σ) between frame 1 and 2.
    """

    objects: tuple[int, int]             # inclusive range of foreground objects
    radius: tuple[float, float]          # object radius, fraction of min(H, W)
    bg_shift: float                      # background translation σ, px
    bg_rot: float                        # background rotation σ, degrees
    bg_scale: float                      # background log-scale σ
    obj_shift: float                     # object translation σ (relative to the background), px
    obj_rot: float
    obj_scale: float
    max_shift: float                     # clip of every translation, px
    plain_background: float = 0.0        # probability of a homogeneous / gradient background
    lighting: float = 0.0                # per-object brightness change σ between frames
    small_fraction: float = 0.0          # probability that an object moves ≤ 1 px only


#: The three kinds (see the module docstring); values at 384×512.
KINDS: dict[str, MotionRanges] = {
    "chairs": MotionRanges(objects=(3, 8), radius=(0.06, 0.22), bg_shift=6.0, bg_rot=2.0,
                           bg_scale=0.03, obj_shift=14.0, obj_rot=8.0, obj_scale=0.06,
                           max_shift=40.0),
    "sdhom": MotionRanges(objects=(2, 6), radius=(0.06, 0.25), bg_shift=0.5, bg_rot=0.3,
                          bg_scale=0.004, obj_shift=1.0, obj_rot=0.8, obj_scale=0.01,
                          max_shift=4.0, plain_background=0.5, small_fraction=0.3),
    "things": MotionRanges(objects=(5, 12), radius=(0.08, 0.35), bg_shift=8.0, bg_rot=2.0,
                           bg_scale=0.05, obj_shift=20.0, obj_rot=10.0, obj_scale=0.12,
                           max_shift=60.0, lighting=0.06),
}

#: Masks cover object units q ∈ [−E, E]²; outlines lie within the unit disc.
SHAPE_EXTENT = 1.25


class ShapeBank:
    """(N, 1, S, S) float32 object masks (coverage 0..1, anti-aliased) on one device.

    Three families, a third each: star-shaped blobs r(φ) = r0·(1 + Σ a_k cos(kφ + φ_k));
    chair-like unions of 3–6 rotated bars and plates (a seat, a back, legs); unions
    of 2–4 ellipses. Each fits in the unit disc of object units; the mask spans
    ``SHAPE_EXTENT`` units each way. Rendered at 2× and area-averaged.
    """

    def __init__(self, masks: Tensor) -> None:
        self.masks = masks

    @classmethod
    def build(cls, count: int = 48, size: int = 160, seed: int = 0,
              device: torch.device | str = "cpu") -> ShapeBank:
        """The bank for these settings; built once per process and shared (read-only)."""
        return _cached_shapes(int(count), int(size), int(seed), str(torch.device(device)))

    @classmethod
    def _build(cls, count: int, size: int, seed: int, device: str) -> ShapeBank:
        g = torch.Generator().manual_seed(seed * 31 + 5)
        n = 2 * size
        c = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 * SHAPE_EXTENT - SHAPE_EXTENT
        qy, qx = torch.meshgrid(c, c, indexing="ij")
        masks = torch.zeros(count, 1, size, size)
        for i in range(count):
            fam = i % 3
            if fam == 0:
                r, phi = torch.hypot(qx, qy), torch.atan2(qy, qx)
                outline = torch.full_like(r, 0.75)
                for k in range(1, 6):
                    a = float(torch.randn(1, generator=g)) * 0.15 / k ** 0.7
                    ph = float(torch.rand(1, generator=g)) * 2 * math.pi
                    outline = outline + 0.75 * a * torch.cos(k * phi + ph)
                m = r < outline.clamp(0.15, 0.98)
            else:
                m = torch.zeros_like(qx, dtype=torch.bool)
                parts = int(torch.randint(3, 7, (1,), generator=g)) if fam == 1 else \
                    int(torch.randint(2, 5, (1,), generator=g))
                for _ in range(parts):
                    cx, cy = (torch.rand(2, generator=g) * 1.0 - 0.5).tolist()
                    ang = float(torch.rand(1, generator=g)) * math.pi
                    if fam == 1:   # bars and plates
                        a, b = 0.1 + 0.5 * float(torch.rand(1, generator=g)), \
                            0.04 + 0.12 * float(torch.rand(1, generator=g))
                    else:          # ellipses
                        a, b = (0.15 + 0.35 * torch.rand(2, generator=g)).tolist()
                    u = (qx - cx) * math.cos(ang) + (qy - cy) * math.sin(ang)
                    v = -(qx - cx) * math.sin(ang) + (qy - cy) * math.cos(ang)
                    part = ((u / a).abs() < 1) & ((v / b).abs() < 1) if fam == 1 else \
                        (u / a) ** 2 + (v / b) ** 2 < 1
                    m |= part
                m &= torch.hypot(qx, qy) < 1.0
            masks[i, 0] = F.avg_pool2d(m.float()[None, None], 2)[0, 0]
        return cls(masks.to(device))

    def __len__(self) -> int:
        return self.masks.shape[0]


class SyntheticFlow:
    """Endless batches of exact-flow pairs of one ``kind`` (``chairs``, ``sdhom``, ``things``).

    ``motion_scale`` multiplies the pixel ranges of :data:`KINDS` (given at
    384×512); by default they scale with the image (√(HW / (384·512))), so a
    smaller image shows the same scene smaller. ``motion_scale=1`` keeps the
    384×512 displacements at any size (training on small crops for large images).

    ``batch(index)`` returns the batch dict of the module docstring, made on
    ``device`` (the textures live there; on a GPU generation costs little next
    to a training step). ``mix`` draws each sample's kind from fixed
    proportions instead, e.g. ``{"things": 2, "sdhom": 6}`` for the paper's
    small-displacement fine-tuning batches of 8 (the proportions are exact per
    batch when the batch size is a multiple of their sum).

    Example::

        gen = SyntheticFlow("chairs", size=(384, 512), batch_size=8, seed=0)
        b = gen.batch(0)          # b["img1"]: (8, 3, 384, 512), b["flow"]: (8, 2, 384, 512)
    """

    def __init__(self, kind: str | dict[str, int] = "chairs", size: tuple[int, int] = (384, 512),
                 batch_size: int = 8, seed: int = 0, split: str = "train",
                 device: torch.device | str = "cpu", textures: TextureBank | None = None,
                 texture_count: int = 64, texture_size: int = 256,
                 motion_scale: float | None = None) -> None:
        mix = {kind: 1} if isinstance(kind, str) else dict(kind)
        for k, n in mix.items():
            if k not in KINDS:
                raise ValueError(f"unknown synthetic kind {k!r}; known: {', '.join(KINDS)}")
            if not isinstance(n, int) or n < 0:
                raise ValueError(f"mix proportions must be non-negative integers, got {k}={n!r}")
        if sum(mix.values()) == 0:
            raise ValueError("mix needs at least one kind with a positive proportion")
        h, w = size
        if h < 16 or w < 16:
            raise ValueError(f"size must be at least 16×16, got {size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.mix, self.size, self.batch_size = mix, (int(h), int(w)), int(batch_size)
        self.seed, self.split, self.device = int(seed), split, torch.device(device)
        self.textures = textures if textures is not None else TextureBank.build(
            split, texture_count, texture_size, seed=seed, device=self.device)
        if motion_scale is not None and not motion_scale > 0:
            raise ValueError(f"motion_scale must be positive, got {motion_scale}")
        self.motion_scale = motion_scale
        self.shapes = ShapeBank.build(seed=seed + (0 if split == "train" else 1), device=self.device)
        self.max_objects = max(KINDS[k].objects[1] for k in mix)

    # ---------------------------------------------------------------- scenes
    def _kinds_for_batch(self, gen: torch.Generator) -> list[str]:
        names = [k for k, n in self.mix.items() for _ in range(n)]
        total = len(names)
        out = [names[i % total] for i in range(self.batch_size)]
        perm = torch.randperm(self.batch_size, generator=gen).tolist()
        return [out[p] for p in perm]

    def _draw(self, gen: torch.Generator, kinds: list[str]) -> dict[str, Tensor]:
        """Per sample and layer (layer 0 = background): poses at both frames,
        texture mapping, outline, colour gains; all (B, L, …) CPU tensors."""
        B, L = len(kinds), self.max_objects + 1
        h, w = self.size
        # pixel ranges are given at 384×512 and scale with the image unless fixed
        ref = self.motion_scale if self.motion_scale is not None else math.sqrt(h * w / (384 * 512))
        side = min(h, w)

        def randn(*s):
            return torch.randn(*s, generator=gen, dtype=torch.float64)

        def rand(*s):
            return torch.rand(*s, generator=gen, dtype=torch.float64)

        active = torch.zeros(B, L, dtype=torch.bool)
        radius = torch.zeros(B, L, dtype=torch.float64)
        center0 = torch.zeros(B, L, 2, dtype=torch.float64)
        shift = torch.zeros(B, L, 2, dtype=torch.float64)
        rot = torch.zeros(B, L, dtype=torch.float64)
        logscale = torch.zeros(B, L, dtype=torch.float64)
        light = torch.ones(B, L, dtype=torch.float64)
        plain = torch.zeros(B, dtype=torch.long)  # 0 texture, 1 homogeneous, 2 gradient
        for b, kind in enumerate(kinds):
            r = KINDS[kind]
            n = int(torch.randint(r.objects[0], r.objects[1] + 1, (1,), generator=gen))
            active[b, : n + 1] = True
            m = r.max_shift * ref
            shift[b, 0] = (randn(2) * r.bg_shift * ref).clamp(-m, m)
            rot[b, 0] = randn(()) * math.radians(r.bg_rot)
            logscale[b, 0] = randn(()) * r.bg_scale
            if float(rand(())) < r.plain_background:
                plain[b] = 1 + int(torch.randint(0, 2, (1,), generator=gen))
            radius[b, 1:] = (r.radius[0] + rand(L - 1) * (r.radius[1] - r.radius[0])) * side
            center0[b, 1:, 0] = rand(L - 1) * w
            center0[b, 1:, 1] = rand(L - 1) * h
            rel = randn(L - 1, 2) * r.obj_shift * ref
            small = rand(L - 1) < r.small_fraction
            rel[small] = (rand(int(small.sum()), 2) * 2 - 1) * 1.0
            shift[b, 1:] = (shift[b, 0] + rel).clamp(-m, m)
            rot[b, 1:] = randn(L - 1) * math.radians(r.obj_rot)
            logscale[b, 1:] = randn(L - 1) * r.obj_scale
            if r.lighting:
                light[b, 1:] = 1 + randn(L - 1) * r.lighting
        center0[:, 0, 0], center0[:, 0, 1] = (w - 1) / 2, (h - 1) / 2
        radius[:, 0] = math.hypot(h, w)  # the background covers everything
        angle0 = rand(B, L) * 2 * math.pi
        scale0 = radius  # pixels per object unit: object outlines fit in the unit disc
        pose0 = (center0, angle0, scale0)
        pose1 = (center0 + shift, angle0 + rot, scale0 * torch.exp(logscale))
        # Texture mapping of object units → normalised texture coordinates, at 0.5–1.2
        # texels per image pixel: detail at every scale as in FlyingChairs' photographs,
        # never minified so far that bilinear sampling aliases (it would sparkle between
        # the frames); backgrounds repeat their texture by reflection.
        texels_per_px = torch.exp(math.log(0.5) + rand(B, L) * math.log(1.2 / 0.5))
        tex_zoom = texels_per_px * scale0 / (self.textures.textures.shape[-1] / 2)
        tex_offset = rand(B, L, 2) * 2 - 1
        tex_index = torch.randint(0, len(self.textures), (B, L), generator=gen)
        shape_index = torch.randint(0, len(self.shapes), (B, L), generator=gen)
        gains = 0.75 + rand(B, L, 3) * 0.5
        plain_colour = rand(B, 2, 3) * 255
        plain_dir = rand(B) * 2 * math.pi
        return dict(active=active, pose0=pose0, pose1=pose1, tex_zoom=tex_zoom,
                    tex_offset=tex_offset, tex_index=tex_index, shape_index=shape_index,
                    gains=gains, light=light, plain=plain, plain_colour=plain_colour,
                    plain_dir=plain_dir)

    # ------------------------------------------------------------- geometry
    @staticmethod
    def _pose_matrix(pose) -> Tensor:
        """(B, L, 3, 3) float64: object units q → image x, x = c + s·R(θ)·q."""
        c, a, s = pose
        m = torch.zeros(c.shape[:2] + (3, 3), dtype=torch.float64)
        m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = s * torch.cos(a), -s * torch.sin(a), c[..., 0]
        m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = s * torch.sin(a), s * torch.cos(a), c[..., 1]
        m[..., 2, 2] = 1
        return m

    def _windows(self, P: Tensor, size: tuple[int, int]) -> Tensor:
        """(B, L, 4) int64 [y0, y1, x0, x1): the pixels each object's mask can touch, clipped
        to the image (empty where it lies outside). Outlines lie in the unit disc, so a mask
        is zero beyond 1 unit plus the texels that bilinear sampling and the 2× area
        rendering reach: pixels outside the window get coverage exactly 0."""
        h, w = size
        texel = 2 * SHAPE_EXTENT / self.shapes.masks.shape[-1]
        reach = P[..., 0, 0].hypot(P[..., 1, 0]) * (1 + 3 * texel) + 1
        cx, cy = P[..., 0, 2], P[..., 1, 2]
        box = torch.stack((cy - reach, cy + reach + 1, cx - reach, cx + reach + 1), -1).floor()
        lim = torch.tensor([h, h, w, w], dtype=torch.float64)
        return torch.minimum(box.clamp_min(0), lim).long()

    @staticmethod
    def _units(inv: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
        """(1, h, w, 2) object units q of the pixels ``ys`` × ``xs``; ``inv`` (2, 3) maps
        pixels to units. Masks span q ∈ [−E, E]², textures zoom·q + offset ∈ [−1, 1]²."""
        a = inv.to(xs.device, torch.float32)
        gx = a[0, 0] * xs[None, :] + a[0, 1] * ys[:, None] + a[0, 2]
        gy = a[1, 0] * xs[None, :] + a[1, 1] * ys[:, None] + a[1, 2]
        return torch.stack((gx, gy), -1)[None]

    @staticmethod
    def _sample(image: Tensor, grid: Tensor, padding: str) -> Tensor:
        """(C, h, w) bilinear samples of ``image`` (C, S, S) at normalised ``grid`` (1, h, w, 2)."""
        return F.grid_sample(image[None], grid, mode="bilinear", padding_mode=padding,
                             align_corners=False)[0]

    def _layer_gains(self, p: dict, frame: int) -> Tensor:
        """(B, L, 3) float32 colour gain of every layer (times its lighting change in frame 2)."""
        g = p["gains"] * (p["light"][..., None] if frame == 1 else 1)
        return g.to(self.device, torch.float32)

    def _background(self, p: dict, inv: Tensor, gains: Tensor, size: tuple[int, int]) -> Tensor:
        """(B, 3, h, w) layer 0 of every sample: a texture, or a homogeneous colour or a
        gradient (ChairsSDHom's plain backgrounds). All are painted in the layer's own
        units, so they move with it exactly as its flow says. The textured ones are drawn
        by one ``grid_sample`` over all of them (a call per sample cost 30 % more)."""
        B = inv.shape[0]
        h, w = size
        dev = self.device
        xs = torch.arange(w, device=dev, dtype=torch.float32)
        ys = torch.arange(h, device=dev, dtype=torch.float32)
        img = torch.empty(B, 3, h, w, device=dev)
        kind = p["plain"].to(dev)
        c0, c1 = (p["plain_colour"][:, i].to(dev, torch.float32)[..., None, None] for i in (0, 1))  # (B, 3, 1, 1)
        homogeneous, ramp, textured = (torch.nonzero(kind == k).flatten() for k in (1, 2, 0))
        img[homogeneous] = c0[homogeneous].expand(-1, -1, h, w)
        if len(ramp) or len(textured):
            a = inv[:, 0].to(dev, torch.float32)  # (B, 2, 3): pixels → the layer's units
            q = torch.stack([a[:, i, 0, None, None] * xs[None, None, :] + a[:, i, 1, None, None] * ys[None, :, None]
                             + a[:, i, 2, None, None] for i in (0, 1)], -1)  # (B, h, w, 2)
        if len(ramp):  # a linear ramp across the scene (its unit is the frame's diagonal)
            d = p["plain_dir"][ramp.cpu()].double()  # cos/sin in double, as for one sample
            cos, sin = (v.to(dev, torch.float32)[:, None, None] for v in (d.cos(), d.sin()))
            t = q[ramp, ..., 0] * cos + q[ramp, ..., 1] * sin + 0.5
            img[ramp] = c0[ramp] + (c1[ramp] - c0[ramp]) * t.clamp(0, 1)[:, None]
        if len(textured):
            rows = textured.cpu()
            tex = self.textures.textures[p["tex_index"][rows, 0].to(dev)]
            zoom = p["tex_zoom"][rows, 0].to(dev, torch.float32)[:, None, None, None]
            grid = q[textured] * zoom + p["tex_offset"][rows, 0].to(dev, torch.float32)[:, None, None, :]
            img[textured] = F.grid_sample(tex, grid, mode="bilinear", padding_mode="reflection",
                                          align_corners=False) * gains[textured, 0, :, None, None]
        return img

    def _render(self, p: dict, P: Tensor, frame: int, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Composite image (B, 3, h, w) float32 0..255 and top layer index (B, h, w) of
        ``frame``, whose layers map object units to output pixels by ``P`` (B, L, 3, 3).

        Objects are drawn back to front over the background, each only inside its window
        (:meth:`_windows`), as ``lerp(image, colour, coverage)``; the top layer of a pixel
        is the frontmost one covering it by more than half."""
        B, L = p["active"].shape
        dev = self.device
        inv = torch.linalg.inv(P)[..., :2, :]
        gains = self._layer_gains(p, frame)
        img = self._background(p, inv, gains, size)
        top = torch.zeros(B, *size, dtype=torch.long, device=dev)
        win = self._windows(P, size).tolist()
        active = p["active"].tolist()
        zoom, offset = p["tex_zoom"].tolist(), p["tex_offset"].to(dev, torch.float32)
        shape_index, tex_index = p["shape_index"].tolist(), p["tex_index"].tolist()
        for b in range(B):
            for layer in range(1, L):
                y0, y1, x0, x1 = win[b][layer]
                if not active[b][layer] or y1 <= y0 or x1 <= x0:
                    continue
                q = self._units(inv[b, layer], torch.arange(x0, x1, device=dev, dtype=torch.float32),
                                torch.arange(y0, y1, device=dev, dtype=torch.float32))
                cov = self._sample(self.shapes.masks[shape_index[b][layer]], q * (1 / SHAPE_EXTENT), "zeros")
                col = self._sample(self.textures.textures[tex_index[b][layer]],
                                   q * zoom[b][layer] + offset[b, layer], "reflection")
                view = img[b, :, y0:y1, x0:x1]
                view.copy_(torch.lerp(view, col * gains[b, layer, :, None, None], cov))
                top[b, y0:y1, x0:x1].masked_fill_(cov[0] > 0.5, layer)
        return img.clamp_(0, 255), top

    def _occluded(self, p: dict, P1: Tensor, top1: Tensor, x1: Tensor, y1: Tensor) -> Tensor:
        """(B, h, w) bool: the point of frame 1 lands, in frame 2 (layers placed by ``P1``),
        under a layer in front of its own (one covering the landing point by more than half)."""
        B, L = p["active"].shape
        h, w = top1.shape[-2:]
        dev = self.device
        inv = torch.linalg.inv(P1)[..., :2, :]
        win = self._windows(P1, (h, w)).tolist()
        active = p["active"].tolist()
        out = torch.zeros(B, h, w, dtype=torch.bool, device=dev)
        # a point lands at most `reach` px from where it starts: only look that far
        reach = (torch.maximum((x1 - torch.arange(w, device=dev)).abs().amax((1, 2)),
                               (y1 - torch.arange(h, device=dev)[:, None]).abs().amax((1, 2)))
                 .ceil().long() + 2).tolist()
        shape_index = p["shape_index"].tolist()
        for b in range(B):
            for k in range(1, L):  # the background (layer 0) occludes nothing
                y0, ya, x0, xa = win[b][k]
                if not active[b][k] or ya <= y0 or xa <= x0:
                    continue
                r0, r1 = max(y0 - reach[b], 0), min(ya + reach[b], h)
                c0, c1 = max(x0 - reach[b], 0), min(xa + reach[b], w)
                lx, ly = x1[b, r0:r1, c0:c1], y1[b, r0:r1, c0:c1]
                sel = (top1[b, r0:r1, c0:c1] < k) & (lx >= x0 - 1) & (lx < xa) & (ly >= y0 - 1) & (ly < ya)
                if not bool(sel.any()):
                    continue
                px, py = lx[sel], ly[sel]
                a = inv[b, k].to(dev, torch.float32) / SHAPE_EXTENT
                grid = torch.stack((a[0, 0] * px + a[0, 1] * py + a[0, 2],
                                    a[1, 0] * px + a[1, 1] * py + a[1, 2]), -1).reshape(1, 1, -1, 2)
                mask = self.shapes.masks[shape_index[b][k]][None]
                cov = F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros",
                                    align_corners=False).reshape(-1)
                region = out[b, r0:r1, c0:c1]
                region[sel] |= cov > 0.5
        return out

    @torch.no_grad()
    def batch(self, index: int, rows: slice | None = None,
              cameras: tuple[Tensor, Tensor] | None = None,
              size: tuple[int, int] | None = None) -> dict[str, Tensor]:
        """Batch number ``index`` (deterministic in ``seed`` and ``index``).

        ``rows`` renders only those samples of the batch (the rest are drawn but
        not rendered), so that processes of a distributed run each make their
        share of one global batch.

        ``cameras`` = (A1, A2), each (n, 3, 3) for the n rendered samples: maps from
        output pixels (h, w) = ``size`` to scene pixels of frame 1 and frame 2, as
        :meth:`GeometricAugment.sample <flownet2_core.train.augment.GeometricAugment.sample>`
        draws them for a source of ``self.size``. The pair is then rendered straight into
        that view, flow and visibility exact there: FlowNet's geometric augmentation
        without resampling the images (the scene goes on beyond its ``self.size`` frame).
        """
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index) * 7919 + 17)
        kinds = self._kinds_for_batch(gen)
        p = self._draw(gen, kinds)
        if rows is not None:
            p = {k: (tuple(t[rows] for t in v) if isinstance(v, tuple) else v[rows])
                 for k, v in p.items()}
            if p["active"].shape[0] == 0:
                raise ValueError(f"rows {rows} select no sample of a batch of {self.batch_size}")
        dev = self.device
        B, L = p["active"].shape
        P0, P1 = self._pose_matrix(p["pose0"]), self._pose_matrix(p["pose1"])
        if cameras is not None:
            a1, a2 = (a.to("cpu", torch.float64) for a in cameras)
            if a1.shape != (B, 3, 3) or a2.shape != (B, 3, 3):
                raise ValueError(f"cameras must be two ({B}, 3, 3) tensors, got "
                                 f"{tuple(a1.shape)} and {tuple(a2.shape)}")
            P0 = torch.linalg.inv(a1)[:, None] @ P0
            P1 = torch.linalg.inv(a2)[:, None] @ P1
        h, w = size if size is not None else self.size
        img1, top1 = self._render(p, P0, 0, (h, w))
        img2, _ = self._render(p, P1, 1, (h, w))
        # Exact flow: a point of layer l at x in frame 1 is at G_l·x in frame 2, G_l = P1·P0⁻¹.
        G = (P1 @ torch.linalg.inv(P0))[..., :2, :].reshape(B * L, 6).to(dev, torch.float32)
        layer = top1 + torch.arange(B, device=dev).reshape(B, 1, 1) * L
        coef = F.embedding(layer, G)                                     # (B, h, w, 6)
        ys = torch.arange(h, device=dev, dtype=torch.float32).reshape(1, h, 1)
        xs = torch.arange(w, device=dev, dtype=torch.float32).reshape(1, 1, w)
        x1 = coef[..., 0] * xs + coef[..., 1] * ys + coef[..., 2]
        y1 = coef[..., 3] * xs + coef[..., 4] * ys + coef[..., 5]
        # Visible in frame 2: no layer in front of its own covers the landing point, and it
        # lands inside the image. (Its own layer covers it there as it did in frame 1.)
        inside = (x1 >= -0.5) & (x1 <= w - 0.5) & (y1 >= -0.5) & (y1 <= h - 0.5)
        valid = inside & ~self._occluded(p, P1, top1, x1, y1)
        return {"img1": img1, "img2": img2, "flow": torch.stack((x1 - xs, y1 - ys), 1),
                "valid": valid[:, None]}

    def __iter__(self):
        i = 0
        while True:
            yield self.batch(i)
            i += 1
