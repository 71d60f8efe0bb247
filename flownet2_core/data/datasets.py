"""Readers for the optical-flow datasets in their published folder layouts.

One set of readers for the benchmarks (:mod:`evaluations.benchmarks`) and for
training (:class:`~flownet2_core.data.FlowDataset`). Every dataset is a list of
:class:`Sample` (file paths, never pixels) made by :func:`list_samples`;
:func:`load_sample` reads one into a :class:`Frame`. ``root`` is the folder the
archive unpacks to (the one holding ``training/``, ``data/``, ``other-data/``,
``frames_cleanpass/``, …); the usual parent folder names (torchvision's
``Sintel``, ``KittiFlow``, ``FlyingChairs``, ``hd1k``, ``FlyingThings3D``, and
``FlyingChairs_release``, ``ChairsSDHom``, ``FlyingThings3D_subset``) are
accepted too.

==================  =========================================================================
name                layout under ``root`` (split ``train``; ``test`` has no ground truth)
==================  =========================================================================
``sintel-clean``    ``training/clean/<scene>/frame_%04d.png``, ``training/flow/<scene>/frame_%04d.flo``
``sintel-final``    (``final`` pass); ``training/occlusions/<scene>/frame_%04d.png`` (255 = occluded)
``kitti-2012``      ``training/colored_0/%06d_1{0,1}.png``, ``flow_occ/%06d_10.png``, ``flow_noc/…``
``kitti-2015``      ``training/image_2/%06d_1{0,1}.png``, ``flow_occ``, ``flow_noc``, ``obj_map`` (0 = bg)
``middlebury``      ``other-data/<Seq>/frame1{0,1}.png``, ``other-gt-flow/<Seq>/flow10.flo``
``chairs``          ``data/%05d_img{1,2}.ppm``, ``data/%05d_flow.flo``, ``FlyingChairs_train_val.txt``
                    (one line per pair: 1 = train, 2 = val; split ``val`` is the usual test set)
``hd1k``            ``hd1k_input/image_2/%06d_%04d.png``, ``hd1k_flow_gt/flow_occ/%06d_%04d.png``
``motorcycle``      no files: scikit-image's real stereo pair as flow (u = −disparity, v = 0)
``motorcycle-small``  the same pair downscaled 4× (125×185, disparities ≤ 15 px): quick checks
``chairs-sdhom``    ``data/{train,test}/t0/%05d.png``, ``t1/%05d.png``, ``flow/%05d.pfm``
                    (splits ``train`` and ``test``, both with ground truth)
``things-clean``    FlyingThings3D, either layout (found from what ``root`` holds), ground truth
``things-final``    in both splits (``train``; ``test`` or ``val`` = the held-out one):

                    full release: ``frames_{clean,final}pass/{TRAIN,TEST}/{A,B,C}/%04d/{left,right}/%04d.png``,
                    ``optical_flow/{TRAIN,TEST}/{A,B,C}/%04d/into_future/left/OpticalFlowIntoFuture_%04d_L.pfm``
                    (``into_past``: ``OpticalFlowIntoPast_%04d_L.pfm``; right camera ``right/…_R.pfm``);

                    ``FlyingThings3D_subset`` (what FlowNet 2.0 was trained on):
                    ``{train,val}/image_{clean,final}/{left,right}/%07d.png``,
                    ``{train,val}/flow/{left,right}/{into_future,into_past}/%07d.flo``
==================  =========================================================================

FlyingThings3D pairs (``camera`` and ``direction`` options of
:func:`list_samples`; the defaults, left camera and forward flow, are what the
FlowNet 2.0 authors trained on):

* ``into_future`` flow of frame ``t`` maps ``t`` → ``t + 1``; ``into_past``
  flow of frame ``t + 1`` maps ``t + 1`` → ``t`` (the pair's images swap).
* Full release: the flow files exist for every frame, also for the first
  and last frame of a sequence, whose ``into_past`` / ``into_future`` flow
  points at a frame that is not in the data set; a pair needs both images, so
  those flows are never used (the authors' advice, lmb-freiburg/flownet2
  issue 210; torchvision pairs the same files).
* Subset: frames are numbered through all sequences, so ``t`` and ``t + 1``
  can belong to different sequences although an ``into_future`` file for
  ``t`` exists (lmb-freiburg/flownet2 issue 196). A pair is kept only when both
  ``into_future/t.flo`` and ``into_past/(t+1).flo`` exist (and both images):
  the rule mmflow and IRR-PWC use to skip sequence boundaries.

Flow files: ``.pfm`` (ChairsSDHom, FlyingThings3D) is stored bottom-up and
has three channels; :func:`flownet2_core.io.read_pfm` turns the rows top-down
once and the third channel is dropped, nothing here flips again. Validity:
KITTI / HD1K from the PNG's third channel (sparse); every other dataset dense,
valid where the flow is finite and ``|u|, |v| ≤ 1e9`` (a few ChairsSDHom and
FlyingThings3D files hold NaNs: those pixels are invalid, not the pair).

Why our own readers and not torchvision's classes: torchvision's ``Sintel``,
``KittiFlow``, ``FlyingChairs`` and ``HD1K`` return the images and ``flow_occ``
only (PIL images, (2, H, W) flow; Sintel without a validity mask) and have no
KITTI 2012, Middlebury, ``flow_noc``, ``obj_map``, Sintel occlusions,
ChairsSDHom or the FlyingThings3D subset, which the noc/occ, matched/unmatched
and bg/fg measures and the training schedule need. Their file pairing is the
same as ours; the tests check that on generated trees.

Convention: images (H, W, 3) uint8 RGB; flow (H, W, 2) float32 px, u right,
v down; masks (H, W) bool.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flownet2_core.io import flow_valid_mask, read_flow, read_image

from .names import BENCHMARK_DATASETS, DATASETS, TRAINING_DATASETS

__all__ = [
    "BENCHMARK_DATASETS",
    "DATASETS",
    "TRAINING_DATASETS",
    "Frame",
    "Sample",
    "dataset_metric_notes",
    "list_samples",
    "load_motorcycle",
    "load_sample",
    "resolve_root",
]


# name: (relative paths any of which shows ``root`` holds the layout, parent folder names tried)
_THINGS_MARKERS = ("frames_cleanpass", "frames_finalpass", "optical_flow", "train/image_clean",
                   "train/image_final", "train/flow", "val/image_clean", "val/image_final")
_LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sintel-clean": (("training", "test"), ("Sintel",)),
    "sintel-final": (("training", "test"), ("Sintel",)),
    "kitti-2012": (("training", "testing"), ("KITTI2012",)),
    "kitti-2015": (("training", "testing"), ("KittiFlow",)),
    "middlebury": (("other-data", "eval-data"), ("middlebury",)),
    "chairs": (("data",), ("FlyingChairs", "FlyingChairs_release")),
    "hd1k": (("hd1k_input",), ("hd1k",)),
    "chairs-sdhom": (("data/train", "data/test"), ("ChairsSDHom",)),
    "things-clean": (_THINGS_MARKERS, ("FlyingThings3D", "FlyingThings3D_subset")),
    "things-final": (_THINGS_MARKERS, ("FlyingThings3D", "FlyingThings3D_subset")),
}

_CAMERAS = {"left": ("left",), "right": ("right",), "both": ("left", "right")}
_DIRECTIONS = {"future": ("future",), "past": ("past",), "both": ("future", "past")}


@dataclass(frozen=True)
class Sample:
    """One image pair of a dataset: paths only (``None`` where the dataset has no such file)."""

    dataset: str
    id: str                 # unique within the dataset, e.g. "alley_1/frame_0001"
    sequence: str           # scene / sequence for per-sequence breakdowns
    img1: Path
    img2: Path
    flow: Path | None = None        # GT (Sintel .flo, KITTI flow_occ, …)
    flow_noc: Path | None = None    # KITTI flow_noc
    occlusion: Path | None = None   # Sintel occlusion mask
    obj_map: Path | None = None     # KITTI 2015 object map


@dataclass(frozen=True)
class Frame:
    """A loaded sample. ``gt``/``valid`` are None on test splits; ``occluded``
    and ``foreground`` are None where the dataset does not provide them."""

    img1: np.ndarray                 # (H, W, 3) uint8 RGB
    img2: np.ndarray
    gt: np.ndarray | None            # (H, W, 2) float32
    valid: np.ndarray | None         # (H, W) bool
    occluded: np.ndarray | None = None
    foreground: np.ndarray | None = None


def dataset_metric_notes(name: str) -> str:
    """How the benchmark defines its regions and averaging (for reports)."""
    return {
        "sintel-clean": "EPE per pixel over the dataset; matched = noc, unmatched = occ (occlusion masks)",
        "sintel-final": "EPE per pixel over the dataset; matched = noc, unmatched = occ (occlusion masks)",
        "kitti-2012": "EPE and Out-3px on flow_occ (all) and flow_noc (noc), per pixel over the dataset",
        "kitti-2015": "Fl-all/-bg/-fg per pixel over the dataset (obj_map > 0 = fg); EPE also per image",
        "middlebury": "EPE and AAE per image, then averaged over sequences",
        "chairs": "EPE per pixel over the val split",
        "hd1k": "EPE and Fl per pixel over the dataset (flow_occ only)",
        "motorcycle": "real stereo pair: u = −disparity, v = 0, infinite disparity masked",
        "motorcycle-small": "real stereo pair downscaled 4× (4×4 block means; blocks with an infinite disparity masked)",
        "chairs-sdhom": "EPE per pixel over the test split (NaN flow pixels masked)",
        "things-clean": "EPE per pixel over the held-out split (NaN flow pixels masked)",
        "things-final": "EPE per pixel over the held-out split (NaN flow pixels masked)",
    }[name]


def resolve_root(name: str, root: str | os.PathLike) -> Path:
    """``root`` itself, or ``root/<usual folder name>`` when only that has the layout.

    Raises FileNotFoundError (one line, naming ``root``) when neither holds it.
    """
    r = Path(root)
    if not r.is_dir():
        raise FileNotFoundError(f"{r}: dataset root for {name} is not a directory")
    markers, alts = _LAYOUTS[name]
    if any((r / m).exists() for m in markers):
        return r
    for alt in alts:
        if any((r / alt / m).exists() for m in markers):
            return r / alt
    wanted = " or ".join(f"{m}/" for m in markers)
    raise FileNotFoundError(f"{r}: no {wanted} folder for {name} (nor under {' or '.join(a + '/' for a in alts)})")


def _sorted(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def _need(paths: list, what: Path, name: str) -> list:
    if not paths:
        raise FileNotFoundError(f"{what}: no files for {name} there")
    return paths


def _sintel(root: Path, pass_name: str, split: str) -> list[Sample]:
    split_dir = "training" if split == "train" else "test"
    img_root = root / split_dir / pass_name
    scenes = sorted(p.name for p in img_root.iterdir() if p.is_dir()) if img_root.is_dir() else []
    _need(scenes, img_root, f"sintel-{pass_name} {split}")
    out = []
    for scene in scenes:
        frames = _sorted(img_root / scene, "frame_*.png")
        for a, b in itertools.pairwise(frames):
            stem = a.stem
            flow = occ = None
            if split == "train":
                flow = root / "training" / "flow" / scene / f"{stem}.flo"
                if not flow.is_file():
                    raise FileNotFoundError(f"{flow}: ground truth missing for {a}")
                o = root / "training" / "occlusions" / scene / f"{stem}.png"
                occ = o if o.is_file() else None
            out.append(Sample(f"sintel-{pass_name}", f"{scene}/{stem}", scene, a, b, flow, None, occ))
    return out


def _kitti(root: Path, name: str, split: str) -> list[Sample]:
    split_dir = root / ("training" if split == "train" else "testing")
    img_dir = split_dir / ("colored_0" if name == "kitti-2012" else "image_2")
    first = _need(_sorted(img_dir, "*_10.png"), img_dir, f"{name} {split}")
    out = []
    for a in first:
        idx = a.name[: -len("_10.png")]
        b = img_dir / f"{idx}_11.png"
        if not b.is_file():
            raise FileNotFoundError(f"{b}: second frame missing for {a}")
        kw = {}
        if split == "train":
            kw["flow"] = split_dir / "flow_occ" / a.name
            if not kw["flow"].is_file():
                raise FileNotFoundError(f"{kw['flow']}: ground truth missing for {a}")
            noc = split_dir / "flow_noc" / a.name
            kw["flow_noc"] = noc if noc.is_file() else None
            obj = split_dir / "obj_map" / a.name
            kw["obj_map"] = obj if (name == "kitti-2015" and obj.is_file()) else None
        out.append(Sample(name, idx, idx, a, b, **kw))
    return out


def _middlebury(root: Path, split: str) -> list[Sample]:
    data = root / ("other-data" if split == "train" else "eval-data")
    seqs = _need(sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else [], data,
                 f"middlebury {split}")
    out = []
    for s in seqs:
        flow = root / "other-gt-flow" / s.name / "flow10.flo" if split == "train" else None
        if flow is not None and not flow.is_file():
            continue  # other-data has sequences without public GT
        out.append(Sample("middlebury", s.name, s.name, s / "frame10.png", s / "frame11.png", flow))
    return _need(out, root / "other-gt-flow", "middlebury")


def _chairs(root: Path, split: str) -> list[Sample]:
    split_file = root / "FlyingChairs_train_val.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: the FlyingChairs train/val split file is missing")
    flows = _need(_sorted(root / "data", "*_flow.flo"), root / "data", "chairs")
    codes = np.loadtxt(split_file, dtype=np.int32, ndmin=1)
    if len(codes) != len(flows):
        raise ValueError(f"{split_file}: {len(codes)} lines for {len(flows)} flow files in {root / 'data'}")
    want = {"train": 1, "val": 2}.get(split)
    if want is None:
        raise ValueError(f"chairs split must be 'train' or 'val', got {split!r}")
    out = []
    for f, c in zip(flows, codes):
        if c != want:
            continue
        idx = f.name[: -len("_flow.flo")]
        out.append(Sample("chairs", idx, "chairs", f.with_name(f"{idx}_img1.ppm"),
                          f.with_name(f"{idx}_img2.ppm"), f))
    return out


def _hd1k(root: Path, split: str) -> list[Sample]:
    if split != "train":
        raise ValueError("hd1k: only the train split is supported here")
    img_dir = root / "hd1k_input" / "image_2"
    flows = _need(_sorted(root / "hd1k_flow_gt" / "flow_occ", "*.png"), root / "hd1k_flow_gt", "hd1k")
    out = []
    for f in flows:
        m = re.fullmatch(r"(\d+)_(\d+)\.png", f.name)
        if not m:
            continue
        seq, t = m.group(1), int(m.group(2))
        a = img_dir / f.name
        b = img_dir / f"{seq}_{t + 1:0{len(m.group(2))}d}.png"
        if a.is_file() and b.is_file():
            out.append(Sample("hd1k", f.stem, seq, a, b, f))
    return _need(out, img_dir, "hd1k")


def _chairs_sdhom(root: Path, split: str) -> list[Sample]:
    if split not in ("train", "test"):
        raise ValueError(f"chairs-sdhom split must be 'train' or 'test', got {split!r}")
    top = root / "data" / split
    out = []
    for f in _need(_sorted(top / "flow", "*.pfm"), top / "flow", f"chairs-sdhom {split}"):
        a, b = top / "t0" / f"{f.stem}.png", top / "t1" / f"{f.stem}.png"
        for img in (a, b):
            if not img.is_file():
                raise FileNotFoundError(f"{img}: image missing for {f}")
        out.append(Sample("chairs-sdhom", f.stem, "chairs-sdhom", a, b, f))
    return out


def _things_is_full(root: Path) -> bool:
    return any((root / d).is_dir() for d in ("frames_cleanpass", "frames_finalpass", "optical_flow"))


def _things_full(root: Path, name: str, split: str, cameras, directions) -> list[Sample]:
    split_dir = "TRAIN" if split == "train" else "TEST"
    frames_root = root / f"frames_{name.split('-')[1]}pass" / split_dir
    seq_dirs = _need(sorted(p for p in frames_root.glob("*/*") if p.is_dir()), frames_root,
                     f"{name} {split}")
    out = []
    for seq_dir in seq_dirs:
        seq = f"{seq_dir.parent.name}/{seq_dir.name}"
        flow_dir = root / "optical_flow" / split_dir / seq
        for cam in cameras:
            frames = {int(p.stem): p for p in _sorted(seq_dir / cam, "*.png") if p.stem.isdigit()}
            for t in sorted(frames):
                if t + 1 not in frames:
                    continue  # the last frame's into_future flow points outside the data set
                a, b = frames[t], frames[t + 1]
                for d in directions:
                    if d == "future":
                        flow = flow_dir / "into_future" / cam / f"OpticalFlowIntoFuture_{a.stem}_{cam[0].upper()}.pfm"
                        s = Sample(name, f"{seq}/{cam}/{a.stem}-{b.stem}", seq, a, b, flow)
                    else:
                        flow = flow_dir / "into_past" / cam / f"OpticalFlowIntoPast_{b.stem}_{cam[0].upper()}.pfm"
                        s = Sample(name, f"{seq}/{cam}/{b.stem}-{a.stem}", seq, b, a, flow)
                    if not flow.is_file():
                        raise FileNotFoundError(f"{flow}: ground truth missing for {s.img1}")
                    out.append(s)
    return _need(out, frames_root, f"{name} {split} ({'/'.join(cameras)} camera)")


def _things_subset(root: Path, name: str, split: str, cameras, directions) -> list[Sample]:
    split_dir = root / ("train" if split == "train" else "val")
    pass_dir = f"image_{name.split('-')[1]}"
    out = []
    for cam in cameras:
        images = {p.stem: p for p in _sorted(split_dir / pass_dir / cam, "*.png")}
        flow_dir = split_dir / "flow" / cam
        for fw in _sorted(flow_dir / "into_future", "*.flo"):
            if not fw.stem.isdigit():
                continue
            nxt = f"{int(fw.stem) + 1:0{len(fw.stem)}d}"
            bw = flow_dir / "into_past" / f"{nxt}.flo"
            a, b = images.get(fw.stem), images.get(nxt)
            if a is None or b is None or not bw.is_file():
                continue  # a sequence boundary (see the module docstring)
            for d in directions:
                if d == "future":
                    out.append(Sample(name, f"{cam}/{fw.stem}-{nxt}", cam, a, b, fw))
                else:
                    out.append(Sample(name, f"{cam}/{nxt}-{fw.stem}", cam, b, a, bw))
    return _need(out, split_dir / pass_dir, f"{name} {split} ({'/'.join(cameras)} camera)")


def list_samples(name: str, root: str | os.PathLike | None = None, split: str = "train", *,
                 camera: str = "left", direction: str = "future") -> list[Sample]:
    """The pairs of dataset ``name`` under ``root`` (see the module table), sorted.

    ``split`` is ``train`` or ``test`` (``chairs``: ``train`` or ``val``;
    ``things-*``: ``test`` and ``val`` both name the held-out split).
    ``camera`` (``left``, ``right``, ``both``) and ``direction`` (``future``:
    frame t → t+1, ``past``: t+1 → t, ``both``) choose FlyingThings3D's pairs;
    other datasets accept only the defaults.

    Raises FileNotFoundError naming the folder or file that is missing,
    ValueError for an unknown name, split or option.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if camera not in _CAMERAS or direction not in _DIRECTIONS:
        raise ValueError(f"camera must be left, right or both and direction future, past or both; "
                         f"got camera={camera!r}, direction={direction!r}")
    if not name.startswith("things") and (camera, direction) != ("left", "future"):
        raise ValueError(f"{name}: camera and direction choose FlyingThings3D pairs only")
    if name.startswith("motorcycle"):
        return [Sample(name, "motorcycle", "motorcycle", Path("skimage"), Path("skimage"))]
    if root is None:
        raise ValueError(f"{name}: a dataset root is needed")
    if split not in ("train", "test", "val"):
        raise ValueError(f"split must be train, test or val, got {split!r}")
    r = resolve_root(name, root)
    if name.startswith("sintel"):
        return _sintel(r, name.split("-")[1], split)
    if name.startswith("kitti"):
        return _kitti(r, name, split)
    if name == "middlebury":
        return _middlebury(r, split)
    if name == "chairs":
        return _chairs(r, split)
    if name == "chairs-sdhom":
        return _chairs_sdhom(r, split)
    if name.startswith("things"):
        read = _things_full if _things_is_full(r) else _things_subset
        return read(r, name, split, _CAMERAS[camera], _DIRECTIONS[direction])
    return _hd1k(r, split)


