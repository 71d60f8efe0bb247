"""Demo section (``make demo`` / ``flownet2 demo``): motion segmentation of generated
FBMS-layout sequences with the exact flow, with ``dis`` and with the default learned method
(FlowNet2-sss trained here, when its weights are in the package), overlays, and the
evaluation table from the port of the official FBMS-59 evaluator."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flownet2_core.io import atomic_write_text

if TYPE_CHECKING:
    from flownet2_core.demo import DemoSection

__all__ = ["CLASSICAL_METHOD", "segmentation_demo"]


#: The classical method the demo always runs beside the exact flow.
CLASSICAL_METHOD = "dis"


def segmentation_demo(out_dir: Path, *, seeds=(0, 1, 2), methods: Sequence[str] | None = None,
                      num_frames: int = 20, size=(144, 192)) -> "DemoSection":
    """Segment a few generated sequences (exact flow and each of ``methods``), write overlays
    and the evaluation table under ``out_dir``; returns the section for the demo index.

    ``methods``: flow methods beside the exact flow; ``None`` (what ``make demo`` runs) is
    :data:`CLASSICAL_METHOD` and the default learned method when its weights are there
    (:func:`flownet2_core.methods.learned_demo_methods`)."""
    from flownet2_core.demo import DemoSection, learned_method_note
    from flownet2_core.reporting import html_page, html_table, markdown_table
    from flownet2_core.io import read_image, write_image
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD, learned_demo_methods

    from .colors import palette
    from .fbms import read_gt_frame, read_shot_list, write_shot_list, write_track_list
    from .moseg_eval import evaluate_all
    from .pipeline import segment_sequence
    from .synthetic import write_synthetic_fbms_set

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    seqs = write_synthetic_fbms_set(out / "data", seeds, num_frames=num_frames, size=size, progress=False)
    write_shot_list(out / "shots.txt", [os.path.join("data", q) for q in read_shot_list(out / "data" / "shots.txt")])
    if methods is None:
        learned = learned_demo_methods()
        methods = [CLASSICAL_METHOD, *learned]
        note = learned_method_note()
    else:
        note = ""
    computed = [m for m in dict.fromkeys(methods) if m != "exact"]
    methods = ["exact", *computed]
    rows, figures, overall = [], {}, {}
    for m in methods:
        tracks = []
        for s in seqs:
            r = segment_sequence(s, out / "results" / m / s.name, m, progress=False)
            e = r.evaluation
            rows.append([s.name, m, r.num_trajectories, r.num_clusters, f"{float(e.density):.2f}",
                         f"{float(e.precision):.3f}", f"{float(e.recall):.3f}", f"{float(e.f_measure):.3f}",
                         f"{e.extracted_objects} of {e.visible_objects}"])
            tracks.append(os.path.relpath(r.track_file, out))
            for t in (0, num_frames // 2, num_frames - 1):
                rel = f"results/{m}/{s.name}/overlays/{s.frames[t].stem}.jpg"
                figures.setdefault((s.name, t), []).append((f"{m}", rel))
        write_track_list(out / f"tracks_{m}.txt", tracks)
        cwd = os.getcwd()
        os.chdir(out)
        try:
            overall[m] = evaluate_all("shots.txt", "all", f"tracks_{m}.txt", 0.75, write_numbers=True)
        finally:
            os.chdir(cwd)
    # Ground-truth pictures beside the overlays.
    for s in seqs:
        d = s.definition
        for i, f in enumerate(d.labelled_frames):
            if (s.name, f) not in figures:
                continue
            codes, _ = read_gt_frame(d, i)
            regions = d.color_to_region(codes)
            frame = read_image(s.frames[f])
            gt = (0.5 * frame + 0.5 * palette(d.num_regions)[regions]).astype("uint8")
            rel = f"images/{s.name}_{f:04d}_gt.jpg"
            write_image(out / rel, gt)
            figures[(s.name, f)].insert(0, ("ground truth", rel))

    headers = ["sequence", "flow", "trajectories", "clusters", "density %", "P", "R", "F", "objects extracted"]
    sum_rows = [[m, f"{float(a.density):.2f}", f"{float(a.precision):.3f}", f"{float(a.recall):.3f}",
                 f"{float(a.f_measure):.3f}", f"{a.extracted_objects} of {a.visible_objects}"] for m, a in overall.items()]
    sum_headers = ["flow", "density %", "P", "R", "F", "objects extracted (F > 0.75)"]
    seconds = time.perf_counter() - t_start
    intro = (f"{len(seqs)} generated sequences in the FBMS-59 layout ({size[1]}×{size[0]}, {num_frames} frames, "
             f"2–4 objects moving differently from a panning background), segmented by point trajectories "
             f"(sampling 8) and a minimum cost multicut, with the exact flow and with "
             f"{' and '.join(f'`{m}`' for m in computed) or 'no other'} flow. Scores "
             f"from the port of the official FBMS-59 evaluator (MoSegEval v2.0; it reproduces the official "
             f"program's output files byte for byte on the golden shots), computed on the sparse trajectory "
             "labels of the Tracks*.dat files (the dense label maps and overlays are only pictures). "
             f"{seconds:.0f} s on "
             f"{os.cpu_count()} cores." + (f" {note}" if note else ""))
    md = ["# Motion segmentation on generated FBMS-layout sequences\n\n", intro, "\n\n## All shots\n\n",
          markdown_table(sum_headers, sum_rows), "\n## Per sequence\n\n", markdown_table(headers, rows)]
    atomic_write_text(out / "results.md", "".join(md))
    body = [f"<p>{html.escape(intro)}</p><h2>All shots</h2>", html_table(sum_headers, sum_rows),
            "<h2>Per sequence</h2>", html_table(headers, rows),
            "<h2>Overlays</h2><p>Colours are the official evaluator's cluster colours; dots are trajectory "
            "points, white lines the segment borders of the dense label maps.</p>"]
    for (name, t), figs in sorted(figures.items()):
        cells = "".join(f"<figure><img src='{html.escape(rel)}' width='{size[1]}'><figcaption>"
                        f"{html.escape(label)}</figcaption></figure>" for label, rel in figs)
        body.append(f"<h3>{html.escape(name)}, frame {t}</h3>{cells}")
    body.append("<p>Data: <code>data/</code> (FBMS layout with ground truth and exact flow); results: "
                "<code>results/&lt;flow&gt;/&lt;sequence&gt;/</code> (Tracks*.dat, label maps, overlays, "
                "Numbers files); table: <a href='results.md'>results.md</a>.</p>")
    atomic_write_text(out / "index.html", html_page("Motion segmentation (FBMS-59 layout)", "".join(body)))
    ex = overall["exact"]
    summary = (f"Trajectories + multicut on {len(seqs)} generated FBMS-layout sequences: F {float(ex.f_measure):.3f} "
               f"with exact flow ({ex.extracted_objects} of {ex.visible_objects} objects extracted)"
               + "".join(f", F {float(overall[m].f_measure):.3f} with {m}"
                         f"{' (learned)' if m == DEFAULT_LEARNED_METHOD else ''} "
                         f"({overall[m].extracted_objects} of {overall[m].visible_objects})" for m in computed)
               + ".")
    if note and DEFAULT_LEARNED_METHOD not in computed:
        summary += f" Learned {DEFAULT_LEARNED_METHOD} not run (weights file absent)."
    return DemoSection("Motion segmentation (trajectories, multicut, FBMS-59 evaluation)", "index.html", summary)
