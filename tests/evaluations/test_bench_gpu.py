"""The GPU throughput benchmark, run here on the CPU at a tiny size: the script a lent GPU
runs must not fail there for want of having been run (rows, batch doubling, JSON, budget)."""

import json

import torch

from evaluations import bench_gpu


def _args(tmp_path, *extra):
    return bench_gpu.get_args_parser().parse_args(
        ["--device", "cpu", "--archs", "FlowNet2-S", "FlowNet2-CS", "--width", "0.0625", "--sizes", "128x64",
         "--precisions", "fp32", "bf16", "fp16", "--max-batch", "2", "--runs", "1", "--warmup", "0",
         "--json", str(tmp_path / "rows.json"), *extra])


def test_rows_for_every_case_the_device_offers(tmp_path):
    rows = bench_gpu.main(_args(tmp_path))
    # fp16 is CUDA-only in the runner: two networks × (fp32, bf16) on the CPU.
    assert [(r["arch"], r["precision"]) for r in rows] == [
        ("FlowNet2-S", "fp32"), ("FlowNet2-S", "bf16"), ("FlowNet2-CS", "fp32"), ("FlowNet2-CS", "bf16")]
    for r in rows:
        assert set(r["fps_by_batch"]) == {1, 2} and r["fps_best"] == max(r["fps_by_batch"].values())
        assert r["fps_batch1"] == r["fps_by_batch"][1] and r["size"] == "128x64"
        assert r["layout"] == ("nchw" if r["precision"] == "fp32" else "channels-last")
    assert json.loads((tmp_path / "rows.json").read_text())[0]["arch"] == "FlowNet2-S"


def test_budget_stops_before_later_cases(tmp_path, capsys):
    assert bench_gpu.main(_args(tmp_path, "--budget", "0")) == []
    assert "budget of 0 s spent" in capsys.readouterr().out


def test_time_case_is_per_forward_of_the_batch():
    from flownet2_core.inference import FlowNet2Inference
    from flownet2_core.models import build_model

    runner = FlowNet2Inference(build_model("FlowNet2-S", width=0.0625).eval(), device="cpu", batch_size=2)
    calls = []
    real = runner.predict
    runner.predict = lambda a, b: calls.append(a.shape) or real(a, b)
    assert bench_gpu.time_case(runner, 2, 64, 128, runs=2, warmup=1) > 0
    assert calls == [torch.Size([2, 3, 64, 128])] * 3
