"""Datasets over rawframes folders for the spatial (RGB) and temporal (flow) streams.

Input layout (what ``flownet2 stacks extract`` and mmaction2/denseflow write)::

    <root>/<frame_dir>/img_00001.jpg …       RGB frames, 1-based
    <root>/<frame_dir>/flow_x_00001.jpg …    u of the flow from frame k to k+1, grey JPEG
    <root>/<frame_dir>/flow_y_00001.jpg …    v likewise, p = round(255·(v + bound)/(2·bound))

and mmaction2 annotation lists, one ``<frame_dir> <total_frames> <label>`` per line
(label 0-based). For the spatial stream ``total_frames`` counts RGB frames
(``ucf101_{train,val}_split_K_rawframes.txt``); for the temporal stream it counts flow
fields (``…_rawframes_flow.txt``). mmaction2's own lists count RGB frames for both, so the
temporal stream samples from the smaller of the listed count and the flow fields on disk.

One sample
-----------
* **spatial** (modality ``rgb``): one RGB frame per segment → ``(3, S, S)`` float32,
  ImageNet-normalised: ``(x/255 − mean)/std``.
* **temporal** (modality ``flow``): ``L`` consecutive flow fields starting at one
  position per segment, decoded from JPEG back to pixels, x/y interleaved →
  ``(2L, S, S)`` float32, channels ``[u₁, v₁, u₂, v₂, …]``. With ``mean_subtraction``
  (default) each field's mean vector is subtracted (Simonyan & Zisserman's camera-motion
  compensation; computed over the whole field, before cropping); then values are divided
  by ``flow_scale`` (default 20, the quantisation bound, which matches mmaction2's
  ``(p − 128)/128`` on the JPEG grey level up to 0.4 %).

A sample of ``K`` segments (TSN) is ``(K, C, S, S)``; ``K = 1`` is the two-stream
setting. Training crops are random ``S × S`` crops (``crop="random"``) or TSN's
multi-scale corner crops (``crop="multiscale"``: side ∈ {1, .875, .75, .66} × short side,
aspect distortion ≤ 1 step, 13 fixed positions, resized to ``S``), followed by a
horizontal flip with probability ½. Convention: a horizontal flip mirrors the image, so
the x-component of every flow field changes sign (``u → −u``); a resize by factor
``s_x, s_y`` scales ``u, v`` by the same factors (TSN's multi-scale crop leaves the
values unscaled; here flow stays in the pixels of the network input). Crops, flips,
resizes (bilinear, antialiased when shrinking) and the RGB normalisation are
``torchvision.transforms.v2.functional`` on ``(C, H, W)`` tensors; OpenCV only decodes.

Determinism: every random choice of a training sample comes from
``numpy.random.default_rng([seed, epoch, index])``, so a sample is the same in any
worker, on any rank and after a resume.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from flownet2_core.io import atomic_write_text

from flowapps.stacks.rawframes import count_outputs, frame_name, missing_file_error, read_flow_stack

__all__ = ["VideoRecord", "read_annotations", "write_annotations", "split_list", "read_manifest",
           "class_names", "StreamConfig", "train_offsets", "test_offsets", "load_rgb", "load_flow",
           "subtract_mean_flow", "random_crop_box", "multiscale_crop_box", "five_crop_boxes",
           "crop_resize", "hflip", "normalize", "ClipDataset", "TestDataset", "IMAGENET_MEAN",
           "IMAGENET_STD", "MODALITIES"]

MODALITIES = ("rgb", "flow")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- lists
@dataclass(frozen=True)
class VideoRecord:
    """One line of an annotation list. ``total_frames`` counts RGB frames or flow fields."""

    frame_dir: str
    total_frames: int
    label: int

    @property
    def group(self) -> int | None:
        """UCF101 group (``v_<Class>_gGG_cCC``), or None for other names."""
        from flowapps.stacks.ucf101 import Video

        return Video(self.frame_dir + ".avi").group


def read_annotations(path: str | os.PathLike) -> list[VideoRecord]:
    """Read an mmaction2 rawframes list (``<frame_dir> <total_frames> <label>`` per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such annotation list")
    out, seen = [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
            raise ValueError(f"{path}:{n}: expected '<frame_dir> <total_frames> <label>', got {line!r}")
        if int(parts[2]) < 0:
            raise ValueError(f"{path}:{n}: negative label {parts[2]} (labels are 0-based)")
        if parts[0] in seen:  # twice in one list: double weight in training, scored twice in testing
            raise ValueError(f"{path}:{n}: {parts[0]} is already listed on line {seen[parts[0]]}")
        seen[parts[0]] = n
        out.append(VideoRecord(parts[0], int(parts[1]), int(parts[2])))
    if not out:
        raise ValueError(f"{path}: annotation list is empty")
    return out


def write_annotations(path: str | os.PathLike, records: list[VideoRecord]) -> None:
    """Write records as an mmaction2 list (atomically)."""
    atomic_write_text(path, "".join(f"{r.frame_dir} {r.total_frames} {r.label}\n" for r in records))


def split_list(stacks: str | os.PathLike, split: int, subset: str, modality: str) -> Path:
    """The annotation list ``flownet2 stacks extract`` wrote for a UCF101 split.

    ``subset`` is ``train`` or ``test`` (mmaction2 calls the test lists ``val``).
    """
    if split not in (1, 2, 3):
        raise ValueError(f"split must be 1, 2 or 3, got {split}")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    _check_modality(modality)
    name = {"train": "train", "test": "val"}[subset]
    suffix = "_flow" if modality == "flow" else ""
    path = Path(stacks) / f"ucf101_{name}_split_{split}_rawframes{suffix}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no annotation list (run `flownet2 stacks extract --splits …` "
                                f"or give the list with --train-list/--test-list)")
    return path


def read_manifest(stacks: str | os.PathLike) -> dict | None:
    """``<stacks>/manifest.json`` (flow method, weights hash, bound …) or None when absent."""
    path = Path(stacks) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def class_names(records: list[VideoRecord], num_classes: int) -> list[str]:
    """Class names by label, from the class folder of each frame_dir (``label<k>`` if unseen)."""
    names = [f"label{k}" for k in range(num_classes)]
    for r in records:
        if 0 <= r.label < num_classes and "/" in r.frame_dir:
            names[r.label] = r.frame_dir.split("/")[0]
    return names


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class StreamConfig:
    """How one stream reads and augments its input (shared by training and testing).

    ``new_length`` is L (flow fields per stack; 1 for rgb). ``crop_size`` is S.
    ``crop`` is ``random`` or ``multiscale`` (training; testing always uses fixed crops).
    ``start_index`` is the file number of a video's first frame and flow field: 1 as
    ``flownet2 stacks``, TSN's dense_flow and mmaction2 write them (``img_00001.jpg``), 0 for
    today's open-mmlab/denseflow (``flow_x_00000.jpg``; mmaction2's ``start_index=0``).
    ``bound`` is the ±px range the flow JPEGs quantise (the stacks manifest's, else given).
    """

    modality: str = "flow"
    new_length: int = 10
    crop_size: int = 224
    crop: str = "random"
    flip: bool = True
    mean_subtraction: bool = True
    flow_format: str = "jpg"
    bound: float = 20.0
    flow_scale: float = 20.0
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    max_distort: int = 1
    start_index: int = 1

    def __post_init__(self):
        _check_modality(self.modality)
        if self.crop not in ("random", "multiscale"):
            raise ValueError(f"crop must be 'random' or 'multiscale', got {self.crop!r}")
        if self.new_length < 1 or self.crop_size < 8:
            raise ValueError(f"need new_length >= 1 and crop_size >= 8, got {self.new_length}, {self.crop_size}")
        if self.modality == "rgb" and self.new_length != 1:
            raise ValueError("the spatial (rgb) stream takes one frame: new_length must be 1")
        if self.flow_scale <= 0 or self.bound <= 0:
            raise ValueError("bound and flow_scale must be positive")
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ValueError(f"multi-scale crop scales must lie in (0, 1], got {self.scales}")
        if self.start_index not in (0, 1):
            raise ValueError(f"start_index must be 0 or 1, got {self.start_index}")

    @property
    def channels(self) -> int:
        return 3 if self.modality == "rgb" else 2 * self.new_length

    def to_json(self) -> dict:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "StreamConfig":
        d = dict(d)
        d["scales"] = tuple(d.get("scales", cls.scales))
        return cls(**d)


# --------------------------------------------------------------------------- sampling
def train_offsets(total: int, new_length: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """TSN segment sampling for training: (K,) 1-based start indices.

    The valid starts ``1 … total − L + 1`` are cut into K equal segments and one start
    is drawn uniformly in each (K = 1: uniformly over the whole video).
    """
    valid = max(1, total - new_length + 1)
    edges = np.linspace(0, valid, num_segments + 1)
    lo = np.floor(edges[:-1]).astype(int)
    hi = np.maximum(lo + 1, np.floor(edges[1:]).astype(int))
    return 1 + np.array([rng.integers(a, b) for a, b in zip(lo, hi)], dtype=int)


def test_offsets(total: int, new_length: int, num_positions: int) -> np.ndarray:
    """Evenly spaced 1-based starts (segment centres): (P,) — 25 in the standard protocol."""
    valid = max(1, total - new_length + 1)
    return 1 + np.floor((np.arange(num_positions) + 0.5) * valid / num_positions).astype(int)


test_offsets.__test__ = False  # not a pytest test


# --------------------------------------------------------------------------- loading
def load_rgb(folder: str | os.PathLike, index: int, first: int = 1) -> np.ndarray:
    """Frame ``index`` (1-based) as (H, W, 3) uint8 RGB: ``img_<index>.jpg``, numbered from
    ``first`` on disk (see :class:`StreamConfig` ``start_index``)."""
    number = index - 1 + first
    path = Path(folder) / frame_name("img_", number)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise missing_file_error(path, number, first)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_flow(folder: str | os.PathLike, start: int, new_length: int, total: int, *,
              flow_format: str = "jpg", bound: float = 20.0, first: int = 1) -> np.ndarray:
    """Flow fields ``start … start+L−1`` (1-based) as (H, W, 2L) float32 pixels, x/y interleaved.

    Indices past ``total`` repeat the last field (videos shorter than L).
    """
    last = min(total, start + new_length - 1)
    if start > last:
        raise ValueError(f"{folder}: flow stack start {start} is past the {total} fields listed")
    stack = read_flow_stack(folder, start, last - start + 1, flow_format=flow_format, bound=bound, first=first)
    if len(stack) < new_length:  # repeat the last field
        stack = np.concatenate([stack, np.repeat(stack[-1:], new_length - len(stack), 0)])
    l, h, w, _ = stack.shape
    return np.ascontiguousarray(stack.transpose(1, 2, 0, 3).reshape(h, w, 2 * l))


# --------------------------------------------------------------------------- transforms
def subtract_mean_flow(stack: np.ndarray) -> np.ndarray:
    """Subtract each field's mean vector from an (H, W, 2L) stack (per-channel mean)."""
    return stack - stack.mean(axis=(0, 1), keepdims=True)


def random_crop_box(h: int, w: int, size: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A uniformly placed ``size × size`` box ``(y, x, height, width)``."""
    return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1)), size, size


def multiscale_crop_box(h: int, w: int, size: int, rng: np.random.Generator,
                        scales=(1.0, 0.875, 0.75, 0.66), max_distort: int = 1) -> tuple[int, int, int, int]:
    """TSN's multi-scale crop: a box ``(y, x, height, width)`` to be resized to ``size``.

    Side lengths are ``scale × short side`` (snapped to ``size`` within 3 px); the
    height and width scale indices differ by at most ``max_distort``; the box sits at
    one of 13 fixed positions (corners, centre, mid-edges, quarter points).
    """
    base = min(h, w)
    sides = [size if abs(int(base * s) - size) < 3 else int(base * s) for s in scales]
    pairs = [(sh, sw) for i, sh in enumerate(sides) for j, sw in enumerate(sides) if abs(i - j) <= max_distort]
    ch, cw = pairs[int(rng.integers(len(pairs)))]
    ch, cw = min(ch, h), min(cw, w)
    sy, sx = (h - ch) / 4, (w - cw) / 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2),                  # corners, centre
            (0, 2), (4, 2), (2, 0), (2, 4),                          # mid-edges
            (1, 1), (1, 3), (3, 1), (3, 3)]                          # quarter points
    gy, gx = grid[int(rng.integers(len(grid)))]
    return int(round(gy * sy)), int(round(gx * sx)), ch, cw


def five_crop_boxes(h: int, w: int, size: int) -> list[tuple[int, int, int, int]]:
    """The four corners and the centre (test protocol), as ``(y, x, size, size)``."""
    cy, cx = (h - size) // 2, (w - size) // 2
    return [(0, 0, size, size), (0, w - size, size, size), (h - size, 0, size, size),
            (h - size, w - size, size, size), (cy, cx, size, size)]


def _to_chw(arr: np.ndarray) -> torch.Tensor:
    """(H, W, C) array → (C, H, W) tensor (a view: no copy)."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def _resize(t: torch.Tensor, width: int, height: int, is_flow: bool) -> torch.Tensor:
    """Bilinear, antialiased when shrinking (torchvision); flow values scale with the resize."""
    h, w = t.shape[-2:]
    if (w, h) == (width, height):
        return t
    out = TF.resize(t, [height, width], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    if is_flow:  # resize returned a new tensor: scale in place
        out[0::2] *= width / w
        out[1::2] *= height / h
    return out


def crop_resize(t: torch.Tensor, box: tuple[int, int, int, int], size: int, is_flow: bool) -> torch.Tensor:
    """Crop ``box = (y, x, height, width)`` from (C, H, W) and resize to ``size × size``
    (``transforms.v2.functional.crop`` / ``resize``; flow values scaled with the resize,
    see module docstring)."""
    y, x, ch, cw = box
    return _resize(TF.crop(t, y, x, ch, cw), size, size, is_flow)


def hflip(t: torch.Tensor, is_flow: bool) -> torch.Tensor:
    """Mirror (C, H, W) left–right (``transforms.v2.functional.horizontal_flip``); for flow
    also negate u (channels 0, 2, 4, …). Flow here is decoded to pixels (signed), so the
    negation is exact; on the quantised JPEG grey levels it would be ``p → 255 − p``."""
    out = TF.horizontal_flip(t)
    if is_flow:
        out[0::2] = -out[0::2]
    return out


def normalize(t: torch.Tensor, cfg: StreamConfig) -> torch.Tensor:
    """(C, H, W) → float32 network input (see module docstring): RGB through
    ``to_dtype(scale=True)`` (÷ 255) and ``normalize`` (ImageNet mean/std); flow ÷ ``flow_scale``."""
    if cfg.modality == "rgb":
        x = TF.normalize(TF.to_dtype(t, torch.float32, scale=True), list(IMAGENET_MEAN), list(IMAGENET_STD))
    else:
        x = t.to(torch.float32) / cfg.flow_scale
    return x.contiguous()


def _min_side(t: torch.Tensor, size: int, is_flow: bool) -> torch.Tensor:
    """Upscale so the short side is at least the crop size (frames smaller than crops)."""
    h, w = t.shape[-2:]
    if min(h, w) >= size:
        return t
    s = size / min(h, w)
    return _resize(t, max(size, round(w * s)), max(size, round(h * s)), is_flow)


class _Reader:
    """Reads the input of one position (before cropping), optionally caching whole videos.

    With ``cache_mb > 0`` each video is decoded once, whole, and kept (up to that many
    megabytes per process; least recently used first out): for small datasets that are
    read many times, such as the generated mini-UCF101. Without it only the needed
    files are read.
    """

    def __init__(self, root: Path, cfg: StreamConfig, cache_mb: float = 0.0):
        self.root, self.cfg, self.budget = root, cfg, int(cache_mb * 2 ** 20)
        self.cache: dict[str, np.ndarray] = {}
        self.used = 0
        self.counts: dict[str, int] = {}

    def total(self, rec: VideoRecord) -> int:
        """Frames (rgb) or flow fields (flow) to sample from. For flow, the smaller of the
        list's count and the fields on disk: mmaction2's lists may count RGB frames."""
        if self.cfg.modality == "rgb":
            return rec.total_frames
        n = self.counts.get(rec.frame_dir)
        if n is None:
            folder = self.root / rec.frame_dir
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: no such video folder")
            n = count_outputs(folder, self.cfg.flow_format)[1]
            if n <= 0:
                raise FileNotFoundError(f"{folder}: no flow fields ({self.cfg.flow_format}) in the video folder")
            self.counts[rec.frame_dir] = n
        return min(n, rec.total_frames)

    def _whole(self, rec: VideoRecord, total: int) -> np.ndarray:
        arr = self.cache.pop(rec.frame_dir, None)
        if arr is None:
            folder = self.root / rec.frame_dir
            if self.cfg.modality == "rgb":
                arr = np.stack([load_rgb(folder, k, self.cfg.start_index) for k in range(1, total + 1)])
            else:
                arr = read_flow_stack(folder, 1, total, flow_format=self.cfg.flow_format, bound=self.cfg.bound,
                                      first=self.cfg.start_index)
            self.used += arr.nbytes
            while self.cache and self.used > self.budget:
                self.used -= self.cache.pop(next(iter(self.cache))).nbytes
        self.cache[rec.frame_dir] = arr  # most recently used last
        return arr

    def __call__(self, rec: VideoRecord, start: int, total: int) -> np.ndarray:
        """(C, H, W) input at 1-based ``start`` of a video with ``total`` frames/fields
        (uint8 RGB, or float32 flow in pixels)."""
        cfg, is_flow = self.cfg, self.cfg.modality == "flow"
        if self.budget > 0:
            whole = self._whole(rec, total)
            if is_flow:
                idx = np.minimum(np.arange(start, start + cfg.new_length), total) - 1
                stack = whole[idx]
                l, h, w, _ = stack.shape
                arr = np.ascontiguousarray(stack.transpose(1, 2, 0, 3).reshape(h, w, 2 * l))
            else:
                arr = whole[min(start, total) - 1]
        elif is_flow:
            arr = load_flow(self.root / rec.frame_dir, start, cfg.new_length, total,
                            flow_format=cfg.flow_format, bound=cfg.bound, first=cfg.start_index)
        else:
            arr = load_rgb(self.root / rec.frame_dir, min(start, total), cfg.start_index)
        if is_flow and cfg.mean_subtraction:
            arr = subtract_mean_flow(arr)
        return _min_side(_to_chw(arr), cfg.crop_size, is_flow)


# --------------------------------------------------------------------------- datasets
class ClipDataset(torch.utils.data.Dataset):
    """Training (``train=True``) or quick-validation samples of one stream.

    Item ``i`` is video ``i mod N`` (``repeat`` passes over the list per epoch, like
    mmaction2's RepeatDataset) → ``(clip, label)`` with clip ``(K, C, S, S)`` float32.
    Validation mode takes each segment's centre position, the centre crop, no flip.
    Call :meth:`set_epoch` before each epoch (:mod:`.train` does, and builds a new
    DataLoader per epoch so that worker processes see it). ``cache_mb`` keeps decoded
    videos in memory per process (see ``_Reader``): for small datasets only.
    """

    def __init__(self, records: list[VideoRecord], root: str | os.PathLike, cfg: StreamConfig, *,
                 num_segments: int = 1, train: bool = True, seed: int = 0, repeat: int = 1,
                 cache_mb: float = 0.0):
        if num_segments < 1 or repeat < 1:
            raise ValueError(f"num_segments and repeat must be >= 1, got {num_segments}, {repeat}")
        if not records:
            raise ValueError("no videos to load")
        self.records, self.root, self.cfg = list(records), Path(root), cfg
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: stacks folder does not exist")
        self.num_segments, self.train, self.seed, self.repeat = num_segments, train, seed, repeat
        self.epoch = 0
        self.read = _Reader(self.root, cfg, cache_mb)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) * self.repeat

    def __getitem__(self, index: int):
        rec = self.records[index % len(self.records)]
        cfg, is_flow = self.cfg, self.cfg.modality == "flow"
        rng = np.random.default_rng([self.seed, self.epoch, index])
        total = self.read.total(rec)
        if self.train:
            starts = train_offsets(total, cfg.new_length, self.num_segments, rng)
        else:
            starts = test_offsets(total, cfg.new_length, self.num_segments)
        clips = []
        for start in starts:
            arr = self.read(rec, int(start), total)
            h, w = arr.shape[-2:]
            if not self.train:
                arr = crop_resize(arr, five_crop_boxes(h, w, cfg.crop_size)[4], cfg.crop_size, is_flow)
            else:
                box = (multiscale_crop_box(h, w, cfg.crop_size, rng, cfg.scales, cfg.max_distort)
                       if cfg.crop == "multiscale" else random_crop_box(h, w, cfg.crop_size, rng))
                arr = crop_resize(arr, box, cfg.crop_size, is_flow)
                if cfg.flip and rng.random() < 0.5:
                    arr = hflip(arr, is_flow)
            clips.append(normalize(arr, cfg))
        return torch.stack(clips), rec.label


class TestDataset(torch.utils.data.Dataset):
    """The test protocol of Simonyan & Zisserman, one item per (video, position).

    Each video gives ``num_positions`` evenly spaced positions (25); each position gives
    ``crops`` inputs: 1 = centre; 5 = four corners + centre; 10 = those and their
    mirror images (the standard). Item → ``(crops_tensor (crops, C, S, S), video_index)``;
    the tester averages softmax scores over all items of a video.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, records: list[VideoRecord], root: str | os.PathLike, cfg: StreamConfig, *,
                 num_positions: int = 25, crops: int = 10, cache_mb: float = 0.0):
        if crops not in (1, 5, 10):
            raise ValueError(f"crops must be 1, 5 or 10, got {crops}")
        if num_positions < 1:
            raise ValueError(f"num_positions must be >= 1, got {num_positions}")
        self.records, self.root, self.cfg = list(records), Path(root), cfg
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: stacks folder does not exist")
        self.num_positions, self.crops = num_positions, crops
        self.read = _Reader(self.root, cfg, cache_mb)

    def __len__(self) -> int:
        return len(self.records) * self.num_positions

    def __getitem__(self, index: int):
        v, p = divmod(index, self.num_positions)
        rec, cfg, is_flow = self.records[v], self.cfg, self.cfg.modality == "flow"
        total = self.read.total(rec)
        start = int(test_offsets(total, cfg.new_length, self.num_positions)[p])
        arr = self.read(rec, start, total)
        h, w = arr.shape[-2:]
        boxes = five_crop_boxes(h, w, cfg.crop_size)
        boxes = boxes[4:] if self.crops == 1 else boxes
        views = [crop_resize(arr, b, cfg.crop_size, is_flow) for b in boxes]
        if self.crops == 10:
            views += [hflip(a, is_flow) for a in views]
        return torch.stack([normalize(a, cfg) for a in views]), v
