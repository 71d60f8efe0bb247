"""``flownet2 action train|test|fuse|report``, in process (as the entry point runs it)."""

import json
import subprocess
import sys

import pytest

from flowapps.action.commands import ACTION, main
from flownet2_core.cli import build_parser


def run(*argv):
    args = build_parser({"action": ACTION}).parse_args(["action", *map(str, argv)])
    return args._run(args)


TRAIN = ["--arch", "tiny", "--new-length", "4", "--crop-size", "32", "--epochs", "2", "--batch-size", "4",
         "--lr", "0.05", "--schedule", "cosine", "--repeat", "2", "--holdout", "0.34", "--workers", "0",
         "--cache-mb", "64", "--no-progress", "--no-flip"]


def test_train_test_fuse_report(small_stacks, tmp_path, capsys):
    for modality in ("rgb", "flow"):
        extra = ["--segments", "2", "--multiscale-crop"] if modality == "flow" else []  # TSN options
        assert run("train", "--stacks", small_stacks, "--modality", modality, "-o", tmp_path / modality,
                   *TRAIN, *extra) == 0
        for subset in ("test", "holdout"):
            assert run("test", tmp_path / modality / "model.pt", "--subset", subset, "--positions", "4",
                       "--crops", "5", "--workers", "0", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "clips/s" in out and "flow test: top-1" in out and "rgb holdout: top-1" in out
    cfg = json.loads((tmp_path / "flow" / "config.json").read_text())
    assert cfg["flip"] is False and cfg["new_length"] == 4 and cfg["holdout"] == 0.34
    assert cfg["num_segments"] == 2 and cfg["crop"] == "multiscale"
    assert run("fuse", "--spatial", tmp_path / "rgb", "--temporal", tmp_path / "flow", "-o", tmp_path / "fz", "--weight", "holdout") == 0
    doc = json.loads((tmp_path / "fz" / "fusion.json").read_text())
    assert doc["chosen_on"] == "holdout" and set(doc["metrics"]) == {"spatial", "temporal", "fused"}
    assert run("fuse", "--spatial", tmp_path / "rgb", "--temporal", tmp_path / "flow", "--weight", "0.5",
               "-o", tmp_path / "fz_given") == 0
    assert run("fuse", "--spatial", tmp_path / "rgb", "--temporal", tmp_path / "flow", "--aggregate", "logits",
               "-o", tmp_path / "fz_tsn") == 0
    tsn = json.loads((tmp_path / "fz_tsn" / "fusion.json").read_text())
    assert tsn["aggregate"] == "logits" and tsn["weight"] == 0.6 and "TSN" in tsn["convention"]
    assert run("report", tmp_path / "fz", "-o", tmp_path / "report", "--title", "small") == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.startswith("# small") and "method **exact**" in md
    assert (tmp_path / "report" / "confusion_split1_fused.png").exists()
    # A stream's test metrics alone also make a report.
    assert run("report", tmp_path / "flow" / "metrics_test.json", "-o", tmp_path / "report_flow") == 0
    assert "temporal top-1 %" in (tmp_path / "report_flow" / "report.md").read_text()


def test_bad_input_names_the_file(small_stacks, tmp_path):
    with pytest.raises(FileNotFoundError, match="nostacks"):
        run("train", "--stacks", tmp_path / "nostacks", "--modality", "flow", "-o", tmp_path / "r", *TRAIN)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        run("test", tmp_path / "missing.pt")
    bad = tmp_path / "list.txt"
    bad.write_text("only-two fields\n")
    with pytest.raises(ValueError, match="list.txt:1"):
        run("train", "--stacks", small_stacks, "--modality", "flow", "--train-list", bad, "-o", tmp_path / "r", *TRAIN)
    with pytest.raises(FileNotFoundError, match="scores_test.npz"):
        run("fuse", "--spatial", tmp_path, "--temporal", tmp_path, "-o", tmp_path / "f")
    with pytest.raises(SystemExit):
        run("train", "--stacks", small_stacks, "--modality", "depth", "-o", tmp_path / "r")


def test_module_entry_point(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "-o", str(tmp_path / "o")]) == 2
    assert "nothing" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "flowapps.action", "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--pretrained FILE" in proc.stdout and "--multiscale-crop" in proc.stdout
