"""Spectral clustering of trajectories (the classical alternative to the multicut, as in
Brox & Malik 2010 / Ochs & Brox): scikit-learn's :class:`~sklearn.cluster.SpectralClustering`
on a sparse affinity matrix.

Affinities are the join probabilities ``1 − p(cut)`` of the multicut's pairwise model on the
same sparse graph. The number of clusters is given, or chosen by the largest eigengap of
the normalised graph Laplacian among the first ``max_clusters`` eigenvalues. Connected
components smaller than ``min_component`` nodes are left out (label −1) so that stray
trajectories do not each claim an eigenvector.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, identity
from scipy.sparse.csgraph import connected_components, laplacian
from scipy.sparse.linalg import eigsh

__all__ = ["spectral_clustering", "eigengap_clusters"]


def _affinity(n, edges, weights):
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    w = np.asarray(weights, np.float64)
    a = coo_matrix((np.r_[w, w], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)).tocsr()
    a.sum_duplicates()
    return a


def eigengap_clusters(affinity, max_clusters: int = 10) -> int:
    """Number of clusters by the largest gap between consecutive eigenvalues of the
    normalised Laplacian of ``affinity`` (sparse, symmetric), between 1 and max_clusters."""
    n = affinity.shape[0]
    k = min(max_clusters + 1, n - 1)
    if k < 2:
        return 1
    lap = laplacian(affinity, normed=True)
    if n <= 400:
        vals = np.linalg.eigvalsh(lap.toarray())[:k]
    else:
        # Smallest eigenvalues of L = largest of (2I − L), which ARPACK finds quickly.
        vals = np.sort(2.0 - eigsh(2.0 * identity(n) - lap, k=k, which="LA", return_eigenvectors=False,
                                   tol=1e-6, maxiter=5000))
    gaps = np.diff(vals)
    return int(np.argmax(gaps[:max_clusters]) + 1)


def spectral_clustering(n: int, edges, join_probability, *, num_clusters: int | None = None,
                        max_clusters: int = 10, min_component: int = 5, random_state: int = 0) -> np.ndarray:
    """Cluster the n nodes of a sparse graph spectrally.

    Args:
        edges: (E, 2) node pairs. join_probability: (E,) affinities in [0, 1].
        num_clusters: K, or None to choose it by the eigengap.

    Returns:
        (n,) int64 labels 0..K−1, −1 for nodes in components smaller than ``min_component``.
    """
    from sklearn.cluster import SpectralClustering

    aff = _affinity(n, edges, join_probability)
    ncomp, comp = connected_components(aff, directed=False)
    sizes = np.bincount(comp)
    keep = sizes[comp] >= min_component
    labels = np.full(n, -1, np.int64)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return labels
    sub = aff[idx][:, idx]
    k = num_clusters if num_clusters is not None else eigengap_clusters(sub, max_clusters)
    k = max(1, min(k, len(idx)))
    if k == 1:
        labels[idx] = 0
        return labels
    sc = SpectralClustering(n_clusters=k, affinity="precomputed", assign_labels="cluster_qr",
                            random_state=random_state)
    labels[idx] = sc.fit_predict(sub)
    return labels
