"""Multicut solvers against brute force, validity of the cuts, spectral clustering."""

import numpy as np
import pytest

from flowapps.segmentation.multicut import (brute_force_multicut, components_of_uncut, gaec, is_valid_multicut,
                                            kernighan_lin, merge_parallel_edges, multicut_objective, set_partitions,
                                            solve_multicut)
from flowapps.segmentation.proof import multicut_proof
from flowapps.segmentation.spectral import spectral_clustering


def test_bell_numbers():
    assert [len(set_partitions(n)) for n in range(1, 9)] == [1, 2, 5, 15, 52, 203, 877, 4140]


@pytest.mark.parametrize("graphs", [100, pytest.param(300, marks=pytest.mark.slow)])
def test_klj_matches_brute_force_on_random_small_graphs(graphs):
    stats = multicut_proof(graphs, max_nodes=9, seed=1)
    assert stats["graphs"] == graphs
    assert stats["invalid"] == 0
    assert stats["klj_percent"] >= 95.0
    assert stats["klj_optimal"] >= stats["gaec_optimal"]


def test_simple_structures():
    # Two positive triangles joined by negative edges.
    e = np.array([[0, 1], [1, 2], [0, 2], [3, 4], [4, 5], [3, 5], [2, 3], [0, 5]])
    c = np.array([1, 1, 1, 1, 1, 1, -2, -0.5])
    lab = solve_multicut(6, e, c)
    assert lab.tolist() == [0, 0, 0, 1, 1, 1]
    assert multicut_objective(e, c, lab) == -2.5
    assert gaec(3, [[0, 1], [1, 2]], [1.0, 1.0]).tolist() == [0, 0, 0]
    assert solve_multicut(3, [[0, 1], [1, 2], [0, 2]], [-1.0, -1.0, -1.0]).tolist() == [0, 1, 2]
    assert solve_multicut(4, np.zeros((0, 2)), []).tolist() == [0, 1, 2, 3]


def test_kl_improves_a_bad_start_and_joins():
    # A path of positive edges split in the middle: KLj must join the two halves.
    e = np.array([[i, i + 1] for i in range(7)])
    c = np.ones(7)
    lab = kernighan_lin(8, e, c, labels=np.array([0, 0, 0, 0, 1, 1, 1, 1]))
    assert len(set(lab.tolist())) == 1
    # A node strongly repelled by its component moves out.
    e = np.array([[0, 1], [1, 2], [0, 2], [2, 3], [1, 3]])
    c = np.array([1.0, 1.0, 1.0, -5.0, 0.5])
    lab = kernighan_lin(4, e, c, labels=np.zeros(4, int))
    assert lab[3] != lab[2] and multicut_objective(e, c, lab) == brute_force_multicut(4, e, c)[1]


def test_disconnected_label_classes_are_split():
    lab = components_of_uncut(4, [[0, 1], [2, 3]], [0, 0, 0, 0])
    assert lab.tolist() == [0, 0, 1, 1]


def test_validity_check():
    e = np.array([[0, 1], [1, 2], [0, 2]])
    assert is_valid_multicut(3, e, [False, False, False])
    assert is_valid_multicut(3, e, [True, False, True])
    assert not is_valid_multicut(3, e, [True, False, False])      # 0-2-1 joined, 0-1 cut


def test_parallel_edges_and_errors():
    e, c = merge_parallel_edges([[1, 0], [0, 1], [2, 2]], [1.0, 2.0, 5.0])
    assert e.tolist() == [[0, 1]] and c.tolist() == [3.0]
    with pytest.raises(ValueError, match="costs"):
        gaec(3, [[0, 1]], [1.0, 2.0])
    with pytest.raises(ValueError, match="endpoints"):
        gaec(2, [[0, 5]], [1.0])
    with pytest.raises(ValueError, match="finite"):
        gaec(2, [[0, 1]], [np.nan])
    with pytest.raises(ValueError, match="unknown multicut method"):
        solve_multicut(2, [[0, 1]], [1.0], method="ilp")


def test_larger_graph_recovers_planted_partition():
    rng = np.random.default_rng(0)
    n = 600
    pts = rng.uniform(0, 100, (n, 2))
    truth = (pts[:, 0] > 50).astype(int) + 2 * (pts[:, 1] > 50)
    from scipy.spatial import cKDTree

    _, idx = cKDTree(pts).query(pts, 7)
    e = np.unique(np.sort(np.stack([np.repeat(np.arange(n), 6), idx[:, 1:].ravel()], 1), 1), axis=0)
    c = np.where(truth[e[:, 0]] == truth[e[:, 1]], 1.0, -1.0) + rng.normal(0, 0.5, len(e))
    lab = solve_multicut(n, e, c)
    assert multicut_objective(e, c, lab) <= multicut_objective(e, c, truth) + 1e-9
    big = np.bincount(lab)
    assert (np.sort(big)[-4:] > 100).all()


def test_spectral_two_groups():
    rng = np.random.default_rng(0)
    n = 80
    e = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.2])
    same = (e[:, 0] < 40) == (e[:, 1] < 40)
    w = np.where(same, 0.95, 0.02)
    lab = spectral_clustering(n, e, w)
    assert len(set(lab.tolist())) == 2
    assert len(set(lab[:40].tolist())) == 1 and len(set(lab[40:].tolist())) == 1
    assert len(set(spectral_clustering(n, e, w, num_clusters=3).tolist())) == 3
