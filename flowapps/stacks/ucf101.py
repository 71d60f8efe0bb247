"""UCF101's official split files and video tree.

Layout::

    <root>/<Class>/v_<Class>_gGG_cCC.avi
    <splits>/classInd.txt        "<1..101> <ClassName>"
    <splits>/trainlist0K.txt     "<Class>/v_<Class>_gGG_cCC.avi <label 1..101>"
    <splits>/testlist0K.txt      "<Class>/v_<Class>_gGG_cCC.avi"

The files use CRLF line endings. One class folder, ``HandstandPushups``,
holds files named ``v_HandStandPushups_*``: paths are resolved
case-insensitively against what is on disk.

Labels are 0-based everywhere in this package (``classInd`` index − 1), as in
mmaction2's annotation lists.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Video", "collect_videos", "read_class_index", "read_split", "resolve_videos", "video_id",
           "read_video_list", "VIDEO_EXTENSIONS"]

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg")
_NAME_RE = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Video:
    """One video to process.

    ``rel`` is its path relative to the video root as it exists on disk
    (e.g. ``HandstandPushups/v_HandStandPushups_g01_c01.avi``); ``frame_dir``
    is the output folder relative to the output root (``rel`` without its
    extension, as mmaction2 names rawframe folders); ``label`` is 0-based or
    -1 when unknown.
    """

    rel: str
    label: int = -1

    @property
    def frame_dir(self) -> str:
        return str(Path(self.rel).with_suffix("")).replace(os.sep, "/")

    @property
    def group(self) -> int | None:
        m = _NAME_RE.match(Path(self.rel).stem)
        return int(m["group"]) if m else None


def video_id(rel: str) -> str:
    """A file-name-safe id for a video (its frame_dir with '/' → '__')."""
    return str(Path(rel).with_suffix("")).replace(os.sep, "/").replace("/", "__")


def _lines(path: Path) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such split file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a split file")
    # universal newlines take care of CRLF
    return [ln.strip() for ln in path.read_text(encoding="utf-8", errors="strict").splitlines() if ln.strip()]


def read_class_index(split_dir: str | os.PathLike) -> dict[str, int]:
    """``classInd.txt`` → {class name: 0-based label}."""
    path = Path(split_dir) / "classInd.txt"
    classes: dict[str, int] = {}
    where: dict[str, int] = {}
    for n, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{n}: expected '<index> <ClassName>', got {line!r}")
        if parts[1].lower() in where:
            raise ValueError(f"{path}:{n}: class {parts[1]} is already listed on line {where[parts[1].lower()]}")
        where[parts[1].lower()] = n
        classes[parts[1]] = int(parts[0]) - 1
    if sorted(classes.values()) != list(range(len(classes))):
        raise ValueError(f"{path}: class indices are not 1..{len(classes)}")
    return classes


def _case_index(root: Path) -> dict[str, str]:
    """Lower-cased 'Class/file' → the real relative path, for every video under root."""
    index = {}
    for cls in os.scandir(root):
        if not cls.is_dir():
            continue
        for f in os.scandir(cls.path):
            if f.name.lower().endswith(VIDEO_EXTENSIONS):
                rel = f"{cls.name}/{f.name}"
                index[rel.lower()] = rel
    return index


def resolve_videos(root: str | os.PathLike, rels: list[str]) -> tuple[list[str], list[str]]:
    """Match split-file paths to files under ``root`` ignoring case.

    Returns (resolved paths in input order, paths not found).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: video root is not a folder")
    index = _case_index(root)
    found, missing = [], []
    for rel in rels:
        real = index.get(rel.replace("\\", "/").lower())
        (found if real else missing).append(real or rel)
    return found, missing


def read_split(split_dir: str | os.PathLike, split: int, subset: str) -> list[Video]:
    """Videos of ``trainlist0{split}.txt`` or ``testlist0{split}.txt``.

    Labels come from ``classInd.txt`` by the class folder (test lists carry no
    label); the label in a train list is checked against it.
    """
    if split not in (1, 2, 3):
        raise ValueError(f"split must be 1, 2 or 3, got {split}")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    split_dir = Path(split_dir)
    classes = {k.lower(): v for k, v in read_class_index(split_dir).items()}
    path = split_dir / f"{subset}list0{split}.txt"
    videos, seen = [], {}
    for n, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(f"{path}:{n}: expected '<Class>/<video> [label 1..{len(classes)}]', got {line!r}")
        rel = parts[0].replace("\\", "/")
        cls = rel.split("/")[0].lower()
        if cls not in classes:
            raise ValueError(f"{path}:{n}: class folder of {rel!r} is not in classInd.txt")
        label = classes[cls]
        if len(parts) > 1 and int(parts[1]) - 1 != label:
            raise ValueError(f"{path}:{n}: label {parts[1]} disagrees with classInd.txt ({label + 1})")
        _check_duplicate(path, n, rel, seen)
        videos.append(Video(rel, label))
    return videos


def _check_duplicate(path: Path, n: int, rel: str, seen: dict[str, int]) -> None:
    """A video listed twice would be extracted twice at once and weigh double in training:
    refuse it, naming both lines (paths compare as the file system resolves them here,
    ignoring case, as UCF101's own lists need)."""
    key = rel.lower()
    if key in seen:
        raise ValueError(f"{path}:{n}: {rel} is already listed on line {seen[key]}")
    seen[key] = n


def read_video_list(list_file: str | os.PathLike) -> list[Video]:
    """A plain list of videos: one ``relative/path.ext [label]`` per line (label 0-based)."""
    path = Path(list_file)
    out, seen = [], {}
    for n, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(f"{path}:{n}: expected '<relative path> [label ≥ 0]', got {line!r}")
        rel = parts[0].replace("\\", "/")
        _check_duplicate(path, n, rel, seen)
        out.append(Video(rel, int(parts[1]) if len(parts) == 2 else -1))
    return out


def collect_videos(video_root: str, split_dir: str | None, list_file: str | None) -> list[Video]:
    """Every video of the three UCF101 splits (resolved to on-disk case), or of a list file."""
    if bool(split_dir) == bool(list_file):
        raise ValueError("give exactly one of --splits DIR (UCF101) or --list FILE")
    if split_dir:
        videos, seen = [], set()
        for k in (1, 2, 3):
            for subset in ("train", "test"):
                for v in read_split(split_dir, k, subset):
                    if v.rel.lower() not in seen:
                        seen.add(v.rel.lower())
                        videos.append(v)
    else:
        videos = read_video_list(list_file)
    found, missing = resolve_videos(video_root, [v.rel for v in videos])
    if missing:
        raise ValueError(f"{len(missing)} listed videos are not under {video_root}, e.g. {missing[0]}")
    return [Video(rel, v.label) for rel, v in zip(found, videos)]
