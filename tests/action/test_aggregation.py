"""Two per-video aggregations: mean softmax scores (Simonyan & Zisserman) and mean logits
fused before softmax (TSN), checked on hand-built score sets, score files and a tiny model."""

import json
import math

import numpy as np
import pytest

from flowapps.action.evaluate import ScoreSet, load_scores, save_scores, test_model
from flowapps.action.fusion import (AGGREGATIONS, CONVENTIONS, TSN_WEIGHT, choose_weight, fuse, fuse_scores,
                                    stream_scores)
from flowapps.action.report import collect_results, write_report

CLASSES = ["Run", "Jump", "Swim"]
LABELS = [0, 2, 1]
NAMES = ["Run/v_Run_g01_c01", "Swim/v_Swim_g01_c01", "Jump/v_Jump_g01_c01"]

# Per-input logits (two inputs per video) of each stream. Video 0: one very confident
# spatial input dominates the mean logits but not the mean softmax; video 2 the reverse
# case; video 1: both streams agree.
SPATIAL_INPUTS = [[[10, 0, 0], [0, 2, 0]], [[0, 0, 2], [0, 0, 2]], [[0, 0, 10], [0, 3, 0]]]
TEMPORAL_INPUTS = [[[0, 1, 0], [0, 1, 0]], [[0, 0, 3], [0, 0, 3]], [[0, 1, 0], [0, 1, 0]]]


def softmax(row):
    e = [math.exp(x) for x in row]
    return [x / sum(e) for x in e]


def stream(inputs, modality, split=1, subset="test", with_logits=True):
    """A ScoreSet as `flownet2 action test` would save it from these per-input logits."""
    scores = [np.mean([softmax(x) for x in video], 0) for video in inputs]
    logits = [np.mean(video, 0) for video in inputs]
    meta = {"modality": modality, "split": split, "subset": subset, "positions": 1, "crops": 2,
            "flow_method": "exact" if modality == "flow" else None}
    return ScoreSet(list(NAMES), np.array(LABELS, np.int64), np.array(scores, np.float32), CLASSES, meta,
                    np.array(logits, np.float32) if with_logits else None)


def test_the_hand_built_streams():
    s, t = stream(SPATIAL_INPUTS, "rgb"), stream(TEMPORAL_INPUTS, "flow")
    e2 = math.exp(2)
    # video 0, spatial: mean of softmax([10, 0, 0]) and softmax([0, 2, 0])
    want = [(math.exp(10) / (math.exp(10) + 2) + 1 / (2 + e2)) / 2,
            (1 / (math.exp(10) + 2) + e2 / (2 + e2)) / 2,
            (1 / (math.exp(10) + 2) + 1 / (2 + e2)) / 2]
    np.testing.assert_allclose(s.scores[0], want, rtol=1e-6)
    np.testing.assert_allclose(s.scores[0], [0.553208, 0.393516, 0.053276], atol=1e-6)
    np.testing.assert_array_equal(s.logits, [[5, 1, 0], [0, 0, 2], [0, 1.5, 5]])
    np.testing.assert_array_equal(t.logits, [[0, 1, 0], [0, 0, 3], [0, 1, 0]])
    assert AGGREGATIONS == ("softmax", "logits")


