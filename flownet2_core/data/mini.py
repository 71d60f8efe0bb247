"""Miniature flow datasets in the published layouts, from the synthetic generator.

Each ``write_mini_*`` function renders scenes with
:mod:`flownet2_core.data.synthetic` (exact flow; ``valid`` = visible in the
second frame) and writes them under ``root`` exactly as the real archive is
laid out (see :mod:`flownet2_core.data.datasets`), with the real file formats
(PNG / PPM images, ``.flo``, KITTI 16-bit PNG and 3-channel bottom-up ``.pfm``
flow). They exist so that the readers, the training datasets, metrics, runner
and reports run end to end in CI.

How the ground truth is derived from the generator:

* Sintel: ``training/flow`` = exact flow everywhere; ``occlusions`` = not
  ``valid`` (occluded or leaving the image); ``final`` = ``clean`` blurred and
  with noise (a cheap stand-in for Sintel's motion blur and fog).
* KITTI: ``flow_occ`` = exact flow below the top quarter (KITTI has no
  LiDAR ground truth in the sky); ``flow_noc`` = ``flow_occ`` ∩ ``valid``;
  2015 ``obj_map`` = instance ids (0 = background); 2012 ``image_0`` = grey.
* Middlebury: ``flow10.flo`` with occluded pixels unknown (1e10).
* FlyingChairs / HD1K / ChairsSDHom: exact flow everywhere (HD1K as KITTI
  PNGs; ChairsSDHom small displacements, ``.pfm``).
* FlyingThings3D: sequences with forward and backward flow; ``final`` pass =
  ``clean`` blurred and with noise; the right camera is another sequence (not
  a stereo view). As in the real data, the edge frames carry flow pointing at
  frames that are not written (full release: ``into_future`` of the last and
  ``into_past`` of the first frame; subset: ``into_future`` of a sequence's
  last frame, numbered like the next sequence's first).

Every writer returns the root and is deterministic in ``seed``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..io import write_flo, write_image, write_kitti_flow, write_pfm_flow
from .synthetic import make_pair, make_sequence

__all__ = [
    "MINI_ROOTS",
    "write_mini_all",
    "write_mini_chairs",
    "write_mini_chairs_sdhom",
    "write_mini_hd1k",
    "write_mini_kitti2012",
    "write_mini_kitti2015",
    "write_mini_middlebury",
    "write_mini_sintel",
    "write_mini_things",
    "write_mini_things_subset",
    "write_mini_training",
]

MINI_ROOTS = {"sintel-clean": "Sintel", "sintel-final": "Sintel", "kitti-2012": "KITTI2012",
              "kitti-2015": "KittiFlow", "middlebury": "middlebury", "chairs": "FlyingChairs",
              "hd1k": "hd1k"}
"""Folder of each dataset under :func:`write_mini_all`'s root (torchvision's names)."""

MIDDLEBURY_NAMES = ("Dimetrodon", "Grove2", "Grove3", "Hydrangea", "RubberWhale", "Urban2",
                    "Urban3", "Venus")


def _dir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _final_pass(img: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blurred = cv2.GaussianBlur(img, (5, 5), 1.2).astype(np.float32)
    noisy = blurred * 0.85 + 20 + rng.normal(0, 3, img.shape)  # haze + noise
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_mini_sintel(root: str | os.PathLike, *, scenes: int = 2, frames: int = 3,
                      test_scenes: int = 1, size: tuple[int, int] = (64, 96), seed: int = 0) -> Path:
    """``training/{clean,final,flow,occlusions}/<scene>/`` and ``test/{clean,final}/<scene>/``.

    Scenes are named ``scene_1``, … (test: ``test_1``, …); ``frames`` images
    per scene, so ``frames - 1`` flow files.
    """
    root = Path(root)
    for k in range(scenes + test_scenes):
        train = k < scenes
        name = f"scene_{k + 1}" if train else f"test_{k - scenes + 1}"
        seq = make_sequence(seed=seed + 100 * k, num_frames=frames, size=size, num_objects=2,
                            max_translation=4.0)
        top = root / ("training" if train else "test")
        for t in range(frames):
            fname = f"frame_{t + 1:04d}.png"
            write_image(_dir(top / "clean" / name) / fname, seq.frames[t])
            write_image(_dir(top / "final" / name) / fname, _final_pass(seq.frames[t], seed + 7 * k + t))
            if train and t < frames - 1:
                write_flo(_dir(top / "flow" / name) / f"frame_{t + 1:04d}.flo", seq.flow_fw[t])
                occ = np.where(seq.valid_fw[t], 0, 255).astype(np.uint8)
                write_image(_dir(top / "occlusions" / name) / fname, occ)
    return root


def _kitti(root: Path, year: int, pairs: int, test_pairs: int, size, seed: int) -> Path:
    for k in range(pairs + test_pairs):
        train = k < pairs
        idx = k if train else k - pairs
        p = make_pair(seed + k, size, mode="chairs", num_objects=2, max_translation=8.0)
        top = root / ("training" if train else "testing")
        img_dir = "colored_0" if year == 2012 else "image_2"
        for suffix, img in (("10", p.img1), ("11", p.img2)):
            write_image(_dir(top / img_dir) / f"{idx:06d}_{suffix}.png", img)
            if year == 2012:
                grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
                write_image(_dir(top / "image_0") / f"{idx:06d}_{suffix}.png", grey)
        if not train:
            continue
        has_gt = np.ones(size, bool)
        has_gt[: size[0] // 4] = False
        write_kitti_flow(_dir(top / "flow_occ") / f"{idx:06d}_10.png", p.flow, has_gt)
        write_kitti_flow(_dir(top / "flow_noc") / f"{idx:06d}_10.png", p.flow, has_gt & p.valid)
        if year == 2015:
            write_image(_dir(top / "obj_map") / f"{idx:06d}_10.png", p.labels1.astype(np.uint8))
    return root


def write_mini_kitti2012(root: str | os.PathLike, *, pairs: int = 3, test_pairs: int = 1,
                         size: tuple[int, int] = (64, 96), seed: int = 20) -> Path:
    """``training/{colored_0,image_0,flow_occ,flow_noc}/%06d_1{0,1}.png`` and ``testing/``."""
    return _kitti(Path(root), 2012, pairs, test_pairs, size, seed)


def write_mini_kitti2015(root: str | os.PathLike, *, pairs: int = 3, test_pairs: int = 1,
                         size: tuple[int, int] = (64, 96), seed: int = 40) -> Path:
    """``training/{image_2,flow_occ,flow_noc,obj_map}/%06d_1{0,1}.png`` and ``testing/image_2``."""
    return _kitti(Path(root), 2015, pairs, test_pairs, size, seed)


def write_mini_middlebury(root: str | os.PathLike, *, sequences: int = 2,
                          size: tuple[int, int] = (64, 96), seed: int = 60) -> Path:
    """``other-data/<Seq>/frame1{0,1}.png`` and ``other-gt-flow/<Seq>/flow10.flo``."""
    root = Path(root)
    for k in range(sequences):
        name = MIDDLEBURY_NAMES[k % len(MIDDLEBURY_NAMES)] + ("" if k < len(MIDDLEBURY_NAMES) else str(k))
        p = make_pair(seed + k, size, mode="sd", num_objects=2)
        write_image(_dir(root / "other-data" / name) / "frame10.png", p.img1)
        write_image(_dir(root / "other-data" / name) / "frame11.png", p.img2)
        write_flo(_dir(root / "other-gt-flow" / name) / "flow10.flo", p.flow, p.valid)
    return root


def write_mini_chairs(root: str | os.PathLike, *, pairs: int = 4, val_every: int = 2,
                      size: tuple[int, int] = (64, 96), seed: int = 80) -> Path:
    """``data/%05d_img{1,2}.ppm``, ``data/%05d_flow.flo`` (numbered from 00001) and
    ``FlyingChairs_train_val.txt`` (1 = train, 2 = val; every ``val_every``-th pair is val)."""
    root = Path(root)
    codes = []
    for k in range(pairs):
        p = make_pair(seed + k, size, mode="chairs", max_translation=8.0)
        stem = f"{k + 1:05d}"
        write_image(_dir(root / "data") / f"{stem}_img1.ppm", p.img1)
        write_image(root / "data" / f"{stem}_img2.ppm", p.img2)
        write_flo(root / "data" / f"{stem}_flow.flo", p.flow)
        codes.append(2 if (k + 1) % val_every == 0 else 1)
    (root / "FlyingChairs_train_val.txt").write_text("".join(f"{c}\n" for c in codes))
    return root


def write_mini_hd1k(root: str | os.PathLike, *, sequences: int = 1, frames: int = 3,
                    size: tuple[int, int] = (64, 96), seed: int = 90) -> Path:
    """``hd1k_input/image_2/%06d_%04d.png`` and ``hd1k_flow_gt/flow_occ/%06d_%04d.png``
    (flow ``t`` maps image ``t`` to ``t + 1``)."""
    root = Path(root)
    for s in range(sequences):
        seq = make_sequence(seed=seed + s, num_frames=frames, size=size, num_objects=2, max_translation=4.0)
        for t in range(frames):
            write_image(_dir(root / "hd1k_input" / "image_2") / f"{s:06d}_{t:04d}.png", seq.frames[t])
            if t < frames - 1:
                write_kitti_flow(_dir(root / "hd1k_flow_gt" / "flow_occ") / f"{s:06d}_{t:04d}.png",
                                 seq.flow_fw[t])
    return root


def write_mini_all(root: str | os.PathLike, *, size: tuple[int, int] = (64, 96),
                   scale: int = 1) -> dict[str, Path]:
    """Every miniature dataset under ``root/<MINI_ROOTS name>``; returns dataset name → root.

    ``scale`` multiplies the number of pairs (1: 2–4 pairs per dataset).
    """
    root = Path(root)
    roots = {
        "sintel": write_mini_sintel(root / "Sintel", scenes=2, frames=2 + scale, size=size),
        "kitti-2012": write_mini_kitti2012(root / "KITTI2012", pairs=2 * scale, size=size),
        "kitti-2015": write_mini_kitti2015(root / "KittiFlow", pairs=2 * scale, size=size),
        "middlebury": write_mini_middlebury(root / "middlebury", sequences=2 * scale, size=size),
        "chairs": write_mini_chairs(root / "FlyingChairs", pairs=4 * scale, size=size),
        "hd1k": write_mini_hd1k(root / "hd1k", frames=1 + 2 * scale, size=size),
    }
    out = {"sintel-clean": roots["sintel"], "sintel-final": roots["sintel"]}
    out.update({k: v for k, v in roots.items() if k != "sintel"})
    return out


def write_mini_chairs_sdhom(root: str | os.PathLike, *, pairs: int = 3, test_pairs: int = 1,
                            size: tuple[int, int] = (64, 96), seed: int = 100) -> Path:
    """``data/{train,test}/t0/%05d.png``, ``t1/%05d.png`` and ``flow/%05d.pfm`` (3 channels,
    rows stored bottom-up), numbered from 00000 in each split; small displacements."""
    root = Path(root)
    for k in range(pairs + test_pairs):
        split, idx = ("train", k) if k < pairs else ("test", k - pairs)
        p = make_pair(seed + k, size, mode="sd", num_objects=2)
        top = root / "data" / split
        write_image(_dir(top / "t0") / f"{idx:05d}.png", p.img1)
        write_image(_dir(top / "t1") / f"{idx:05d}.png", p.img2)
        write_pfm_flow(_dir(top / "flow") / f"{idx:05d}.pfm", p.flow)
    return root


_CAMERAS = ("left", "right")


def _things_sequence(seed: int, frames: int, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames`` images with forward and backward flow for each, edge flows included.

    Renders ``frames + 2`` frames and keeps the inner ones, so image ``t`` has a
    forward flow to ``t + 1`` and a backward flow to ``t - 1`` even at the ends.
    """
    seq = make_sequence(seed=seed, num_frames=frames + 2, size=size, num_objects=2, max_translation=4.0)
    return seq.frames[1:-1], seq.flow_fw[1:], seq.flow_bw[:-1]


