"""Optical-flow benchmarks: datasets in their published layouts, metrics, runner, reports.

Public API::

    from evaluations.benchmarks import (
        list_samples, load_sample, DATASETS,          # readers (datasets.py)
        frame_stats, stats_to_metrics, aggregate,      # metrics (metrics.py)
        run_benchmark, export_submission,              # runner (runner.py)
        render_report,                                 # report (report.py)
        write_mini_all,                                # miniature datasets (mini.py)
    )

CLI: ``flownet2 bench run|report|export|mini`` (:mod:`.commands`); demo
section :func:`.demo.bench_demo`.
"""

import importlib

# Lazy (PEP 562): `flownet2 --help` loads every command's module, and this
# package's modules pull in pandas; import them on first use instead.
_WHERE = {
    "DATASETS": "datasets", "Frame": "datasets", "Sample": "datasets", "list_samples": "datasets",
    "load_sample": "datasets", "load_motorcycle": "datasets",
    "aggregate": "metrics", "angular_error": "metrics", "fl_outliers": "metrics",
    "frame_stats": "metrics", "stats_to_metrics": "metrics",
    "write_mini_all": "mini", "render_report": "report",
    "export_submission": "runner", "load_results": "runner", "run_benchmark": "runner",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
