"""Reading and writing videos as sequences of ``(H, W, 3)`` uint8 RGB frames (OpenCV backend).

Convention: frames in memory are ``(H, W, 3)`` uint8 in **R, G, B** order; OpenCV's B, G, R
frames are converted here.

Which containers and codecs work depends on the OpenCV build (the pip wheels bundle FFmpeg:
``.avi`` + ``MJPG`` and ``.mp4`` + ``mp4v`` are safe choices). Errors name the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from ._files import PathLike, atomic_output, check_input_file

# FFmpeg's own log lines ("[mjpeg @ 0x…] overread 8", "moov atom not found") would reach the
# terminal ahead of our one-line error about the same file; damage is reported by our errors
# (TruncatedVideoError, "cannot be opened") instead. OpenCV reads the level when it opens a
# file; set the variable yourself to see FFmpeg's messages (e.g. 24 = warnings).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _open_capture(path: PathLike) -> tuple[str, cv2.VideoCapture]:
    p = check_input_file(path)
    # FFmpeg only: when it cannot open a file, OpenCV's own AVI parser would try next and print
    # "Unexpected list type…" on stderr (no log level silences it), for a file that fails anyway.
    # Its "[ WARN ] … can't be used to capture by name" for such a file is silenced too: the
    # error below says it in one line.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        cap = cv2.VideoCapture(p, cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"{p}: cannot be opened as a video (unsupported container or codec, or not a video)")
    return p, cap


class TruncatedVideoError(ValueError):
    """A video decoded to fewer frames than its container declares (a truncated or damaged
    file). ``decoded`` and ``declared`` are the two counts."""

    def __init__(self, path: str, decoded: int, declared: int):
        super().__init__(f"{path}: decoded {decoded} of the {declared} frames its container declares "
                         "(truncated or damaged file)")
        self.path, self.decoded, self.declared = path, decoded, declared


def iter_video_frames(path: PathLike, *, allow_partial: bool = False) -> Iterator[np.ndarray]:
    """Iterate over the frames of a video as ``(H, W, 3)`` uint8 RGB arrays.

    The file is opened, and its first frame decoded, when this function is called (not on
    the first ``next``), so a bad file fails immediately. ``path`` must be an existing
    file (OpenCV's ``%05d.png`` image-sequence patterns are not accepted).

    A video that ends before the frame count its container declares is damaged, not
    short: read to the end, it raises :class:`TruncatedVideoError` after the last frame
    that decodes, unless ``allow_partial`` (then it just ends). Containers that declare
    no count (0) are read to their end.

    Raises:
        FileNotFoundError, IsADirectoryError: the path is missing or a directory.
        ValueError: OpenCV cannot open the file, or it yields no frames.
        TruncatedVideoError (a ValueError): fewer frames than declared.
    """
    p, cap = _open_capture(path)
    declared = max(0, int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT))))
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise ValueError(f"{p}: video opened but yielded no frames"
                         + (f" (its container declares {declared})" if declared else ""))

    def frames() -> Iterator[np.ndarray]:
        decoded = 0
        try:
            frame = first
            while True:
                decoded += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
        finally:
            cap.release()
        if decoded < declared and not allow_partial:
            raise TruncatedVideoError(p, decoded, declared)

    return frames()


def read_video(path: PathLike, max_frames: int | None = None) -> np.ndarray:
    """Read (the first ``max_frames`` frames of) a video as ``(N, H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: ``max_frames`` < 1, or any :func:`iter_video_frames` error.
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    out: list[np.ndarray] = []
    it = iter_video_frames(path)
    try:
        for frame in it:
            out.append(frame)
            if max_frames is not None and len(out) >= max_frames:
                break
    finally:
        it.close()  # type: ignore[attr-defined]
    return np.stack(out)


def video_info(path: PathLike) -> dict:
    """Container metadata: ``dict(frames=int, fps=float, width=int, height=int)``.

    ``frames`` is what the container claims (OpenCV's ``CAP_PROP_FRAME_COUNT``); for some
    streams it is an estimate or 0. Count with :func:`iter_video_frames` when it matters.
    """
    _, cap = _open_capture(path)
    try:
        return {
            "frames": int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
            "fps": float(cap.get(cv2.CAP_PROP_FPS)),
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        }
    finally:
        cap.release()


def write_video(
    path: PathLike, frames: Iterable[np.ndarray], fps: float = 25, fourcc: str = "MJPG"
) -> int:
    """Write RGB frames to a video file, atomically.

    The video is written under a temporary name with the same extension in the same
    directory (OpenCV picks the container from the extension) and renamed when complete.

    Args:
        path: destination, e.g. ``out.avi``; its directory must exist.
        frames: iterable of ``(H, W, 3)`` uint8 RGB frames (or an ``(N, H, W, 3)`` array),
            all the same size; ``(H, W)`` grey frames are accepted too.
        fps: frame rate stored in the container.
        fourcc: four-character codec code, e.g. ``"MJPG"`` or ``"mp4v"``.

    Returns:
        The number of frames written.

    Raises:
        ValueError: no frames, frames of differing size or wrong dtype/shape, a bad fourcc,
            or OpenCV cannot open a writer for this extension/codec.
    """
    p = os.fspath(path)
    if len(fourcc) != 4:
        raise ValueError(f"{p}: fourcc must be 4 characters, got {fourcc!r}")
    if not fps > 0:
        raise ValueError(f"{p}: fps must be positive, got {fps}")
    ext = os.path.splitext(p)[1]
    if not ext:
        raise ValueError(f"{p}: video path needs an extension (.avi, .mp4, ...) to choose the container")
    count = 0
    writer = None
    with atomic_output(p, suffix=ext) as tmp:
        try:
            for i, frame in enumerate(frames):
                arr = np.asarray(frame)
                if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
                    raise ValueError(
                        f"{p}: frame {i} must be (H, W, 3) or (H, W) uint8, got {arr.shape} {arr.dtype}"
                    )
                if arr.shape[0] == 0 or arr.shape[1] == 0:
                    raise ValueError(f"{p}: frame {i} is empty, shape {arr.shape}")
                if arr.ndim == 2:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
                if writer is None:
                    size = arr.shape[:2]
                    code = cv2.VideoWriter_fourcc(*fourcc)
                    writer = cv2.VideoWriter(tmp, code, float(fps), (size[1], size[0]))
                    if not writer.isOpened():
                        raise ValueError(
                            f"{p}: OpenCV cannot open a video writer for extension {ext!r} with "
                            f"fourcc {fourcc!r} and size {size[1]}x{size[0]}"
                        )
                elif arr.shape[:2] != size:
                    raise ValueError(f"{p}: frame {i} is {arr.shape[:2]}, frame 0 was {size}")
                writer.write(cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2BGR))
                count += 1
            if writer is None:
                raise ValueError(f"{p}: no frames to write")
        finally:
            if writer is not None:
                writer.release()
    return count


def frame_name(prefix: str, index: int, ext: str | None = "jpg") -> str:
    """The name of a video's frame (or of the flow leaving it) in the rawframes layout that
    denseflow, TSN and mmaction2 use: ``frame_name("flow_x_", 1)`` → ``"flow_x_00001.jpg"``
    (frames numbered from 1, five digits; ``ext=None``: the stem alone)."""
    return f"{prefix}{index:05d}" + (f".{ext}" if ext else "")