def write_mini_things(root: str | os.PathLike, *, sequences: int = 2, frames: int = 3,
                      test_sequences: int = 1, size: tuple[int, int] = (64, 96), seed: int = 120,
                      first_frame: int = 6) -> Path:
    """FlyingThings3D's full-release layout::

        frames_{cleanpass,finalpass}/{TRAIN,TEST}/<A|B|C>/%04d/{left,right}/%04d.png
        optical_flow/{TRAIN,TEST}/<A|B|C>/%04d/into_future/{left,right}/OpticalFlowIntoFuture_%04d_{L,R}.pfm
        optical_flow/{TRAIN,TEST}/<A|B|C>/%04d/into_past/{left,right}/OpticalFlowIntoPast_%04d_{L,R}.pfm

    Sequence ``k`` of a split is ``"ABC"[k % 3]/%04d``; frames are numbered from
    ``first_frame`` (the release's sequences run 0006–0015). Every frame has both
    flows, as in the release, so ``frames`` images give ``frames - 1`` pairs per
    camera and direction.
    """
    root = Path(root)
    for k in range(sequences + test_sequences):
        split, idx = ("TRAIN", k) if k < sequences else ("TEST", k - sequences)
        seq = f"{'ABC'[idx % 3]}/{idx:04d}"
        for c, cam in enumerate(_CAMERAS):
            images, fw, bw = _things_sequence(seed + 10 * k + c, frames, size)
            flow_dir = root / "optical_flow" / split / seq
            tag = cam[0].upper()
            for t in range(frames):
                n = f"{first_frame + t:04d}"
                write_image(_dir(root / "frames_cleanpass" / split / seq / cam) / f"{n}.png", images[t])
                write_image(_dir(root / "frames_finalpass" / split / seq / cam) / f"{n}.png",
                            _final_pass(images[t], seed + 31 * k + 7 * c + t))
                write_pfm_flow(_dir(flow_dir / "into_future" / cam) / f"OpticalFlowIntoFuture_{n}_{tag}.pfm", fw[t])
                write_pfm_flow(_dir(flow_dir / "into_past" / cam) / f"OpticalFlowIntoPast_{n}_{tag}.pfm", bw[t])
    return root


