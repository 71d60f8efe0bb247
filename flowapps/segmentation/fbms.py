"""FBMS-59 files: shot definitions, ground-truth label images, track files, list files and
sequence folders (generated sequences are written in this layout by
:func:`flowapps.segmentation.synthetic.write_fbms_sequence`).

The formats are those of the Freiburg-Berkeley Motion Segmentation benchmark (Ochs, Malik &
Brox, TPAMI 2014) and its evaluation program MoSegEval v2.0:

``GroundTruth/<seq>Def.dat``
    read **by position**, exactly as the official program reads it (each number alone on its
    line; the text lines are skipped unread)::

        <header line>
        <blank>
        Total number of regions:
        N
        Scale of region 0:            ┐ N times: the region's colour code, a grey value for
        <code>                        ┘ .pgm ground truth, R·65536 + G·256 + B for .ppm
        <blank>
        Confusion penality matrix
        <N×N numbers>                 (not used by MoSegEval v2.0)
        <blank>
        Total number of frames in this shot:
        T
        Total number of labeled frames for this shot:
        L
        Frame number:                 ┐
        <0-based frame index>         │ L times; file names relative to the Def.dat's folder
        File name:                    │
        <GT image>                    │
        Input file name:              │
        <frame image>                 ┘

    Colours not listed map to region 0. A ``.ppm`` GT image comes with a same-named ``.pgm``
    whose grey value / 255 weights every pixel (a ``.pgm`` GT has weight 1 everywhere).

Track file (a segmentation result)
    line 1 the number of frames the tracks were computed on, line 2 the number of tracks,
    then per track ``label n_points`` followed by ``n_points`` lines ``x y frame`` (0-based
    frames, consecutive). Read as the evaluator reads it: whitespace-separated tokens.

Shot list / track list (for ``MoSegEvalAll``)
    shot list: the number of shots, then one ``Def.dat`` path per line; track list: one track
    file per line (tokens of a single character are skipped, so a count line such as ``4`` is
    tolerated). Relative paths are relative to the *working directory*, as in the official
    program.

Convention: points are ``(x, y)`` in pixels, x to the right, y down, pixel ``(x, y)`` at the
centre of column x, row y; the evaluator rounds them as ``(int)(v + 0.5f)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from flownet2_core.io import atomic_write_bytes, atomic_write_text, read_image

from ._util import PathLike

__all__ = [
    "ShotDefinition", "TrackSet", "FBMSSequence",
    "read_pnm", "write_pnm", "read_definition", "write_definition", "read_gt_frame",
    "color_code", "read_tracks", "write_tracks", "read_shot_list", "read_track_list",
    "write_shot_list", "write_track_list", "read_sequence", "list_frames", "FRAME_EXTENSIONS",
]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")


# --------------------------------------------------------------------------
# Netpbm (.pgm / .ppm)
# --------------------------------------------------------------------------
def read_pnm(path: PathLike) -> np.ndarray:
    """Read a PGM (P2/P5) or PPM (P3/P6) image (OpenCV's reader).

    Returns:
        (H, W) for PGM or (H, W, 3) RGB for PPM, uint8 when maxval ≤ 255, else uint16
        (samples as stored; OpenCV scales only *ASCII* files with maxval < 255 to 0..255,
        FBMS ground truth is binary with maxval 255).

    Raises:
        FileNotFoundError: missing file. ValueError: not a netpbm image, or a malformed or
        truncated one, naming the file.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p}: no such file")
    with open(p, "rb") as fh:
        magic = fh.read(2)
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise ValueError(f"{p}: not a PGM/PPM image (magic {magic!r}, expected P2, P3, P5 or P6)")
    img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{p}: malformed or truncated PGM/PPM data")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 else img


def write_pnm(path: PathLike, image: np.ndarray) -> None:
    """Write a binary PGM ((H, W)) or PPM ((H, W, 3) RGB) image atomically; uint8 or uint16."""
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{os.fspath(path)}: PGM/PPM images must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 2:
        ext = ".pgm"
    elif arr.ndim == 3 and arr.shape[2] == 3:
        ext, arr = ".ppm", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    else:
        raise ValueError(f"{os.fspath(path)}: image must be (H, W) or (H, W, 3), got {arr.shape}")
    ok, buf = cv2.imencode(ext, arr)   # binary (P5/P6), maxval 255 or 65535
    if not ok:
        raise ValueError(f"{os.fspath(path)}: OpenCV could not encode a {arr.shape} {arr.dtype} image")
    atomic_write_bytes(path, buf.tobytes())


