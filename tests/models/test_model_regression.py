"""Numerical regression: seeded weights, seeded input, outputs compared to stored values.

A change detector, not a correctness test: the stored values are this
project's own earlier output, so a pass says the numerics did not change and a
failure says they did, right or wrong. Correctness is checked elsewhere (the
ops against loop references in ``tests/ops``, the models against the released
checkpoints' keys and conventions). It guards the numerics of the whole
FlowNet2 stack (all sub-networks and all three ops) against silent change,
e.g. when compiled kernels replace the twins. The weights are drawn from an
explicit generator in registration order (not from the builders' init), the
input likewise, all in float64.

Regenerate only after a deliberate change of numerics, and say why in the commit:

    PYTHONPATH=. python tests/models/test_model_regression.py --regenerate
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from flownet2_core.models import build_model

DATA = Path(__file__).parent / "data" / "regression_flownet2.json"
CONFIG = {"arch": "FlowNet2", "width": 0.125, "size": [64, 128], "weight_seed": 0, "input_seed": 1,
          "weight_gain": 2.0, "bias_bound": 0.05, "sample_stride": 8}


def seeded_model() -> torch.nn.Module:
    model = build_model(CONFIG["arch"], width=CONFIG["width"]).double().eval()
    g = torch.Generator().manual_seed(CONFIG["weight_seed"])
    with torch.no_grad():
        for _, p in model.named_parameters():
            u = torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1
            if p.dim() > 1:
                fan_in = p.shape[1] * p[0, 0].numel()
                p.copy_(u * (CONFIG["weight_gain"] * 3.0 / fan_in) ** 0.5)
            else:
                p.copy_(u * CONFIG["bias_bound"])
    return model


def seeded_input() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(CONFIG["input_seed"])
    h, w = CONFIG["size"]
    a = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64) * 255
    b = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64) * 255
    return a, b


def _summary(t: torch.Tensor) -> dict:
    return {"shape": list(t.shape), "mean_u": float(t[:, 0].mean()), "mean_v": float(t[:, 1].mean()),
            "abs_mean": float(t.abs().mean()), "std": float(t.std()), "min": float(t.min()),
            "max": float(t.max())}


def compute() -> dict:
    model = seeded_model()
    a, b = seeded_input()
    s = CONFIG["sample_stride"]
    with torch.no_grad():
        flow = model(a, b)
        train = model.train()(a, b)
        model.eval()
    return {
        "config": CONFIG,
        "eval": _summary(flow),
        "eval_sample": flow[0, :, ::s, ::s].flatten().tolist(),
        "train": [_summary(t) for t in train],
    }


def test_outputs_match_stored_values():
    stored = json.loads(DATA.read_text())
    assert stored["config"] == CONFIG
    got = compute()
    scale = max(abs(stored["eval"]["min"]), abs(stored["eval"]["max"]))
    np.testing.assert_allclose(got["eval_sample"], stored["eval_sample"], rtol=1e-7, atol=1e-9 * scale)
    for g, s in zip([got["eval"], *got["train"]], [stored["eval"], *stored["train"]]):
        assert g["shape"] == s["shape"]
        for key in ("mean_u", "mean_v", "abs_mean", "std", "min", "max"):
            np.testing.assert_allclose(g[key], s[key], rtol=1e-7, atol=1e-9 * scale, err_msg=key)
    # The stored flow is not degenerate: pixels-scale motion, both components alive.
    assert 1.0 < stored["eval"]["abs_mean"] < 100.0
    assert stored["eval"]["std"] > 0.1


if __name__ == "__main__":
    if "--regenerate" not in sys.argv:
        sys.exit("pass --regenerate to overwrite " + str(DATA))
    DATA.write_text(json.dumps(compute(), indent=1) + "\n")
    print("wrote", DATA)