def write_mini_things_subset(root: str | os.PathLike, *, sequences: int = 2, frames: int = 3,
                             val_sequences: int = 1, size: tuple[int, int] = (64, 96),
                             seed: int = 140) -> Path:
    """The ``FlyingThings3D_subset`` layout::

        {train,val}/image_{clean,final}/{left,right}/%07d.png
        {train,val}/flow/{left,right}/{into_future,into_past}/%07d.flo

    Frames are numbered through all sequences of a split (from 0000000). A
    sequence's last frame has an ``into_future`` flow (to a frame that is not
    written; its number is the next sequence's first frame) and its first
    frame no ``into_past`` flow, so the readers must not pair across the
    boundary: ``frames`` images give ``frames - 1`` pairs per camera.
    """
    root = Path(root)
    counters = {"train": 0, "val": 0}
    for k in range(sequences + val_sequences):
        split = "train" if k < sequences else "val"
        start = counters[split]
        for c, cam in enumerate(_CAMERAS):
            images, fw, bw = _things_sequence(seed + 10 * k + c, frames, size)
            top = root / split
            for t in range(frames):
                n = f"{start + t:07d}"
                write_image(_dir(top / "image_clean" / cam) / f"{n}.png", images[t])
                write_image(_dir(top / "image_final" / cam) / f"{n}.png",
                            _final_pass(images[t], seed + 31 * k + 7 * c + t))
                write_flo(_dir(top / "flow" / cam / "into_future") / f"{n}.flo", fw[t])
                if t > 0:
                    write_flo(_dir(top / "flow" / cam / "into_past") / f"{n}.flo", bw[t])
        counters[split] = start + frames
    return root


def write_mini_training(root: str | os.PathLike, *, size: tuple[int, int] = (64, 96),
                        things_layout: str = "subset", scale: int = 1) -> dict[str, Path]:
    """The training sets under ``root``: ``FlyingChairs``, ``ChairsSDHom`` and
    ``FlyingThings3D_subset`` (``things_layout="subset"``, what FlowNet 2.0 was
    trained on) or ``FlyingThings3D`` (``"full"``); returns dataset name → root
    (``things-clean`` and ``things-final`` share theirs).
    """
    if things_layout not in ("subset", "full"):
        raise ValueError(f"things_layout must be 'subset' or 'full', got {things_layout!r}")
    root = Path(root)
    if things_layout == "subset":
        things = write_mini_things_subset(root / "FlyingThings3D_subset", sequences=2 * scale, size=size)
    else:
        things = write_mini_things(root / "FlyingThings3D", sequences=2 * scale, size=size)
    return {
        "chairs": write_mini_chairs(root / "FlyingChairs", pairs=4 * scale, size=size),
        "chairs-sdhom": write_mini_chairs_sdhom(root / "ChairsSDHom", pairs=3 * scale, size=size),
        "things-clean": things,
        "things-final": things,
    }
