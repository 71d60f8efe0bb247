"""Pairwise terms, costs, dense label maps, overlays, and the end-to-end pipeline on generated data."""

import json

import numpy as np
import pytest

from flowapps.segmentation.affinities import (PairwiseModel, build_graph, cut_probability, multicut_costs,
                                              neighbour_edges, pairwise_features)
from flowapps.segmentation.fbms import read_sequence
from flowapps.segmentation.labels import dense_label_map, dense_label_maps, overlay, tracks_from_label_maps
from flowapps.segmentation.moseg_eval import evaluate_shot
from flowapps.segmentation.pipeline import SegmentationOptions, merge_small_clusters, segment_sequence
from flowapps.segmentation.synthetic import make_fbms_like_sequence, write_fbms_sequence
from flowapps.segmentation.trajectories import Trajectories


def two_groups(n_frames=8, speed=(1.0, 0.0), offset=10.0):
    """Tracks 0,1 move right by 1 px/frame; tracks 2,3 move by ``speed``; track 4 starts late."""
    t = np.arange(n_frames, dtype=np.float32)
    pts = []
    starts = [(10, 10, (1, 0)), (10, 10 + offset, (1, 0)), (30, 10, speed), (30, 10 + offset, speed)]
    for x0, y0, v in starts:
        pts.append(np.stack([x0 + v[0] * t, y0 + v[1] * t], 1))
    pts.append(np.array([[50, 50]], np.float32))
    xy = np.concatenate(pts)
    offsets = np.cumsum([0] + [len(p) for p in pts])
    start = np.array([0, 0, 0, 0, n_frames - 1])
    colors = np.zeros((len(xy), 3), np.float32)
    colors[offsets[2]:offsets[4], 0] = 50.0
    return Trajectories(xy, offsets, start, n_frames, (64, 64), colors, np.zeros(len(xy), np.float32))


class TestPairwise:
    def test_distances(self):
        traj = two_groups(speed=(3.0, 0.0))
        m = PairwiseModel(sigma_floor=0.5)
        f = pairwise_features(traj, np.array([[0, 1], [0, 2], [2, 3]]), model=m)
        np.testing.assert_allclose(f.d_motion, [0, 2.0 * 5 / (5 * 0.5), 0], atol=1e-5)   # |Δ| over T=5 / (T σ)
        np.testing.assert_allclose(f.d_spatial[0], 10.0)
        np.testing.assert_allclose(f.d_spatial[1], np.mean(20 + 2 * np.arange(8)), atol=1e-4)
        np.testing.assert_allclose(f.d_color, [0, 50, 0])
        assert f.overlap.tolist() == [8, 8, 8]

    def test_variation_normalises_motion(self):
        traj = two_groups(speed=(3.0, 0.0))
        traj.variation[:] = 1.0
        f = pairwise_features(traj, np.array([[0, 2]]), model=PairwiseModel(sigma_floor=0.5))
        np.testing.assert_allclose(f.d_motion, 10.0 / (5 * 1.0 + 5 * 0.5), atol=1e-5)

    def test_short_overlap_uses_shorter_window(self):
        traj = two_groups(n_frames=3, speed=(2.0, 0.0))
        f = pairwise_features(traj, np.array([[0, 2]]), model=PairwiseModel(sigma_floor=1.0))
        np.testing.assert_allclose(f.d_motion, 2 * 1.0 / (2 * 1.0), atol=1e-5)           # T = 2

    def test_edges_need_common_frames(self):
        traj = two_groups()
        e = neighbour_edges(traj, neighbours=4, max_distance=100)
        assert not ((e == 4).any())                        # track 4 shares one frame only
        assert {tuple(x) for x in e.tolist()} >= {(0, 1), (2, 3)}
        with pytest.raises(ValueError, match="share"):
            pairwise_features(traj, np.array([[0, 4]]))

    def test_costs(self):
        traj = two_groups(speed=(4.0, 0.0))
        edges, costs, feats = build_graph(traj, model=PairwiseModel(neighbours=4, max_distance=100))
        p = cut_probability(feats)
        same = np.array([(a < 2) == (b < 2) for a, b in edges])
        assert (costs[same] > 0).all() and (costs[~same] < 0).all()
        moderate = np.abs(costs) < 10                     # multicut_costs clips p to [1e-6, 1 - 1e-6]
        np.testing.assert_allclose(multicut_costs(p)[moderate], costs[moderate], atol=1e-6)
        assert multicut_costs([0.5])[0] == 0.0
        assert multicut_costs([0.5], prior=0.25)[0] == pytest.approx(np.log(3))
        with pytest.raises(ValueError, match="prior"):
            PairwiseModel(prior=1.0)


