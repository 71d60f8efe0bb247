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

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KINDS", "MotionRanges", "SyntheticFlow", "TextureBank"]

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

_HARMONICS = 5  # star-shaped object outlines: r(φ) = r0 (1 + Σ a_k cos(kφ + φ_k))


class SyntheticFlow:
    """Endless batches of exact-flow pairs of one ``kind`` (``chairs``, ``sdhom``, ``things``).

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
                 texture_count: int = 64, texture_size: int = 256) -> None:
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
        ref = math.sqrt(h * w / (384 * 512))  # pixel ranges are given at 384×512
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
        scale0 = radius  # pixels per object unit: object outline radius ≈ 1 unit
        pose0 = (center0, angle0, scale0)
        pose1 = (center0 + shift, angle0 + rot, scale0 * torch.exp(logscale))
        # texture mapping of object units → normalised texture coordinates
        tex_zoom = 0.35 + rand(B, L) * 0.6
        tex_offset = rand(B, L, 2) * 2 - 1
        tex_index = torch.randint(0, len(self.textures), (B, L), generator=gen)
        gains = 0.75 + rand(B, L, 3) * 0.5
        amps = randn(B, L, _HARMONICS) * 0.12 / torch.arange(1, _HARMONICS + 1) ** 0.7
        phases = rand(B, L, _HARMONICS) * 2 * math.pi
        plain_colour = rand(B, 2, 3) * 255
        plain_dir = rand(B) * 2 * math.pi
        return dict(active=active, pose0=pose0, pose1=pose1, tex_zoom=tex_zoom,
                    tex_offset=tex_offset, tex_index=tex_index, gains=gains, amps=amps,
                    phases=phases, light=light, plain=plain, plain_colour=plain_colour,
                    plain_dir=plain_dir)

    # ------------------------------------------------------------- geometry
    @staticmethod
    def _to_units(pose, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Image points (B, 1, …) → each layer's object units (B, L, …): q = R(−θ)(x − c)/s."""
        c, a, s = pose
        extra = x.dim() - 2
        shape = c.shape[:2] + (1,) * extra
        cx, cy = c[..., 0].reshape(shape), c[..., 1].reshape(shape)
        ca, sa = torch.cos(a).reshape(shape), torch.sin(a).reshape(shape)
        s = s.reshape(shape)
        dx, dy = x - cx, y - cy
        return (ca * dx + sa * dy) / s, (-sa * dx + ca * dy) / s

    @staticmethod
    def _to_image(pose, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
        c, a, s = pose
        shape = c.shape[:2] + (1,) * (qx.dim() - 2)
        cx, cy = c[..., 0].reshape(shape), c[..., 1].reshape(shape)
        ca, sa = torch.cos(a).reshape(shape), torch.sin(a).reshape(shape)
        s = s.reshape(shape)
        return cx + s * (ca * qx - sa * qy), cy + s * (sa * qx + ca * qy)

    @staticmethod
    def _coverage(p: dict, qx: Tensor, qy: Tensor, scale: Tensor) -> Tensor:
        """Anti-aliased coverage (B, L, …) of each layer's outline at unit coordinates:
        ½ + (signed distance to the outline in pixels), clamped to 0..1."""
        r = torch.sqrt(qx * qx + qy * qy)
        phi = torch.atan2(qy, qx)
        shape = p["amps"].shape[:2] + (1,) * (qx.dim() - 2)
        outline = torch.ones_like(r)
        for k in range(_HARMONICS):
            a = p["amps"][..., k].reshape(shape)
            ph = p["phases"][..., k].reshape(shape)
            outline = outline + a * torch.cos((k + 1) * phi + ph)
        cov = (0.5 + (outline - r) * scale.reshape(shape)).clamp(0, 1)
        cov[:, 0] = 1.0  # background
        return cov * p["active"].reshape(shape)

    def _render(self, p: dict, pose, x: Tensor, y: Tensor, frame: int) -> tuple[Tensor, Tensor]:
        """Composite image (B, 3, H, W) float32 0..255 and top layer (B, H, W) at ``frame``."""
        B, L = p["active"].shape
        h, w = x.shape[-2:]
        qx, qy = self._to_units(pose, x, y)                         # (B, L, H, W) float64
        cov = self._coverage(p, qx, qy, pose[2]).float()
        tz = p["tex_zoom"].reshape(B, L, 1, 1)
        gx = (qx * tz + p["tex_offset"][..., 0].reshape(B, L, 1, 1)).float()
        gy = (qy * tz + p["tex_offset"][..., 1].reshape(B, L, 1, 1)).float()
        grid = torch.stack((gx, gy), -1).reshape(B * L, h, w, 2)
        tex = self.textures.textures[p["tex_index"].reshape(-1).to(self.device)]
        col = F.grid_sample(tex, grid, mode="bilinear", padding_mode="reflection",
                            align_corners=False).reshape(B, L, 3, h, w)
        gain = p["gains"].float().reshape(B, L, 3, 1, 1)
        if frame == 1:
            gain = gain * p["light"].float().reshape(B, L, 1, 1, 1)
        col = col * gain
        # homogeneous or gradient backgrounds (ChairsSDHom)
        plain = p["plain"].to(self.device)
        if bool((plain > 0).any()):
            c0 = p["plain_colour"][:, 0].float().reshape(B, 3, 1, 1)
            c1 = p["plain_colour"][:, 1].float().reshape(B, 3, 1, 1)
            d = p["plain_dir"].float()
            t = (x[:, 0].float() * torch.cos(d).reshape(B, 1, 1)
                 + y[:, 0].float() * torch.sin(d).reshape(B, 1, 1))
            t = ((t - t.amin((1, 2), keepdim=True))
                 / (t.amax((1, 2), keepdim=True) - t.amin((1, 2), keepdim=True)).clamp_min(1e-6))
            grad = c0 + (c1 - c0) * t[:, None]
            bg = torch.where((plain == 1).reshape(B, 1, 1, 1), c0.expand_as(grad), grad)
            col[:, 0] = torch.where((plain > 0).reshape(B, 1, 1, 1), bg, col[:, 0])
        img = col[:, 0]
        for layer in range(1, L):  # front to back order = index order ("over" compositing)
            a = cov[:, layer, None]
            img = img * (1 - a) + col[:, layer] * a
        top = self._top_layer(cov)
        return img.clamp(0, 255), top

    @staticmethod
    def _top_layer(cov: Tensor) -> Tensor:
        """Index of the topmost layer covering each point by more than half: (B, …)."""
        L = cov.shape[1]
        idx = torch.arange(L, device=cov.device).reshape((1, L) + (1,) * (cov.dim() - 2))
        return torch.where(cov > 0.5, idx, 0).amax(1)

    @torch.no_grad()
    def batch(self, index: int, rows: slice | None = None) -> dict[str, Tensor]:
        """Batch number ``index`` (deterministic in ``seed`` and ``index``).

        ``rows`` renders only those samples of the batch (the rest are drawn but
        not rendered), so that processes of a distributed run each make their
        share of one global batch.
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
        dd = torch.float64 if dev.type == "cpu" else torch.float32
        p = {k: (tuple(t.to(dev, dd) for t in v) if isinstance(v, tuple)
                 else v.to(dev) if v.dtype == torch.bool or v.dtype == torch.long else v.to(dev, dd))
             for k, v in p.items()}
        h, w = self.size
        B = p["active"].shape[0]
        ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=dd),
                                torch.arange(w, device=dev, dtype=dd), indexing="ij")
        x, y = xs.expand(B, 1, h, w), ys.expand(B, 1, h, w)
        img1, top1 = self._render(p, p["pose0"], x, y, 0)
        img2, _ = self._render(p, p["pose1"], x, y, 1)
        # Exact flow of the top layer at each pixel of frame 1: x' = M1 · M0⁻¹ · x.
        qx, qy = self._to_units(p["pose0"], x, y)
        x1, y1 = self._to_image(p["pose1"], qx, qy)                 # (B, L, H, W)
        sel = top1[:, None]
        fx = torch.gather(x1, 1, sel)[:, 0] - x[:, 0]
        fy = torch.gather(y1, 1, sel)[:, 0] - y[:, 0]
        # Visible in frame 2: the same layer is on top where the point lands, inside the image.
        tx, ty = (x[:, 0] + fx)[:, None], (y[:, 0] + fy)[:, None]
        qx2, qy2 = self._to_units(p["pose1"], tx, ty)
        top2 = self._top_layer(self._coverage(p, qx2, qy2, p["pose1"][2]))
        inside = (tx[:, 0] >= -0.5) & (tx[:, 0] <= w - 0.5) & (ty[:, 0] >= -0.5) & (ty[:, 0] <= h - 0.5)
        valid = (top2 == top1) & inside
        return {"img1": img1.float(), "img2": img2.float(),
                "flow": torch.stack((fx, fy), 1).float(), "valid": valid[:, None]}

    def __iter__(self):
        i = 0
        while True:
            yield self.batch(i)
            i += 1
