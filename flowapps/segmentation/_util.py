"""Small helpers shared inside :mod:`flowapps.segmentation`: the path type and C-style
number formatting (atomic writes are :func:`flownet2_core.io.atomic_write_text` and
:func:`~flownet2_core.io.atomic_write_bytes`)."""

from __future__ import annotations

import numpy as np

from flownet2_core.io import PathLike

__all__ = ["PathLike", "cfloat"]


def cfloat(value) -> str:
    """Format a number as C++ ``std::ostream << float`` does by default (``%g``, 6
    significant digits): ``0.851840`` → ``'0.85184'``, ``1.0`` → ``'1'``, NaN → ``'nan'``."""
    v = float(value)
    if np.isnan(v):
        return "-nan" if np.signbit(v) else "nan"
    if np.isinf(v):
        return "-inf" if v < 0 else "inf"
    return "%.6g" % v
