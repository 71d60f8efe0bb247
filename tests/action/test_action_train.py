"""Training: schedules, global batches, held-out groups, checkpoints, resume, logs."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from flowapps.action.data import VideoRecord
from flowapps.action.train import (GlobalBatchSampler, TrainConfig, load_checkpoint, load_model,
                                   lr_scheduler, split_holdout, train)


def old_learning_rate(cfg, t):
    """The hand-written schedule lr_scheduler replaced (the reference)."""
    if cfg.warmup_epochs > 0 and t < cfg.warmup_epochs:
        return cfg.lr * (t + 1e-3) / cfg.warmup_epochs
    if cfg.schedule == "cosine":
        span = max(1e-9, cfg.epochs - cfg.warmup_epochs)
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, (t - cfg.warmup_epochs) / span)))
    return cfg.lr * cfg.gamma ** sum(int(t) >= m for m in cfg.milestones)


def lr_sequence(cfg, iters):
    """The lr of every training iteration, as train() steps the scheduler."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = lr_scheduler(cfg, opt, iters)
    out = []
    for _ in range(cfg.epochs * iters):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("iters", [1, 3, 8])
def test_learning_rate_schedules(iters):
    step = TrainConfig(stacks=".", out=".", lr=0.1, epochs=10, milestones=(4, 8), gamma=0.1)
    seq = lr_sequence(step, iters)
    assert [round(seq[int(t * iters)], 6) for t in (0, 3.9, 4, 7.5, 8, 9.9)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    cos = TrainConfig(stacks=".", out=".", lr=0.1, epochs=10, schedule="cosine")
    warm_cos = TrainConfig(stacks=".", out=".", lr=0.1, epochs=10, schedule="cosine", warmup_epochs=1)
    warm_step = TrainConfig(stacks=".", out=".", lr=0.1, epochs=10, milestones=(0, 4, 8), warmup_epochs=2)
    for cfg in (step, cos, warm_cos, warm_step):
        seq = lr_sequence(cfg, iters)
        want = [old_learning_rate(cfg, i / iters) for i in range(cfg.epochs * iters)]
        w = round(cfg.warmup_epochs * iters)
        # After the warm-up: the same values. During it: the same start, then within
        # 0.1 % (LinearLR ends at lr; the old ramp overshot it by 1e-3 / warmup_epochs).
        np.testing.assert_allclose(seq[w:], want[w:], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(seq[:w], want[:w], rtol=1e-3)
        if w:
            assert seq[0] == pytest.approx(want[0], rel=1e-12) and max(seq[:w]) <= cfg.lr
    assert lr_sequence(warm_cos, iters)[iters] == pytest.approx(0.1)       # end of the warm-up: lr
    assert lr_sequence(cos, iters)[-1] == pytest.approx(old_learning_rate(cos, 10 - 1 / iters))
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(stacks=".", out=".", schedule="poly")


def test_global_batches_are_the_same_for_any_world_size():
    single = GlobalBatchSampler(23, 8, seed=4)
    ranks = [GlobalBatchSampler(23, 8, r, 2, seed=4) for r in range(2)]
    for epoch in (0, 1):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        merged = [a + b for a, b in zip(*[list(r) for r in ranks])]
        assert merged == list(single)
        assert single.global_sizes == [8, 8, 7] and ranks[0].global_sizes == [8, 8, 7]
        assert sorted(i for b in single for i in b) == list(range(23))
    single.set_epoch(0)
    first = list(single)
    single.set_epoch(1)
    assert list(single) != first
    with pytest.raises(ValueError, match="smaller"):
        GlobalBatchSampler(10, 1, 0, 2)


def test_holdout_takes_whole_groups():
    recs = [VideoRecord(f"C{c}/v_C{c}_g{g:02d}_c{k:02d}", 20, c) for c in range(3) for g in range(8, 26)
            for k in (1, 2)]
    train_recs, held = split_holdout(recs, 0.15, seed=0)
    groups = {r.group for r in held}
    assert len(groups) == round(0.15 * 18) and not groups & {r.group for r in train_recs}
    assert len(held) == len(groups) * 3 * 2
    assert split_holdout(recs, 0.15, seed=0) == (train_recs, held)
    assert split_holdout(recs, 0.0, seed=0) == (recs, [])


@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.5, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_groups_never_straddle(fraction, seed):
    # Uneven groups (1–4 clips per group and class) in a shuffled list.
    rng = np.random.default_rng(seed)
    recs = [VideoRecord(f"C{c}/v_C{c}_g{g:02d}_c{k:02d}", 20, c) for c in range(4) for g in range(1, 13)
            for k in range(1, 1 + int(rng.integers(1, 5)))]
    recs = [recs[i] for i in rng.permutation(len(recs))]
    train_recs, held = split_holdout(recs, fraction, seed)
    assert sorted(train_recs + held, key=recs.index) == recs  # a partition, list order kept
    assert train_recs == [r for r in recs if r in set(train_recs)]
    assert not {r.group for r in train_recs} & {r.group for r in held}
    assert len({r.group for r in held}) == min(max(1, round(fraction * 12)), 11)  # at least one, never all
    # Names without a group: single videos are held out; one group only: nothing.
    plain = [VideoRecord(f"X/clip{i}", 20, i % 2) for i in range(10)]
    _, held_plain = split_holdout(plain, 0.3, seed)
    assert len(held_plain) == 3
    one = [VideoRecord(f"C0/v_C0_g01_c{k:02d}", 20, 0) for k in range(1, 4)]
    assert split_holdout(one, 0.5, seed) == (one, [])


@pytest.mark.parametrize("schedule", [{}, {"schedule": "step", "milestones": (2,), "warmup_epochs": 1.5}])
def test_resume_repeats_the_uninterrupted_run(small_config, tmp_path, schedule):
    full = train(small_config(tmp_path / "full", **schedule), log=lambda m: None)
    part = small_config(tmp_path / "part", **schedule)
    first = train(part, stop_after=2, log=lambda m: None)
    assert len(first.history) == 2 and not first.model_path.exists()
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["epoch"] == 2
    messages = []
    resumed = train(part, log=messages.append)
    assert any("resumed" in m and "epoch 2" in m for m in messages)
    a = torch.load(full.model_path, weights_only=True)["model"]
    b = torch.load(resumed.model_path, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    assert [h["lr"] for h in full.history] == [h["lr"] for h in resumed.history]  # the schedule caught up


def test_run_folder_contents(small_config, small_stacks, tmp_path):
    cfg = small_config(tmp_path / "run", modality="rgb", holdout=0.34, epochs=2, val_every=1)
    result = train(cfg, log=lambda m: None)
    out = tmp_path / "run"
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["val_top1"]) <= 1 for r in rows)
    # Every training clip counted once per pass (repeat 2), held-out videos left out, and the
    # rate is that count over the epoch's time.
    listed = (small_stacks / "ucf101_train_split_1_rawframes.txt").read_text().splitlines()
    held = (out / "holdout.txt").read_text().splitlines()
    assert all(int(r["clips"]) == 2 * (len(listed) - len(held)) for r in rows)
    for r in rows:  # seconds are logged to the millisecond
        assert float(r["seconds"]) > 0
        assert int(r["clips"]) / float(r["clips_per_s"]) == pytest.approx(float(r["seconds"]), abs=6e-4)
    assert json.loads((out / "log.json").read_text())[1]["epoch"] == 2
    assert json.loads((out / "config.json").read_text())["modality"] == "rgb"
    assert "random initialisation" in (out / "train.log").read_text()
    held = (out / "holdout.txt").read_text().splitlines()
    assert held and all(ln.split()[0].split("_g")[1][:2] == held[0].split()[0].split("_g")[1][:2] for ln in held)
    model, obj = load_model(result.model_path)
    assert obj["manifest"]["method"] == "exact" and obj["num_classes"] == 3
    assert obj["classes"] == ["MoveLeft", "MoveUp", "Expand"]
    assert not model.training
    total = sum(int(r["clips"]) for r in rows) / sum(float(r["seconds"]) for r in rows)
    assert result.clips_per_second == pytest.approx(total, rel=1e-6)
    assert math.isfinite(result.history[-1]["loss"])


def test_resume_with_other_settings_is_refused(small_config, tmp_path):
    train(small_config(tmp_path / "r", epochs=1), log=lambda m: None)
    with pytest.raises(ValueError, match=r"checkpoint.pt.*lr"):
        train(small_config(tmp_path / "r", epochs=2, lr=0.5), log=lambda m: None)
    # More epochs with the same recipe just continue.
    more = train(small_config(tmp_path / "r", epochs=2), log=lambda m: None)
    assert [h["epoch"] for h in more.history] == [1, 2]


def test_bad_inputs_are_named(small_config, tmp_path, small_stacks):
    with pytest.raises(FileNotFoundError, match="no-stacks"):
        train(small_config(tmp_path / "x", stacks=str(tmp_path / "no-stacks")), log=lambda m: None)
    with pytest.raises(FileNotFoundError, match="missing-list.txt"):
        train(small_config(tmp_path / "x", train_list=str(tmp_path / "missing-list.txt")), log=lambda m: None)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="divisible|smaller"):
        GlobalBatchSampler(5, 1, 0, 3)


def test_checkpoint_is_weights_only_loadable(small_config, tmp_path):
    train(small_config(tmp_path / "w", epochs=1), log=lambda m: None)
    ck = torch.load(tmp_path / "w" / "checkpoint.pt", weights_only=True)
    assert set(ck) >= {"epoch", "model", "optimizer", "scaler", "config", "history"}
    assert not list((tmp_path / "w").glob(".*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mixed_precision_on_gpu(small_config, tmp_path):
    result = train(small_config(tmp_path / "gpu", epochs=2, device="cuda"), log=lambda m: None)
    assert np.isfinite(result.history[-1]["loss"])
    ck = load_checkpoint(tmp_path / "gpu" / "checkpoint.pt")
    assert ck["scaler"]  # the GradScaler was used and saved
