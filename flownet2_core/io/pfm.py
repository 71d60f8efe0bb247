"""Portable float maps (``.pfm``): FlyingThings3D and ChairsSDHom flow, disparity maps.

Layout::

    "PF\\n" (3 channels) or "Pf\\n" (1 channel)
    "<width> <height>\\n"
    "<scale>\\n"      negative: data little-endian; positive: big-endian
    float32 data, rows stored BOTTOM-UP (the first stored row is the bottom image row),
    channels interleaved.

The magnitude of ``scale`` is ignored (it is 1 in every flow data set); only its sign is
used. Arrays in memory are top-down: row 0 is the top image row.

Convention: flow arrays are ``(H, W, 2)`` float32, channel 0 = u (right), 1 = v (down).
FlyingThings3D and ChairsSDHom store flow in 3-channel files whose third channel is unused;
:func:`read_pfm_flow` drops it and :func:`write_pfm_flow` writes zeros there.
"""

from __future__ import annotations

import os
import re
import stat

import numpy as np

from ._files import PathLike, as_flow_array, atomic_write_bytes, check_dims, check_input_file

_HEADER_RE = re.compile(rb"\A(P[Ff])\s+(\S+)\s+(\S+)\s+(\S+)\s")
_MAX_HEADER = 256


def read_pfm(path: PathLike) -> np.ndarray:
    """Read a PFM file.

    Returns:
        ``(H, W)`` float32 for a 1-channel (``Pf``) file, ``(H, W, 3)`` float32 for a
        3-channel (``PF``) file; top row first (the bottom-up storage is undone).

    Raises:
        FileNotFoundError, IsADirectoryError: the path is missing or a directory.
        ValueError: bad header, implausible width/height, zero scale, or a file whose size
            does not match its header (checked before the data is allocated).
    """
    p = check_input_file(path)
    with open(p, "rb") as f:
        head = f.read(_MAX_HEADER)
        m = _HEADER_RE.match(head)
        if m is None:
            kind = head[:2].decode("latin-1")
            if kind not in ("PF", "Pf"):
                raise ValueError(f"{p}: bad header {kind!r} (expected 'PF' or 'Pf'); not a PFM file")
            raise ValueError(f"{p}: malformed PFM header {head[:40]!r}")
        kind, w_tok, h_tok, s_tok = m.groups()
        try:
            width, height, scale = int(w_tok), int(h_tok), float(s_tok)
        except ValueError:
            raise ValueError(
                f"{p}: malformed PFM header: width {w_tok!r}, height {h_tok!r}, scale {s_tok!r}"
            ) from None
        check_dims(p, width, height, "PFM")
        if not np.isfinite(scale) or scale == 0:
            raise ValueError(
                f"{p}: PFM scale must be a non-zero number (its sign gives the byte order), got {scale}"
            )
        channels = 3 if kind == b"PF" else 1
        count = width * height * channels
        offset = m.end()
        expected = offset + 4 * count
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size != expected:
            problem = "truncated" if st.st_size < expected else "trailing bytes after the data"
            raise ValueError(
                f"{p}: {problem}: header says {width}x{height}x{channels} (file of {expected} "
                f"bytes) but the file is {st.st_size} bytes"
            )
        f.seek(offset)
        data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4", count=count)
    if data.size != count:
        raise ValueError(f"{p}: truncated: expected {count} float32 values, read {data.size}")
    shape = (height, width, 3) if channels == 3 else (height, width)
    # Flip bottom-up rows to top-down; astype makes a contiguous native-endian copy.
    return data.reshape(shape)[::-1].astype(np.float32)


def read_pfm_flow(path: PathLike) -> np.ndarray:
    """Read flow from a PFM file: the first two channels, ``(H, W, 2)`` float32.

    Raises:
        ValueError: the file has a single channel (a disparity map, not flow), or any
            :func:`read_pfm` error.
    """
    data = read_pfm(path)
    if data.ndim != 3:
        raise ValueError(f"{os.fspath(path)}: 1-channel PFM (disparity?), flow needs 3 channels")
    return np.ascontiguousarray(data[:, :, :2])


def write_pfm(path: PathLike, data: np.ndarray, *, little_endian: bool = True) -> None:
    """Write a PFM file, atomically.

    Args:
        path: destination; its directory must exist.
        data: ``(H, W)`` or ``(H, W, 1)`` (written as ``Pf``) or ``(H, W, 3)`` (``PF``),
            any real dtype (stored as float32), row 0 = top row (stored bottom-up).
        little_endian: byte order of the data (scale -1.0 if True, 1.0 if False).
    """
    arr = np.asarray(data)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"PFM data must have shape (H, W), (H, W, 1) or (H, W, 3), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"PFM data must not be empty, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"PFM data must be a real numeric array, got dtype {arr.dtype}")
    kind = "PF" if arr.ndim == 3 else "Pf"
    height, width = arr.shape[:2]
    header = f"{kind}\n{width} {height}\n{-1.0 if little_endian else 1.0}\n".encode("ascii")
    body = np.ascontiguousarray(arr[::-1], dtype="<f4" if little_endian else ">f4")
    atomic_write_bytes(path, header, body.reshape(-1).view(np.uint8))


def write_pfm_flow(path: PathLike, flow: np.ndarray, *, little_endian: bool = True) -> None:
    """Write ``(H, W, 2)`` flow as a 3-channel PFM (third channel zero, FlyingThings3D style)."""
    arr = as_flow_array(flow)
    data = np.zeros(arr.shape[:2] + (3,), np.float32)
    data[:, :, :2] = arr
    write_pfm(path, data, little_endian=little_endian)