class TestLabels:
    def test_dense_map_is_nearest_point(self):
        m = dense_label_map(np.array([[1.0, 1.0], [8.0, 1.0]]), np.array([3, 5]), (4, 10))
        assert m[:, :4].tolist() == [[3] * 4] * 4 and (m[:, 6:] == 5).all()
        assert (dense_label_map(np.zeros((0, 2)), np.zeros(0), (3, 3)) == -1).all()
        assert (dense_label_map(np.array([[50.0, 50.0]]), np.array([1]), (3, 3)) == -1).all()

    def test_ground_truth_as_tracks_scores_perfectly(self, tmp_path):
        seq = make_fbms_like_sequence(0, 6, (48, 64), num_objects=2)
        s = write_fbms_sequence(tmp_path / "g", "g", seq.frames, seq.masks, label_every=5)
        ts = tracks_from_label_maps(seq.masks)
        res = evaluate_shot(s.definition, ts)
        assert float(res.f_measure) == 1.0 and float(res.density) == pytest.approx(100.0)
        assert res.extracted_objects == res.visible_objects == 2

    def test_overlay(self):
        frame = np.zeros((6, 8, 3), np.uint8)
        lab = np.zeros((6, 8), int)
        lab[:, 4:] = 1
        img = overlay(frame, lab, points=np.array([[1.0, 1.0]]), point_labels=np.array([1]))
        assert img.shape == (6, 8, 3) and (img[:, 4] == 255).all()      # border in white
        assert tuple(img[1, 1]) == (200, 190, 0)                          # cluster 1's colour

    def test_dense_maps_of_trajectories(self):
        traj = two_groups()
        maps = dense_label_maps(traj, np.array([0, 0, 1, 1, 2]))
        assert maps.shape == (8, 64, 64) and set(np.unique(maps[0])) == {0, 1}


def test_merge_small_clusters():
    e = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    c = np.array([1.0, -1.0, 2.0, -3.0])
    lab = merge_small_clusters(6, e, c, np.array([0, 0, 1, 1, 2, 3]), 2)
    # 2 joins its only neighbour, isolated 3 is dropped; labels then ordered by size.
    assert lab.tolist() == [1, 1, 0, 0, 0, -1]


def test_pipeline_end_to_end_exact_flow(tmp_path):
    seq = make_fbms_like_sequence(1, 12, (96, 128))
    s = write_fbms_sequence(tmp_path / "seq", "seq", seq.frames, seq.masks, label_every=5,
                            flow_fw=seq.flow_fw, flow_bw=seq.flow_bw)
    r = segment_sequence(s, tmp_path / "out", "exact", progress=False,
                         options=SegmentationOptions(sampling=4))
    e = r.evaluation
    assert e.extracted_objects == e.visible_objects and float(e.f_measure) > 0.9
    out = tmp_path / "out"
    assert (out / "Tracks12.dat").is_file() and (out / "Tracks12Numbers.txt").is_file()
    assert len(list((out / "labels").glob("*.png"))) == 12 and len(list((out / "overlays").glob("*.jpg"))) == 12
    assert json.loads((out / "evaluation.json").read_text())["f_measure"] == pytest.approx(float(e.f_measure), abs=1e-5)
    # Spectral clustering on the same trajectories.
    r2 = segment_sequence(read_sequence(tmp_path / "seq"), tmp_path / "out2", "exact", progress=False, images=False,
                          options=SegmentationOptions(sampling=4, cluster="spectral"))
    assert r2.num_clusters >= 2 and float(r2.evaluation.f_measure) > 0.5
