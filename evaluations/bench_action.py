"""Two-stream training throughput on this machine, in clips per second.

Three measurements, each for the temporal stream (L = 10 → 20 channels) unless noted:

* **data**: the dataset alone (JPEG flow decoding, mean subtraction, crop, flip,
  normalisation) on generated stacks, without the in-memory cache;
* **step**: one SGD step (forward, backward, update) on random tensors, per backbone and
  crop size: the network alone;
* **train**: :func:`flowapps.action.train.train` end to end (1 process, tiny backbone),
  from the rawframes on disk.

Usage::

    python -m evaluations.bench_action                       # CPU, 1 and 2 torch threads
    python -m evaluations.bench_action --archs resnet18 resnet50 --crops 224 --device cuda
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=["tiny", "resnet18"])
    p.add_argument("--crops", nargs="+", type=int, default=[48, 112], help="crop sizes for the step benchmark")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    return p


def _timed(fn, seconds: float, per_call: int) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += per_call
    return n / (time.perf_counter() - t0)


def bench_step(arch: str, crop: int, batch: int, device: str, seconds: float) -> float:
    import torch
    import torch.nn.functional as F

    from flowapps.action.models import build_recognizer

    model = build_recognizer(arch, 101, 20, dropout=0.7, log=lambda m: None).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 1, 20, crop, crop, device=device)
    y = torch.randint(0, 101, (batch,), device=device)
    amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step():
        with torch.autocast("cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if amp:
            torch.cuda.synchronize()

    return _timed(step, seconds, batch)


def main(args) -> dict:
    import os

    import torch

    from flowapps.action.data import ClipDataset, StreamConfig, read_annotations
    from flowapps.action.train import TrainConfig, train
    from flowapps.stacks.mini_ucf101 import write_exact_stacks, write_mini_ucf101

    out: dict = {"data": {}, "step": {}, "train": {}}
    work = Path(tempfile.mkdtemp(prefix="bench_action_"))
    try:
        mini = write_mini_ucf101(work / "ucf", classes=("MoveLeft", "Expand", "Oscillate"), num_groups=4,
                                 clips_per_group=2, num_frames=24, size=(120, 160), broken=False)
        stacks = write_exact_stacks(mini, work / "stacks")
        recs = read_annotations(stacks / "ucf101_train_split_1_rawframes_flow.txt")
        print(f"{os.cpu_count()} CPU cores; device {args.device}; batch {args.batch_size}")
        torch.set_num_threads(1)
        for modality, length, crop in (("flow", 10, 96), ("rgb", 1, 96)):
            ds = ClipDataset(recs if modality == "flow" else
                             read_annotations(stacks / "ucf101_train_split_1_rawframes.txt"),
                             stacks, StreamConfig(modality=modality, new_length=length, crop_size=crop))
            i = iter(range(10 ** 9))
            rate = _timed(lambda: ds[next(i) % len(ds)], args.seconds, 1)
            out["data"][modality] = rate
            print(f"data  {modality:<4} 120×160 frames, crop {crop}: {rate:8.1f} clips/s (1 process, no cache)")
        for threads in (args.threads if args.device == "cpu" else [torch.get_num_threads()]):
            torch.set_num_threads(threads)
            for arch in args.archs:
                for crop in args.crops:
                    rate = bench_step(arch, crop, args.batch_size, args.device, args.seconds)
                    out["step"][f"{arch}@{crop}/{threads}t"] = rate
                    print(f"step  {arch:<9} crop {crop:>3}, {threads} thread(s): {rate:8.1f} clips/s")
        for threads in (args.threads if args.device == "cpu" else [torch.get_num_threads()]):
            cfg = TrainConfig(stacks=str(stacks), out=str(work / f"run{threads}"), modality="flow", arch="tiny",
                              new_length=10, crop_size=96, epochs=2, batch_size=args.batch_size, lr=0.01,
                              repeat=4, workers=0, threads=threads, progress=False, device=args.device)
            result = train(cfg, log=lambda m: None)
            rate = result.history[-1]["clips_per_s"]
            out["train"][f"tiny@96/{threads}t"] = rate
            print(f"train tiny      crop  96, {threads} thread(s): {rate:8.1f} clips/s (end to end, from JPEGs)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
