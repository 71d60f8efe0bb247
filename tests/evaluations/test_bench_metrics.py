"""Benchmark metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from evaluations.benchmarks.metrics import (
    aggregate,
    angular_error,
    fl_outliers,
    frame_stats,
    stats_to_metrics,
)


def _flow(vectors):
    """Nested list of (u, v) rows → (H, W, 2) float32."""
    return np.array(vectors, np.float32)


def metrics(flow, gt, valid=None, **kw):
    return stats_to_metrics(frame_stats(flow, gt, valid, **kw))


class TestEPEAndOutliers:
    def test_hand_computed_2x2(self):
        gt = np.zeros((2, 2, 2), np.float32)
        flow = _flow([[(3, 0), (0, 4)], [(1, 0), (0, 0)]])   # EPE 3, 4, 1, 0
        m = metrics(flow, gt)
        assert m["epe_all"] == pytest.approx(2.0)
        assert m["out1_all"] == pytest.approx(50.0)   # 3 and 4 (1 is not > 1)
        assert m["out3_all"] == pytest.approx(25.0)   # 4 only: exactly 3 px is not an outlier
        assert m["out5_all"] == 0.0
        assert m["fl_all"] == pytest.approx(25.0)     # |gt| = 0: only the 3-px rule decides

    def test_epe_matches_core(self):
        from flownet2_core.metrics import average_epe
        rng = np.random.default_rng(0)
        f, g = rng.normal(size=(2, 5, 7, 2)).astype(np.float32)
        valid = rng.random((5, 7)) > 0.3
        assert metrics(f, g, valid)["epe_all"] == pytest.approx(average_epe(f, g, valid), rel=1e-6)

    def test_fl_absolute_threshold_exactly_3px(self):
        gt = _flow([[(10, 0), (10, 0)]])          # 5 % of 10 = 0.5 px: the 3-px rule decides
        flow = _flow([[(13, 0), (13.01, 0)]])     # EPE 3 (not an outlier), 3.01 (outlier)
        out = fl_outliers(np.array([[3.0, 3.01]]), gt)
        assert out.tolist() == [[False, True]]
        assert metrics(flow, gt)["fl_all"] == pytest.approx(50.0)

    def test_fl_relative_threshold_exactly_5_percent(self):
        # |gt| = 80 → 5 % = 4 px; EPE 4 is > 3 px but not > 5 %: not an outlier.
        gt = _flow([[(80, 0), (80, 0), (100, 0), (40, 0)]])
        flow = _flow([[(84, 0), (84.5, 0), (105, 0), (44, 0)]])
        m = frame_stats(flow, gt)
        # 84 → EPE 4 = 5 % (no), 84.5 → 4.5 > 4 (yes), 105 → 5 = 5 % of 100 (no), 44 → 4 > 2 (yes)
        assert m["fl_sum_all"] == 2.0
        assert stats_to_metrics(m)["fl_all"] == pytest.approx(50.0)

    def test_invalid_pixels_are_ignored(self):
        gt = np.zeros((1, 3, 2), np.float32)
        flow = _flow([[(1, 0), (2, 0), (1000, 0)]])
        valid = np.array([[True, True, False]])
        m = metrics(flow, gt, valid)
        assert m["epe_all"] == pytest.approx(1.5)
        assert m["out3_all"] == 0.0

    def test_nonfinite_gt_is_invalid_and_nan_estimate_is_an_error(self):
        gt = _flow([[(0, 0), (np.nan, 0)]])
        flow = _flow([[(np.nan, 0), (5, 5)]])
        s = frame_stats(flow, gt)
        assert s["n_all"] == 1.0
        assert s["out5_sum_all"] == 1.0  # the NaN estimate counts as a huge error

    def test_all_invalid_frame_is_nan_not_zero(self):
        gt = np.zeros((2, 2, 2), np.float32)
        m = metrics(gt + 1, gt, np.zeros((2, 2), bool))
        assert all(math.isnan(m[k]) for k in ("epe_all", "fl_all", "out3_all", "aae_all"))

    def test_shapes_are_checked(self):
        with pytest.raises(ValueError, match="must both be"):
            frame_stats(np.zeros((2, 2, 2)), np.zeros((2, 3, 2)))
        with pytest.raises(ValueError, match="valid mask"):
            frame_stats(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.ones((3, 2), bool))


class TestRegions:
    def test_noc_occ_split(self):
        gt = np.zeros((1, 4, 2), np.float32)
        flow = _flow([[(1, 0), (3, 0), (5, 0), (7, 0)]])
        occ = np.array([[False, False, True, True]])
        m = metrics(flow, gt, occluded=occ)
        assert (m["epe_all"], m["epe_noc"], m["epe_occ"]) == pytest.approx((4.0, 2.0, 6.0))

    def test_without_masks_regions_are_empty(self):
        gt = np.zeros((1, 2, 2), np.float32)
        m = metrics(gt, gt)
        assert m["epe_all"] == 0.0
        assert math.isnan(m["epe_noc"]) and math.isnan(m["fl_fg"])

    def test_bg_fg_fl(self):
        gt = np.zeros((1, 4, 2), np.float32)
        flow = _flow([[(4, 0), (0, 0), (4, 0), (4, 0)]])
        fg = np.array([[False, False, True, True]])
        valid = np.array([[True, True, True, False]])
        m = metrics(flow, gt, valid, foreground=fg)
        assert m["fl_bg"] == pytest.approx(50.0)
        assert m["fl_fg"] == pytest.approx(100.0)  # the invalid fg pixel does not count
        assert m["fl_all"] == pytest.approx(200 / 3)


class TestAngularError:
    def test_hand_computed(self):
        gt = np.zeros((1, 3, 2), np.float32)
        flow = _flow([[(1, 0), (0, 0), (0, -1)]])
        # (1, 0, 1) vs (0, 0, 1): 45°; identical: 0°
        assert angular_error(flow, gt)[0].tolist() == pytest.approx([45.0, 0.0, 45.0])
        assert metrics(flow, gt)["aae_all"] == pytest.approx(30.0)

    def test_opposite_unit_motion(self):
        # (1, 0, 1) vs (-1, 0, 1): dot 0 → 90°
        assert angular_error(_flow([[(1, 0)]]), _flow([[(-1, 0)]]))[0, 0] == pytest.approx(90.0)


class TestAggregate:
    def frames(self):
        gt1 = np.zeros((1, 1, 2), np.float32)
        f1 = _flow([[(1, 0)]])                       # 1 pixel, EPE 1
        gt2 = np.zeros((1, 3, 2), np.float32)
        f2 = _flow([[(3, 0), (0, 3), (3, 0)]])       # 3 pixels, EPE 3
        empty = frame_stats(f1, gt1, np.zeros((1, 1), bool))  # all-invalid frame
        return [frame_stats(f1, gt1), frame_stats(f2, gt2), empty]

    def test_pixel_vs_image_average(self):
        s = self.frames()
        assert aggregate(s, "pixel")["epe_all"] == pytest.approx((1 + 9) / 4)
        assert aggregate(s, "image")["epe_all"] == pytest.approx((1 + 3) / 2)  # empty frame skipped

    def test_all_empty_is_nan(self):
        s = self.frames()[2:]
        assert math.isnan(aggregate(s, "pixel")["epe_all"])
        assert math.isnan(aggregate(s, "image")["epe_all"])
        assert math.isnan(aggregate([], "pixel")["epe_all"])

    def test_unknown_average(self):
        with pytest.raises(ValueError, match="pixel"):
            aggregate(self.frames(), "median")