def color_code(rgb: np.ndarray) -> np.ndarray:
    """FBMS colour code of RGB values: ``R·65536 + G·256 + B`` (int64), shape (...,)."""
    rgb = np.asarray(rgb, dtype=np.int64)
    return rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]


# --------------------------------------------------------------------------
# Def.dat
# --------------------------------------------------------------------------
class _CppStream:
    """The two C++ istream operations the official reader uses: ``getline`` and ``>>``."""

    def __init__(self, text: str, name: str):
        self.text, self.pos, self.name = text, 0, name

    def getline(self) -> str:
        if self.pos >= len(self.text):
            raise ValueError(f"{self.name}: unexpected end of file")
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        line = self.text[self.pos:end]
        self.pos = end + 1
        return line

    def token(self, what: str) -> str:
        m = re.compile(r"\s*(\S+)").match(self.text, self.pos)
        if not m:
            raise ValueError(f"{self.name}: unexpected end of file while reading {what}")
        self.pos = m.end()
        return m.group(1)

    def number(self, what: str, kind=int):
        # ``>>`` into an int/float: skip whitespace, read the longest numeric prefix.
        pattern = r"\s*([-+]?\d+)" if kind is int else r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
        m = re.compile(pattern).match(self.text, self.pos)
        if not m:
            snippet = self.text[self.pos:self.pos + 30].strip().splitlines()
            raise ValueError(f"{self.name}: expected {what}, found {snippet[0] if snippet else 'end of file'!r}")
        self.pos = m.end()
        return kind(m.group(1))


@dataclass(frozen=True)
class ShotDefinition:
    """The contents of a ``<seq>Def.dat`` file (see the module docstring).

    ``gt_files`` / ``input_files`` are as written in the file, relative to ``folder`` (the
    Def.dat's folder). ``region_codes[k]`` is region k's colour code.
    """

    region_codes: tuple[int, ...]
    total_frames: int
    labelled_frames: tuple[int, ...]
    gt_files: tuple[str, ...]
    input_files: tuple[str, ...]
    penalty: np.ndarray | None = field(default=None, repr=False, compare=False)
    header: str = "Ground truth definition file; do not change!"
    path: Path | None = None

    @property
    def num_regions(self) -> int:
        return len(self.region_codes)

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path is not None else Path(".")

    def gt_path(self, i: int) -> Path:
        """Path of the i-th labelled frame's GT image (``folder / gt_files[i]``)."""
        return self.folder / self.gt_files[i]

    def color_to_region(self, codes: np.ndarray) -> np.ndarray:
        """Region index of each colour code; unlisted colours → 0; when a colour is listed
        twice the later region wins (the official lookup table is filled in order)."""
        codes = np.asarray(codes, dtype=np.int64)
        out = np.zeros(codes.shape, np.int64)
        for k, c in enumerate(self.region_codes):
            out[codes == c] = k
        return out


