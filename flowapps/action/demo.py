"""Demo section: spatial and temporal streams trained and tested on a generated mini-UCF101."""

from __future__ import annotations

import html
import shutil
from dataclasses import replace
from pathlib import Path

from flownet2_core.demo import DemoSection
from flownet2_core.reporting import html_page, html_table, markdown_table
from flownet2_core.io import atomic_write_text

from .proof import ProofSettings, check_claims, remove_data, results_table, run_proof

__all__ = ["action_demo", "render_demo", "demo_settings", "DEMO_SETTINGS"]

#: About 1.5 minutes on 2 CPU cores: the tests' reduced proof with dis flow, without DDP.
DEMO_SETTINGS = replace(ProofSettings.reduced(), ddp=False)


def demo_settings() -> ProofSettings:
    """What ``make demo`` runs: :data:`DEMO_SETTINGS` plus the default learned flow method
    (a third temporal stream) when its weights are in the package; decided at call time."""
    return DEMO_SETTINGS.with_learned_methods()


def _learned_note(methods) -> str:
    from flownet2_core.demo import learned_method_note
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD, learned_method_reason

    if DEFAULT_LEARNED_METHOD in methods:
        return learned_method_note()
    if learned_method_reason() is None:
        return f"The learned flow method {DEFAULT_LEARNED_METHOD} was not run in these settings."
    return learned_method_note()


def render_demo(out_dir: Path, work: Path, res: dict) -> DemoSection:
    """The section's page from :func:`~.proof.run_proof`'s results and work folder."""
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD, learned_method_reason

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    figs = []
    for family in ("motion", "appearance"):
        for stream in ("spatial", "temporal", "fused"):
            src = work / f"report_{family}" / f"confusion_split1_{stream}.png"
            if src.exists():
                dst = out / "images" / f"{family}_{stream}.png"
                shutil.copyfile(src, dst)
                figs.append((f"{family} classes, {stream}", f"images/{family}_{stream}.png"))
    headers = ["data", "stream", "flow", "top-1 %", "train clips/s"]
    rows = results_table(res)
    claims = check_claims(res)
    s = res["settings"]
    chance = res["chance"]
    intro = (f"A generated mini-UCF101 ({s['size'][1]}×{s['size'][0]} px, {s['num_frames']} frames, "
             f"{s['num_groups']} groups, split 1) in two families: 9 motion-defined classes (same look, "
             f"chance {100 * chance['motion']:.1f} %) and 4 appearance-defined classes (same motion, chance "
             f"{100 * chance['appearance']:.1f} %). Each stream is a tiny CNN on {s['crop']}×{s['crop']} crops "
             f"(temporal: L = {s['new_length']} flow fields, 2L channels, mean vector subtracted), tested with "
             f"{s['positions']} positions per video × 5 crops (motion; the classes are mirror pairs, so no "
             f"flips) or × 10 crops (appearance). Fusion: TSN's fixed temporal weight 0.6 (the published "
             f"protocol) and, beside it, a weight chosen on held-out training groups (our option). "
             f"Motion temporal streams with {', '.join(s['methods'])} flow. " + _learned_note(s["methods"]))
    claim_rows = [[("PASS" if ok else "FAIL"), c, n] for c, ok, n in claims]
    body = (f"<p>{html.escape(intro)}</p>" + html_table(headers, rows)
            + "<h2>Claims</h2>" + html_table(["", "claim", "measured"], claim_rows)
            + "<h2>Confusion matrices (split 1)</h2>"
            + "".join(f"<figure><img src='{rel}' width='420'><figcaption>{html.escape(label)}</figcaption></figure>"
                      for label, rel in figs)
            + "<p>Reports: <a href='work/report_motion/report.md'>motion</a>, "
              "<a href='work/report_appearance/report.md'>appearance</a>; runs (logs, models, per-video scores) "
              "under <code>work/</code>.</p>")
    atomic_write_text(out / "index.html", html_page("Two-stream action recognition (mini-UCF101)", body))
    atomic_write_text(out / "results.md", "# Two-stream action recognition on mini-UCF101\n\n" + intro + "\n\n"
                + markdown_table(headers, rows) + "\n" + markdown_table(["", "claim", "measured"], claim_rows))
    m = res["motion"]
    summary = (f"Motion classes: temporal {100 * m['temporal']['exact']['top1']:.0f} % with exact flow"
               + "".join(f", {100 * r['top1']:.0f} % with {k}{' (learned)' if k == DEFAULT_LEARNED_METHOD else ''}"
                         for k, r in m["temporal"].items() if k != "exact")
               + f", spatial {100 * m['spatial']['top1']:.0f} % (chance {100 * chance['motion']:.0f} %); "
               f"appearance classes: spatial {100 * res['appearance']['spatial']['top1']:.0f} %, temporal "
               f"{100 * res['appearance']['temporal']['top1']:.0f} %; fusion "
               f"{100 * m['fused']['exact']['top1']:.0f} % / {100 * res['appearance']['fused']['top1']:.0f} %. "
               f"{sum(ok for _, ok, _ in claims)}/{len(claims)} claims hold.")
    if DEFAULT_LEARNED_METHOD not in m["temporal"] and learned_method_reason() is not None:
        summary += f" Learned {DEFAULT_LEARNED_METHOD} not run (weights file absent)."
    return DemoSection("Two-stream action recognition on a generated mini-UCF101", "index.html", summary)


def action_demo(out_dir: Path, settings: ProofSettings | None = None) -> DemoSection:
    """Train and test spatial and temporal streams on generated data; show the accuracy table,
    the claims and the confusion matrices. ``settings``: ``None`` is :func:`demo_settings`
    (exact and dis flow, and the default learned method when its weights are there)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    res = run_proof(work, settings or demo_settings(), log=lambda m: print(f"[demo] {m.removeprefix('[proof] ')}"))
    remove_data(work)  # ~90 MB of generated videos and stacks; runs, scores and reports stay
    return render_demo(out, work, res)
