"""The proof, reduced (``make proof`` runs the full size): generated data, both streams,
exact and dis flow, fusion, DDP with 2 CPU processes; plus the demo section."""

import json
from dataclasses import replace

import pytest

from flowapps.action.demo import action_demo, render_demo
from flowapps.action.proof import ProofSettings, check_claims, cli_args, mini_config, run_proof


@pytest.fixture(scope="module")
def proof(tmp_path_factory):
    work = tmp_path_factory.mktemp("proof")
    return work, run_proof(work, ProofSettings.reduced(), log=print)


def claim(res, prefix):
    found = [c for c in check_claims(res) if c[0].startswith(prefix)]
    assert found, prefix
    return found


@pytest.mark.parametrize("prefix", [
    "motion: temporal (exact flow) >= 90 %",
    "motion: spatial near chance",
    "motion: temporal (dis) clearly above chance",
    "motion: fusion (exact) >= the better stream",
    "appearance: spatial wins",
    "appearance: fusion >= the better stream",
    "DDP (2 processes) = single process",
    "DDP: first-epoch loss",
])
def test_claim(proof, prefix):
    for name, ok, numbers in claim(proof[1], prefix):
        assert ok, f"{name}: {numbers}"


def test_reports_and_runs(proof):
    work, res = proof
    md = (work / "report_motion" / "report.md").read_text()
    assert "method **exact**" in md and "8 positions × 5 crops" in md
    assert (work / "report_appearance" / "confusion_split1_fused.png").exists()
    # The DDP run saw the same clips per epoch as the single process (same global batches).
    ddp = json.loads((work / "motion_temporal_exact_ddp" / "log.json").read_text())
    single = json.loads((work / "motion_temporal_exact" / "log.json").read_text())
    assert [h["clips"] for h in ddp] == [h["clips"] for h in single]
    assert res["motion"]["temporal"]["exact"]["clips_per_s"] > 0


def test_cli_args_roundtrip(tmp_path):
    from flowapps.action.commands import ACTION
    from flownet2_core.cli import build_parser

    cfg = mini_config(tmp_path / "s", tmp_path / "o", "flow", ProofSettings(), epochs=3, flip=False)
    args = build_parser({"action": ACTION}).parse_args(["action", *cli_args(cfg)])
    assert (args.arch, args.epochs, args.no_flip, args.cache_mb, args.dropout) == ("tiny", 3, True, 512, 0.0)


def test_demo_page(proof, tmp_path):
    work, res = proof
    section = render_demo(tmp_path, work, res)
    page = (tmp_path / section.page).read_text()
    assert "images/motion_temporal.png" in page and (tmp_path / "images" / "motion_temporal.png").exists()
    assert "PASS" in page and "Two-stream" in section.title
    assert "exact" in (tmp_path / "results.md").read_text()


def test_demo_runs_end_to_end(tmp_path):
    tiny = replace(ProofSettings(), methods=("exact",), num_groups=4, motion_clips=1, appearance_clips=1,
                   num_frames=12, new_length=4, temporal_epochs=1, spatial_epochs=1, appearance_spatial_epochs=1,
                   appearance_temporal_epochs=1, repeat=1, positions=2, ddp=False, batch_size=8)
    section = action_demo(tmp_path, tiny)
    assert (tmp_path / "index.html").exists() and "claims hold" in section.summary
