"""Reduced proofs (``make proof`` runs the full ones) and the demo section."""

from pathlib import Path

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
    res = tracking_speed(frames=12, size=(120, 160), workdir=tmp_path, progress=False)
    assert res["trajectories"] > 100 and res["seconds"] < 10


def test_demo_section(tmp_path):
    section = segmentation_demo(tmp_path, seeds=(0,), num_frames=10, size=(96, 128))
    assert section.page == "index.html" and (tmp_path / "index.html").is_file()
    assert "exact flow" in section.summary
    assert (tmp_path / "results.md").read_text().count("synth0000") == 2