def read_definition(path: PathLike) -> ShotDefinition:
    """Read a ``Def.dat`` file by position, as MoSegEval v2.0 does.

    Raises:
        FileNotFoundError: missing file. ValueError: a number is missing where one is
        expected, or counts are negative; the message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Definition file {p} not found")
    s = _CppStream(p.read_text(encoding="latin-1"), os.fspath(p))
    header = s.getline().rstrip("\r")
    s.getline()
    s.getline()                                   # "Total number of regions:"
    n = s.number("the number of regions")
    s.getline()
    if n < 0:
        raise ValueError(f"{p}: negative number of regions {n}")
    codes = []
    for k in range(n):
        s.getline()                               # "Scale of region k:"
        codes.append(s.number(f"the colour code of region {k}"))
        s.getline()
    s.getline()
    s.getline()                                   # "Confusion penality matrix"
    penalty = np.array([s.number("a confusion penalty", float) for _ in range(n * n)],
                       dtype=np.float64).reshape(n, n)
    s.getline()
    s.getline()
    s.getline()                                   # "Total number of frames in this shot:"
    total = s.number("the total number of frames")
    s.getline()
    s.getline()                                   # "Total number of labeled frames ..."
    nl = s.number("the number of labelled frames")
    s.getline()
    if nl < 0:
        raise ValueError(f"{p}: negative number of labelled frames {nl}")
    frames, gts, inputs = [], [], []
    for i in range(nl):
        s.getline()                               # "Frame number:"
        frames.append(s.number(f"the frame number of labelled frame {i}"))
        s.getline()
        s.getline()                               # "File name:"
        gts.append(s.token(f"the GT file name of labelled frame {i}"))
        s.getline()
        s.getline()                               # "Input file name:"
        try:
            inputs.append(s.getline().strip())
        except ValueError:
            inputs.append("")
    # The official reader takes any frame number and later reads tracks at it; a labelled
    # frame outside the shot (0-based, 0 … total − 1) is a broken Def.dat, so say so here
    # rather than score a frame no track can reach.
    for i, f in enumerate(frames):
        if not 0 <= f < total:
            raise ValueError(f"{p}: labelled frame {i} is frame {f}, outside the shot's {total} frames "
                             f"(0 … {total - 1})")
    return ShotDefinition(tuple(codes), total, tuple(frames), tuple(gts), tuple(inputs),
                          penalty, header, p)


def write_definition(path: PathLike, d: ShotDefinition) -> None:
    """Write ``d`` as a ``Def.dat`` file (atomic) that the official reader accepts."""
    n = d.num_regions
    pen = d.penalty if d.penalty is not None else 1 - np.eye(n, dtype=int)
    lines = [d.header, "", "Total number of regions:", str(n)]
    for k, c in enumerate(d.region_codes):
        lines += [f"Scale of region {k}:", str(int(c))]
    lines += ["", "Confusion penality matrix"]
    lines += ["".join(f"{int(v) if float(v).is_integer() else v} " for v in row) for row in pen]
    lines += ["", "Total number of frames in this shot:", str(d.total_frames),
              "Total number of labeled frames for this shot:", str(len(d.labelled_frames))]
    for f, g, i in zip(d.labelled_frames, d.gt_files, d.input_files):
        lines += ["Frame number:", str(f), "File name:", g, "Input file name:", i]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_gt_frame(d: ShotDefinition, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The i-th labelled frame's ground truth.

    Returns:
        ``(codes, weights)``: (H, W) int64 colour codes (grey value for ``.pgm``,
        R·65536+G·256+B for ``.ppm``) and (H, W) float32 weights (1 for ``.pgm``; for
        ``.ppm`` the same-named ``.pgm`` divided by 255, rounded to float32 as the
        official program does).
    """
    gt = d.gt_path(i)
    ext = gt.suffix.lower()
    if ext == ".pgm":
        img = read_pnm(gt)
        if img.ndim != 2:
            raise ValueError(f"{gt}: a .pgm ground truth must be a grey image")
        return img.astype(np.int64), np.ones(img.shape, np.float32)
    if ext == ".ppm":
        img = read_pnm(gt)
        if img.ndim != 3:
            raise ValueError(f"{gt}: a .ppm ground truth must be a colour image")
        wpath = gt.with_suffix(".pgm")
        try:
            wimg = read_pnm(wpath)
        except FileNotFoundError:
            raise FileNotFoundError(f"{wpath}: weight map of {gt} not found") from None
        if wimg.shape != img.shape[:2]:
            raise ValueError(f"{wpath}: weight map is {wimg.shape[1]}×{wimg.shape[0]}, "
                             f"its ground truth {gt} is {img.shape[1]}×{img.shape[0]}")
        weights = (wimg.astype(np.float64) / 255.0).astype(np.float32)
        return color_code(img), weights
    raise ValueError(f"{gt}: ground truth must be a .pgm or .ppm file (wrong ending)")


# --------------------------------------------------------------------------
# Track files
# --------------------------------------------------------------------------
@dataclass
class TrackSet:
    """Point tracks with labels, packed (no per-track Python objects).

    Attributes:
        sequence_length: the number of frames the tracks were computed on (line 1).
        labels: (M,) int64 cluster label per track.
        offsets: (M+1,) int64; track m's points are rows ``offsets[m]:offsets[m+1]``.
        xy: (P, 2) float64 point coordinates (x, y) in pixels.
        frames: (P,) int64 frame index of each point (consecutive within a track).
    """

    sequence_length: int
    labels: np.ndarray
    offsets: np.ndarray
    xy: np.ndarray
    frames: np.ndarray

    def __post_init__(self):
        self.labels = np.asarray(self.labels, np.int64)
        self.offsets = np.asarray(self.offsets, np.int64)
        self.xy = np.asarray(self.xy, np.float64).reshape(-1, 2)
        self.frames = np.asarray(self.frames, np.int64)
        if self.offsets.shape != (len(self.labels) + 1,) or self.offsets[0] != 0:
            raise ValueError("offsets must have length len(labels) + 1 and start at 0")
        if self.offsets[-1] != len(self.xy) or len(self.frames) != len(self.xy):
            raise ValueError("offsets[-1], len(xy) and len(frames) must agree")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_lists(cls, sequence_length: int, tracks: list[tuple[int, np.ndarray]]) -> "TrackSet":
        """From ``[(label, (n, 3) array of x, y, frame), ...]`` (small cases and tests)."""
        labels = [int(lab) for lab, _ in tracks]
        pts = [np.asarray(a, np.float64).reshape(-1, 3) for _, a in tracks]
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in pts])]).astype(np.int64)
        allp = np.concatenate(pts) if pts else np.zeros((0, 3))
        return cls(sequence_length, np.array(labels, np.int64), offsets, allp[:, :2],
                   allp[:, 2].astype(np.int64))


