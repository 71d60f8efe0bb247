"""Tests for flownet2_core.viz (Middlebury colour coding)."""

import numpy as np
import pytest
import torch
import torchvision.utils

from flownet2_core.viz import (
    color_wheel_legend,
    flow_to_color,
    flow_to_color_with_legend,
    make_colorwheel,
)

H, W = 24, 32
WHITE = (255, 255, 255)


def const_flow(u, v, h=H, w=W):
    flow = np.empty((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


def random_flow(seed, scale, h=H, w=W):
    return (np.random.default_rng(seed).standard_normal((h, w, 2)) * scale).astype(np.float32)


def torchvision_colors(flow):
    t = torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).contiguous()
    return torchvision.utils.flow_to_image(t).permute(1, 2, 0).numpy()


def whiteness_loss(img):
    """Mean distance from white: grows with saturation."""
    return float((255 - img.astype(np.float64)).mean())


class TestColorWheel:
    def test_shape_and_ramps(self):
        wheel = make_colorwheel()
        assert wheel.shape == (15 + 6 + 4 + 11 + 13 + 6, 3)
        # Ramp starts: red, yellow, green, cyan, blue, magenta.
        starts = np.cumsum([0, 15, 6, 4, 11, 13])
        expected = [(255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255), (255, 0, 255)]
        np.testing.assert_array_equal(wheel[starts], expected)

    @pytest.mark.skipif(not hasattr(torchvision.utils, "_make_colorwheel"),
                        reason="torchvision's private wheel helper is gone")
    def test_same_wheel_as_torchvision(self):
        np.testing.assert_array_equal(make_colorwheel(), torchvision.utils._make_colorwheel().numpy())


class TestFlowToColor:
    @pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 7.5), (2, 40.0), (3, 0.05)])
    def test_matches_torchvision_when_self_normalised(self, seed, scale):
        flow = random_flow(seed, scale)
        ours = flow_to_color(flow)
        theirs = torchvision_colors(flow)
        assert ours.dtype == np.uint8 and ours.shape == (H, W, 3)
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1

    def test_matches_torchvision_on_axis_and_diagonal_motions(self):
        flow = np.zeros((3, 3, 2), np.float32)
        for i, dy in enumerate((-1, 0, 1)):
            for j, dx in enumerate((-1, 0, 1)):
                flow[i, j] = (dx, dy)
        diff = flow_to_color(flow).astype(int) - torchvision_colors(flow).astype(int)
        assert np.abs(diff).max() <= 1

    @pytest.mark.parametrize("max_flow", [None, 1.0, 25.0])
    def test_zero_flow_is_white(self, max_flow):
        img = flow_to_color(np.zeros((H, W, 2), np.float32), max_flow=max_flow)
        assert (img == 255).all()

    # Middlebury convention, image axes (y down): right red, down orange-yellow,
    # left cyan-blue, up violet. Exact values of the saturated wheel colours.
    @pytest.mark.parametrize(
        "u,v,rgb",
        [
            (1, 0, (255, 0, 0)),
            (0, 1, (255, 229, 0)),
            (-1, 0, (0, 209, 255)),
            (0, -1, (88, 0, 255)),
        ],
    )
    def test_axis_directions(self, u, v, rgb):
        img = flow_to_color(const_flow(5.0 * u, 5.0 * v), max_flow=5.0)
        assert (img == np.array(rgb, np.uint8)).all()

    def test_right_is_red_without_fixed_scale(self):
        img = flow_to_color(const_flow(3.0, 0.0))
        assert tuple(img[0, 0]) == (255, 0, 0)

    def test_half_length_is_half_saturated(self):
        img = flow_to_color(const_flow(2.0, 0.0), max_flow=4.0)
        # col = 1 - 0.5 * (1 - wheel): red stays 255, green/blue halfway to white.
        assert tuple(img[0, 0]) == (255, 127, 127)

    def test_fixed_scale_doubling_is_more_saturated(self):
        flow = random_flow(4, 2.0)
        img1 = flow_to_color(flow, max_flow=20.0)
        img2 = flow_to_color(2 * flow, max_flow=20.0)
        assert whiteness_loss(img2) > 1.5 * whiteness_loss(img1)
        # Self-normalised colouring cannot tell the two apart.
        np.testing.assert_array_equal(flow_to_color(flow), flow_to_color(2 * flow))

    def test_overflow_clip_keeps_saturated_hue(self):
        at_max = flow_to_color(const_flow(0.0, 3.0), max_flow=3.0)
        beyond = flow_to_color(const_flow(0.0, 9.0), max_flow=3.0)
        np.testing.assert_array_equal(at_max, beyond)

    def test_overflow_darken_is_middlebury(self):
        beyond = flow_to_color(const_flow(9.0, 0.0), max_flow=3.0, overflow="darken")
        assert tuple(beyond[0, 0]) == (191, 0, 0)  # floor(255 * 0.75)
        inside = flow_to_color(const_flow(3.0, 0.0), max_flow=3.0, overflow="darken")
        assert tuple(inside[0, 0]) == (255, 0, 0)

    def test_invalid_pixels_painted(self):
        flow = random_flow(5, 3.0)
        valid = np.ones((H, W), bool)
        valid[2:5, 3:9] = False
        img = flow_to_color(flow, valid=valid, invalid_color=(10, 20, 30))
        assert (img[~valid] == (10, 20, 30)).all()
        # Default colour is black.
        assert (flow_to_color(flow, valid=valid)[~valid] == 0).all()

    def test_invalid_values_ignored_for_scale(self):
        flow = random_flow(6, 3.0)
        dirty = flow.copy()
        dirty[0, 0] = (np.nan, 0.0)
        dirty[0, 1] = (1e10, 1e10)  # Middlebury "unknown"
        dirty[0, 2] = (500.0, 0.0)
        valid = np.ones((H, W), bool)
        valid[0, 2] = False
        img = flow_to_color(dirty, valid=valid, invalid_color=(1, 2, 3))
        assert (img[0, :3] == (1, 2, 3)).all()
        ref_flow = flow.copy()
        ref_flow[0, :3] = 0.0
        np.testing.assert_array_equal(img[1:], flow_to_color(ref_flow)[1:])

    def test_accepts_float64_and_noncontiguous(self):
        flow = random_flow(7, 2.0).astype(np.float64)
        ref = flow_to_color(flow)
        np.testing.assert_array_equal(flow_to_color(np.asfortranarray(flow)), ref)
        np.testing.assert_array_equal(flow_to_color(flow[::2, ::2]), flow_to_color(flow[::2, ::2].copy()))

    @pytest.mark.parametrize(
        "kwargs",
        [
            dict(flow=np.zeros((H, W, 3), np.float32)),
            dict(flow=np.zeros((2, H, W), np.float32)),
            dict(flow=torch.zeros(H, W, 2)),
            dict(flow=np.zeros((H, W, 2), np.float32), max_flow=0.0),
            dict(flow=np.zeros((H, W, 2), np.float32), max_flow=-1.0),
            dict(flow=np.zeros((H, W, 2), np.float32), valid=np.ones((H, W + 1), bool)),
            dict(flow=np.zeros((H, W, 2), np.float32), invalid_color=(0, 0)),
            dict(flow=np.zeros((H, W, 2), np.float32), invalid_color=(0, 0, 300)),
            dict(flow=np.zeros((H, W, 2), np.float32), overflow="wrap"),
        ],
    )
    def test_errors(self, kwargs):
        with pytest.raises(ValueError):
            flow_to_color(**kwargs)