def test_fused_scores_by_hand_in_both_modes():
    s, t = stream(SPATIAL_INPUTS, "rgb"), stream(TEMPORAL_INPUTS, "flow")
    w = TSN_WEIGHT
    assert w == 0.6

    soft = fuse_scores(s, t, w)  # the default: today's behaviour
    np.testing.assert_allclose(soft.scores, 0.4 * s.scores + 0.6 * t.scores, rtol=1e-6)
    np.testing.assert_allclose(soft.scores[0], [0.348448, 0.503076, 0.148475], atol=1e-6)
    assert soft.logits is None and soft.meta["aggregate"] == "softmax"
    assert fuse_scores(s, t, w, "softmax").scores.tolist() == soft.scores.tolist()

    tsn = fuse_scores(s, t, w, aggregate="logits")
    # fused logits 0.4·spatial + 0.6·temporal: [2, 1, 0], [0, 0, 2.6], [0, 1.2, 2]
    want_z = [[2, 1, 0], [0, 0, 0.4 * 2 + 0.6 * 3], [0, 0.4 * 1.5 + 0.6 * 1, 0.4 * 5]]
    np.testing.assert_allclose(tsn.logits, want_z, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tsn.scores, [softmax(z) for z in want_z], rtol=1e-6)
    e, e2 = math.e, math.e ** 2
    np.testing.assert_allclose(tsn.scores[0], [e2 / (e2 + e + 1), e / (e2 + e + 1), 1 / (e2 + e + 1)], rtol=1e-6)
    assert tsn.meta["aggregate"] == "logits" and tsn.meta["fusion_weight"] == 0.6

    # The predictions differ where constructed to: video 0 (softmax wrong, logits right)
    # and video 2 (softmax right, logits wrong).
    assert soft.scores.argmax(1).tolist() == [1, 2, 1]
    assert tsn.scores.argmax(1).tolist() == [0, 2, 2] == tsn.logits.argmax(1).tolist()
    assert soft.metrics()["confusion"] == [[0, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert tsn.metrics()["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]

    # Each stream under "logits": the softmax of its mean logits.
    np.testing.assert_allclose(stream_scores(s, "logits").scores, [softmax(z) for z in s.logits], rtol=1e-6)
    assert stream_scores(s, "softmax") is s


def test_weight_choice_uses_the_aggregation():
    s = stream(SPATIAL_INPUTS, "rgb", subset="holdout")
    t = stream(TEMPORAL_INPUTS, "flow", subset="holdout")
    w, rows = choose_weight(s, t, grid=(0.0, 0.6, 1.0), aggregate="logits")
    # every weight has top-1 2/3; the NLL (of the softmax of the fused logits) decides
    nll = [np.mean([-math.log(softmax((1 - g) * s.logits[i] + g * t.logits[i])[LABELS[i]]) for i in range(3)])
           for g in (0.0, 0.6, 1.0)]
    assert [r["weight"] for r in rows] == [0.0, 0.6, 1.0]
    assert [r["top1"] for r in rows] == pytest.approx([2 / 3] * 3)
    assert [r["nll"] for r in rows] == pytest.approx(nll, rel=1e-6)
    assert nll == pytest.approx([1.266853, 0.602159, 0.732604], abs=1e-6)
    assert w == 0.6
    _, soft_rows = choose_weight(s, t, grid=(0.0, 0.6, 1.0))
    p = 0.4 * s.scores + 0.6 * t.scores
    assert soft_rows[1]["nll"] == pytest.approx(-np.log(p[[0, 1, 2], LABELS]).mean(), rel=1e-6)
    with pytest.raises(ValueError, match="aggregate"):
        choose_weight(s, t, aggregate="mean")


def write_runs(tmp_path, with_logits=True, holdout_logits=True):
    for name, inputs, modality in (("rgb", SPATIAL_INPUTS, "rgb"), ("flow", TEMPORAL_INPUTS, "flow")):
        (tmp_path / name).mkdir()
        save_scores(tmp_path / name / "scores_test.npz", stream(inputs, modality, with_logits=with_logits))
        save_scores(tmp_path / name / "scores_holdout.npz",
                    stream(inputs, modality, subset="holdout", with_logits=holdout_logits))


def test_fuse_files_in_both_modes(tmp_path):
    write_runs(tmp_path)
    logs = []
    for aggregate in AGGREGATIONS:
        r = fuse(tmp_path / "rgb", tmp_path / "flow", weight=0.6, aggregate=aggregate, out=tmp_path / aggregate,
                 log=logs.append)
        assert r.aggregate == aggregate and f"{aggregate} aggregation" in logs[-1]
        doc = json.loads((tmp_path / aggregate / "fusion.json").read_text())
        assert doc["aggregate"] == aggregate and doc["convention"] == CONVENTIONS[aggregate]
        fused = load_scores(tmp_path / aggregate / "scores_fused_test.npz")
        assert fused.meta["aggregate"] == aggregate
        assert doc["metrics"]["fused"]["confusion"] == fused.metrics()["confusion"]
    assert "softmax scores" in CONVENTIONS["softmax"] and "TSN" in CONVENTIONS["logits"]
    assert "Simonyan" in CONVENTIONS["softmax"]

    s, t = stream(SPATIAL_INPUTS, "rgb"), stream(TEMPORAL_INPUTS, "flow")
    soft = json.loads((tmp_path / "softmax" / "fusion.json").read_text())
    tsn = json.loads((tmp_path / "logits" / "fusion.json").read_text())
    assert soft["metrics"]["spatial"] == s.metrics() and soft["metrics"]["temporal"] == t.metrics()
    assert soft["metrics"]["fused"]["top1"] == pytest.approx(2 / 3)
    assert tsn["metrics"]["fused"]["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    # Stream metrics under "logits" are those of the softmax of each stream's mean logits.
    t_logit = ScoreSet(t.frame_dirs, t.labels, np.array([softmax(z) for z in t.logits], np.float32), CLASSES, {})
    assert tsn["metrics"]["temporal"] == t_logit.metrics()
    assert tsn["metrics"]["temporal"]["confusion"] == [[0, 1, 0], [0, 1, 0], [0, 0, 1]]
    fused = load_scores(tmp_path / "logits" / "scores_fused_test.npz")
    np.testing.assert_allclose(fused.scores[0], softmax([2, 1, 0]), rtol=1e-6)
    np.testing.assert_allclose(fused.logits[0], [2, 1, 0], atol=1e-6)

    # The weight chosen on held-out scores, with the logits' NLL.
    r = fuse(tmp_path / "rgb", tmp_path / "flow", weight=None, aggregate="logits", grid=(0.0, 0.6, 1.0), log=None)
    assert r.chosen_on == "holdout" and r.weight == 0.6 and r.aggregate == "logits"


def test_missing_logits_is_one_line(tmp_path):
    write_runs(tmp_path, with_logits=False)
    with pytest.raises(ValueError, match="flownet2 action test") as err:
        fuse(tmp_path / "rgb", tmp_path / "flow", weight=0.6, aggregate="logits", log=None)
    msg = str(err.value)
    assert str(tmp_path / "rgb" / "scores_test.npz") in msg and "\n" not in msg
    # softmax aggregation still works on such files
    assert fuse(tmp_path / "rgb", tmp_path / "flow", weight=0.6, log=None).aggregate == "softmax"
    with pytest.raises(ValueError, match="logits"):
        fuse_scores(stream(SPATIAL_INPUTS, "rgb", with_logits=False), stream(TEMPORAL_INPUTS, "flow"), 0.6, "logits")
    with pytest.raises(ValueError, match="aggregate"):
        fuse(tmp_path / "rgb", tmp_path / "flow", weight=0.6, aggregate="probabilities", log=None)


def test_missing_holdout_logits_names_the_holdout_file(tmp_path):
    write_runs(tmp_path, holdout_logits=False)
    with pytest.raises(ValueError) as err:
        fuse(tmp_path / "rgb", tmp_path / "flow", weight=None, aggregate="logits", log=None)
    msg = str(err.value)
    assert str(tmp_path / "rgb" / "scores_holdout.npz") in msg and "--subset holdout" in msg and "\n" not in msg


def test_score_files_round_trip_logits_and_read_old_files(tmp_path):
    s = stream(SPATIAL_INPUTS, "rgb")
    save_scores(tmp_path / "new.npz", s)
    r = load_scores(tmp_path / "new.npz")
    assert r.logits.dtype == np.float32 and r.logits.shape == (3, 3)
    np.testing.assert_array_equal(r.logits, s.logits)
    np.testing.assert_array_equal(r.scores, s.scores)
    with np.load(tmp_path / "new.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["classes", "frame_dirs", "labels", "logits", "meta", "scores"]
    # A file written before logits were saved: the same keys without "logits".
    np.savez(tmp_path / "old.npz", frame_dirs=np.asarray(s.frame_dirs, dtype=str), labels=s.labels,
             scores=s.scores, classes=np.asarray(CLASSES, dtype=str), meta=np.asarray(json.dumps(s.meta)))
    old = load_scores(tmp_path / "old.npz")
    assert old.logits is None and old.meta == s.meta
    np.testing.assert_array_equal(old.scores, s.scores)
    save_scores(tmp_path / "none.npz", old)  # no logits: no key
    with np.load(tmp_path / "none.npz", allow_pickle=False) as z:
        assert "logits" not in z.files


def _fusion_doc(tmp_path, split, aggregate):
    """A fusion.json; aggregate None: one written before the key existed."""
    write_dir = tmp_path / f"runs{split}{aggregate}"
    write_dir.mkdir()
    write_runs(write_dir)
    for name in ("rgb", "flow"):  # this split's number
        for subset in ("test", "holdout"):
            f = write_dir / name / f"scores_{subset}.npz"
            s = load_scores(f)
            save_scores(f, ScoreSet(s.frame_dirs, s.labels, s.scores, s.classes, {**s.meta, "split": split},
                                    s.logits))
    out = tmp_path / f"fusion{split}{aggregate}"
    fuse(write_dir / "rgb", write_dir / "flow", weight=0.6, aggregate=aggregate or "softmax", out=out, log=None)
    if aggregate is None:
        doc = json.loads((out / "fusion.json").read_text())
        del doc["aggregate"]
        (out / "fusion.json").write_text(json.dumps(doc))
    return out


def test_report_states_the_aggregation(tmp_path):
    import csv

    old, tsn = _fusion_doc(tmp_path, 1, None), _fusion_doc(tmp_path, 2, "logits")
    splits = collect_results([old, tsn])
    assert splits[1]["aggregate"] == "softmax" and splits[2]["aggregate"] == "logits"
    doc = write_report([old, tsn], tmp_path / "report", log=None)
    assert doc["aggregations"] == ["softmax", "logits"]
    md = (tmp_path / "report" / "report.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0].rstrip(" |").endswith("aggregation")
    assert table[2].rstrip(" |").endswith("softmax") and table[3].rstrip(" |").endswith("logits")
    assert table[4].rstrip(" |").endswith("mixed: softmax, logits") and "mixes them" in md and "TSN" in md
    rows = list(csv.DictReader(open(tmp_path / "report" / "report.csv", newline="")))
    assert {(r["split"], r["aggregate"]) for r in rows} == {("1", "softmax"), ("2", "logits"),
                                                           ("mean (splits 1, 2)", "mixed: softmax, logits")}

    one = write_report([tsn], tmp_path / "report_tsn", log=None)
    assert one["aggregations"] == ["logits"]
    md = (tmp_path / "report_tsn" / "report.md").read_text()
    assert "mixes them" not in md and "softmax = " not in md and "logits = " in md


def test_protocol_saves_mean_logits(small_config, tmp_path):
    """test_model's logits are the per-video mean of the model's logits over every
    position and crop (recomputed here input by input); its scores the mean softmax."""
    import torch

    from flowapps.action.data import StreamConfig, TestDataset, read_annotations, split_list
    from flowapps.action.train import load_model, train

    result = train(small_config(tmp_path / "run", epochs=1), log=lambda m: None)
    s = test_model(result.model_path, num_positions=3, crops=5, workers=0, progress=False, log=None)
    model, obj = load_model(result.model_path)
    cfg, scfg = obj["config"], StreamConfig.from_json(obj["stream"])
    records = read_annotations(split_list(cfg["stacks"], cfg["split"], "test", scfg.modality))
    ds = TestDataset(records, cfg["stacks"], scfg, num_positions=3, crops=5)
    per_video = {i: [] for i in range(len(records))}
    with torch.no_grad():
        for i in range(len(ds)):
            x, v = ds[i]
            per_video[v].append(model(x).double().numpy())
    z = [np.concatenate(per_video[i]) for i in range(len(records))]
    assert all(len(zi) == 15 for zi in z)
    want_logits = np.array([zi.mean(0) for zi in z])
    want_scores = np.array([(np.exp(zi) / np.exp(zi).sum(1, keepdims=True)).mean(0) for zi in z])
    assert s.logits.shape == (3, 3) and s.logits.dtype == np.float32
    np.testing.assert_allclose(s.logits, want_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s.scores, want_scores, rtol=1e-4, atol=1e-6)
    saved = load_scores(tmp_path / "run" / "scores_test.npz")
    np.testing.assert_array_equal(saved.logits, s.logits)
    assert not np.allclose(saved.logits.sum(1), 1)  # raw class scores, not probabilities
