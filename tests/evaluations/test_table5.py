"""A reduced Table 5 end to end on tiny generated data (about a minute on one core):
a mini FBMS-59 (3 sequences in the official layout, with exact flow) and a mini-UCF101
(6 motion classes, 3 clips per group, exact stacks), methods ``exact``, ``dis`` and ``farneback`` through
``table5 run`` and ``table5 report``.

Checked: the report's numbers equal the per-stage outputs they were built from (and those
equal the evaluator and test-protocol outputs underneath); exact flow is at least as good
as the best computed flow on both halves; every temporal stream beats chance by a wide
margin; a re-run redoes nothing (results untouched, every stage logged as skipped) and a
method added later reuses the other rows; bad input is one error line."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluations.table5.commands import TABLE5
from evaluations.table5.config import ActionSettings, MethodSpec, SegmentationSettings, Table5Config
from flownet2_core.cli import main

ROOT = Path(__file__).resolve().parents[2]
# Subtle motions (rotation, scaling, oscillation: a pixel or less at the object edges) where
# computed flow loses information the exact flow keeps.
CLASSES = ("RotateClockwise", "RotateAnticlockwise", "Expand", "Contract", "Oscillate", "MoveLeft")
COMPUTED = ("dis", "farneback")


def table5(*argv) -> int:
    return main(["table5", *map(str, argv)], {"table5": TABLE5})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import torch

    from flowapps.segmentation.synthetic import write_synthetic_fbms_set
    from flowapps.stacks.mini_ucf101 import write_exact_stacks, write_mini_ucf101

    work = tmp_path_factory.mktemp("table5")
    write_synthetic_fbms_set(work / "fbms" / "Trainingset", (0, 1, 2), num_frames=10, size=(72, 96))
    mini = write_mini_ucf101(work / "ucf101", classes=CLASSES, num_groups=6, clips_per_group=3, num_frames=12,
                             size=(60, 80))
    write_exact_stacks(mini, work / "exact_stacks")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield work
    torch.set_num_threads(threads)


def run_args(work: Path, methods) -> list[str]:
    args = ["run", "-o", work / "run", "--fbms", work / "fbms", "--ucf101", work / "ucf101",
            "--stacks", f"exact={work / 'exact_stacks'}", "--sampling", 4, "--runtime-pairs", 3,
            # the tiny recipe of the action proof (tiny CNN, 48 px crops, no flips: mirror classes)
            "--splits", 1, 2, "--arch", "tiny", "--new-length", 8, "--crop-size", 48, "--no-flip", "--epochs", 16,
            "--batch-size", 16, "--lr", 0.05, "--schedule", "cosine", "--warmup", 0.5, "--weight-decay", 1e-4,
            "--dropout", 0, "--repeat", 4, "--positions", 5, "--crops", 5, "--workers", 0, "--cache-mb", 256,
            "--threads", 1, "-q"]
    for m in methods:
        args += ["--method", m]
    return args


def stage_files(run: Path) -> dict[Path, int]:
    """Every file a finished stage wrote that a re-run must leave alone, with its mtime."""
    pats = ["*/*/result.json", "segmentation/*/*/*/table5_sequence.json", "segmentation/*/*/*/Tracks*.dat",
            "action/*/split*/table5_split.json", "action/*/split*/model.pt", "action/*/split*/metrics_test.json",
            "action/*/stacks/manifest.json"]
    return {p: p.stat().st_mtime_ns for pat in pats for p in run.glob(pat)}


@pytest.fixture(scope="module")
def table(data):
    """Run exact + dis, then add farneback (the others reused; its log kept), then report."""
    import io
    from contextlib import redirect_stdout

    assert table5(*run_args(data, ["exact", "dis"])) == 0
    first = stage_files(data / "run")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert table5(*run_args(data, ["exact", "dis", "farneback"])) == 0
    assert table5("report", data / "run") == 0
    return data / "run", first, buf.getvalue()


def results(run: Path, half: str) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in (run / half).glob("*/result.json")}


def csv_rows(run: Path) -> dict[str, dict]:
    with open(run / "report" / "table5.csv", newline="") as f:
        return {r["method"]: r for r in csv.DictReader(f)}


def test_report_numbers_equal_the_stage_outputs(table):
    from flowapps.segmentation.moseg_eval import evaluate_all

    run, _, _ = table
    rows = csv_rows(run)
    assert list(rows) == ["exact", "dis", "farneback"]  # first-run order, the added method last
    seg, act, rt = results(run, "segmentation"), results(run, "action"), results(run, "runtime")
    md = (run / "report" / "table5.md").read_text()
    for m, row in rows.items():
        o = seg[m]["sets"]["Trainingset"]["overall"]
        # The stage's figures are the all-shots evaluation of the track files it wrote.
        os.chdir(run / "segmentation" / m / "Trainingset")
        try:
            again = evaluate_all("shots.txt", "all", "tracks.txt", 0.75).as_dict()["overall"]
        finally:
            os.chdir(ROOT)
        assert again == o
        for k in ("precision", "recall", "f_measure", "density", "extracted_objects", "visible_objects"):
            assert float(row[f"fbms_{k}"]) == o[k], (m, k)
        for k in ("1", "2"):
            metrics = json.loads((run / "action" / m / f"split{k}" / "metrics_test.json").read_text())
            assert act[m]["splits"][k]["top1"] == metrics["top1"]
            assert float(row[f"ucf101_top1_split{k}"]) == metrics["top1"]
        assert row["ucf101_top1_split3"] == ""
        assert float(row["ucf101_mean_top1"]) == act[m]["mean_top1"]
        assert math.isclose(act[m]["mean_top1"], (act[m]["splits"]["1"]["top1"] + act[m]["splits"]["2"]["top1"]) / 2)
        if m == "exact":
            assert row["runtime_s_per_frame"] == "" and rt[m]["seconds_per_frame"] is None
        else:
            assert float(row["runtime_s_per_frame"]) == rt[m]["seconds_per_frame"] > 0
        assert row["paper_f_measure"] == row["paper_accuracy"] == "not transcribed"
        # The Markdown row shows the same numbers.
        runtime = "—" if m == "exact" else f"{1000 * rt[m]['seconds_per_frame']:.1f}"
        assert (f"| {m} | {100 * o['f_measure']:.2f} | {o['extracted_objects']}/{o['visible_objects']} | "
                f"{100 * o['precision']:.2f} | {100 * o['recall']:.2f} | {o['density']:.3f} | "
                f"{100 * act[m]['mean_top1']:.1f} | {runtime} | not transcribed |") in md


def test_report_files(table):
    run, _, _ = table
    rep = run / "report"
    html = (rep / "table5.html").read_text()
    assert "data:image/png;base64," in html and "src='images/" not in html  # self-contained
    for name in ("f_vs_accuracy.png", "f_vs_runtime.png", "accuracy_vs_runtime.png",
                 "strip_exact.png", "strip_dis.png", "strip_farneback.png"):
        assert (rep / "images" / name).stat().st_size > 1000, name
    md = (rep / "table5.md").read_text()
    assert '"sampling": 4' in md and '"arch": "tiny"' in md and '"torch":' in md  # settings, versions


def test_expected_ordering(table):
    run, _, _ = table
    seg, act = results(run, "segmentation"), results(run, "action")
    f = {m: r["sets"]["Trainingset"]["overall"]["f_measure"] for m, r in seg.items()}
    acc = {m: r["mean_top1"] for m, r in act.items()}
    assert f["exact"] >= max(f[m] for m in COMPUTED), f
    assert acc["exact"] >= max(acc[m] for m in COMPUTED), acc
    for m, r in act.items():
        assert r["chance"] == pytest.approx(1 / len(CLASSES))
        assert r["mean_top1"] >= r["chance"] + 0.4, (m, r["mean_top1"])


def test_added_method_reuses_the_other_rows(table):
    run, first, log = table
    for p, mtime in first.items():
        assert p.stat().st_mtime_ns == mtime, p
    for m in ("exact", "dis"):
        for half in ("segmentation", "action", "runtime"):
            assert f"[table5] {half}/{m}: finished earlier, skipped" in log
    assert "[table5] segmentation/farneback: Trainingset: 3 sequences segmented, 0 reused" in log


def test_rerun_redoes_nothing(table, data, capsys):
    run, _, _ = table
    before = stage_files(run)
    assert len(before) > 20
    assert table5(*run_args(data, ["exact", "dis", "farneback"])) == 0
    out = capsys.readouterr().out
    assert "table5: 0 stages run, 9 reused" in out
    assert stage_files(run) == before


def test_changed_settings_are_an_error(table, data, capsys):
    args = run_args(data, ["exact", "dis"])
    args[args.index("--sampling") + 1] = 8
    assert table5(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "made with other settings" in err[0]


@pytest.mark.parametrize("bad, message", [
    (["--method", "nosuchflow"], "unknown flow method 'nosuchflow'"),
    (["--method", "dis", "--fbms", "/nonexistent/fbms"], "FBMS-59 root not found"),
    (["--method", "exact", "--ucf101", "UCF"], "UCF101"),
    (["--method", "dis", "--weights", "tvl1=x.pth", "--fbms", "."], "not among the --method names"),
])
def test_bad_input_is_one_line(tmp_path, capsys, bad, message):
    (tmp_path / "UCF" / "ucfTrainTestlist").mkdir(parents=True)
    (tmp_path / "UCF" / "ucfTrainTestlist" / "classInd.txt").write_text("1 A\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert table5("run", "-o", "out", *bad) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_config_json_round_trip(tmp_path):
    cfg = Table5Config(out=str(tmp_path), methods=(MethodSpec("dis", {"preset": "fast"}), MethodSpec("exact", stacks="s")),
                       fbms_root="f", segmentation=SegmentationSettings(sampling=4, sets=("Trainingset", "Testset")),
                       action=ActionSettings(splits=(1,), milestones=(2, 3)))
    again = Table5Config.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again == cfg


def test_module_entry_help():
    res = subprocess.run([sys.executable, "-m", "evaluations.table5", "run", "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--fbms" in res.stdout and "--ucf101" in res.stdout


def test_one_half_alone_resumes_inside_a_stage(data, tmp_path, capsys):
    """The FBMS half alone; a stage interrupted after some sequences redoes only the rest."""
    out = tmp_path / "seg_only"
    args = ["run", "-o", out, "--fbms", data / "fbms", "--method", "dis", "--sampling", 4, "--runtime-pairs", 2, "-q"]
    assert table5(*args) == 0
    assert not (out / "action").exists()
    # As if killed before the stage finished: the stage result and one sequence are missing.
    (out / "segmentation" / "dis" / "result.json").unlink()
    (out / "segmentation" / "dis" / "Trainingset" / "synth0001" / "table5_sequence.json").unlink()
    capsys.readouterr()
    assert table5(*args) == 0
    assert "segmentation/dis: Trainingset: 1 sequences segmented, 2 reused" in capsys.readouterr().out
    assert table5("report", out) == 0
    row = csv_rows(out)["dis"]
    assert row["ucf101_mean_top1"] == "" and float(row["fbms_f_measure"]) > 0
    md = (out / "report" / "table5.md").read_text()
    assert "| dis | " in md and "UCF101 temporal stream" not in md



def test_shards_then_a_plain_run_finishes(data, tmp_path, capsys):
    """Array jobs (--shard K/N) segment their share of the sequences and extract their share
    of the stacks; the plain run afterwards only evaluates, trains and times."""
    out = tmp_path / "sharded"
    args = ["run", "-o", out, "--fbms", data / "fbms", "--ucf101", data / "ucf101", "--method", "dis",
            "--sampling", 4, "--runtime-pairs", 2, "--splits", 1, "--arch", "tiny", "--new-length", 5,
            "--crop-size", 48, "--epochs", 1, "--batch-size", 16, "--positions", 2, "--crops", 1,
            "--workers", 0, "--threads", 1, "-q"]
    for k in (0, 1):
        assert table5(*args, "--shard", f"{k}/2") == 0
    log = capsys.readouterr().out
    assert "segmentation/dis: shard 0/2: 2 sequences segmented" in log
    assert "segmentation/dis: shard 1/2: 1 sequences segmented" in log
    assert not list(out.glob("*/*/result.json"))
    assert table5(*args) == 0
    log = capsys.readouterr().out
    assert "segmentation/dis: Trainingset: 0 sequences segmented, 3 reused" in log
    assert "action/dis: stacks: 0 videos done, 108 already done, 1 failed" in log
    assert {p.parent.parent.name for p in out.glob("*/*/result.json")} == {"segmentation", "action", "runtime"}


def test_caches_are_the_building_blocks_own(table, data, tmp_path, capsys):
    """A sequence folder is a `segment run -o` folder (its flow cache is reused, same
    evaluation) and a stacks folder resumes under `stacks extract` (nothing recomputed).
    Runs last: `stacks extract` re-finalizes the run's manifest (same content)."""
    import shutil

    from flowapps.segmentation.commands import SEGMENT
    from flowapps.stacks.commands import STACKS

    run, _, _ = table
    seq_out = tmp_path / "synth0000"
    shutil.copytree(run / "segmentation" / "dis" / "Trainingset" / "synth0000", seq_out)
    flows = {p: p.stat().st_mtime_ns for p in (seq_out / "flow" / "dis").glob("*.flo")}
    assert len(flows) == 18
    assert main(["segment", "run", "--sequence", str(data / "fbms" / "Trainingset" / "synth0000"), "-o",
                 str(seq_out), "--method", "dis", "--sampling", "4", "-q"], {"segment": SEGMENT}) == 0
    assert {p: p.stat().st_mtime_ns for p in flows} == flows
    shot = results(run, "segmentation")["dis"]["sets"]["Trainingset"]["shots"][0]
    ev = json.loads((seq_out / "evaluation.json").read_text())
    assert {k: ev[k] for k in ("precision", "recall", "f_measure")} == {k: shot[k] for k in ("precision", "recall", "f_measure")}
    capsys.readouterr()
    status = main(["stacks", "extract", "--videos", str(data / "ucf101" / "videos"), "--splits",
                   str(data / "ucf101" / "ucfTrainTestlist"), "-o", str(run / "action" / "dis" / "stacks"),
                   "--native", "--method", "dis"], {"stacks": STACKS})
    assert status == 1  # the generated corrupt video fails again, on purpose
    assert "0 videos done, 108 already done, 1 failed" in capsys.readouterr().out