def read_tracks(path: PathLike) -> TrackSet:
    """Read a track file (format in the module docstring).

    Coordinates are kept as written (float64); :mod:`.moseg_eval` applies the official
    float32 parsing and rounding. Frame values are truncated to int as the official reader does.

    Raises:
        FileNotFoundError: missing file. ValueError: truncated file, numbers left after the
        announced tracks, a non-integer label or count, or a negative label; the message
        names the file.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p} was not found.")
    tokens = Path(p).read_bytes().split()
    if len(tokens) < 2:
        raise ValueError(f"{p}: a track file starts with the sequence length and the number of tracks")

    def as_int(i: int, what: str) -> int:
        if i >= len(tokens):
            raise ValueError(f"{p}: file ends early while reading {what}")
        try:
            return int(tokens[i])
        except ValueError:
            raise ValueError(f"{p}: expected an integer {what}, found {tokens[i][:20].decode(errors='replace')!r}") from None

    length = as_int(0, "sequence length")
    m = as_int(1, "number of tracks")
    if m < 0:
        raise ValueError(f"{p}: negative number of tracks {m}")
    labels = np.empty(m, np.int64)
    counts = np.empty(m, np.int64)
    starts = np.empty(m, np.int64)
    pos = 2
    for i in range(m):  # one iteration per track, not per point
        labels[i] = as_int(pos, f"label of track {i}")
        counts[i] = as_int(pos + 1, f"point count of track {i}")
        if counts[i] < 0:
            raise ValueError(f"{p}: negative point count {counts[i]} for track {i}")
        starts[i] = pos + 2
        pos += 2 + 3 * counts[i]
    if pos > len(tokens):
        raise ValueError(f"{p}: file ends early: {m} tracks need {pos} numbers, found {len(tokens)}")
    if pos < len(tokens):
        # The official reader stops after the announced tracks; numbers left over mean the
        # header undercounts the tracks written, and those tracks would go unscored.
        raise ValueError(f"{p}: {len(tokens) - pos} numbers after the {m} tracks its header announces "
                         "(the track count on line 2 is wrong)")
    if (labels < 0).any():
        bad = int(np.flatnonzero(labels < 0)[0])
        raise ValueError(f"{p}: track {bad} has negative label {labels[bad]}")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    # Token index of every coordinate, vectorised: start of its track + 3·(index in track).
    track_of = np.repeat(np.arange(m), counts)
    within = np.arange(total) - offsets[track_of]
    base = starts[track_of] + 3 * within
    idx = np.stack([base, base + 1, base + 2], 1).ravel()
    try:
        vals = (np.array(tokens, dtype=np.bytes_)[idx].astype(np.float64).reshape(total, 3)
                if total else np.zeros((0, 3)))
    except ValueError:
        raise ValueError(f"{p}: a point coordinate is not a number") from None
    frames = np.trunc(vals[:, 2].astype(np.float32)).astype(np.int64)
    return TrackSet(length, labels, offsets, vals[:, :2], frames)


def write_tracks(path: PathLike, tracks: TrackSet, decimals: int = 2) -> None:
    """Write ``tracks`` in the FBMS track format (atomic). Coordinates with ``decimals``
    decimals (the official tools write 2 or more)."""
    xy = np.asarray(tracks.xy, np.float64)
    lines = [f"{int(tracks.sequence_length)}", f"{len(tracks)}"]
    pts = np.char.add(np.char.add(np.char.mod(f"%.{decimals}f ", xy[:, 0]), np.char.mod(f"%.{decimals}f ", xy[:, 1])),
                      np.char.mod("%d", tracks.frames)) if len(xy) else np.array([], dtype=str)
    out = "\n".join(lines) + "\n"
    chunks = [out]
    offs = tracks.offsets
    for m in range(len(tracks)):
        chunks.append(f"{int(tracks.labels[m])} {int(offs[m + 1] - offs[m])}\n")
        if offs[m + 1] > offs[m]:
            chunks.append("\n".join(pts[offs[m]:offs[m + 1]].tolist()) + "\n")
    atomic_write_text(path, "".join(chunks))


# --------------------------------------------------------------------------
# List files
# --------------------------------------------------------------------------
def read_shot_list(path: PathLike) -> list[str]:
    """Read a shot list: first token the number of shots, then that many ``Def.dat`` paths
    (whitespace-separated tokens, as the official program reads them)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p} could not be opened.")
    tokens = Path(p).read_text(encoding="latin-1").split()
    if not tokens:
        raise ValueError(f"{p}: empty shot list (first line: the number of shots)")
    try:
        n = int(tokens[0])
    except ValueError:
        raise ValueError(f"{p}: the first line of a shot list is the number of shots, found {tokens[0]!r}") from None
    if n < 0 or len(tokens) - 1 < n:
        raise ValueError(f"{p}: announces {n} shots but lists {len(tokens) - 1}")
    return tokens[1:1 + n]


