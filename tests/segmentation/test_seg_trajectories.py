"""Point tracking: seeding, advection, the three termination rules, storage, the flow cache.
(The sampling and the reliability tests it uses are tested in tests/test_consistency.py.)"""

import numpy as np
import pytest

from flowapps.segmentation.synthetic import make_fbms_like_sequence
from flowapps.segmentation.trajectories import FlowStore, Trajectories, load_trajectories, save_trajectories, track_points


def textured(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    base = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 1.0)
    return np.repeat(base[None].clip(0, 255).astype(np.uint8), n, 0)


def constant_flow(n, h, w, u, v):
    fw = np.zeros((n - 1, h, w, 2), np.float32)
    fw[..., 0], fw[..., 1] = u, v
    return fw, -fw


class TestTracking:
    def test_translation_is_followed_exactly(self):
        n, h, w = 6, 40, 48
        fw, bw = constant_flow(n, h, w, 1.5, -0.5)
        tr = track_points(fw, bw, textured(n, h, w), sampling=8, progress=False)
        first = tr.start == 0
        assert first.sum() == (h // 8) * (w // 8)             # the whole grid on frame 0
        pf = tr.point_frames
        x0 = tr.xy[tr.offsets[:-1]][tr.point_tracks]
        np.testing.assert_allclose(tr.xy[:, 0] - x0[:, 0], 1.5 * (pf - tr.start[tr.point_tracks]), atol=1e-4)
        np.testing.assert_allclose(tr.xy[:, 1] - x0[:, 1], -0.5 * (pf - tr.start[tr.point_tracks]), atol=1e-4)

    def test_tracks_leave_the_image_and_new_ones_fill_the_gap(self):
        n, h, w = 12, 32, 32
        fw, bw = constant_flow(n, h, w, 3.0, 0.0)
        tr = track_points(fw, bw, textured(n, h, w), sampling=8, progress=False)
        assert (tr.start > 0).any()                          # uncovered columns get new seeds
        last_x = tr.xy[tr.offsets[1:] - 1, 0]
        ended_early = tr.end < n - 1
        assert (last_x[ended_early] + 3.0 > w - 0.5).all()   # only tracks that would leave stopped
        assert (tr.xy[:, 0] <= w - 0.5).all()

    def test_forward_backward_failure_stops_tracks(self):
        n, h, w = 4, 24, 24
        fw, _ = constant_flow(n, h, w, 2.0, 0.0)
        tr = track_points(fw, np.zeros_like(fw), textured(n, h, w), sampling=8, progress=False)
        assert (tr.lengths == 1).all()                       # |wf + wb|² = 4 ≥ 0.01·4 + 0.5

    def test_motion_boundary_stops_tracks(self):
        n, h, w = 3, 24, 32
        fw = np.zeros((n - 1, h, w, 2), np.float32)
        fw[:, :, 14:, 1] = 1.0                               # a shear boundary between columns 13 and 14
        tr = track_points(fw, -fw, textured(n, h, w), sampling=4, texture_threshold=0, progress=False)
        x0 = tr.xy[tr.offsets[:-1], 0]
        first = tr.start == 0
        on_edge = first & (np.abs(x0 - 13.5) < 1)
        assert on_edge.any() and (tr.lengths[on_edge] == 1).all()
        y0 = tr.xy[tr.offsets[:-1], 1]
        assert (tr.lengths[first & (np.abs(x0 - 13.5) > 2) & (y0 < h - 4)] == n).all()

    def test_texture_test(self):
        n, h, w = 3, 24, 24
        fw, bw = constant_flow(n, h, w, 0.5, 0.0)
        flat = np.full((n, h, w, 3), 128, np.uint8)
        assert len(track_points(fw, bw, flat, progress=False)) == 0
        assert len(track_points(fw, bw, flat, texture_threshold=0, progress=False)) == 9
        half = textured(n, h, w)
        half[:, :, :12] = 128
        tr = track_points(fw, bw, half, sampling=4, progress=False)
        assert (tr.xy[tr.offsets[:-1], 0] >= 10).all()       # no seeds on the flat half

    def test_generated_sequence_tracks_stay_on_their_object(self):
        seq = make_fbms_like_sequence(3, 12, (96, 128))
        tr = track_points(seq.flow_fw, seq.flow_bw, seq.frames, sampling=4, progress=False)
        h, w = tr.size
        lab = seq.masks[tr.point_frames, np.clip(np.rint(tr.xy[:, 1]).astype(int), 0, h - 1),
                        np.clip(np.rint(tr.xy[:, 0]).astype(int), 0, w - 1)]
        first = lab[tr.offsets[:-1]][tr.point_tracks]
        assert (lab == first).mean() > 0.99
        assert tr.colors.shape == (len(tr.xy), 3) and tr.variation.shape == (len(tr.xy),)

    def test_bad_input(self):
        fw, bw = constant_flow(3, 8, 8, 0, 0)
        with pytest.raises(ValueError, match="sampling"):
            track_points(fw, bw, sampling=0, progress=False)
        with pytest.raises(ValueError, match="frames"):
            track_points(fw, bw, textured(2, 8, 8), progress=False)


class TestStorage:
    def make(self):
        xy = np.arange(14, dtype=np.float32).reshape(7, 2)
        return Trajectories(xy, np.array([0, 3, 4, 7]), np.array([0, 2, 1]), 5, (10, 12),
                            colors=np.ones((7, 3), np.float32), variation=np.arange(7, dtype=np.float32))

    def test_views(self):
        t = self.make()
        assert t.lengths.tolist() == [3, 1, 3] and t.end.tolist() == [2, 2, 3]
        assert t.point_frames.tolist() == [0, 1, 2, 2, 1, 2, 3]
        idx, pos = t.at_frame(2)
        assert idx.tolist() == [0, 1, 2] and pos[:, 0].tolist() == [4, 6, 10]
        g = t.gather(np.array([0, 2]), 1, 4)
        assert np.isnan(g[0, 2]).all() and g[1, 0, 0] == 8
        sub = t.subset(np.array([False, True, True]))
        assert sub.lengths.tolist() == [1, 3] and sub.xy[0, 0] == 6
        tr = t.truncate(3)
        assert tr.lengths.tolist() == [3, 1, 2] and tr.num_frames == 3
        ts = t.to_trackset([5, 6, 7])
        assert ts.labels.tolist() == [5, 6, 7] and ts.frames.tolist() == t.point_frames.tolist()

    def test_save_load(self, tmp_path):
        t = self.make()
        save_trajectories(tmp_path / "t.npz", t, sequence="/x", method="dis")
        back, meta = load_trajectories(tmp_path / "t.npz")
        np.testing.assert_array_equal(back.xy, t.xy)
        assert back.size == (10, 12) and back.num_frames == 5 and meta == {"sequence": "/x", "method": "dis"}
        (tmp_path / "bad.npz").write_bytes(b"not a zip")
        with pytest.raises(ValueError, match="bad.npz"):
            load_trajectories(tmp_path / "bad.npz")

    def test_flow_store_computes_once(self, tmp_path):
        frames = textured(3, 24, 32)
        store = FlowStore(tmp_path / "flow", 3).compute(list(frames), "farneback", progress=False)
        assert store.missing() == [] and store.forward[1].shape == (24, 32, 2)
        stamp = store.path("forward", 0).stat().st_mtime_ns
        FlowStore(tmp_path / "flow", 3).compute(list(frames), "farneback", progress=False)
        assert store.path("forward", 0).stat().st_mtime_ns == stamp
        with pytest.raises(FileNotFoundError, match="exact flow"):
            FlowStore(tmp_path / "none", 3).compute(list(frames), "exact")

    def test_flow_store_names_files_after_the_frame_they_leave(self, tmp_path):
        """Like every flow file of the toolkit: named frames give their stem, unnamed ones are
        numbered from 1 (rawframes); repeated names would collide and are refused."""
        named = FlowStore(tmp_path, [tmp_path / "cars1_01.jpg", tmp_path / "cars1_02.jpg", "cars1_03.png"])
        assert [named.path("forward", 0).name, named.path("backward", 2).name] == [
            "forward_cars1_01.flo", "backward_cars1_03.flo"]
        assert FlowStore(tmp_path, 3).path("forward", 0).name == "forward_00001.flo"
        with pytest.raises(ValueError, match="repeat"):
            FlowStore(tmp_path, ["a/x.jpg", "b/x.png"])

    def test_flow_store_batches_pairs(self, tmp_path, monkeypatch):
        import flowapps.segmentation.trajectories as trajectories
        from flownet2_core.io import read_flo
        from flownet2_core.methods import get_method

        calls = []

        class Counting:
            def __init__(self, method):
                self.method = method

            def batch(self, imgs1, imgs2):
                calls.append(len(imgs1))
                return self.method.batch(imgs1, imgs2)

        monkeypatch.setattr(trajectories, "get_method", lambda name, **kw: Counting(get_method(name, **kw)))
        frames = textured(4, 24, 32, seed=1)
        frames[2] = textured(1, 24, 32, seed=2)[0]
        store = FlowStore(tmp_path / "flow", 4).compute(list(frames), "farneback", progress=False, pairs_per_batch=4)
        assert calls == [4, 2]                               # 6 fields: forward 0..2, backward 1..3
        fn = get_method("farneback")
        for t in range(3):
            np.testing.assert_array_equal(store.forward[t], fn(frames[t], frames[t + 1]))
            np.testing.assert_array_equal(read_flo(store.path("backward", t + 1)), fn(frames[t + 1], frames[t]))
        with pytest.raises(ValueError, match="pairs_per_batch"):
            FlowStore(tmp_path / "other", 4).compute(list(frames), "farneback", pairs_per_batch=0)
