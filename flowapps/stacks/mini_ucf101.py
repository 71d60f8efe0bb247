"""A generated miniature UCF101, in the real layout, with exact flow.

Two families of classes, so both streams of a two-stream network can be
proved on it:

* **motion classes** (``kind="motion"``): every class shows the same kinds of
  random textured objects over a random, slowly drifting background; only the
  objects' motion pattern tells the class apart (direction, rotation,
  expansion, contraction, oscillation). A spatial stream cannot beat chance.
* **appearance classes** (``kind="appearance"``): each class has its own
  object texture and colour; the motion is drawn from one distribution shared
  by all classes. A temporal stream cannot beat chance.

:func:`write_mini_ucf101` writes::

    <root>/videos/<Class>/v_<Class>_gGG_cCC.avi     MJPG videos
    <root>/ucfTrainTestlist/classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt  (CRLF)

Split k tests groups ``(k−1)·b+1 … k·b`` with ``b = round(7·G/25)`` for ``G``
groups, which is the official rule (7 of 25 groups per split) when G = 25.
Options add a deliberately corrupt video to the train list and the
``HandstandPushups`` case mismatch (file names whose case differs from the
class folder and split files). Every video is deterministic in (seed, class,
group, clip), so :func:`video_scene` rebuilds its scene for exact flow.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from flownet2_core.data.synthetic import (AffineMotion, Layer, Scene, random_shape_mask,
                                          random_texture, render, scene_flow)
from flownet2_core.io import write_video

__all__ = ["MOTION_CLASSES", "APPEARANCE_CLASSES", "MiniUCF101", "video_scene", "render_video",
           "write_mini_ucf101", "test_groups"]

MOTION_CLASSES = ("MoveLeft", "MoveRight", "MoveUp", "MoveDown", "RotateClockwise",
                  "RotateAnticlockwise", "Expand", "Contract", "Oscillate")
APPEARANCE_CLASSES = ("StripedThing", "CheckeredThing", "SpeckledThing", "ShadedThing")
_APPEARANCE_TEXTURE = {"StripedThing": "stripes", "CheckeredThing": "checker",
                       "SpeckledThing": "noise", "ShadedThing": "gradient"}


def test_groups(num_groups: int, split: int) -> list[int]:
    """Groups (1-based) tested in ``split`` (1..3); the rest are training groups."""
    b = max(1, round(7 * num_groups / 25))
    return [g for g in range((split - 1) * b + 1, split * b + 1) if g <= num_groups]


def _seed(seed: int, name: str, group: int, clip: int) -> int:
    # Stable across runs and Python versions (no hash()).
    return (seed * 1_000_003 + sum((i + 1) * ord(c) for i, c in enumerate(name)) * 7919
            + group * 101 + clip) % (2 ** 32)


def _object_motion(rng: np.random.Generator, cls: str, center, anchor) -> AffineMotion:
    speed = rng.uniform(1.5, 3.0)
    base = dict(center=center, anchor=anchor, angle=float(rng.uniform(-np.pi, np.pi)))
    if cls == "MoveLeft":
        return AffineMotion(velocity=(-speed, rng.uniform(-0.3, 0.3)), **base)
    if cls == "MoveRight":
        return AffineMotion(velocity=(speed, rng.uniform(-0.3, 0.3)), **base)
    if cls == "MoveUp":
        return AffineMotion(velocity=(rng.uniform(-0.3, 0.3), -speed), **base)
    if cls == "MoveDown":
        return AffineMotion(velocity=(rng.uniform(-0.3, 0.3), speed), **base)
    if cls in ("RotateClockwise", "RotateAnticlockwise"):
        # +angle turns clockwise on screen (y points down).
        sign = 1.0 if cls == "RotateClockwise" else -1.0
        return AffineMotion(angular_velocity=sign * math.radians(rng.uniform(4, 8)), **base)
    if cls in ("Expand", "Contract"):
        rate = rng.uniform(0.025, 0.045) * (1 if cls == "Expand" else -1)
        return AffineMotion(scale_rate=rate, scale=1.0 if cls == "Expand" else 1.4, **base)
    if cls == "Oscillate":
        th = rng.uniform(0, np.pi)
        amp = rng.uniform(6, 10)
        return AffineMotion(amplitude=(amp * math.cos(th), amp * math.sin(th)),
                            period=float(rng.uniform(6, 10)), **base)
    # Appearance classes: one shared motion distribution (any direction).
    th = rng.uniform(0, 2 * np.pi)
    return AffineMotion(velocity=(speed * math.cos(th), speed * math.sin(th)), **base)


def video_scene(cls: str, group: int, clip: int, *, seed: int = 0, size=(120, 160),
                num_frames: int = 24) -> Scene:
    """The scene of one video (deterministic). ``size`` is (H, W)."""
    if cls not in MOTION_CLASSES + APPEARANCE_CLASSES:
        raise ValueError(f"unknown class {cls!r}")
    rng = np.random.default_rng(_seed(seed, cls, group, clip))
    h, w = size
    bh, bw = int(h * 1.3) + 8, int(w * 1.3) + 8
    drift = rng.uniform(-0.4, 0.4, 2)
    background = Layer(random_texture(rng, bh, bw, ("noise", "gradient", "noise")[int(rng.integers(3))]),
                       AffineMotion(center=((w - 1) / 2, (h - 1) / 2), anchor=((bw - 1) / 2, (bh - 1) / 2),
                                    velocity=(float(drift[0]), float(drift[1]))))
    side = int(min(h, w) * rng.uniform(0.35, 0.5)) + 4
    kind = _APPEARANCE_TEXTURE.get(cls)
    tex = random_texture(rng, side, side, kind)
    if kind is not None:
        # Appearance classes also own a hue: tint the texture towards it.
        hue = np.array({"stripes": (230, 60, 60), "checker": (60, 200, 60),
                        "noise": (60, 90, 230), "gradient": (230, 200, 40)}[kind], np.float32)
        tex = 0.5 * tex + 0.5 * hue
    anchor = ((side - 1) / 2, (side - 1) / 2)
    # Start so that the object stays mostly in view for the whole clip.
    mo = _object_motion(rng, cls, (0.0, 0.0), anchor)
    end = np.array(mo.velocity) * (num_frames - 1)
    c = np.array([(w - 1) / 2, (h - 1) / 2]) - end / 2 + rng.uniform(-0.1, 0.1, 2) * [w, h]
    mo = dataclasses.replace(mo, center=(float(c[0]), float(c[1])))
    obj = Layer(tex, mo, random_shape_mask(rng, side, side))
    return Scene((h, w), (background, obj))


def render_video(scene: Scene, num_frames: int, with_flow: bool = False):
    """(T, H, W, 3) uint8 RGB frames; with ``with_flow`` also the exact forward
    flow (T−1, H, W, 2) between consecutive frames."""
    frames, flows = [], []
    for t in range(num_frames):
        img, labels = render(scene, float(t))
        frames.append(img)
        if with_flow and t + 1 < num_frames:
            flows.append(scene_flow(scene, float(t), float(t + 1), labels)[0])
    frames = np.stack(frames)
    return (frames, np.stack(flows)) if with_flow else frames


@dataclass(frozen=True)
class MiniUCF101:
    """Paths and settings of a written miniature UCF101."""

    root: Path
    classes: tuple[str, ...]
    num_groups: int
    clips_per_group: int
    num_frames: int
    size: tuple[int, int]
    seed: int
    broken: str | None  # relative path of the corrupt video, if any

    @property
    def video_root(self) -> Path:
        return self.root / "videos"

    @property
    def split_dir(self) -> Path:
        return self.root / "ucfTrainTestlist"

    def file_class(self, cls: str, case_mismatch: bool) -> str:
        return _mismatched(cls) if case_mismatch else cls


def _mismatched(cls: str) -> str:
    # Like HandstandPushups/v_HandStandPushups_*: flip the case of one inner letter.
    i = next((k for k in range(1, len(cls)) if cls[k].isalpha()), 1)
    return cls[:i] + cls[i].swapcase() + cls[i + 1:]


def write_mini_ucf101(root: str | os.PathLike, *, kind: str = "motion", classes: tuple[str, ...] | None = None,
                      num_groups: int = 6, clips_per_group: int = 2, num_frames: int = 24,
                      size: tuple[int, int] = (120, 160), seed: int = 0, broken: bool = True,
                      case_mismatch: bool = True, fps: float = 25.0, progress: bool = False) -> MiniUCF101:
    """Write a miniature UCF101 under ``root`` (see module docstring).

    ``kind`` picks the class family (``motion`` or ``appearance``) unless
    ``classes`` names them. With ``case_mismatch`` the first class's files are
    named with different case than its folder and split entries; with
    ``broken`` a corrupt ``.avi`` is added to the first class and to every
    train list.
    """
    if classes is None:
        classes = {"motion": MOTION_CLASSES, "appearance": APPEARANCE_CLASSES}.get(kind)
        if classes is None:
            raise ValueError(f"kind must be 'motion' or 'appearance', got {kind!r}")
    root = Path(root)
    vroot, sdir = root / "videos", root / "ucfTrainTestlist"
    sdir.mkdir(parents=True, exist_ok=True)
    crlf = "\r\n"
    (sdir / "classInd.txt").write_text("".join(f"{i + 1} {c}{crlf}" for i, c in enumerate(classes)),
                                       newline="")
    entries = []  # (rel as listed, label, group)
    todo = [(ci, cls, g, c) for ci, cls in enumerate(classes)
            for g in range(1, num_groups + 1) for c in range(1, clips_per_group + 1)]
    for ci, cls, g, c in tqdm(todo, desc="mini-UCF101", unit="video", disable=not progress):
        file_cls = _mismatched(cls) if (case_mismatch and ci == 0) else cls
        (vroot / cls).mkdir(parents=True, exist_ok=True)
        name = f"v_{file_cls}_g{g:02d}_c{c:02d}.avi"
        scene = video_scene(cls, g, c, seed=seed, size=size, num_frames=num_frames)
        write_video(vroot / cls / name, render_video(scene, num_frames), fps=fps)
        entries.append((f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi", ci, g))
    broken_rel = None
    if broken:
        cls = classes[0]
        broken_rel = f"{cls}/v_{cls}_g01_c{clips_per_group + 1:02d}.avi"
        (vroot / broken_rel).write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(range(256)) * 4)
        entries.append((broken_rel, 0, 1))
    for k in (1, 2, 3):
        tg = set(test_groups(num_groups, k))
        train = "".join(f"{rel} {lab + 1}{crlf}" for rel, lab, g in entries
                        if g not in tg or rel == broken_rel)
        test = "".join(f"{rel}{crlf}" for rel, lab, g in entries
                       if g in tg and rel != broken_rel)
        (sdir / f"trainlist0{k}.txt").write_text(train, newline="")
        (sdir / f"testlist0{k}.txt").write_text(test, newline="")
    return MiniUCF101(root, tuple(classes), num_groups, clips_per_group, num_frames, tuple(size), seed,
                      broken_rel)


def write_exact_stacks(mini: MiniUCF101, out_dir: str | os.PathLike, *, bound: float = 20.0,
                       quality: int = 98, progress: bool = False) -> Path:
    """Flow stacks of a mini-UCF101 made from the **exact** flow of its scenes.

    Same layout, records, manifest and annotation lists as ``flownet2 stacks
    extract`` (method recorded as ``exact``), at the videos' own size; frames
    are the rendered ones. The corrupt video, if any, is recorded as failed.
    Returns the output folder.
    """
    from .ucf101 import collect_videos
    from .extract import ExtractConfig, begin_output, commit_video, finalize, record_failure
    from .rawframes import write_flow_field, write_frame

    out = Path(out_dir)
    cfg = ExtractConfig(method="exact", short_side=None, bound=bound, quality=quality)
    begin_output(out, cfg, mini.video_root, mini.split_dir)
    for video in tqdm(collect_videos(str(mini.video_root), str(mini.split_dir), None),
                      desc="exact stacks", unit="video", disable=not progress):
        if video.rel == mini.broken or Path(video.rel).stem.lower() == Path(mini.broken or "").stem.lower():
            record_failure(out, video, "ValueError: corrupt video (generated on purpose)")
            continue
        cls = video.rel.split("/")[0]
        group, clip = video.group, int(Path(video.rel).stem.rsplit("_c", 1)[1])
        scene = video_scene(cls, group, clip, seed=mini.seed, size=mini.size, num_frames=mini.num_frames)
        frames, flows = render_video(scene, mini.num_frames, with_flow=True)
        final = out / video.frame_dir
        tmp = final.parent / f".tmp.{final.name}.{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            write_frame(tmp, i + 1, f, cfg.rgb_quality)
        for i, f in enumerate(flows):
            write_flow_field(tmp, i + 1, f, bound=bound, quality=quality)
        record = {"rel": video.rel, "frame_dir": video.frame_dir, "label": video.label,
                  "frames": len(frames), "flows": len(flows), "width": int(frames.shape[2]),
                  "height": int(frames.shape[1])}
        commit_video(out, video, tmp, record)
    finalize(out)
    return out
