"""Demo section: the OpenCV methods on the miniature benchmark sets (and the
real scikit-image stereo pair when scikit-image is installed).

Registered as a ``flownet2.demos`` entry point (``40-benchmarks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flownet2_core.demo import DemoSection

__all__ = ["DEMO_METHODS", "bench_demo"]

DEMO_METHODS = ("dis", "farneback", "pcaflow", "deepflow", "tvl1")


def _have_skimage() -> bool:
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True


def bench_demo(out_dir, *, methods: Sequence[str] = DEMO_METHODS, size: tuple[int, int] = (96, 128),
               motorcycle: bool | None = None, log=None) -> DemoSection:
    """Generate the miniature sets, run ``methods`` on each, render the report.

    ``motorcycle``: include the real stereo pair (None: when scikit-image is
    installed). Writes ``out_dir/data`` (datasets), ``out_dir/results`` and
    ``out_dir/report/report.html``.
    """
    from flownet2_core.data.mini import write_mini_all

    from .report import render_report
    from .runner import run_benchmark

    out = Path(out_dir)
    roots = write_mini_all(out / "data", size=size)
    results = out / "results"
    for name, root in roots.items():
        run_benchmark(name, root, list(methods), results, warmup=1, log=log)
    use_real = _have_skimage() if motorcycle is None else motorcycle
    if use_real:
        run_benchmark("motorcycle-small", None, list(methods), results, warmup=0, log=log)
    render_report(results, out / "report", title="Flow benchmarks on miniature sets")
    real = "and scikit-image's real stereo pair (motorcycle, downscaled 4×)" if use_real else \
        "(scikit-image not installed: the real stereo pair is skipped)"
    return DemoSection(
        title="Benchmarks: Sintel/KITTI/Middlebury/Chairs/HD1K layouts",
        page="report/report.html",
        summary=f"{', '.join(methods)} on generated miniature datasets in each benchmark's exact "
                f"layout {real}: Table 4-style table, EPE vs runtime, per-sequence breakdown, galleries.",
    )