def read_track_list(path: PathLike) -> list[str]:
    """Read a track list: one track file per line; tokens of one character are skipped,
    as the official program does (so an optional count line below 10 is ignored)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p} could not be opened.")
    return [t for t in Path(p).read_text(encoding="latin-1").split() if len(t) != 1]


def write_shot_list(path: PathLike, def_files: list[PathLike]) -> None:
    atomic_write_text(path, f"{len(def_files)}\n" + "".join(f"{os.fspath(f)}\n" for f in def_files))


def write_track_list(path: PathLike, track_files: list[PathLike]) -> None:
    atomic_write_text(path, "".join(f"{os.fspath(f)}\n" for f in track_files))


# --------------------------------------------------------------------------
# Sequence folders
# --------------------------------------------------------------------------
def _frame_key(path: Path):
    m = re.search(r"(\d+)$", path.stem)
    return (int(m.group(1)) if m else -1, path.name)


def list_frames(folder: PathLike) -> list[Path]:
    """Image files directly in ``folder`` (jpg/png/ppm/bmp), sorted by the number that ends
    their name (``cars1_01.jpg``, ``bear01_0001.jpg``…). Frame index = position in this list."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: sequence folder not found")
    files = [f for f in d.iterdir() if f.is_file() and f.suffix.lower() in FRAME_EXTENSIONS
             and not f.name.startswith(".")]
    return sorted(files, key=_frame_key)


@dataclass(frozen=True)
class FBMSSequence:
    """A sequence folder: ``name``, its frames (sorted) and the shot definition (or None)."""

    name: str
    folder: Path
    frames: tuple[Path, ...]
    definition: ShotDefinition | None

    @property
    def def_path(self) -> Path | None:
        return self.definition.path if self.definition is not None else None

    def read_frames(self, count: int | None = None) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB frames (the first ``count`` when given)."""
        paths = self.frames[:count] if count else self.frames
        imgs = [read_image(f) for f in paths]
        shapes = {im.shape for im in imgs}
        if len(shapes) > 1:
            raise ValueError(f"{self.folder}: frames differ in size: {sorted(shapes)}")
        return np.stack(imgs)


def read_sequence(folder: PathLike) -> FBMSSequence:
    """Open an FBMS sequence folder: frames directly inside it, ground truth (optional) in
    ``GroundTruth/<name>Def.dat`` (any ``*Def.dat`` there when the name differs).

    Raises:
        FileNotFoundError: the folder is missing or holds no frames.
    """
    d = Path(folder)
    frames = list_frames(d)
    if not frames:
        raise FileNotFoundError(f"{d}: no frames (jpg/png/ppm/bmp) in the sequence folder")
    name = d.resolve().name
    gt = d / "GroundTruth"
    definition = None
    if gt.is_dir():
        cand = gt / f"{name}Def.dat"
        if not cand.is_file():
            found = sorted(gt.glob("*Def.dat"))
            cand = found[0] if found else None
        if cand is not None:
            definition = read_definition(cand)
    return FBMSSequence(name, d, tuple(frames), definition)
