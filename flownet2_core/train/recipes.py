"""The paper's training sequences as data: one stage per network and dataset.

FlowNet 2.0 is trained a network at a time (paper §4, SPEC §5): each network on
Chairs with S_long, then on Things3D with S_fine (Chairs → Things beats either
alone or mixed); every stacked network is trained with the earlier ones
frozen and warping between them; FlowNet2-CSS-ft-sd fine-tunes the stack for
small displacements on batches of 2 Things3D + 6 ChairsSDHom with the robust
loss (EPE^0.4); FlowNet2-SD is trained on ChairsSDHom; the fusion network
last, with everything else frozen.

Here the datasets are the synthetic kinds of :mod:`.synthetic` by default
(``chairs``, ``things``, ``sdhom``); ``data_map`` swaps in datasets on disk
(e.g. ``{"chairs": "flyingchairs", "things": "things3d", "sdhom": "chairssdhom"}``
with their roots).

Which sub-networks a ft-sd stage trains is not stated in the SPEC's sources:
here it trains the last FlowNetS only, as every other stacking stage does.

The small-displacement stages (ft-sd, fusion) train in float32 whatever
precision the other stages use: measured here (docs/trained_model.md, eighth
session), a ft-sd stage in bfloat16 autocast left the held-out small
displacements where they were after 1,000 iterations, while the same stage in
float32 had improved them after 500. The robust loss is about sub-pixel errors,
below what bfloat16's 8-bit mantissa carries through the network.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the table and recipe_stages need no torch (the CLI lists recipes at once)
    from .trainer import StageConfig, StageResult

__all__ = ["RECIPES", "recipe_stages", "run_recipe"]


def _s(arch: str, data: str, schedule: str, init: tuple[str, ...] = (), freeze: tuple[str, ...] = (),
       loss: str = "epe", precision: str | None = None) -> dict:
    """One stage's settings; ``precision`` None keeps the caller's, "fp32" forces float32."""
    return dict(arch=arch, data=data, schedule=schedule, init=init, freeze=freeze, loss=loss,
                precision=precision)


_C = "flownetc"
_S1, _S2 = "flownets_1", "flownets_2"
_CSS_STAGES = [
    ("c-chairs", _s("FlowNet2-C", "chairs", "long")),
    ("c-things", _s("FlowNet2-C", "things", "fine", init=("c-chairs",))),
    ("cs-chairs", _s("FlowNet2-CS", "chairs", "long", init=("c-things",), freeze=(_C,))),
    ("cs-things", _s("FlowNet2-CS", "things", "fine", init=("cs-chairs",), freeze=(_C,))),
    ("css-chairs", _s("FlowNet2-CSS", "chairs", "long", init=("cs-things",), freeze=(_C, _S1))),
    ("css-things", _s("FlowNet2-CSS", "things", "fine", init=("css-chairs",), freeze=(_C, _S1))),
    ("css-ft-sd", _s("FlowNet2-CSS", "things:2,sdhom:6", "fine", init=("css-things",),
                     freeze=(_C, _S1), loss="robust", precision="fp32")),
]
_SS_STAGES = [
    ("s-chairs", _s("FlowNet2-S", "chairs", "long")),
    ("s-things", _s("FlowNet2-S", "things", "fine", init=("s-chairs",))),
    ("ss-chairs", _s("FlowNet2-SS", "chairs", "long", init=("s-things",), freeze=("flownets_0",))),
    ("ss-things", _s("FlowNet2-SS", "things", "fine", init=("ss-chairs",), freeze=("flownets_0",))),
    ("ss-ft-sd", _s("FlowNet2-SS", "things:2,sdhom:6", "fine", init=("ss-things",),
                    freeze=("flownets_0",), loss="robust", precision="fp32")),
]

#: Recipe name → ordered (stage name, settings); ``init`` names earlier stages.
RECIPES: dict[str, list[tuple[str, dict]]] = {
    "flownet2-c": _CSS_STAGES[:2],
    "flownet2-cs": _CSS_STAGES[:4],
    "flownet2-css": _CSS_STAGES[:6],
    "flownet2-css-ft-sd": _CSS_STAGES,
    "flownet2-ss": _SS_STAGES[:4],
    "flownet2-ss-ft-sd": _SS_STAGES,
    "flownet2-sd": [("sd", _s("FlowNet2-SD", "sdhom", "long"))],
    "flownet2": _CSS_STAGES + [
        ("sd", _s("FlowNet2-SD", "sdhom", "long")),
        ("fusion", _s("FlowNet2", "things:2,sdhom:6", "fine", init=("css-ft-sd", "sd"),
                      freeze=(_C, _S1, _S2, "flownets_d"), precision="fp32")),
    ],
}


def recipe_stages(name: str, base: StageConfig, out: str | os.PathLike,
                  budgets: dict[str, float] | None = None,
                  data_map: dict[str, str] | None = None,
                  init: tuple[str, ...] = ()) -> list[tuple[str, StageConfig, Path]]:
    """The stages of recipe ``name`` as (stage name, config, output folder).

    ``base`` gives everything a recipe does not set (width, sizes, batch,
    scale, seed, device, …); ``budgets`` an optional time budget per stage
    (seconds); ``data_map`` renames data sources (synthetic → dataset names);
    ``init`` checkpoints every stage warm-starts from first (a model trained
    earlier, e.g. the shipped one), the recipe's own warm starts loaded after
    them so that they take precedence where both fill a sub-network.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    out = Path(out)
    base_init = init
    result = []
    for stage, s in RECIPES[name]:
        data = s["data"]
        if data_map:
            from .sources import parse_data

            data = ",".join(f"{data_map.get(k, k)}:{n}" for k, n in parse_data(data).items())
        init = tuple(map(str, base_init)) + tuple(str(out / i / "model.pth.tar") for i in s["init"])
        cfg = replace(base, arch=s["arch"], data=data, schedule=s["schedule"], init=init,
                      freeze=s["freeze"], loss=s["loss"], precision=s["precision"] or base.precision,
                      time_budget=(budgets or {}).get(stage, base.time_budget))
        result.append((stage, cfg, out / stage))
    return result


def run_recipe(name: str, base: StageConfig, out: str | os.PathLike, *,
               budgets: dict[str, float] | None = None, data_map: dict[str, str] | None = None,
               stages: list[str] | None = None, init: tuple[str, ...] = (),
               log=None) -> list[tuple[str, StageResult]]:
    """Run the stages of recipe ``name`` in order into ``out/<stage>/``.

    Finished stages are skipped (their state says so) and an interrupted one
    resumes, so re-running the same call continues the recipe.
    """
    from .trainer import train_stage

    results = []
    todo = recipe_stages(name, base, out, budgets, data_map, init)
    if stages:
        unknown = sorted(set(stages) - {s for s, _, _ in todo})
        if unknown:
            raise ValueError(f"recipe {name} has no stage {unknown[0]!r}; stages: "
                             f"{', '.join(s for s, _, _ in todo)}")
        todo = [t for t in todo if t[0] in stages]
    for _, cfg, _ in todo:  # every stage's settings before the first one trains
        cfg.check()
    for stage, cfg, folder in todo:
        results.append((stage, train_stage(cfg, folder, name=stage, log=log)))
    return results
