"""Demo section: the paper's Table 5 on generated data, the first thing ``demo_out/index.html`` shows.

Every flow method that needs no download (the OpenCV classics and the FlowNet2 trained in
this repository), plus the exact flow of the generated scenes as the ceiling, goes through
both halves of Table 5: motion segmentation of a mini-FBMS (official layout, evaluated by the
port of the official evaluator) and the temporal stream on a mini-UCF101 (official split
files, two splits), with each method's runtime. Beside it, a flow table on scikit-image's
real stereo pair (EPE against its disparity), the only real photographs with ground truth
that a dependency ships.

Re-running reuses everything finished: the generated data, each (stage, method) of the
Table 5 run, the report.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

from flownet2_core.demo import DemoSection, learned_method_note
from flownet2_core.io import atomic_write_text
from flownet2_core.reporting import html_page, html_table, markdown_table

__all__ = ["DEMO", "demo_methods", "table5_demo", "stereo_flow_table"]

#: The reduced Table 5 the demo runs (a couple of minutes per method on 2 CPU cores).
#: Motions are subtle (rotation, scaling, oscillation: a pixel or less at object edges),
#: where flow quality shows in what the temporal stream can learn.
DEMO = {
    "fbms": {"seeds": (0, 1, 2), "num_frames": 12, "size": (96, 128)},
    "ucf101": {"classes": ("RotateClockwise", "RotateAnticlockwise", "Expand", "Contract", "Oscillate",
                           "MoveLeft"),
               "num_groups": 6, "clips_per_group": 3, "num_frames": 12, "size": (72, 96)},
    # The action proof's tiny recipe: tiny CNN, 48 px crops, no flips (mirror-image classes).
    "action": {"splits": (1, 2), "arch": "tiny", "new_length": 8, "crop_size": 48, "flip": False,
               "epochs": 16, "batch_size": 16, "lr": 0.05, "schedule": "cosine", "warmup_epochs": 0.5,
               "weight_decay": 1e-4, "dropout": 0.0, "repeat": 4, "positions": 5, "crops": 5,
               "workers": 0, "cache_mb": 256},
    "segmentation": {"sampling": 4},
    "runtime_pairs": 5,
}

#: Classical methods tried, in table order (each only when this OpenCV build has it).
CLASSICAL = ("dis", "farneback", "tvl1", "deepflow", "pcaflow")


def demo_methods() -> list[str]:
    """Exact flow first, then the learned method when its weights are there, then the classics."""
    from flownet2_core.methods import available_methods, learned_demo_methods, unavailable_methods

    usable = set(available_methods()) - set(unavailable_methods())
    classics = [m for m in CLASSICAL if m in usable]
    return ["exact", *learned_demo_methods(), *classics]


def _generate(data: Path) -> tuple[Path, Path, Path]:
    """The mini-FBMS, the mini-UCF101 and its exact stacks under ``data`` (kept once written:
    a ``done.json`` marks a finished generation with its settings)."""
    import torch

    from flowapps.segmentation.synthetic import write_synthetic_fbms_set
    from flowapps.stacks.mini_ucf101 import write_exact_stacks, write_mini_ucf101

    fbms, ucf, exact = data / "fbms", data / "ucf101", data / "exact_stacks"
    marker = data / "done.json"
    settings = json.dumps({k: DEMO[k] for k in ("fbms", "ucf101")}, sort_keys=True, default=list)
    if marker.exists() and marker.read_text() == settings:
        return fbms, ucf, exact
    print("[demo] table 5: generating a mini-FBMS and a mini-UCF101 …", flush=True)
    threads = torch.get_num_threads()
    f, u = DEMO["fbms"], DEMO["ucf101"]
    write_synthetic_fbms_set(fbms / "Trainingset", f["seeds"], num_frames=f["num_frames"], size=f["size"])
    mini = write_mini_ucf101(ucf, classes=u["classes"], num_groups=u["num_groups"],
                             clips_per_group=u["clips_per_group"], num_frames=u["num_frames"], size=u["size"],
                             broken=False)
    write_exact_stacks(mini, exact)
    torch.set_num_threads(threads)
    atomic_write_text(marker, settings)
    return fbms, ucf, exact


def stereo_flow_table(methods: list[str], images: Path) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    """EPE of each computed method on scikit-image's stereo pair (¼ and ½ size; disparity as
    flow, valid pixels), its time, and a colour picture of each flow at ¼ size."""
    from flownet2_core.data.datasets import load_motorcycle
    from flownet2_core.io import write_image
    from flownet2_core.methods import get_method
    from flownet2_core.metrics import average_epe
    from flownet2_core.viz import flow_to_color

    # A quarter and a half of the full 741×500: at full size TV-L1 alone takes minutes on 2 cores.
    pairs = {"¼ (185×125)": load_motorcycle(4), "½ (370×250)": load_motorcycle(2)}
    small = next(iter(pairs.values()))
    scale = float(abs(small.gt[small.valid]).max())
    images.mkdir(parents=True, exist_ok=True)
    pictures = [("left image (¼)", "stereo_left.png"), ("ground truth (disparity)", "stereo_gt.png")]
    write_image(images / "stereo_left.png", small.img1)
    write_image(images / "stereo_gt.png", flow_to_color(small.gt * small.valid[..., None], max_flow=scale))
    rows = []
    for name in methods:
        if name == "exact":
            continue
        method = get_method(name)
        row = [name]
        times = []
        for label, fr in pairs.items():
            method(fr.img1, fr.img2)  # warm-up (first call allocates, compiles kernels)
            t0 = time.perf_counter()
            flow = method(fr.img1, fr.img2)
            times.append(time.perf_counter() - t0)
            row.append(f"{average_epe(flow, fr.gt, fr.valid):.2f}")
            if fr is small:
                write_image(images / f"stereo_{name}.png", flow_to_color(flow, max_flow=scale))
                pictures.append((f"{name} (EPE {row[-1]})", f"stereo_{name}.png"))
        rows.append(row + [f"{1000 * t:.0f}" for t in times])
    headers = ["method"] + [f"EPE {k} px" for k in pairs] + [f"ms {k}" for k in pairs]
    return headers, rows, pictures


def table5_demo(out_dir: Path) -> DemoSection:
    """Run the reduced Table 5 into ``out_dir/run``, render its report, and return the section
    with a lead (the table and its plots) for the top of ``index.html``."""
    from .config import ActionSettings, MethodSpec, SegmentationSettings, Table5Config
    from .report import collect_results, main_table, render_report, table5_frame
    from .runner import run_table5

    out = Path(out_dir)
    fbms, ucf, exact = _generate(out / "data")
    methods = demo_methods()
    specs = tuple(MethodSpec(m, stacks=os.fspath(exact) if m == "exact" else None) for m in methods)
    cfg = Table5Config(out=os.fspath(out / "run"), methods=specs, fbms_root=os.fspath(fbms),
                       ucf101_videos=os.fspath(ucf / "videos"), ucf101_splits=os.fspath(ucf / "ucfTrainTestlist"),
                       segmentation=SegmentationSettings(**DEMO["segmentation"]),
                       action=ActionSettings(**DEMO["action"]), runtime_pairs=DEMO["runtime_pairs"])
    run_table5(cfg, log=lambda m: print(m, flush=True), progress=True)
    paths = render_report(cfg.out)
    df = table5_frame(collect_results(cfg.out))
    headers, rows = main_table(df)
    keep = [i for i, h in enumerate(headers) if not h.startswith("paper ")]  # all "not transcribed"
    headers, rows = [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]

    print("[demo] table 5: flow on scikit-image's real stereo pair …", flush=True)
    s_headers, s_rows, s_pics = stereo_flow_table(methods, out / "images")

    note = learned_method_note()
    intro = (f"The paper's Table 5 (§6.3) reduced to generated data: {len(methods)} flow methods through motion "
             f"segmentation (a mini-FBMS of {len(DEMO['fbms']['seeds'])} sequences in the official layout, scored by "
             f"the port of the official evaluator) and action recognition (the temporal stream on a mini-UCF101 of "
             f"{len(DEMO['ucf101']['classes'])} motion-defined classes, splits "
             f"{', '.join(map(str, DEMO['action']['splits']))}), with each method's runtime. 'exact' is the "
             f"generated scenes' true flow: the ceiling. {note} The paper's own figures are not shown: they "
             f"have not been transcribed from the paper.")
    plots = paths["plots"]
    md = [f"# Table 5 on generated data\n\n{intro}\n\n", markdown_table(headers, rows),
          "\n## Flow on a real stereo pair (scikit-image `stereo_motorcycle`)\n\n", markdown_table(s_headers, s_rows)]
    atomic_write_text(out / "results.md", "".join(md))
    rel_report = "run/report"
    body = [f"<p>{html.escape(intro)}</p>", html_table(headers, rows),
            "".join(f"<figure><img src='{rel_report}/images/{n}'><figcaption>{html.escape(c)}</figcaption></figure>"
                    for n, c in plots),
            f"<p>Full report (per shot, per split, strips of segmentations, every setting): "
            f"<a href='{rel_report}/table5.html'>table5.html</a>, <a href='{rel_report}/table5.csv'>table5.csv</a>.</p>",
            "<h2>Flow on a real stereo pair</h2><p>scikit-image's <code>stereo_motorcycle</code>: disparity as "
            "horizontal flow, EPE over valid pixels, one call timed after a warm-up; never used for training or "
            "tuning.</p>", html_table(s_headers, s_rows),
            "".join(f"<figure><img src='images/{p}' width='185'><figcaption>{html.escape(c)}</figcaption></figure>"
                    for c, p in s_pics)]
    atomic_write_text(out / "index.html", html_page("Table 5 on generated data", "".join(body)))

    # The lead of demo_out/index.html: links are relative to the index, one folder up.
    here = out.name
    lead = (f"<h2>Table 5 on generated data</h2><p>{html.escape(intro)}</p>" + html_table(headers, rows)
            + "".join(f"<figure><img src='{here}/{rel_report}/images/{n}' width='360'>"
                      f"<figcaption>{html.escape(c)}</figcaption></figure>" for n, c in plots)
            + f"<p><a href='{here}/index.html'>Table 5 section</a> (flow on a real stereo pair too) · "
              f"<a href='{here}/{rel_report}/table5.html'>full report</a></p>")
    best = max((r for r in rows if r[0] != "exact"), key=lambda r: float(r[1]) if r[1] not in ("—", "") else -1,
               default=None)
    summary = (f"{len(methods)} flow methods through motion segmentation and action recognition on generated "
               f"FBMS/UCF101 data" + (f"; best computed F-measure: {best[0]} ({best[1]} %)." if best else "."))
    return DemoSection("Table 5: flow methods in motion segmentation and action recognition", "index.html",
                       summary, lead=lead)