def _grey_mask(path: Path) -> np.ndarray:
    return read_image(path)[..., 0] > 127


def load_motorcycle(downscale: int = 1) -> Frame:
    """scikit-image's real stereo pair as flow from left to right image.

    ``u = −disparity`` (a point at column x in the left image is at x − d in
    the right one), ``v = 0``; pixels with non-finite disparity are invalid.
    ``downscale`` > 1 crops to a multiple of it and averages blocks (images:
    ``cv2.INTER_AREA``; disparity: block mean divided by ``downscale``, invalid
    when any pixel of the block is). Full size: (500, 741). Needs scikit-image
    (ImportError otherwise).
    """
    import cv2
    from skimage.data import stereo_motorcycle

    left, right, disp = stereo_motorcycle()
    disp = np.asarray(disp, dtype=np.float32)
    k = int(downscale)
    if k > 1:
        h, w = (disp.shape[0] // k) * k, (disp.shape[1] // k) * k
        left, right, disp = left[:h, :w], right[:h, :w], disp[:h, :w]
        blocks = disp.reshape(h // k, k, w // k, k)
        ok = np.isfinite(blocks).all(axis=(1, 3))
        disp = np.where(ok, np.where(np.isfinite(blocks), blocks, 0).mean(axis=(1, 3)) / k, np.inf)
        disp = disp.astype(np.float32)
        left = cv2.resize(np.ascontiguousarray(left), (w // k, h // k), interpolation=cv2.INTER_AREA)
        right = cv2.resize(np.ascontiguousarray(right), (w // k, h // k), interpolation=cv2.INTER_AREA)
    valid = np.isfinite(disp)
    gt = np.zeros(disp.shape + (2,), np.float32)
    gt[..., 0] = np.where(valid, -disp, 0.0)

    def rgb(img):
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.dtype != np.uint8:
            img = np.clip(np.rint(img * (255.0 if img.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(img[..., :3])

    return Frame(rgb(left), rgb(right), gt, valid)


def load_sample(sample: Sample) -> Frame:
    """Read a sample's images, ground truth and masks (see :class:`Frame`)."""
    if sample.dataset == "motorcycle":
        return load_motorcycle()
    if sample.dataset == "motorcycle-small":
        return load_motorcycle(4)
    img1, img2 = read_image(sample.img1), read_image(sample.img2)
    if img1.shape != img2.shape:
        raise ValueError(f"{sample.img2}: size {img2.shape} differs from {sample.img1} {img1.shape}")
    gt = valid = occ = fg = None
    if sample.flow is not None:
        gt, valid = read_flow(sample.flow)
        huge = ~flow_valid_mask(gt)  # |u| or |v| > 1e9: .flo readers mark it, .pfm's does not
        if huge.any():
            valid &= ~huge
            gt[huge] = 0.0
        if gt.shape[:2] != img1.shape[:2]:
            raise ValueError(f"{sample.flow}: flow {gt.shape[:2]} does not match image {img1.shape[:2]}")
        if sample.flow_noc is not None:
            _, valid_noc = read_flow(sample.flow_noc)
            occ = valid & ~valid_noc
        if sample.occlusion is not None:
            occ = _grey_mask(sample.occlusion)
        if sample.obj_map is not None:
            fg = read_image(sample.obj_map)[..., 0] > 0
    return Frame(img1, img2, gt, valid, occ, fg)
