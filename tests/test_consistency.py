"""Tests for flownet2_core.consistency (Sundaram et al. 2010 reliability checks)."""

import numpy as np
import pytest

from flownet2_core.consistency import (
    fb_consistent,
    forward_backward_check,
    inside_image,
    motion_boundary_at,
    motion_boundary_mask,
    sample_bilinear,
    warp_backward_flow,
)

H, W = 32, 48


def const_flow(u, v, h=H, w=W):
    flow = np.empty((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


def targets_inside(u, v, h=H, w=W):
    ys, xs = np.mgrid[0:h, 0:w]
    x1, y1 = xs + u, ys + v
    return (x1 >= -0.5) & (x1 <= w - 0.5) & (y1 >= -0.5) & (y1 <= h - 0.5)


def bilinear_reference(field, x, y):
    """Loop reference: clamp to the image, then weight the four neighbours."""
    h, w = field.shape[:2]
    x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    ax, ay = x - x0, y - y0
    f = field.astype(np.float64)
    return (1 - ay) * ((1 - ax) * f[y0, x0] + ax * f[y0, x1]) + ay * ((1 - ax) * f[y1, x0] + ax * f[y1, x1])


class TestSampleBilinear:
    def test_matches_analytic_plane(self):
        yy, xx = np.mgrid[0:8, 0:10].astype(np.float32)
        field = np.stack([2 * xx + 1, 3 * yy - xx], -1)
        pts = np.array([[0.0, 0.0], [3.25, 4.5], [8.9, 6.99], [9.0, 7.0]], np.float32)
        expect = np.stack([2 * pts[:, 0] + 1, 3 * pts[:, 1] - pts[:, 0]], 1)
        np.testing.assert_allclose(sample_bilinear(field, pts), expect, atol=1e-4)

    def test_outside_replicates_the_border(self):
        field = np.arange(80, dtype=np.float32).reshape(8, 10)
        out = sample_bilinear(field, np.array([[-3.0, -2.0], [20.0, 30.0], [-0.5, 3.0]]))
        np.testing.assert_array_equal(out, [field[0, 0], field[7, 9], field[3, 0]])

    def test_matches_loop_reference(self):
        rng = np.random.default_rng(0)
        field = rng.normal(size=(7, 9, 3)).astype(np.float32)
        pts = rng.uniform(-2, 11, (200, 2))
        ref = np.array([bilinear_reference(field, x, y) for x, y in pts])
        out = sample_bilinear(field, pts)
        assert out.dtype == np.float32 and out.shape == (200, 3)
        np.testing.assert_allclose(out, ref, atol=1e-5)

    def test_shapes(self):
        field = np.ones((4, 5), np.float32)
        assert sample_bilinear(field, np.zeros((3, 6, 2))).shape == (3, 6)
        assert sample_bilinear(np.ones((4, 5, 2)), np.zeros((0, 2))).shape == (0, 2)
        assert sample_bilinear(np.ones((1, 1, 2)), np.array([[0.3, 0.7]])).tolist() == [[1.0, 1.0]]

    def test_non_finite_field_spreads_to_its_footprint(self):
        field = np.zeros((4, 4), np.float32)
        field[1, 2] = np.inf
        out = sample_bilinear(field, np.array([[2.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))
        assert not np.isfinite(out[:2]).any() and out[2] == 0   # weight 0 · inf = nan


class TestPointTests:
    def test_inside_image(self):
        pts = np.array([[-0.5, 0.0], [-0.51, 0.0], [4.5, 2.5], [4.51, 0.0], [np.nan, 0.0], [np.inf, 1.0]])
        assert inside_image(pts, (3, 5)).tolist() == [True, False, True, False, False, False]

    def test_fb_consistent_is_the_dense_criterion(self):
        rng = np.random.default_rng(2)
        wf = rng.normal(0, 3, (500, 2))
        wb = -wf + rng.normal(0, 0.8, (500, 2))
        lhs = ((wf + wb) ** 2).sum(1)
        rhs = 0.01 * ((wf ** 2).sum(1) + (wb ** 2).sum(1)) + 0.5
        ok = fb_consistent(wf, wb)
        np.testing.assert_array_equal(ok, lhs < rhs)
        assert ok.any() and not ok.all()
        assert not fb_consistent(np.array([[np.nan, 0.0]]), np.zeros((1, 2)))[0]
        with pytest.raises(ValueError):
            fb_consistent(wf, wb, alpha1=-1)

    @pytest.mark.parametrize("shape", [(9, 11), (1, 6), (5, 1), (2, 2)])
    def test_motion_boundary_at_equals_the_mask(self, shape):
        rng = np.random.default_rng(3)
        flow = (rng.normal(size=shape + (2,)) * 0.05).astype(np.float32)
        flow[:, shape[1] // 2:, 0] += 2.0
        flow[0, 0, 1] = np.nan
        i, j = np.mgrid[0:shape[0], 0:shape[1]]
        np.testing.assert_array_equal(motion_boundary_at(flow, i, j), motion_boundary_mask(flow))
        some = motion_boundary_at(flow, np.array([0, shape[0] - 1]), np.array([shape[1] - 1, 0]))
        np.testing.assert_array_equal(some, motion_boundary_mask(flow)[[0, -1], [-1, 0]])
        with pytest.raises(ValueError):
            motion_boundary_at(flow[None], i, j)

    def test_motion_boundary_mask_matches_a_loop(self):
        rng = np.random.default_rng(0)
        flow = rng.normal(size=(9, 11, 2)) * 0.05
        flow[:, 6:, 0] += 2.0
        mask = motion_boundary_mask(flow)
        for i in range(9):
            for j in range(11):
                lo_i, hi_i, lo_j, hi_j = max(i - 1, 0), min(i + 1, 8), max(j - 1, 0), min(j + 1, 10)
                gy = (flow[hi_i, j] - flow[lo_i, j]) / (hi_i - lo_i)
                gx = (flow[i, hi_j] - flow[i, lo_j]) / (hi_j - lo_j)
                assert mask[i, j] == ((gy ** 2).sum() + (gx ** 2).sum() > 0.01 * (flow[i, j] ** 2).sum() + 0.002)


class TestForwardBackward:
    @pytest.mark.parametrize("u,v", [(2.0, 1.0), (-3.0, 0.0), (1.5, -0.25), (0.0, 0.0)])
    def test_exact_inverse_translation(self, u, v):
        fw = const_flow(u, v)
        ok = forward_backward_check(fw, -fw)
        assert ok.dtype == bool and ok.shape == (H, W)
        np.testing.assert_array_equal(ok, targets_inside(u, v))

    def test_image_edge_is_inclusive(self):
        # The image rectangle is [-0.5, W-0.5] × [-0.5, H-0.5] (pixel areas).
        fw = np.zeros((4, 6, 2), np.float32)
        fw[:, 0, 0] = 5.5  # lands exactly on the right edge: inside
        fw[:, 1, 0] = 4.51  # just beyond it: outside
        fw[:, 2, 0] = -2.51  # just before the left edge: outside
        fw[:, 3, 0] = -3.5  # exactly the left edge: inside
        ok = forward_backward_check(fw, np.zeros_like(fw), alpha2=1e6)
        assert ok[:, 0].all() and not ok[:, 1].any() and not ok[:, 2].any() and ok[:, 3].all()

    def test_perturbed_backward_fails_where_perturbed(self):
        fw = const_flow(2.0, 0.0)
        bw = -fw
        bw[10:20, 30:40, 0] += 3.0  # wrong backward flow in frame 2
        ok = forward_backward_check(fw, bw)
        expected = targets_inside(2.0, 0.0)
        # Integer translation: pixel x reads bw at exactly x + 2.
        expected[10:20, 28:38] = False
        np.testing.assert_array_equal(ok, expected)

    def test_thresholds_follow_the_formula(self):
        # fw = (u, 0), bw = (-u + d, 0): |w_f + w_b|² = d²,
        # tolerance = 0.01 (u² + (u - d)²) + 0.5.
        w = 64
        cases = [  # (u, d, consistent)
            (2.0, 0.5, True),  # 0.25 < 0.5 + 0.0425
            (2.0, 1.0, False),  # 1 >= 0.55
            (2.0, 2.0, False),  # 4 >= 0.54
            (20.0, 2.0, True),  # 4 < 7.74: large motions get more slack
            (20.0, 3.0, False),  # 9 >= 7.79
        ]
        for u, d, expected in cases:
            fw = const_flow(u, 0.0, 4, w)
            bw = const_flow(-u + d, 0.0, 4, w)
            ok = forward_backward_check(fw, bw)
            assert ok[:, 0].all() == expected, (u, d)
            lhs, rhs = d**2, 0.01 * (u**2 + (u - d) ** 2) + 0.5
            assert (lhs < rhs) == expected

    def test_alphas_change_the_tolerance(self):
        fw = const_flow(2.0, 0.0)
        bw = const_flow(-1.0, 0.0)  # error of 1 px everywhere
        assert not forward_backward_check(fw, bw)[:, :W - 2].any()
        assert forward_backward_check(fw, bw, alpha2=1.1)[:, :W - 2].all()
        assert forward_backward_check(fw, bw, alpha1=1.0)[:, :W - 2].all()

    def test_occlusion(self):
        # A 10×10 square moves 4 px right over a static background.
        fw = np.zeros((H, W, 2), np.float32)
        bw = np.zeros((H, W, 2), np.float32)
        fw[10:20, 10:20, 0] = 4.0  # frame 1: square at columns 10..19
        bw[10:20, 14:24, 0] = -4.0  # frame 2: square at columns 14..23
        ok = forward_backward_check(fw, bw)
        # Background at columns 20..23 is covered by the square in frame 2:
        # it stays put, but the backward flow there points 4 px back.
        occluded = np.zeros((H, W), bool)
        occluded[10:20, 20:24] = True
        np.testing.assert_array_equal(ok, ~occluded)

    def test_occlusion_on_synthetic_scene(self):
        from flownet2_core.data.synthetic import make_sequence

        seq = make_sequence(seed=1, num_frames=2, size=(48, 64), mode="chairs",
                            num_objects=2, motion="translation", max_translation=4.0)
        fw, bw, valid = seq.flow_fw[0], seq.flow_bw[0], seq.valid_fw[0]
        ok = forward_backward_check(fw, bw)
        # With exact flows the check reproduces the occlusion mask except on
        # a thin band where bilinear sampling mixes the two layers.
        assert (ok == valid).mean() > 0.96  # measured 0.98–0.99 on seeds 0–5
        assert (~valid).any() and (~ok[~valid]).mean() > 0.9

    def test_warp_backward_flow(self):
        fw = const_flow(1.0, 0.0, 3, 5)
        bw = np.zeros((3, 5, 2), np.float32)
        bw[..., 1] = np.arange(5, dtype=np.float32)  # v = column index
        warped, inside = warp_backward_flow(fw, bw)
        np.testing.assert_allclose(warped[0, :4, 1], [1, 2, 3, 4])
        assert inside[:, :4].all() and not inside[:, 4].any()  # 5 > 4.5

    def test_non_finite_is_inconsistent(self):
        fw = const_flow(0.0, 0.0)
        bw = const_flow(0.0, 0.0)
        fw[3, 4] = np.nan
        bw[5, 6] = np.inf
        ok = forward_backward_check(fw, bw)
        assert not ok[3, 4] and not ok[5, 6]
        # The inf also poisons the bilinear footprints that touch it
        # (0 · inf = nan); everything farther away stays consistent.
        far = np.ones((H, W), bool)
        far[3, 4] = False
        far[4:7, 5:8] = False
        assert ok[far].all()

    def test_batch_matches_single(self):
        rng = np.random.default_rng(0)
        fw = rng.normal(0, 2, (3, H, W, 2)).astype(np.float32)
        bw = -fw + rng.normal(0, 0.5, fw.shape).astype(np.float32)
        ok = forward_backward_check(fw, bw)
        assert ok.shape == (3, H, W)
        for i in range(3):
            np.testing.assert_array_equal(ok[i], forward_backward_check(fw[i], bw[i]))

    def test_float64_and_noncontiguous(self):
        fw = np.asfortranarray(const_flow(2.0, 1.0).astype(np.float64))
        ok = forward_backward_check(fw, -fw)
        np.testing.assert_array_equal(ok, targets_inside(2.0, 1.0))

    @pytest.mark.parametrize(
        "fw,bw,kwargs",
        [
            (np.zeros((H, W, 2)), np.zeros((H, W + 1, 2)), {}),
            (np.zeros((H, W, 3)), np.zeros((H, W, 3)), {}),
            (np.zeros((H, W)), np.zeros((H, W)), {}),
            ([[0.0, 0.0]], [[0.0, 0.0]], {}),
            (np.zeros((H, W, 2)), np.zeros((H, W, 2)), {"alpha1": -0.1}),
            (np.zeros((H, W, 2)), np.zeros((H, W, 2)), {"alpha2": float("nan")}),
        ],
    )
    def test_errors(self, fw, bw, kwargs):
        with pytest.raises(ValueError):
            forward_backward_check(fw, bw, **kwargs)


class TestMotionBoundary:
    def test_constant_flow_has_no_boundary(self):
        assert not motion_boundary_mask(const_flow(7.0, -3.0)).any()

    def test_smooth_flow_has_no_boundary(self):
        ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
        flow = np.stack([0.02 * xs, -0.01 * ys], -1)  # |∇|² = 5e-4 < 0.002
        assert not motion_boundary_mask(flow).any()

    def test_step_marks_the_two_adjacent_columns(self):
        flow = np.zeros((H, W, 2), np.float32)
        flow[:, 20:, 0] = 3.0
        mb = motion_boundary_mask(flow)
        expected = np.zeros((H, W), bool)
        expected[:, 19:21] = True  # central differences see the step at 19 and 20
        np.testing.assert_array_equal(mb, expected)

    def test_stencil_on_the_border(self):
        flow = np.zeros((3, 5, 2), np.float32)
        flow[:, 1:, 1] = 1.0  # v = [0, 1, 1, 1, 1]
        # column 0: one-sided f[1]-f[0] = 1; column 1: (f[2]-f[0])/2 = 0.5,
        # 0.25 > 0.01·1 + 0.002; column 2: (1 - 1)/2 = 0.
        mb = motion_boundary_mask(flow)
        np.testing.assert_array_equal(mb[0], [True, True, False, False, False])

    def test_relative_term(self):
        # Same step of 1 px/px on top of a large motion: 0.25 vs 0.01·|w|².
        flow = const_flow(10.0, 0.0)
        flow[:, 20:, 0] = 11.0
        assert not motion_boundary_mask(flow).any()  # 0.25 < 0.01·100 + 0.002
        assert motion_boundary_mask(flow, alpha1=0.001).any()

    def test_batch_matches_single(self):
        flows = np.random.default_rng(1).normal(0, 1, (2, H, W, 2)).astype(np.float32)
        mb = motion_boundary_mask(flows)
        assert mb.shape == (2, H, W) and mb.dtype == bool
        for i in range(2):
            np.testing.assert_array_equal(mb[i], motion_boundary_mask(flows[i]))

    @pytest.mark.parametrize("flow", [np.zeros((H, W, 3)), np.zeros((H, W)), "flow"])
    def test_errors(self, flow):
        with pytest.raises(ValueError):
            motion_boundary_mask(flow)
