"""The real stereo pair (scikit-image) as a tiny real benchmark, with per-method bounds."""

import numpy as np
import pytest

pytest.importorskip("skimage")

from evaluations.benchmarks.runner import run_benchmark
from flownet2_core.data.datasets import load_motorcycle

# EPE bounds on the 4×-downscaled pair (125×185, disparities up to 15 px;
# zero flow scores 8.9 px). Measured on OpenCV 4.13 (2026-11): deepflow 0.81,
# dis 0.98, pcaflow 1.24, tvl1 3.16, farneback 6.0; bounds leave headroom.
BOUNDS = {"deepflow": 1.5, "dis": 2.0, "pcaflow": 2.5, "tvl1": 5.0, "farneback": 8.0}


def test_zero_flow_reference():
    fr = load_motorcycle(4)
    zero_epe = np.abs(fr.gt[..., 0][fr.valid]).mean()
    assert 8.0 < zero_epe < 10.0
    assert all(b < zero_epe for b in BOUNDS.values())


def test_methods_within_bounds(tmp_path):
    df = run_benchmark("motorcycle-small", None, list(BOUNDS), tmp_path, warmup=0, save_flows=0, log=None)
    got = dict(zip(df["method"], df["epe_all"]))
    for m, bound in BOUNDS.items():
        assert got[m] < bound, f"{m}: EPE {got[m]:.2f} on the real stereo pair, bound {bound}"
    assert (df["n_all"] > 0.7 * 125 * 185).all()