def test_demo_section_leads_with_the_table_and_reuses_its_work(tmp_path, monkeypatch, capsys):
    """The demo's Table 5 section, reduced (exact and dis, one split): its lead holds the report's
    main table (same figures as table5.csv) and the plots; the stereo table has a finite EPE per
    computed method; a second run regenerates nothing and recomputes nothing."""
    import evaluations.table5.demo as demo

    small = dict(demo.DEMO, fbms={"seeds": (0, 1), "num_frames": 8, "size": (72, 96)},
                 ucf101=dict(demo.DEMO["ucf101"], num_groups=6, clips_per_group=2, num_frames=10, size=(60, 80)),
                 action=dict(demo.DEMO["action"], splits=(1,), epochs=6), runtime_pairs=2)
    monkeypatch.setattr(demo, "DEMO", small)
    monkeypatch.setattr(demo, "demo_methods", lambda: ["exact", "dis"])
    section = demo.table5_demo(tmp_path / "05-table5")
    out = tmp_path / "05-table5"
    rows = csv_rows(out / "run")
    assert set(rows) == {"exact", "dis"}
    for m, r in rows.items():
        assert f"{100 * float(r['fbms_f_measure']):.2f}" in section.lead, m
        assert f"{100 * float(r['ucf101_mean_top1']):.1f}" in section.lead, m
    assert section.lead.count("<img src='05-table5/run/report/images/") >= 1
    md = (out / "results.md").read_text()
    stereo = md.split("real stereo pair")[1]
    line = next(ln for ln in stereo.splitlines() if ln.startswith("| dis |"))
    assert all(math.isfinite(float(c)) for c in line.strip("|").split("|")[1:])
    assert (out / "images" / "stereo_dis.png").stat().st_size > 1000
    before = stage_files(out / "run") | {out / "data" / "done.json": (out / "data" / "done.json").stat().st_mtime_ns}
    capsys.readouterr()
    demo.table5_demo(tmp_path / "05-table5")
    assert "generating" not in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before
