"""Middlebury ``.flo`` optical-flow files (FlyingChairs, Sintel, Middlebury).

Layout (all little-endian)::

    float32  202021.25         magic number, the bytes b"PIEH"
    int32    width
    int32    height
    float32  u, v, u, v, ...   height rows of width (u, v) pairs, top row first

Convention: flow arrays are ``(H, W, 2)`` float32 in pixels; channel 0 is u (x, to the
right), channel 1 is v (y, downwards). A pixel is *unknown* when ``|u| > 1e9``,
``|v| > 1e9`` or either component is NaN (the Middlebury rule).

:func:`read_flo` returns the values exactly as stored (unknown markers included);
:func:`read_flo_with_valid` returns the flow with unknown pixels set to 0 together with a
boolean ``(H, W)`` mask that is True where the flow is known.
"""

from __future__ import annotations

import os
import stat

import numpy as np

from ._files import PathLike, as_flow_array, atomic_write_bytes, check_dims, check_input_file

FLO_MAGIC = 202021.25
"""The float32 magic number that starts every ``.flo`` file (bytes ``b"PIEH"``)."""

UNKNOWN_FLOW_THRESH = 1e9
"""Flow components whose magnitude exceeds this value mark an unknown pixel."""

UNKNOWN_FLOW = 1e10
"""Value written for unknown pixels (what the Middlebury tools write)."""

_HEADER_BYTES = 12


def flow_valid_mask(flow: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)`` mask, True where the ``(H, W, 2)`` flow is known.

    A pixel is unknown when ``|u| > 1e9``, ``|v| > 1e9`` or either component is NaN.
    """
    with np.errstate(invalid="ignore"):
        mag = np.abs(flow)
    # NaN compares False, so NaN pixels come out invalid as well.
    return np.all(mag <= UNKNOWN_FLOW_THRESH, axis=-1)


# --------------------------------------------------------------------------------------
# .flo
# --------------------------------------------------------------------------------------


def read_flo(path: PathLike) -> np.ndarray:
    """Read a Middlebury ``.flo`` file.

    Args:
        path: file to read.

    Returns:
        ``(H, W, 2)`` float32 flow exactly as stored, unknown markers (``1e10``, NaN)
        included; use :func:`read_flo_with_valid` to get them masked.

    Raises:
        FileNotFoundError, IsADirectoryError: the path is missing or a directory.
        ValueError: bad magic number, implausible width/height, or a file whose size does
            not match its header (truncated or with trailing bytes). The size is checked
            before the data is allocated.

    Example:
        >>> flow = read_flo("00001_flow.flo")  # doctest: +SKIP
        >>> flow.shape, flow.dtype  # doctest: +SKIP
        ((384, 512, 2), dtype('float32'))
    """
    p = check_input_file(path)
    with open(p, "rb") as f:
        header = f.read(_HEADER_BYTES)
        if len(header) < 4:
            raise ValueError(
                f"{p}: file is {len(header)} bytes, too short for a .flo header ({_HEADER_BYTES} bytes)"
            )
        magic = float(np.frombuffer(header, "<f4", count=1)[0])
        if magic != FLO_MAGIC:
            hint = " (byte-swapped: big-endian .flo files are not standard)" if header[:4] == b"HEIP" else ""
            raise ValueError(
                f"{p}: bad magic number {magic!r} (expected {FLO_MAGIC}){hint}; "
                "not a Middlebury .flo file"
            )
        if len(header) < _HEADER_BYTES:
            raise ValueError(
                f"{p}: truncated .flo header: file is {len(header)} bytes, "
                f"the header alone is {_HEADER_BYTES}"
            )
        width, height = (int(x) for x in np.frombuffer(header, "<i4", count=2, offset=4))
        check_dims(p, width, height, ".flo")
        count = 2 * width * height
        expected = _HEADER_BYTES + 4 * count
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size != expected:
            problem = "truncated" if st.st_size < expected else "trailing bytes after the data"
            raise ValueError(
                f"{p}: {problem}: header says {width}x{height} (file of {expected} bytes) "
                f"but the file is {st.st_size} bytes"
            )
        data = np.fromfile(f, dtype="<f4", count=count)
    if data.size != count:
        raise ValueError(f"{p}: truncated: expected {count} float32 values, read {data.size}")
    return data.reshape(height, width, 2).astype(np.float32, copy=False)


def read_flo_with_valid(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.flo`` file and separate unknown pixels.

    Returns:
        ``(flow, valid)``: ``(H, W, 2)`` float32 flow with unknown pixels set to 0, and an
        ``(H, W)`` bool mask, True where the flow is known (see :func:`flow_valid_mask`).
    """
    flow = read_flo(path)
    valid = flow_valid_mask(flow)
    flow[~valid] = 0.0
    return flow, valid


def write_flo(path: PathLike, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write ``(H, W, 2)`` flow as a Middlebury ``.flo`` file, atomically.

    Args:
        path: destination; its directory must exist. Written to a temporary file in the
            same directory and renamed, so a killed job never leaves a partial file.
        flow: ``(H, W, 2)`` real array (converted to float32), u then v, in pixels. NaN
            and huge values are written as they are (they read back as unknown).
        valid: optional ``(H, W)`` bool mask; pixels where it is False are written as
            ``UNKNOWN_FLOW`` (1e10) in both components.
    """
    arr = as_flow_array(flow)
    height, width = arr.shape[:2]
    out = arr.astype("<f4")  # a private copy in file byte order
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"valid must have shape {(height, width)}, got {mask.shape}")
        out[~mask] = UNKNOWN_FLOW
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    atomic_write_bytes(path, header, np.ascontiguousarray(out).reshape(-1).view(np.uint8))