class TestLegend:
    def test_shape_centre_and_outside(self):
        legend = color_wheel_legend()
        assert legend.shape == (151, 151, 3) and legend.dtype == np.uint8
        assert tuple(legend[75, 75]) == WHITE
        assert tuple(legend[0, 0]) == WHITE and tuple(legend[-1, -1]) == WHITE

    def test_rim_colours_follow_the_flow_convention(self):
        legend = color_wheel_legend(101)
        c = 50
        assert tuple(legend[c, -1]) == (255, 0, 0)  # right
        assert tuple(legend[-1, c]) == (255, 229, 0)  # down
        assert tuple(legend[c, 0]) == (0, 209, 255)  # left
        assert tuple(legend[0, c]) == (88, 0, 255)  # up

    def test_pixel_equals_flow_of_its_offset(self):
        size = 41
        legend = color_wheel_legend(size)
        c = (size - 1) / 2
        ys, xs = np.mgrid[0:size, 0:size]
        flow = np.stack([xs - c, ys - c], -1).astype(np.float64)
        inside = np.hypot(flow[..., 0], flow[..., 1]) <= c
        np.testing.assert_array_equal(legend[inside], flow_to_color(flow, max_flow=c)[inside])

    def test_background(self):
        legend = color_wheel_legend(21, background=(0, 0, 0))
        assert tuple(legend[0, 0]) == (0, 0, 0)
        assert tuple(legend[10, 10]) == WHITE

    @pytest.mark.parametrize("size", [0, -3, 2.5, True])
    def test_bad_size(self, size):
        with pytest.raises(ValueError):
            color_wheel_legend(size)

    def test_with_legend(self):
        flow = random_flow(8, 4.0)
        out = flow_to_color_with_legend(flow, max_flow=10.0, gap=3)
        assert out.shape == (H, W + 3 + H, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, :W], flow_to_color(flow, max_flow=10.0))
        assert (out[:, W:W + 3] == 255).all()
        np.testing.assert_array_equal(out[:, W + 3:], color_wheel_legend(H))

    def test_with_legend_no_gap_and_bad_gap(self):
        flow = random_flow(9, 1.0)
        assert flow_to_color_with_legend(flow, gap=0).shape == (H, W + H, 3)
        with pytest.raises(ValueError):
            flow_to_color_with_legend(flow, gap=-1)
