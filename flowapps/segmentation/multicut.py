"""Minimum cost multicut (correlation clustering): greedy additive edge contraction (GAEC)
followed by Kernighan–Lin with joins (KLj), as used by Keuper, Andres & Brox (ICCV 2015).

Problem: given a graph with edge costs ``c_e`` (positive = the endpoints should stay
together, negative = they should be separated), find the decomposition of the nodes that
minimises the summed cost of the **cut** edges (edges whose endpoints end up in different
components). A decomposition is returned as node labels, each label a *connected*
component of the graph without the cut edges, so the cut is always valid (transitive: no
cut edge joins two nodes that are connected through uncut edges).

* :func:`gaec` (Keuper et al., EMMCVPR 2015): repeatedly contract the edge with the largest
  positive cost, summing the costs of parallel edges, until no positive edge is left.
* :func:`kernighan_lin` (KLj, Keuper et al., ICCV 2015 after Kernighan & Lin 1970): for every
  pair of neighbouring components, a sequence of single-node moves between them (each node
  at most once, best gain first, from the border inwards); the best prefix is kept; joining
  the two components is tried too, and splitting a component against an empty one. Outer
  iterations repeat until the objective improves by less than ``eps`` (default 1e-6) or
  ``max_outer`` (default 100) iterations.
* :func:`brute_force_multicut`: the optimum over all set partitions, for checks (≤ 10 nodes).

Pure Python/NumPy with adjacency dictionaries; thousands of nodes take seconds.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

__all__ = ["multicut_objective", "gaec", "kernighan_lin", "solve_multicut", "brute_force_multicut",
           "set_partitions", "is_valid_multicut", "components_of_uncut", "merge_parallel_edges"]


def _check(n: int, edges, costs) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    c = np.asarray(costs, np.float64).reshape(-1)
    if len(e) != len(c):
        raise ValueError(f"{len(e)} edges but {len(c)} costs")
    if len(e) and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"edge endpoints must lie in 0..{n - 1}")
    if not np.isfinite(c).all():
        raise ValueError("edge costs must be finite")
    return e, c


def merge_parallel_edges(edges, costs) -> tuple[np.ndarray, np.ndarray]:
    """Edges as ``u < v`` without self-loops, parallel edges merged by summing their costs."""
    e = np.sort(np.asarray(edges, np.int64).reshape(-1, 2), axis=1)
    c = np.asarray(costs, np.float64).reshape(-1)
    keep = e[:, 0] != e[:, 1]
    e, c = e[keep], c[keep]
    if not len(e):
        return e, c
    uniq, inv = np.unique(e, axis=0, return_inverse=True)
    return uniq, np.bincount(inv.ravel(), weights=c, minlength=len(uniq))


def multicut_objective(edges, costs, labels) -> float:
    """Σ c_e over edges whose endpoints have different labels."""
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    lab = np.asarray(labels)
    cut = lab[e[:, 0]] != lab[e[:, 1]]
    return float(np.asarray(costs, np.float64)[cut].sum())


def components_of_uncut(n: int, edges, labels) -> np.ndarray:
    """Relabel so that each label is a connected component of the graph restricted to the
    edges joining equal labels (labels 0..K−1 in order of first node)."""
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    lab = np.asarray(labels)
    keep = lab[e[:, 0]] == lab[e[:, 1]] if len(e) else np.zeros(0, bool)
    g = coo_matrix((np.ones(int(keep.sum())), (e[keep, 0], e[keep, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    _, first = np.unique(comp, return_index=True)
    order = np.argsort(first)
    remap = np.empty(len(order), np.int64)
    remap[order] = np.arange(len(order))
    return remap[comp]


def is_valid_multicut(n: int, edges, cut) -> bool:
    """True when the edge labelling ``cut`` (True = cut) is a multicut: no cut edge joins two
    nodes connected by a path of uncut edges (the cycle inequalities hold)."""
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    cut = np.asarray(cut, bool)
    g = coo_matrix((np.ones(int((~cut).sum())), (e[~cut, 0], e[~cut, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    return not bool((comp[e[cut, 0]] == comp[e[cut, 1]]).any())


# --------------------------------------------------------------------------
# GAEC
# --------------------------------------------------------------------------
def gaec(n: int, edges, costs) -> np.ndarray:
    """Greedy additive edge contraction.

    Args:
        n: number of nodes. edges: (E, 2) node pairs. costs: (E,) edge costs.

    Returns:
        (n,) int64 labels, each a connected component (0..K−1).
    """
    e, c = _check(n, edges, costs)
    e, c = merge_parallel_edges(e, c)
    adj: list[dict | None] = [dict() for _ in range(n)]
    for (u, v), w in zip(e.tolist(), c.tolist()):
        adj[u][v] = w
        adj[v][u] = w
    heap = [(-w, u, v) for (u, v), w in zip(e.tolist(), c.tolist()) if w > 0]
    heapq.heapify(heap)
    rep = list(range(n))
    while heap:
        negw, u, v = heapq.heappop(heap)
        au, av = adj[u], adj[v]
        if au is None or av is None or au.get(v) != -negw:
            continue                                  # stale entry
        a, b = (u, v) if len(au) >= len(av) else (v, u)
        ad, bd = adj[a], adj[b]
        del ad[b]
        del bd[a]
        for x, wx in bd.items():
            xd = adj[x]
            del xd[b]
            nw = ad.get(x, 0.0) + wx
            ad[x] = nw
            xd[a] = nw
            if nw > 0:
                heapq.heappush(heap, (-nw, a, x) if a < x else (-nw, x, a))
        adj[b] = None
        rep[b] = a
    lab = np.empty(n, np.int64)
    for i in range(n):
        r = i
        while rep[r] != r:
            r = rep[r]
        lab[i] = r
        j = i
        while rep[j] != r:                          # path compression
            rep[j], j = r, rep[j]
    return components_of_uncut(n, e, lab)


# --------------------------------------------------------------------------
# Kernighan–Lin with joins
# --------------------------------------------------------------------------
class _KL:
    def __init__(self, n: int, e: np.ndarray, c: np.ndarray, labels: np.ndarray):
        self.n = n
        self.e, self.c = e, c
        self.nbrs: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for (u, v), w in zip(e.tolist(), c.tolist()):
            self.nbrs[u].append((v, w))
            self.nbrs[v].append((u, w))
        self.lab = [int(x) for x in labels]
        self.members: dict[int, set[int]] = {}
        for v, lab in enumerate(self.lab):
            self.members.setdefault(lab, set()).add(v)
        self.next_label = max(self.members, default=-1) + 1

    def gain_of(self, v: int, a: int, b: int) -> float:
        """Gain of moving v from its component (a or b) to the other one."""
        own = self.lab[v]
        other = b if own == a else a
        g = 0.0
        for u, w in self.nbrs[v]:
            lu = self.lab[u]
            if lu == other:
                g += w
            elif lu == own:
                g -= w
        return g

    def improve_pair(self, a: int, b: int, eps: float) -> float:
        """Best sequence of moves between components a and b (b may be a new, empty label),
        or their join; applies it when it gains more than eps. Returns the gain."""
        lab, nbrs = self.lab, self.nbrs
        A, B = self.members.get(a, set()), self.members.get(b, set())
        # Join gain: cutting A|B costs the summed edges between them.
        join_gain = 0.0
        if A and B:
            small, other = (A, b) if len(A) <= len(B) else (B, a)
            for v in small:
                for u, w in nbrs[v]:
                    if lab[u] == other:
                        join_gain += w
        # Candidates: the border (all of A when b is empty).
        if B:
            cand = set()
            small, other = (A, b) if len(A) <= len(B) else (B, a)
            for v in small:
                for u, _ in nbrs[v]:
                    if lab[u] == other:
                        cand.add(u)
                        cand.add(v)
        else:
            cand = set(A)
        gain: dict[int, float] = {v: self.gain_of(v, a, b) for v in cand}
        heap = [(-g, v) for v, g in gain.items()]
        heapq.heapify(heap)
        moved: list[int] = []
        moved_set: set[int] = set()
        total = best = 0.0
        best_len = 0
        while heap:
            negg, v = heapq.heappop(heap)
            if v in moved_set or gain.get(v) != -negg:
                continue
            src = lab[v]
            dst = b if src == a else a
            lab[v] = dst
            moved.append(v)
            moved_set.add(v)
            total += -negg
            if total > best + 1e-12:
                best, best_len = total, len(moved)
            for u, w in nbrs[v]:
                if u in moved_set:
                    continue
                lu = lab[u]
                if lu == src:
                    g = gain[u] + 2 * w if u in gain else self.gain_of(u, a, b)
                elif lu == dst:
                    g = gain[u] - 2 * w if u in gain else self.gain_of(u, a, b)
                else:
                    continue
                gain[u] = g
                heapq.heappush(heap, (-g, u))
        # Undo moves after the best prefix.
        for v in moved[best_len:]:
            lab[v] = b if lab[v] == a else a
        if join_gain > best and join_gain > eps:
            for v in moved[:best_len]:                 # undo the kept moves too, then join
                lab[v] = b if lab[v] == a else a
            for v in B:
                lab[v] = a
            A |= B
            self.members[a] = A
            self.members.pop(b, None)
            return join_gain
        if best > eps:
            for v in moved[:best_len]:
                if lab[v] == a:
                    B.discard(v)
                    A.add(v)
                else:
                    A.discard(v)
                    B.add(v)
            self.members[a] = A
            self.members[b] = B
            for key in (a, b):
                if not self.members[key]:
                    del self.members[key]
            return best
        for v in moved[:best_len]:                     # not worth it: restore
            lab[v] = b if lab[v] == a else a
        return 0.0

    def adjacent_pairs(self) -> list[tuple[int, int]]:
        lab = np.asarray(self.lab)
        la, lb = lab[self.e[:, 0]], lab[self.e[:, 1]]
        cut = la != lb
        pairs = np.unique(np.sort(np.stack([la[cut], lb[cut]], 1), axis=1), axis=0) if cut.any() else []
        return [tuple(map(int, p)) for p in pairs]


def kernighan_lin(n: int, edges, costs, labels=None, *, max_outer: int = 100, eps: float = 1e-6,
                  progress: bool = False) -> np.ndarray:
    """Kernighan–Lin with joins, starting from ``labels`` (default: :func:`gaec`).

    Returns:
        (n,) int64 labels, connected components, objective ≤ that of the start.
    """
    e, c = _check(n, edges, costs)
    e, c = merge_parallel_edges(e, c)
    start = gaec(n, e, c) if labels is None else components_of_uncut(n, e, labels)
    kl = _KL(n, e, c, start)
    changed = set(kl.members)
    obj = multicut_objective(e, c, start)
    for _ in tqdm(range(max_outer), desc="Kernighan-Lin", unit="iter", disable=not progress):
        improvement = 0.0
        now_changed: set[int] = set()
        for a, b in kl.adjacent_pairs():
            if a not in kl.members or b not in kl.members:
                continue
            if a not in changed and b not in changed:
                continue
            g = kl.improve_pair(a, b, eps)
            if g > 0:
                improvement += g
                now_changed.update((a, b))
        for a in list(kl.members):
            if a not in changed:
                continue
            if not any(w < 0 and kl.lab[u] == a for v in kl.members[a] for u, w in kl.nbrs[v]):
                continue                               # no repulsive edge inside: no split gains
            new = kl.next_label
            kl.next_label += 1
            g = kl.improve_pair(a, new, eps)
            if g > 0:
                improvement += g
                now_changed.update((a, new))
        # Split components that moves left disconnected (objective unchanged).
        lab = components_of_uncut(n, e, np.asarray(kl.lab))
        if len(np.unique(lab)) != len(kl.members):
            kl = _KL(n, e, c, lab)
            now_changed = set(kl.members)
        new_obj = multicut_objective(e, c, kl.lab)
        if obj - new_obj < eps or not now_changed:
            obj = new_obj
            break
        obj = new_obj
        changed = now_changed
    return components_of_uncut(n, e, np.asarray(kl.lab))


def solve_multicut(n: int, edges, costs, *, method: str = "gaec+kl", max_outer: int = 100,
                   eps: float = 1e-6, progress: bool = False) -> np.ndarray:
    """``method`` = ``"gaec"`` or ``"gaec+kl"`` (default). Returns (n,) int64 labels."""
    if method == "gaec":
        return gaec(n, edges, costs)
    if method in ("gaec+kl", "kl", "klj"):
        return kernighan_lin(n, edges, costs, max_outer=max_outer, eps=eps, progress=progress)
    raise ValueError(f"unknown multicut method {method!r}; known: gaec, gaec+kl")


# --------------------------------------------------------------------------
# Brute force (for checks)
# --------------------------------------------------------------------------
def set_partitions(n: int) -> np.ndarray:
    """All partitions of n nodes as restricted growth strings, (Bell(n), n) int8."""
    if n > 11:
        raise ValueError(f"too many partitions for n={n} (keep n ≤ 11)")
    rows = [[0]] if n else [[]]
    for _ in range(1, n):
        rows = [r + [k] for r in rows for k in range(max(r) + 2)]
    return np.array(rows, np.int8).reshape(-1, n)


def brute_force_multicut(n: int, edges, costs) -> tuple[np.ndarray, float]:
    """The minimum cost multicut by enumerating every partition (n ≤ 11).

    Returns:
        (labels of an optimal decomposition, its objective).
    """
    e, c = _check(n, edges, costs)
    parts = set_partitions(n)
    if not len(e):
        return np.arange(n, dtype=np.int64) * 0, 0.0
    cut = parts[:, e[:, 0]] != parts[:, e[:, 1]]
    obj = cut.astype(np.float64) @ c
    i = int(np.argmin(obj))
    return parts[i].astype(np.int64), float(obj[i])
