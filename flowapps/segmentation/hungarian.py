"""Minimum-cost assignment exactly as libhungarian (C. Stachniss 2004, from the Stanford
GraphBase) computes it: the assignment step of the FBMS-59 evaluator (MoSegEval v2.0).

Why a port and not :func:`scipy.optimize.linear_sum_assignment`: both find an assignment of
minimum cost, but when several assignments tie they can pick different ones, and the
evaluator's output depends on the pick (which cluster is paired with which region, hence the
printed pairs and the averaged precision and recall). The cost matrices of the evaluator
are integers ``−(int)(10000·F)`` with zero rows and columns for the dummies, so ties are
common. Example: for ``[[−2500, −7500], [0, −5000]]`` libhungarian (and the official
program) pairs row 0 with column 0, while SciPy 1.x returns row 0 → column 1; both cost
−7500. On random small integer matrices with ties SciPy picks differently in about one
case in twenty.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hungarian_libhungarian"]


def hungarian_libhungarian(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment of a square integer matrix, step for step as libhungarian.

    Any optimal assignment minimises the cost; this port also makes the *same choice* as
    the official evaluator among equal-cost assignments (column minima subtracted first,
    then a greedy initial matching in row order, then the Hungarian stages).

    Args:
        cost: (n, n) integer costs.

    Returns:
        (n,) int64: the column assigned to each row.
    """
    c = [list(map(int, row)) for row in np.asarray(cost)]
    m = len(c)
    n = len(c[0]) if m else 0
    if m != n:
        raise ValueError(f"cost matrix must be square, got {m}×{n}")
    if m == 0:
        return np.zeros(0, np.int64)
    INF = 0x7FFFFFFF
    # Subtract column minima.
    for col in range(n):
        s = min(c[k][col] for k in range(m))
        if s:
            for k in range(m):
                c[k][col] -= s
    col_mate = [0] * m          # column matched to each row
    row_mate = [-1] * n         # row matched to each column
    parent_row = [-1] * n
    unchosen_row = [0] * m
    row_dec = [0] * m
    col_inc = [0] * n
    slack = [INF] * n
    slack_row = [0] * n
    t = 0
    for k in range(m):          # greedy initial matching on row minima
        s = min(c[k])
        row_dec[k] = s
        for col in range(n):
            if s == c[k][col] and row_mate[col] < 0:
                col_mate[k] = col
                row_mate[col] = k
                break
        else:
            col_mate[k] = -1
            unchosen_row[t] = k
            t += 1
    if t:
        unmatched = t
        while True:
            q = 0
            found = None
            while found is None:
                while q < t and found is None:
                    k = unchosen_row[q]
                    s = row_dec[k]
                    for col in range(n):
                        if slack[col]:
                            delta = c[k][col] - s + col_inc[col]
                            if delta < slack[col]:
                                if delta == 0:
                                    if row_mate[col] < 0:
                                        found = (k, col)
                                        break
                                    slack[col] = 0
                                    parent_row[col] = k
                                    unchosen_row[t] = row_mate[col]
                                    t += 1
                                else:
                                    slack[col] = delta
                                    slack_row[col] = k
                    if found is None:
                        q += 1
                if found is not None:
                    break
                # Introduce a new zero.
                s = INF
                for col in range(n):
                    if slack[col] and slack[col] < s:
                        s = slack[col]
                for qq in range(t):
                    row_dec[unchosen_row[qq]] += s
                for col in range(n):
                    if slack[col]:
                        slack[col] -= s
                        if slack[col] == 0:
                            k = slack_row[col]
                            if row_mate[col] < 0:
                                for j in range(col + 1, n):
                                    if slack[j] == 0:
                                        col_inc[j] += s
                                found = (k, col)
                                break
                            parent_row[col] = k
                            unchosen_row[t] = row_mate[col]
                            t += 1
                    else:
                        col_inc[col] += s
            # Breakthrough: update the matching along the alternating path.
            k, col = found
            while True:
                j = col_mate[k]
                col_mate[k] = col
                row_mate[col] = k
                if j < 0:
                    break
                k = parent_row[j]
                col = j
            unmatched -= 1
            if unmatched == 0:
                break
            t = 0
            for col in range(n):
                parent_row[col] = -1
                slack[col] = INF
            for k in range(m):
                if col_mate[k] < 0:
                    unchosen_row[t] = k
                    t += 1
    return np.array(col_mate, np.int64)
