"""Demo section: flow stacks for a generated mini-UCF101."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path


from flownet2_core.demo import DemoSection, learned_method_note
from flownet2_core.reporting import html_page, html_table, markdown_table

__all__ = ["FALLBACK_METHOD", "stacks_demo"]


#: The classical method the stacks are extracted with when the learned one cannot run.
FALLBACK_METHOD = "dis"


def stacks_demo(out_dir: Path, method: str | None = None) -> DemoSection:
    """Write a mini-UCF101, extract its flow stacks, and show a few of them.

    ``method``: the flow method; ``None`` (what ``make demo`` runs) takes the default learned
    method (:func:`flownet2_core.methods.learned_demo_methods`) when its weights are there,
    else :data:`FALLBACK_METHOD`. The page says which ran and why."""
    from flownet2_core.io import write_image
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD, learned_demo_methods
    from flownet2_core.viz import flow_to_color

    from .ucf101 import collect_videos
    from .extract import ExtractConfig, extract
    from .mini_ucf101 import write_mini_ucf101
    from .rawframes import frame_name, read_flow_stack

    if method is None:
        learned = learned_demo_methods()
        method = learned[0] if learned else FALLBACK_METHOD
        why = (f"The demo's learned method. {learned_method_note()}" if learned else
               f"{learned_method_note()} The stacks use {FALLBACK_METHOD} instead.")
        note = " (learned)" if learned else f" (learned {DEFAULT_LEARNED_METHOD} not available)"
    else:
        why, note = "", ""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mini = write_mini_ucf101(out / "mini_ucf101", classes=("MoveLeft", "RotateClockwise", "Expand"),
                             num_groups=3, clips_per_group=1, num_frames=16, size=(120, 160))
    videos = collect_videos(str(mini.video_root), str(mini.split_dir), None)
    stacks = out / "stacks"
    summary = extract(videos, mini.video_root, stacks, ExtractConfig(method=method, short_side=None),
                      split_dir=mini.split_dir, progress=False)
    manifest = json.loads((stacks / "manifest.json").read_text())

    (out / "images").mkdir(exist_ok=True)
    rows_html = []
    for frame_dir in sorted(manifest["videos"])[::3]:
        folder = stacks / frame_dir
        cells = []
        for k in (1, 5, 9):
            flow = read_flow_stack(folder, k, 1)[0]
            name = f"images/{frame_dir.replace('/', '__')}_{k:02d}.png"
            write_image(out / name, flow_to_color(flow, max_flow=6.0))
            rel = os.path.relpath(folder, out)
            cells.append(
                f"<td><img src='{rel}/{frame_name('img_', k)}' width='160'><br>"
                f"<img src='{rel}/{frame_name('flow_x_', k)}' width='160'>"
                f"<img src='{rel}/{frame_name('flow_y_', k)}' width='160'><br>"
                f"<img src='{name}' width='160'><br><small>field {k}</small></td>")
        rows_html.append(f"<tr><th>{html.escape(frame_dir)}</th>{''.join(cells)}</tr>")

    lists = sorted(p.name for p in stacks.glob("ucf101_*.txt"))
    table = [["videos", manifest["num_videos"]], ["RGB frames", manifest["num_frames"]],
             ["flow fields", manifest["num_flows"]], ["failed videos", len(manifest["failures"])],
             ["flow fields / s", f"{summary.flows / max(summary.seconds, 1e-9):.1f}"]]
    body = (f"<p>A generated mini-UCF101 ({len(mini.classes)} motion-defined classes, official split "
            f"layout, CRLF split files, a case-mismatched class and a deliberately corrupt video) "
            f"extracted with <code>{method}</code> into the rawframes layout "
            f"(<code>img_/flow_x_/flow_y_%05d.jpg</code>, flow clipped to ±{manifest['bound']:g} px → 0..255).</p>"
            + f"<p>Flow method: <code>{html.escape(method)}</code>. {html.escape(why)}</p>"
            + html_table(["", ""], table)
            + "<p>Each cell: the frame, the stored <code>flow_x</code> and <code>flow_y</code> JPEGs, "
              "and the decoded flow colour-coded (one scale, 6 px).</p>"
            + f"<table>{''.join(rows_html)}</table>"
            + "<h2>Outputs</h2><ul>"
            + "<li><a href='stacks/manifest.json'>manifest.json</a>, "
              "<a href='stacks/failures.txt'>failures.txt</a></li>"
            + "".join(f"<li><a href='stacks/{n}'>{n}</a></li>" for n in lists) + "</ul>")
    page = out / "index.html"
    page.write_text(html_page("UCF101 flow stacks (mini-UCF101)", body))
    (out / "results.md").write_text(f"# Flow stacks\n\nFlow method: `{method}`. {why}\n\n"
                                    + markdown_table(["", ""], table))
    failure = manifest["failures"][0]["video"] if manifest["failures"] else "none"
    return DemoSection("UCF101 flow stacks on a generated mini-UCF101", "index.html",
                       f"{manifest['num_videos']} videos → {manifest['num_flows']} flow fields with {method}{note} "
                       f"in the rawframes layout with mmaction2 annotation lists; corrupt video reported: "
                       f"{failure}.")
