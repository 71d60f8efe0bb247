"""Reduced proofs (``make proof`` runs the full ones) and the demo section."""

from pathlib import Path

import pytest

from flowapps.segmentation.demo import segmentation_demo
from flowapps.segmentation.proof import golden_comparison, synthetic_proof, tracking_speed

GOLDEN = Path(__file__).parent / "data" / "fbms_eval_cases"


def test_golden_comparison():
    res = golden_comparison(GOLDEN)
    assert res["ok"]
    assert all(s["numbers_file_identical"] and s["matrices_identical"] for s in res["shots"].values())


def test_exact_flow_extracts_every_object_on_three_sequences(tmp_path):
    res = synthetic_proof(tmp_path, seeds=range(3), methods=("exact",), progress=False)["exact"]
    assert res["all_objects_extracted"] == 3, res["per_sequence"]
    assert res["overall"]["f_measure"] > 0.95


def test_tracking_speed_small(tmp_path):
    """The speed proof's measurement on a short clip: what it tracks, not how fast this machine
    is (a wall-clock bound fails on a busy machine and passes a slow tracker on a fast one)."""
    res = tracking_speed(frames=12, size=(120, 160), workdir=tmp_path, progress=False)
    assert (res["frames"], res["size"], res["sampling"]) == (12, [120, 160], 8)
    # Seeds every 8 px on 120×160 (at most 15 × 20 = 300 at a time), tracked over 12 frames.
    assert 100 < res["trajectories"] and res["trajectories"] < res["points"] <= 300 * 12
    assert 2 < res["mean_length"] <= 12
    assert res["points"] == pytest.approx(res["trajectories"] * res["mean_length"], rel=0.02)
    assert res["seconds"] >= 0 and res["ms_per_frame"] == pytest.approx(1000 * res["seconds"] / 12, abs=0.5)


SYNTH = "flownet2-sss-synth"


def test_demo_section(tmp_path, learned_package):
    """Without the learned method's weights file: exact and dis flow, and the page says why."""
    out = tmp_path / "demo"
    section = segmentation_demo(out, seeds=(0,), num_frames=10, size=(96, 128))
    assert section.page == "index.html" and (out / "index.html").is_file()
    assert "exact flow" in section.summary and " with dis (" in section.summary
    assert f"Learned {SYNTH} not run (weights file absent)." in section.summary
    md = (out / "results.md").read_text()
    assert md.count("synth0000") == 2 and f"Learned flow method {SYNTH} not run: " in md


def test_demo_section_with_the_learned_method(tmp_path, learned_package):
    """With its weights file (a tiny random stand-in): exact, dis and flownet2-sss-synth flow."""
    learned_package()
    out = tmp_path / "demo"
    section = segmentation_demo(out, seeds=(0,), num_frames=6, size=(64, 96))
    md = (out / "results.md").read_text()
    assert md.count("synth0000") == 3 and f"| synth0000 | {SYNTH} |" in md
    assert f"with `dis` and `{SYNTH}` flow" in md and f"Learned flow: {SYNTH}" in md
    assert f" with {SYNTH} (learned) (" in section.summary and "not run" not in section.summary
    assert (out / "results" / SYNTH / "synth0000").is_dir()
