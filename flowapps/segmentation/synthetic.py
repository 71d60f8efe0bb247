"""Generated FBMS-like sequences: a textured background under a slow camera motion and 2–4
objects that move differently, with exact flow and instance masks (built from
:mod:`flownet2_core.data.synthetic` scenes), written in the FBMS-59 layout one sequence at a
time (:func:`write_fbms_sequence`) or as whole test sets.

Motions are those of a hand-held video rather than of FlyingChairs: the background pans by at
most ``max_background_speed`` px/frame with ≤ 0.3°/frame rotation and ≤ 0.3 %/frame zoom;
each object translates at 0.8–``max_object_speed`` px/frame relative to the background with
≤ 1°/frame rotation and ≤ 0.5 %/frame zoom. Every object's velocity differs from the
background's and from every other object's by at least ``min_speed_difference`` px/frame
(an object that moves with the background cannot be segmented by motion), and objects stay
mostly in view for the whole clip: each object's centre stays in the middle 60 % of the frame,
and at the first, middle and last frame at least ``min_visible`` (default 60 %) of the pixels it
would cover alone must be visible (not hidden by objects drawn over it), and at least
``min_area`` (default 1.5 %) of the frame, so that a sampling-8 grid puts a dozen or more
trajectories on it; otherwise the objects are drawn again (deterministically, from the same
seed).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from flownet2_core.data.synthetic import (AffineMotion, FlowSequence, Layer, Scene, make_sequence, random_shape_mask,
                                          random_texture, render)
from flownet2_core.io import write_flo, write_image

from .colors import PGM_GREYS, palette
from .fbms import FBMSSequence, ShotDefinition, color_code, read_sequence, write_definition, write_pnm, write_shot_list
from .trajectories import FlowStore

__all__ = ["make_fbms_like_sequence", "fbms_like_scene", "write_fbms_sequence", "write_synthetic_fbms_set"]


def make_fbms_like_sequence(seed: int, num_frames: int = 30, size: tuple[int, int] = (192, 256), *,
                            num_objects: int | None = None, max_background_speed: float = 1.0,
                            max_object_speed: float = 2.5, min_speed_difference: float = 1.0,
                            min_visible: float = 0.6, min_area: float = 0.015) -> FlowSequence:
    """A random FBMS-like scene rendered with exact forward/backward flow and masks.

    Args:
        seed: deterministic seed. num_objects: 2–4 at random when None.
        size: (H, W). Other arguments: see the module docstring.

    Returns:
        :class:`flownet2_core.data.synthetic.FlowSequence` (``masks``: 0 = background,
        1..K objects in drawing order).
    """
    scene = fbms_like_scene(seed, num_frames, size, num_objects=num_objects,
                            max_background_speed=max_background_speed, max_object_speed=max_object_speed,
                            min_speed_difference=min_speed_difference, min_visible=min_visible, min_area=min_area)
    return make_sequence(num_frames=num_frames, scene=scene)


def fbms_like_scene(seed: int, num_frames: int = 30, size: tuple[int, int] = (192, 256), *,
                    num_objects: int | None = None, max_background_speed: float = 1.0,
                    max_object_speed: float = 2.5, min_speed_difference: float = 1.0,
                    min_visible: float = 0.6, min_area: float = 0.015) -> Scene:
    """The :class:`~flownet2_core.data.synthetic.Scene` of :func:`make_fbms_like_sequence`,
    not rendered (render long clips frame by frame with ``render`` / ``scene_flow``).
    ``min_visible = min_area = 0`` skips the visibility check."""
    rng = np.random.default_rng(seed)
    h, w = size
    k = int(rng.integers(2, 5)) if num_objects is None else int(num_objects)
    if k < 1:
        raise ValueError(f"num_objects must be ≥ 1, got {k}")
    span = max(num_frames - 1, 1)
    bg_v = rng.uniform(-1, 1, 2) * max_background_speed / math.sqrt(2)
    bh, bw = int(h * 1.6) + 16, int(w * 1.6) + 16
    bg = Layer(random_texture(rng, bh, bw, ("noise", "checker", "stripes")[int(rng.integers(3))]),
               AffineMotion(center=((w - 1) / 2, (h - 1) / 2), anchor=((bw - 1) / 2, (bh - 1) / 2),
                            velocity=(float(bg_v[0]), float(bg_v[1])),
                            angular_velocity=float(np.deg2rad(rng.uniform(-0.3, 0.3))),
                            scale_rate=float(rng.uniform(-0.003, 0.003))))
    for _attempt in range(50):
        layers = [bg] + _random_objects(rng, k, bg_v, size, span, max_object_speed, min_speed_difference)
        scene = Scene((h, w), tuple(layers))
        if (min_visible <= 0 and min_area <= 0) or _objects_visible(scene, span, min_visible, min_area):
            break
    return scene


def _random_objects(rng, k, bg_v, size, span, max_object_speed, min_speed_difference) -> list[Layer]:
    h, w = size
    layers, velocities = [], [bg_v]
    for _ in range(k):
        for _attempt in range(200):
            speed = rng.uniform(0.8, max_object_speed)
            ang = rng.uniform(0, 2 * np.pi)
            v = bg_v + speed * np.array([np.cos(ang), np.sin(ang)])
            if all(np.linalg.norm(v - u) >= min_speed_difference for u in velocities):
                break
        velocities.append(v)
        side = rng.uniform(0.28, 0.42) * min(h, w)
        oh, ow = int(side * rng.uniform(0.8, 1.25)) + 4, int(side * rng.uniform(0.8, 1.25)) + 4
        end = v * span
        lo = np.maximum([0.2 * w, 0.2 * h], [0.2 * w - end[0], 0.2 * h - end[1]])
        hi = np.minimum([0.8 * w, 0.8 * h], [0.8 * w - end[0], 0.8 * h - end[1]])
        c = rng.uniform(np.minimum(lo, hi), np.maximum(lo, hi))
        mo = AffineMotion(center=(float(c[0]), float(c[1])), anchor=((ow - 1) / 2, (oh - 1) / 2),
                          velocity=(float(v[0]), float(v[1])), angle=float(rng.uniform(-np.pi, np.pi)),
                          angular_velocity=float(np.deg2rad(rng.uniform(-1, 1))),
                          scale_rate=float(rng.uniform(-0.005, 0.005)))
        layers.append(Layer(random_texture(rng, oh, ow), mo, random_shape_mask(rng, oh, ow)))
    return layers


def _objects_visible(scene: Scene, span: int, min_visible: float, min_area: float) -> bool:
    """Each object shows ≥ min_visible of its own area, and ≥ min_area of the frame, at the
    first, middle and last frame."""
    h, w = scene.size
    for t in (0.0, span / 2, float(span)):
        _, labels = render(scene, t)
        for k in range(1, len(scene.layers)):
            _, alone = render(Scene(scene.size, (scene.layers[0], scene.layers[k])), t)
            area = int((alone == 1).sum())
            seen = int((labels == k).sum())
            if area == 0 or seen < min_visible * area or seen < min_area * h * w:
                return False
    return True


def write_synthetic_fbms_set(out_dir, seeds, *, num_frames: int = 30, size=(192, 256), label_every: int = 5,
                             gt_format: str = "pgm", with_flow: bool = True, progress: bool = False,
                             **scene_options) -> list[FBMSSequence]:
    """Write one FBMS-layout sequence per seed (``out_dir/synth<seed>/``, exact flow under
    ``flow/exact``) plus ``out_dir/shots.txt`` (a shot list, paths relative to ``out_dir``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seqs = []
    for seed in tqdm(list(seeds), desc="generating", unit="seq", disable=not progress):
        s = make_fbms_like_sequence(seed, num_frames, size, **scene_options)
        name = f"synth{seed:04d}"
        seqs.append(write_fbms_sequence(out / name, name, s.frames, s.masks, label_every=label_every,
                                        gt_format=gt_format, flow_fw=s.flow_fw if with_flow else None,
                                        flow_bw=s.flow_bw if with_flow else None))
    write_shot_list(out / "shots.txt", [Path(q.folder.name) / "GroundTruth" / f"{q.name}Def.dat" for q in seqs])
    return seqs


def write_fbms_sequence(out_dir: PathLike, name: str, frames: np.ndarray, masks: np.ndarray, *,
                        labelled: list[int] | None = None, label_every: int = 5,
                        gt_format: str = "pgm", weights: np.ndarray | None = None,
                        flow_fw: np.ndarray | None = None, flow_bw: np.ndarray | None = None,
                        frame_ext: str = "png") -> FBMSSequence:
    """Write a sequence in the FBMS-59 layout (a generated one, e.g. from
    :func:`make_fbms_like_sequence`)::

        out_dir/<name>_0000.<frame_ext> …                 frames (1 file per frame)
        out_dir/GroundTruth/<name>Def.dat                 shot definition
        out_dir/GroundTruth/<name>_<f>.pgm                region labels of labelled frame f
                                                          (.ppm + same-named .pgm weights with
                                                          ``gt_format="ppm"``)
        out_dir/flow/exact/forward_<name>_0000.flo …      exact flow t→t+1, when given
        out_dir/flow/exact/backward_<name>_0001.flo …     exact flow t→t-1 (named by source frame,
                                                          :class:`~.trajectories.FlowStore`)

    Args:
        frames: (N, H, W, 3) uint8 RGB. masks: (N, H, W) int instance ids, 0 = background;
            region k of the definition is instance id k (ids 0..max over the whole sequence).
        labelled: frames that get ground truth (default: every ``label_every``-th frame and
            the last one).
        weights: (N, H, W) float in [0, 1], only for ``gt_format="ppm"`` (default 1).
        flow_fw, flow_bw: (N-1, H, W, 2) exact flows to store for the ``exact`` method.

    Returns:
        The sequence as :func:`~flowapps.segmentation.fbms.read_sequence` reads it back.
    """
    frames = np.asarray(frames)
    masks = np.asarray(masks)
    n = len(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or masks.shape != frames.shape[:3]:
        raise ValueError(f"frames must be (N, H, W, 3) and masks (N, H, W); got {frames.shape}, {masks.shape}")
    if gt_format not in ("pgm", "ppm"):
        raise ValueError(f"gt_format must be 'pgm' or 'ppm', got {gt_format!r}")
    if frame_ext not in ("png", "jpg", "ppm"):
        raise ValueError(f"frame_ext must be png, jpg or ppm, got {frame_ext!r}")
    out = Path(out_dir)
    (out / "GroundTruth").mkdir(parents=True, exist_ok=True)
    if labelled is None:
        labelled = sorted(set(range(0, n, label_every)) | {n - 1})
    if any(not 0 <= f < n for f in labelled):
        raise ValueError(f"labelled frames must lie in 0..{n - 1}, got {labelled}")
    nreg = int(masks.max()) + 1
    if gt_format == "pgm":
        if nreg > len(PGM_GREYS):
            raise ValueError(f"at most {len(PGM_GREYS)} regions fit the .pgm grey codes, got {nreg}")
        codes = PGM_GREYS[:nreg]
        lut = np.array(codes, np.uint8)
    else:
        pal = palette(nreg)
        codes = tuple(int(c) for c in color_code(pal))
        lut = pal
    for t in range(n):
        write_image(out / f"{name}_{t:04d}.{frame_ext}", frames[t])
    gt_files, inputs = [], []
    for f in labelled:
        stem = f"{name}_{f:04d}"
        if gt_format == "pgm":
            write_pnm(out / "GroundTruth" / f"{stem}.pgm", lut[masks[f]])
            gt_files.append(f"{stem}.pgm")
        else:
            write_pnm(out / "GroundTruth" / f"{stem}.ppm", lut[masks[f]].astype(np.uint8))
            w = np.ones(masks[f].shape) if weights is None else np.asarray(weights[f], np.float64)
            write_pnm(out / "GroundTruth" / f"{stem}.pgm", np.clip(np.rint(w * 255), 0, 255).astype(np.uint8))
            gt_files.append(f"{stem}.ppm")
        inputs.append(f"{stem}.{frame_ext}")
    definition = ShotDefinition(tuple(codes), n, tuple(labelled), tuple(gt_files), tuple(inputs))
    write_definition(out / "GroundTruth" / f"{name}Def.dat", definition)
    if flow_fw is not None or flow_bw is not None:
        store = FlowStore(out / "flow" / "exact", [f"{name}_{t:04d}" for t in range(n)])
        store.dir.mkdir(parents=True, exist_ok=True)
        for t in range(n - 1):
            if flow_fw is not None:
                write_flo(store.path("forward", t), flow_fw[t])
            if flow_bw is not None:
                write_flo(store.path("backward", t + 1), flow_bw[t])
    return read_sequence(out)
