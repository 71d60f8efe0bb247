"""Colour tables: the FBMS evaluator's cluster colours (also the colours of label maps,
overlays and ``.ppm`` ground truth of generated sequences) and the grey codes of generated
``.pgm`` ground truth."""

from __future__ import annotations

import numpy as np

__all__ = ["cluster_rgb", "palette", "PGM_GREYS"]

# The official program's mR/mG/mB tables (MoSegEval v2.0), clusters 0..39.
_MR = (255, 200, 10, 0, 255, 0, 0, 180, 255, 180, 0, 170, 100, 240, 0, 255, 10, 200, 90, 10,
       0, 180, 70, 100, 255, 30, 100, 0, 100, 255, 50, 120, 140, 70, 70, 100, 235, 180, 200, 210)
_MG = (10, 190, 10, 180, 0, 255, 255, 0, 130, 0, 0, 170, 100, 100, 100, 70, 10, 200, 0, 100,
       150, 75, 70, 30, 100, 0, 0, 0, 255, 100, 80, 180, 100, 100, 140, 200, 235, 200, 70, 160)
_MB = (10, 0, 255, 0, 255, 255, 0, 0, 0, 180, 130, 170, 100, 80, 255, 30, 10, 70, 90, 50,
       25, 10, 255, 170, 170, 200, 0, 75, 100, 100, 200, 120, 0, 0, 140, 200, 100, 0, 250, 210)

#: Grey value of region k in a generated ``.pgm`` ground truth (background 0), far apart to view.
PGM_GREYS = (0, 255, 128, 64, 192, 32, 96, 160, 224, 16, 48, 80, 112, 144, 176, 208, 240)


def cluster_rgb(index: int) -> tuple[int, int, int]:
    """The official program's display colour for cluster ``index`` (its ``mR/mG/mB`` tables;
    from index 40 on the tables continue as ``(i−40, i−39, i−38)``, which this extends)."""
    if index < len(_MR):
        return _MR[index], _MG[index], _MB[index]
    return index - 40, index - 39, index - 38


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 RGB colours of clusters 0..n−1 (the FBMS evaluator's colours)."""
    return np.array([cluster_rgb(i) for i in range(n)], np.uint8).reshape(-1, 3)
