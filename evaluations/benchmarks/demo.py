"""Demo section: the OpenCV methods and the default learned method (FlowNet2-ss trained
here, when its weights are in the package) on the miniature benchmark sets (and the
real scikit-image stereo pair when scikit-image is installed).

Registered as a ``flownet2.demos`` entry point (``40-benchmarks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flownet2_core.demo import DemoSection

__all__ = ["DEMO_METHODS", "bench_demo", "demo_methods"]

#: The classical methods the demo always runs.
DEMO_METHODS = ("dis", "farneback", "pcaflow", "deepflow", "tvl1")


def demo_methods() -> tuple[str, ...]:
    """What ``make demo`` runs: the default learned method first when its weights are there
    (:func:`flownet2_core.methods.learned_demo_methods`), then :data:`DEMO_METHODS`."""
    from flownet2_core.methods import learned_demo_methods

    learned = tuple(learned_demo_methods())
    return learned + tuple(m for m in DEMO_METHODS if m not in learned)


def _have_skimage() -> bool:
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True


def bench_demo(out_dir, *, methods: Sequence[str] | None = None, size: tuple[int, int] = (96, 128),
               motorcycle: bool | None = None, log=None) -> DemoSection:
    """Generate the miniature sets, run ``methods`` on each, render the report.

    ``methods``: ``None`` (what ``make demo`` runs) is :func:`demo_methods`.
    ``motorcycle``: include the real stereo pair (None: when scikit-image is
    installed). Writes ``out_dir/data`` (datasets), ``out_dir/results`` and
    ``out_dir/report/report.html``.
    """
    from flownet2_core.data.mini import write_mini_all
    from flownet2_core.demo import learned_method_note
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD

    default = methods is None
    methods = list(demo_methods() if default else methods)

    from .report import render_report
    from .runner import run_benchmark

    out = Path(out_dir)
    roots = write_mini_all(out / "data", size=size)
    results = out / "results"
    for name, root in roots.items():
        run_benchmark(name, root, methods, results, warmup=1, log=log)
    use_real = _have_skimage() if motorcycle is None else motorcycle
    if use_real:
        run_benchmark("motorcycle-small", None, methods, results, warmup=0, log=log)
    title = "Flow benchmarks on miniature sets"
    if DEFAULT_LEARNED_METHOD in methods:
        title += f" (with the learned {DEFAULT_LEARNED_METHOD})"
    elif default:
        title += f" (learned {DEFAULT_LEARNED_METHOD} not run: its weights file is absent)"
    render_report(results, out / "report", title=title)
    real = "and scikit-image's real stereo pair (motorcycle, downscaled 4×)" if use_real else \
        "(scikit-image not installed: the real stereo pair is skipped)"
    names = [f"{m} (learned)" if m == DEFAULT_LEARNED_METHOD else m for m in methods]
    summary = (f"{', '.join(names)} on generated miniature datasets in each benchmark's exact "
               f"layout {real}: Table 4-style table, EPE vs runtime, per-sequence breakdown, galleries.")
    if default and DEFAULT_LEARNED_METHOD not in methods:
        summary += f" {learned_method_note()}"
    return DemoSection(
        title="Benchmarks: Sintel/KITTI/Middlebury/Chairs/HD1K layouts",
        page="report/report.html",
        summary=summary,
    )
