"""Metrics, score files, the test protocol on a trained model, fusion and reports."""

import csv
import json

import numpy as np
import pytest

from flowapps.action.evaluate import ScoreSet, classification_metrics, load_scores, save_scores, test_model
from flowapps.action.fusion import align, choose_weight, fuse, fuse_scores
from flowapps.action.report import collect_results, plot_confusion, write_report
from flowapps.action.train import train

CLASSES = ["Run", "Jump", "Swim"]


def test_metrics_by_hand():
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.3, 0.4, 0.3]])
    labels = np.array([0, 1, 1, 2])
    m = classification_metrics(scores, labels, 3, CLASSES)
    assert m["top1"] == 0.5 and m["videos"] == 4
    assert m["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 1, 0]]
    assert m["per_class"] == {"Run": 1.0, "Jump": 0.5, "Swim": 0.0}
    assert m["mean_class_accuracy"] == pytest.approx(0.5)
    assert m["top5"] == 1.0  # 3 classes: top-k with k = 3
    m4 = classification_metrics(np.eye(4)[[0, 1]], np.array([0, 3]), 4)
    assert m4["per_class"]["2"] is None  # a class without test videos
    with pytest.raises(ValueError):
        classification_metrics(scores, labels[:2], 3)


def test_metrics_with_many_classes_by_hand():
    # 7 classes, so top-5 is a real test (k < C); class 6 has no test videos but is predicted.
    scores = np.array([[.30, .20, .15, .12, .10, .08, .05],    # true 0: top-1 hit
                       [.05, .08, .10, .12, .15, .20, .30],    # true 0: 7th place → top-5 miss
                       [.30, .20, .15, .12, .10, .08, .05],    # true 4: 5th place → top-5 hit
                       [.05, .08, .10, .12, .15, .20, .30],    # true 5: 2nd place → top-5 hit
                       [.10, .10, .10, .40, .10, .10, .10]])   # true 3: top-1 hit
    labels = np.array([0, 0, 4, 5, 3])
    m = classification_metrics(scores, labels, 7)
    assert m["top1"] == pytest.approx(2 / 5)
    assert m["top5"] == pytest.approx(4 / 5)  # all but the second video
    # recalls: class 0 1/2, class 3 1, class 4 0, class 5 0 (classes 1, 2, 6 have no videos)
    assert m["mean_class_accuracy"] == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    conf = np.zeros((7, 7), int)
    for t, p in [(0, 0), (0, 6), (4, 0), (5, 6), (3, 3)]:
        conf[t, p] += 1
    assert m["confusion"] == conf.tolist()
    assert m["per_class"]["1"] is None and m["per_class"]["0"] == 0.5
    with pytest.raises(ValueError, match="7 classes"):
        classification_metrics(scores, np.array([0, 0, 4, 5, 7]), 7)


def scoreset(seed, n=30, noise=1.0, modality="rgb", split=1, names=None, subset="test"):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    logits = rng.normal(0, noise, (n, 3)) + 1.5 * np.eye(3)[labels]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = names or [f"{CLASSES[lab]}/v_{CLASSES[lab]}_g{1 + i // 3:02d}_c01" for i, lab in enumerate(labels)]
    meta = {"modality": modality, "split": split, "subset": subset, "flow_method": "flownet2" if modality == "flow" else None,
            "weights_sha256": "ab12" * 16 if modality == "flow" else None, "stacks": "/data/stacks"}
    return ScoreSet(names, labels.astype(np.int64), p.astype(np.float32), CLASSES, meta)


def test_score_file_roundtrip(tmp_path):
    s = scoreset(0)
    save_scores(tmp_path / "scores_test.npz", s)
    r = load_scores(tmp_path / "scores_test.npz")
    assert r.frame_dirs == s.frame_dirs and r.classes == CLASSES and r.meta == s.meta
    np.testing.assert_array_equal(r.scores, s.scores)
    with pytest.raises(FileNotFoundError, match="none.npz"):
        load_scores(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.npz"):
        load_scores(tmp_path / "bad.npz")


def test_fusion_weights():
    s, t = scoreset(1, noise=3.0), scoreset(2, noise=0.5, modality="flow")
    w, grid = choose_weight(s, t)
    assert len(grid) == 21 and w >= 0.5  # the better stream gets the weight
    fused = fuse_scores(s, t, 0.25)
    np.testing.assert_allclose(fused.scores, 0.75 * s.scores + 0.25 * t.scores, rtol=1e-6)
    # Alignment by video name, whatever the order.
    perm = np.random.default_rng(0).permutation(len(t.frame_dirs))
    shuffled = ScoreSet([t.frame_dirs[i] for i in perm], t.labels[perm], t.scores[perm], CLASSES, t.meta)
    np.testing.assert_array_equal(align(s, shuffled).scores, t.scores)
    other = scoreset(3, names=[f"X/v_{i}" for i in range(30)])
    with pytest.raises(ValueError, match="different videos"):
        align(s, other)
    with pytest.raises(ValueError, match="weight"):
        fuse_scores(s, t, 1.5)


def write_stream(folder, seed, modality, split, noise):
    folder.mkdir(parents=True)
    save_scores(folder / "scores_test.npz", scoreset(seed, noise=noise, modality=modality, split=split))
    save_scores(folder / "scores_holdout.npz", scoreset(seed + 100, n=12, noise=noise, modality=modality,
                                                        split=split, subset="holdout"))


def test_fuse_and_three_split_report(tmp_path):
    fusions = []
    for k in (1, 2, 3):
        write_stream(tmp_path / f"s{k}" / "rgb", 10 * k, "rgb", k, 1.5)
        write_stream(tmp_path / f"s{k}" / "flow", 10 * k + 1, "flow", k, 1.0)
        r = fuse(tmp_path / f"s{k}" / "rgb", tmp_path / f"s{k}" / "flow", weight=None, out=tmp_path / f"s{k}" / "fusion",
                 log=None)
        assert r.chosen_on == "holdout" and 0 <= r.weight <= 1
        doc = json.loads((tmp_path / f"s{k}" / "fusion" / "fusion.json").read_text())
        assert doc["split"] == k and doc["weight"] == r.weight and len(doc["grid"]) == 21
        fusions.append(tmp_path / f"s{k}" / "fusion")
    given = fuse(tmp_path / "s1" / "rgb" / "scores_test.npz", tmp_path / "s1" / "flow", weight=0.6, log=None)
    assert given.chosen_on == "given" and given.weight == 0.6

    out = tmp_path / "report"
    doc = write_report(fusions, out, log=None)
    assert doc["mean_label"] == "mean (3 splits)"
    want = np.mean([json.loads((f / "fusion.json").read_text())["metrics"]["fused"]["top1"] for f in fusions])
    assert doc["mean"]["fused"]["top1"] == pytest.approx(want)
    md = (out / "report.md").read_text()
    assert "mean (3 splits)" in md and "flownet2" in md and "ab12" * 16 in md
    assert "paper value: not transcribed" in md and "83.7" in md
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert len(rows) == 3 * 3 + 3 and {r["stream"] for r in rows} == {"spatial", "temporal", "fused"}
    assert rows[0]["flow_method"] == "flownet2"
    for k in (1, 2, 3):
        png = out / f"confusion_split{k}_fused.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(csv.DictReader(open(out / "per_class.csv")))) == 3 * 3 * 3


def test_confusion_figure(tmp_path):
    conf = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    disp = plot_confusion(conf, CLASSES, "t", tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_allclose(disp.im_.get_array(), [[0.75, 0.25, 0], [0, 0.5, 0.5], [0, 0, 0]])
    assert disp.im_.get_clim() == (0, 1)
    shown = {(i, j): t.get_text() for (i, j), t in np.ndenumerate(disp.text_) if t.get_visible()}
    assert shown == {(0, 0): "0.75", (0, 1): "0.25", (1, 1): "0.50", (1, 2): "0.50"}
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == CLASSES
    many = plot_confusion(np.eye(60, dtype=int), [f"c{i}" for i in range(60)], "t", tmp_path / "m.png")
    assert many.text_ is None and len(many.ax_.get_xticks()) == 0


def test_report_csv_quotes_cells(tmp_path):
    # Class names with a comma and quotes survive the CSV round trip (pandas quotes them).
    names = ['Run, fast', 'Jump "high"', "Swim"]
    s = scoreset(5)
    m = ScoreSet(s.frame_dirs, s.labels, s.scores, names, s.meta).metrics()
    (tmp_path / "rgb").mkdir()
    (tmp_path / "rgb" / "metrics_test.json").write_text(json.dumps(
        {**m, "meta": {"modality": "rgb", "split": 1, "subset": "test", "positions": 25, "crops": 10}}))
    write_report([tmp_path / "rgb"], tmp_path / "out", log=None)
    rows = list(csv.DictReader(open(tmp_path / "out" / "per_class.csv", newline="")))
    assert [r["class"] for r in rows] == names
    assert [float(r["accuracy"]) for r in rows] == pytest.approx([m["per_class"][n] for n in names], abs=1e-6)
    report = list(csv.DictReader(open(tmp_path / "out" / "report.csv", newline="")))
    assert [(r["split"], r["stream"], r["videos"]) for r in report] == [("1", "spatial", "30"),
                                                                        ("mean (split 1)", "spatial", "")]


def test_report_errors(tmp_path):
    write_stream(tmp_path / "rgb", 1, "rgb", 1, 1.0)
    write_stream(tmp_path / "flow", 2, "flow", 2, 1.0)
    with pytest.raises(ValueError, match="split"):
        fuse(tmp_path / "rgb", tmp_path / "flow", weight=0.5, log=None)
    with pytest.raises(ValueError, match="rgb model, expected flow"):
        fuse(tmp_path / "rgb", tmp_path / "rgb", weight=0.5, log=None)
    (tmp_path / "nohold").mkdir()
    save_scores(tmp_path / "nohold" / "scores_test.npz", scoreset(3, modality="flow"))
    with pytest.raises(FileNotFoundError, match="scores_holdout.npz"):
        fuse(tmp_path / "rgb", tmp_path / "nohold", weight=None, log=None)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        collect_results([tmp_path / "nothing-here"])
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="x.json"):
        collect_results([tmp_path / "x.json"])
    f = fuse(tmp_path / "rgb", tmp_path / "nohold", weight=0.5, out=tmp_path / "fz", log=None)
    assert f.weight == 0.5
    with pytest.raises(ValueError, match="given twice"):
        collect_results([tmp_path / "fz", tmp_path / "fz"])


def test_protocol_on_a_trained_model(small_config, tmp_path):
    result = train(small_config(tmp_path / "run", holdout=0.34, epochs=1), log=lambda m: None)
    s = test_model(result.model_path, num_positions=5, crops=10, workers=0, progress=False, log=None)
    assert len(s.frame_dirs) == 3 and s.scores.shape == (3, 3)
    np.testing.assert_allclose(s.scores.sum(1), 1, atol=1e-5)
    m = json.loads((tmp_path / "run" / "metrics_test.json").read_text())
    assert m["meta"]["positions"] == 5 and m["meta"]["crops"] == 10 and m["meta"]["flow_method"] == "exact"
    assert m["videos"] == 3 and len(m["confusion"]) == 3
    h = test_model(result.model_path, subset="holdout", num_positions=2, crops=1, workers=0, progress=False, log=None)
    assert len(h.frame_dirs) == 3 and len({d.split("_g")[1][:2] for d in h.frame_dirs}) == 1  # one whole group
    assert (tmp_path / "run" / "scores_holdout.npz").exists()
    with pytest.raises(ValueError, match="subset"):
        test_model(result.model_path, subset="train", log=None)
    with pytest.raises(FileNotFoundError, match="nomodel.pt"):
        test_model(tmp_path / "nomodel.pt", log=None)
    with pytest.raises(ValueError, match="checkpoint"):
        test_model(tmp_path / "run" / "checkpoint.pt", log=None)


def test_cli_fuse_default_is_tsn_fixed_weight_and_holdout_is_an_option(tmp_path, capsys):
    """Without --weight the fusion is TSN's fixed 1 : 1.5 (w = 0.6), checked by hand on the saved
    scores; `--weight holdout` chooses on held-out scores; a weight outside [0, 1] is one line."""
    import json

    from flowapps.action.commands import ACTION
    from flowapps.action.evaluate import load_scores
    from flownet2_core.cli import main

    write_stream(tmp_path / "rgb", 10, "rgb", 1, 1.5)
    write_stream(tmp_path / "flow", 11, "flow", 1, 1.0)
    assert main(["action", "fuse", "--spatial", str(tmp_path / "rgb"), "--temporal", str(tmp_path / "flow"),
                 "-o", str(tmp_path / "f")], {"action": ACTION}) == 0
    doc = json.loads((tmp_path / "f" / "fusion.json").read_text())
    assert doc["weight"] == 0.6 and doc["chosen_on"] == "given"
    s = load_scores(tmp_path / "rgb" / "scores_test.npz")
    t = load_scores(tmp_path / "flow" / "scores_test.npz")
    fused = load_scores(tmp_path / "f" / "scores_fused_test.npz")
    np.testing.assert_allclose(fused.scores, 0.4 * s.scores + 0.6 * t.scores, rtol=1e-6)
    assert main(["action", "fuse", "--spatial", str(tmp_path / "rgb"), "--temporal", str(tmp_path / "flow"),
                 "-o", str(tmp_path / "h"), "--weight", "holdout"], {"action": ACTION}) == 0
    assert json.loads((tmp_path / "h" / "fusion.json").read_text())["chosen_on"] == "holdout"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["action", "fuse", "--spatial", str(tmp_path / "rgb"), "--temporal", str(tmp_path / "flow"),
              "-o", str(tmp_path / "x"), "--weight", "1.5"], {"action": ACTION})
    assert "--weight" in capsys.readouterr().err
