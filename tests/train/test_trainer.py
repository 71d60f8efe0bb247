"""The stage trainer: resume, freezing, warm starts, DDP, learning, files, CLI."""

import csv
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from flownet2_core.distributed import Dist
from flownet2_core.models.builders import BUILDERS, build_model, flownet2_c, flownet2_cs
from flownet2_core.models.checkpoint import load_checkpoint, save_checkpoint
from flownet2_core.train.losses import MultiScaleEPE
from flownet2_core.train.schedules import SCHEDULES, make_optimizer
from flownet2_core.train.sources import make_source, parse_data
from flownet2_core.train.trainer import REFINERS, StageConfig, load_init, train_stage, training_step

TINY = 1 / 16


def _cfg(**kw):
    base = dict(arch="FlowNet2-S", width=TINY, data="chairs", iterations=4, batch_size=2,
                size=(96, 128), crop=(64, 128), val_size=(64, 128), val_batches=1, val_every=2,
                checkpoint_every=2, texture_count=4, progress=False, motion_scale=0.5)
    base.update(kw)
    return StageConfig(**base)


def _rows(out):
    with open(Path(out) / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_stage_writes_its_files_and_a_loadable_model(tmp_path):
    r = train_stage(_cfg(), tmp_path / "s", log=lambda m: None)
    assert r.iterations == 4
    for name in ("state.pt", "model.pth.tar", "log.csv", "curves.png"):
        assert (tmp_path / "s" / name).stat().st_size > 0
    model = load_checkpoint(r.model_path)
    assert type(model).__name__ == "FlowNet2S" and model.width == TINY
    rows = _rows(tmp_path / "s")
    assert rows[0]["iteration"] == "0" and rows[0]["val_epe"] != ""   # where training started
    assert [int(x["iteration"]) for x in rows if x["val_epe"]] == [0, 2, 4]
    # Finished: the same call returns at once without training further.
    again = train_stage(_cfg(), tmp_path / "s", log=lambda m: None)
    assert again.iterations == 4 and _rows(tmp_path / "s") == rows


def test_resume_continues_exactly(tmp_path, monkeypatch):
    """Killed after iteration 2's checkpoint, then re-run: same losses and weights as one run.
    Uses the sample pool, which a resumed run must rebuild exactly."""
    cfg = _cfg(iterations=4, val_every=2, checkpoint_every=2, pool=6, refresh=1)
    train_stage(cfg, tmp_path / "whole", log=lambda m: None)

    import flownet2_core.train.trainer as trainer

    real = trainer.make_source

    def dying_source(*a, **k):
        src = real(*a, **k)
        orig = src.batch

        def batch(i):
            if i == 3:
                raise KeyboardInterrupt("killed")
            return orig(i)
        src.batch = batch
        return src

    monkeypatch.setattr(trainer, "make_source", dying_source)
    with pytest.raises(KeyboardInterrupt):
        train_stage(cfg, tmp_path / "resumed", log=lambda m: None)
    monkeypatch.setattr(trainer, "make_source", real)
    st = torch.load(tmp_path / "resumed" / "state.pt", weights_only=True)
    assert st["iteration"] == 2
    train_stage(cfg, tmp_path / "resumed", log=lambda m: None)
    a, b = _rows(tmp_path / "whole"), _rows(tmp_path / "resumed")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa = torch.load(tmp_path / "whole" / "state.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "resumed" / "state.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_refuses_to_overwrite_its_init(tmp_path):
    train_stage(_cfg(iterations=1), tmp_path / "c", log=lambda m: None)
    before = (tmp_path / "c" / "model.pth.tar").read_bytes()
    with pytest.raises(ValueError, match="is the output this stage writes"):
        train_stage(_cfg(iterations=1, init=(str(tmp_path / "c" / "model.pth.tar"),)),
                    tmp_path / "c" / ".." / "c", log=lambda m: None)
    assert (tmp_path / "c" / "model.pth.tar").read_bytes() == before


def test_resume_refuses_other_settings(tmp_path):
    train_stage(_cfg(iterations=2), tmp_path / "s", log=lambda m: None)
    with pytest.raises(ValueError, match="holds a run with other settings .*data"):
        train_stage(_cfg(iterations=2, data="sdhom"), tmp_path / "s", log=lambda m: None)


def test_frozen_subnetworks_stay_bit_identical(tmp_path):
    c = flownet2_c(width=TINY)
    save_checkpoint(tmp_path / "c.pth.tar", c)
    cfg = _cfg(arch="FlowNet2-CS", init=(str(tmp_path / "c.pth.tar"),), freeze=("flownetc",),
               iterations=3)
    r = train_stage(cfg, tmp_path / "cs", log=lambda m: None)
    cs = load_checkpoint(r.model_path)
    for k, v in c.state_dict().items():
        assert torch.equal(cs.state_dict()["flownetc." + k], v), k
    fresh = flownet2_cs(width=TINY)
    torch.manual_seed(cfg.seed)
    fresh = flownet2_cs(width=TINY)   # the trainer's own initialisation of flownets_1
    changed = [k for k, v in cs.flownets_1.state_dict().items()
               if not torch.equal(v, fresh.flownets_1.state_dict()[k])]
    assert changed, "the trained sub-network did not change"


def test_load_init_maps_standalone_networks_and_checks_shapes(tmp_path):
    c = flownet2_c(width=TINY)
    save_checkpoint(tmp_path / "c.pth.tar", c)
    cs = flownet2_cs(width=TINY)
    assert load_init(cs, [str(tmp_path / "c.pth.tar")]) == ["flownetc"]
    assert torch.equal(cs.flownetc.conv1[0].weight, c.conv1[0].weight)
    with pytest.raises(ValueError, match="another width"):
        load_init(flownet2_cs(width=2 * TINY), [str(tmp_path / "c.pth.tar")])
    with pytest.raises(ValueError, match="unknown architecture"):
        _cfg(arch="FlowNet3").check()
    with pytest.raises(ValueError, match="--freeze flownetd"):
        train_stage(_cfg(arch="FlowNet2-CS", freeze=("flownetd",)), tmp_path / "x", log=lambda m: None)



def test_load_init_takes_a_standalone_network_out_of_a_stack(tmp_path):
    """FlowNet2-S starts from an S stack's first network (flownets_0), C from a CS's flownetc."""
    ss = build_model("FlowNet2-SS", width=TINY)
    save_checkpoint(tmp_path / "ss.pth.tar", ss)
    s = build_model("FlowNet2-S", width=TINY)
    assert load_init(s, [str(tmp_path / "ss.pth.tar")]) == [n for n, _ in s.named_children()]
    assert all(torch.equal(v, ss.flownets_0.state_dict()[k]) for k, v in s.state_dict().items())
    assert not torch.equal(s.state_dict()["conv1.0.weight"], ss.flownets_1.state_dict()["conv1.0.weight"])
    cs = flownet2_cs(width=TINY)
    save_checkpoint(tmp_path / "cs.pth.tar", cs)
    c = flownet2_c(width=TINY)
    load_init(c, [str(tmp_path / "cs.pth.tar")])
    assert all(torch.equal(v, cs.flownetc.state_dict()[k]) for k, v in c.state_dict().items())

def test_a_short_run_lowers_validation_epe(tmp_path):
    cfg = _cfg(arch="FlowNet2-S", width=0.125, data="sdhom", iterations=40, batch_size=4, lr=1e-3,
               val_every=40, checkpoint_every=40, augment=False, val_batches=2, motion_scale=1.0)
    train_stage(cfg, tmp_path / "s", log=lambda m: None)
    vals = [float(r["val_epe"]) for r in _rows(tmp_path / "s") if r["val_epe"]]
    assert vals[-1] < 0.9 * vals[0], vals


def test_data_specs():
    assert parse_data("things:2,sdhom:6") == {"things": 2, "sdhom": 6}
    assert parse_data("chairs") == {"chairs": 1}
    for bad, msg in (("", "at least one"), ("chairs:x", "integer"), ("chairs:0", "≥ 1"),
                     ("chairs,chairs", "twice")):
        with pytest.raises(ValueError, match=msg):
            parse_data(bad)
    with pytest.raises(ValueError, match="neither a synthetic kind"):
        make_source(_cfg(data="sintel"), torch.device("cpu"), Dist())
    with pytest.raises(ValueError, match="not a multiple of the mix"):
        make_source(_cfg(data="things:2,sdhom:6", batch_size=4), torch.device("cpu"), Dist())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_DDP_WORKER = r'''
import os, sys, torch
from flownet2_core.distributed import join_process_group, leave_process_group
from flownet2_core.models.builders import build_model
from flownet2_core.train.losses import MultiScaleEPE
from flownet2_core.train.schedules import SCHEDULES, make_optimizer
from flownet2_core.train.sources import make_source
from flownet2_core.train.trainer import StageConfig, training_step
torch.set_num_threads(1)
cfg = StageConfig(**eval(sys.argv[1]))
d = join_process_group()
torch.manual_seed(0)
model = build_model(cfg.arch, width=cfg.width)
net = torch.nn.parallel.DistributedDataParallel(model) if d.active else model
opt = make_optimizer(model.parameters(), SCHEDULES["long"])
batch = make_source(cfg, torch.device("cpu"), d).batch(0)
training_step(net, model, batch, MultiScaleEPE(), opt, cfg)
if d.rank == 0:
    torch.save({k: p.grad for k, p in model.named_parameters()}, sys.argv[2])
d.barrier()
leave_process_group()  # both ranks shut gloo down together (an exit without it may abort)
'''


def test_ddp_two_gloo_processes_give_the_gradients_of_one(tmp_path):
    """torchrun-style start of 2 CPU processes (gloo), each on its rows of one global batch
    of 4: the averaged gradients equal one process's on the whole batch."""
    settings = repr(dict(arch="FlowNet2-S", width=TINY, batch_size=4, size=(64, 128), crop=(64, 128),
                         augment=False, texture_count=4, motion_scale=0.5))
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, str(script), settings, str(tmp_path / "one.pt")], env=env, check=True)
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(script), settings, str(tmp_path / "two.pt")],
                              env=dict(env, WORLD_SIZE="2", RANK=str(r), LOCAL_RANK=str(r),
                                       MASTER_ADDR="127.0.0.1", MASTER_PORT=port))
             for r in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-7, msg=k)
    assert any(float(g.abs().max()) > 0 for g in one.values())


