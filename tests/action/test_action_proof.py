"""The proof, reduced (``make proof`` runs the full size): generated data, both streams,
exact and dis flow, fusion, DDP with 2 CPU processes; plus the demo section, with and
without the default learned flow method (a tiny random stand-in for its packaged file).

The reduced proof takes about 40 s on 2 cores: its tests carry the ``slow`` marker
(``pytest -m "not slow"`` leaves them out); :func:`test_demo_runs_end_to_end` is the tiny
end-to-end version that stays in the fast loop."""

import json
from dataclasses import replace

import pytest

from flowapps.action.demo import DEMO_SETTINGS, action_demo, demo_settings, render_demo
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
    "motion: fusion (exact, held-out weight) >= the better stream - 2 videos",
    "appearance: spatial wins",
    "appearance: fusion (held-out weight) >= the better stream - 2 videos",
    "DDP (2 processes) = single process",
    "DDP: first-epoch loss",
])
@pytest.mark.slow
def test_claim(proof, prefix):
    for name, ok, numbers in claim(proof[1], prefix):
        assert ok, f"{name}: {numbers}"


@pytest.mark.slow
def test_reports_and_runs(proof):
    work, res = proof
    md = (work / "report_motion" / "report.md").read_text()
    assert "method **exact**" in md and "8 positions × 5 crops" in md
    assert (work / "report_appearance" / "confusion_split1_fused.png").exists()
    # The DDP run saw the same clips per epoch as the single process (same global batches).
    ddp = json.loads((work / "motion_temporal_exact_ddp" / "log.json").read_text())
    single = json.loads((work / "motion_temporal_exact" / "log.json").read_text())
    assert [h["clips"] for h in ddp] == [h["clips"] for h in single]
    assert len({h["clips"] for h in single}) == 1 and single[0]["clips"] > 0
    # The reported rate is the run's clips over its training time.
    rate = sum(h["clips"] for h in single) / sum(h["seconds"] for h in single)
    assert res["motion"]["temporal"]["exact"]["clips_per_s"] == pytest.approx(rate, rel=1e-6)


def test_cli_args_roundtrip(tmp_path):
    from flowapps.action.commands import ACTION
    from flownet2_core.cli import build_parser

    cfg = mini_config(tmp_path / "s", tmp_path / "o", "flow", ProofSettings(), epochs=3, flip=False)
    args = build_parser({"action": ACTION}).parse_args(["action", *cli_args(cfg)])
    assert (args.arch, args.epochs, args.no_flip, args.cache_mb, args.dropout) == ("tiny", 3, True, 512, 0.0)


SYNTH = "flownet2-sss-synth"


def test_demo_settings_add_the_learned_method_when_its_file_is_there(learned_package):
    assert DEMO_SETTINGS.methods == ("exact", "dis") and not DEMO_SETTINGS.ddp
    assert demo_settings() == DEMO_SETTINGS
    assert ProofSettings().with_learned_methods() == ProofSettings()
    learned_package()
    assert demo_settings() == replace(DEMO_SETTINGS, methods=("exact", "dis", SYNTH))
    assert ProofSettings().with_learned_methods().methods == ("exact", "dis", "tvl1", SYNTH)
    assert ProofSettings.reduced().methods == ("exact", "dis")  # what the tests run stays as it is
    assert demo_settings().with_learned_methods() == demo_settings()


@pytest.mark.slow
def test_demo_page(proof, tmp_path, learned_package):
    """Rendered without the learned method's weights file: the page and summary say it did not run."""
    work, res = proof
    section = render_demo(tmp_path, work, res)
    page = (tmp_path / section.page).read_text()
    assert "images/motion_temporal.png" in page and (tmp_path / "images" / "motion_temporal.png").exists()
    assert "PASS" in page and "Two-stream" in section.title
    md = (tmp_path / "results.md").read_text()
    assert "exact" in md and "Motion temporal streams with exact, dis flow." in md
    assert f"Learned flow method {SYNTH} not run: " in md
    assert f"Learned {SYNTH} not run (weights file absent)." in section.summary


def test_demo_runs_end_to_end(tmp_path, learned_package):
    """Tiny settings with the learned method added as the demo adds it (a tiny random stand-in
    for its weights): its stacks are extracted and a temporal stream is trained and tested on them."""
    learned_package()
    tiny = replace(ProofSettings(), methods=("exact",), num_groups=4, motion_clips=1, appearance_clips=1,
                   num_frames=12, new_length=4, temporal_epochs=1, spatial_epochs=1, appearance_spatial_epochs=1,
                   method_epochs=1, appearance_temporal_epochs=1, repeat=1, positions=2, ddp=False, batch_size=8)
    out = tmp_path / "demo"
    section = action_demo(out, tiny.with_learned_methods())
    assert (out / "index.html").exists() and "claims hold" in section.summary
    assert f"% with {SYNTH} (learned)," in section.summary and "not run" not in section.summary
    md = (out / "results.md").read_text()
    assert f"| motion | temporal | {SYNTH} |" in md and f"Learned flow: {SYNTH}" in md
    assert (out / "work" / f"motion_temporal_{SYNTH}" / "model.pt").is_file()


def test_flow_for_the_stacks_runs_on_the_callers_threads(tmp_path, monkeypatch):
    """The tiny networks train on one thread; the flow methods extracting the stacks get the
    threads the caller had (the learned method on enlarged frames is most of the demo's time)."""
    import torch

    import flowapps.stacks.extract as extract_module
    from flowapps.action import proof

    seen = []
    monkeypatch.setattr(extract_module, "extract", lambda *a, **k: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        proof._stacks("motion", "dis", ProofSettings.reduced(), tmp_path, lambda m: None, flow_threads=2)
        assert seen == [2] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
