"""Small helpers shared inside :mod:`flowapps.segmentation`: atomic writes and
C-style number formatting."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PathLike", "atomic_write_bytes", "atomic_write_text", "cfloat", "check_output_dir"]


def check_output_dir(path: PathLike) -> Path:
    """``Path(path)`` after checking that its parent folder exists (FileNotFoundError naming it)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{p}: parent directory {parent} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"{p}: is a directory, cannot write a file there")
    return p


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: an interrupted write never leaves a truncated file under ``path``."""
    p = check_output_dir(path)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` for text (UTF-8, ``\\n`` line ends kept as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def cfloat(value) -> str:
    """Format a number as C++ ``std::ostream << float`` does by default (``%g``, 6
    significant digits): ``0.851840`` → ``'0.85184'``, ``1.0`` → ``'1'``, NaN → ``'nan'``."""
    v = float(value)
    if np.isnan(v):
        return "-nan" if np.signbit(v) else "nan"
    if np.isinf(v):
        return "-inf" if v < 0 else "inf"
    return "%.6g" % v