def test_train_cli_runs_and_reports_bad_input(tmp_path):
    exe = [sys.executable, "-m", "flownet2_core", "train"]
    common = ["--width", str(TINY), "--iterations", "2", "--batch-size", "2", "--size", "128x96",
              "--crop", "128x64", "--val-size", "128x64", "--val-batches", "1", "--no-progress"]
    synth = ["--pool", "4", "--refresh", "1", "--texture-count", "3", "--motion-scale", "0.5"]
    ok = subprocess.run(exe + ["stage", "-o", str(tmp_path / "s"), "--arch", "FlowNet2-S"] + common + synth,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "s" / "model.pth.tar").exists()
    saved = torch.load(tmp_path / "s" / "state.pt", weights_only=True)["config"]
    assert (saved["pool"], saved["refresh"], saved["texture_count"], saved["motion_scale"]) == (4, 1, 3, 0.5)
    assert "batch 2 × 128×64 on cpu, fp32" in ok.stdout + ok.stderr  # sizes typed and printed W×H
    bad = subprocess.run(exe + ["stage", "-o", str(tmp_path / "b"), "--crop", "128x60", "--size", "128x96"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    lines = [ln for ln in bad.stderr.strip().splitlines() if "Warning" not in ln]
    assert len(lines) == 1 and "multiples of 64" in lines[0], bad.stderr
    # never write over an input; numbers checked where parsed (one line each, before any work)
    init = tmp_path / "s" / "model.pth.tar"
    before = init.read_bytes()
    for args, says in ((["stage", "-o", str(tmp_path / "s"), "--init", str(init)], "refusing to overwrite"),
                       (["recipe", "flownet2-ss", "-o", str(tmp_path), "--root", f"chairs={tmp_path / 's'}"],
                        "s"),
                       (["stage", "-o", str(tmp_path / "c"), "--batch-size", "0"], "--batch-size"),
                       (["stage", "-o", str(tmp_path / "c"), "--lr", "nan"], "--lr"),
                       (["stage", "-o", str(tmp_path / "c"), "--pool", "1"], "pool"),
                       (["recipe", "flownet2-ss", "-o", str(tmp_path / "c"), "--init", str(tmp_path / "no.pth")],
                        "no such checkpoint"),
                       (["stage", "-o", str(tmp_path / "c"), "--size", "0x128"], "--size")):
        r = subprocess.run(exe + args, capture_output=True, text=True)
        lines = [ln for ln in r.stderr.strip().splitlines() if "Warning" not in ln]
        assert r.returncode == 2 and len(lines) == 1 and says in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert init.read_bytes() == before and not (tmp_path / "c").exists()


def test_training_on_datasets_on_disk_mixed_with_synthetic(tmp_path):
    """Miniature FlyingChairs and ChairsSDHom trees in their real layouts, one of them mixed with
    a synthetic kind in every batch: the stage trains and reads the files it was pointed at."""
    from flownet2_core.data.mini import write_mini_training

    roots = write_mini_training(tmp_path / "data", size=(64, 128))
    cfg = _cfg(data="chairs:1,sdhom:1", roots={"chairs": str(roots["chairs"])}, iterations=2,
               size=(64, 128), crop=(64, 128))
    r = train_stage(cfg, tmp_path / "run", log=lambda m: None)
    assert r.iterations == 2
    src = make_source(cfg, torch.device("cpu"), Dist())
    b = src.batch(0)
    assert b["img1"].shape == (2, 3, 64, 128)
    disk_part = src.parts[1]
    assert disk_part.ds.samples and all(str(roots["chairs"]) in str(s.img1) for s in disk_part.ds.samples)
    cfg2 = replace(cfg, data="chairs-sdhom", roots={"chairs-sdhom": str(roots["chairs-sdhom"])})
    assert train_stage(cfg2, tmp_path / "run2", log=lambda m: None).iterations == 2


@pytest.mark.parametrize("arch", ["FlowNet2-S", "FlowNet2-SS"])
def test_channels_last_step_equals_contiguous(arch):
    """The channels-last layout (the default, for speed) changes no number a step computes:
    same loss and same gradients as the NCHW model on the same batch (the SS stack
    also routes warping through the compiled ops, which take either layout)."""
    cfg = _cfg(arch=arch, augment=False)
    batch = make_source(cfg, torch.device("cpu"), Dist()).batch(0)
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = build_model(arch, width=TINY)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        opt = make_optimizer(model.parameters(), SCHEDULES["long"])
        loss = training_step(model, model, batch, MultiScaleEPE(), opt,
                             replace(cfg, channels_last=channels_last))
        results.append((loss, {k: p.grad.clone() for k, p in model.named_parameters()}))
    (l0, g0), (l1, g1) = results
    assert float(l0) > 0
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-3, atol=1e-6, msg=k)


def test_a_refining_net_starts_as_a_copy_of_the_first(tmp_path):
    """--init flownets_1=S: the stack's second net gets S's weights, zeros on the extra
    channels, so before training the SS computes exactly S's flow."""
    torch.manual_seed(0)
    s = build_model("FlowNet2-S", width=TINY)
    save_checkpoint(tmp_path / "s.pth.tar", s)
    ss = build_model("FlowNet2-SS", width=TINY)
    entries = [str(tmp_path / "s.pth.tar"), f"flownets_1={tmp_path / 's.pth.tar'}"]
    assert load_init(ss, entries) == ["flownets_0", "flownets_1"]
    w = ss.flownets_1.conv1[0].weight
    assert torch.equal(w[:, :6], s.conv1[0].weight) and not w[:, 6:].any()
    img1, img2 = torch.rand(2, 1, 3, 64, 64).mul(255)
    with torch.no_grad():
        assert torch.allclose(ss.eval()(img1, img2), s.eval()(img1, img2), atol=1e-5)
    with pytest.raises(ValueError, match="has no flownets_2"):
        load_init(ss, [f"flownets_2={tmp_path / 's.pth.tar'}"])
    with pytest.raises(ValueError, match="FlowNet2-S has no flownets_1"):  # before any folder
        _cfg(arch="FlowNet2-S", init=(f"flownets_1={tmp_path / 's.pth.tar'}",)).check()
    for arch in BUILDERS:  # the table the check uses agrees with the models
        names = [n for n, _ in build_model(arch, width=TINY).named_children()]
        assert REFINERS.get(arch, 0) == sum(n in {f"flownets_{k}" for k in range(1, 10)} for n in names), arch
    save_checkpoint(tmp_path / "c.pth.tar", flownet2_c(width=TINY))
    with pytest.raises(ValueError, match="needs a FlowNet2-S checkpoint"):
        load_init(ss, [f"flownets_1={tmp_path / 'c.pth.tar'}"])
    # from a stack: its last refining net, applied once more (SS → SSS)
    save_checkpoint(tmp_path / "ss.pth.tar", ss)
    sss = build_model("FlowNet2-SSS", width=TINY)
    load_init(sss, [str(tmp_path / "ss.pth.tar"), f"flownets_2={tmp_path / 'ss.pth.tar'}"])
    for k, v in ss.flownets_1.state_dict().items():
        assert torch.equal(sss.flownets_2.state_dict()[k], v) and torch.equal(sss.flownets_1.state_dict()[k], v)
