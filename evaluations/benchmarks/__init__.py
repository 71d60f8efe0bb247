"""Optical-flow benchmarks: metrics, runner, reports over the core's dataset readers.

Public API::

    from evaluations.benchmarks import (
        list_samples, load_sample, DATASETS,          # readers (flownet2_core.data.datasets)
        frame_stats, stats_to_metrics, aggregate,      # metrics (metrics.py)
        run_benchmark, export_submission,              # runner (runner.py)
        render_report,                                 # report (report.py)
        write_mini_all,                                # miniature datasets (flownet2_core.data.mini)
    )

``DATASETS`` here is the benchmark list
(:data:`flownet2_core.data.names.BENCHMARK_DATASETS`); the readers and the
miniature writers live in :mod:`flownet2_core.data`, shared with training.

CLI: ``flownet2 bench run|report|export|mini`` (:mod:`.commands`); demo
section :func:`.demo.bench_demo`.
"""

import importlib

# Lazy (PEP 562): `flownet2 --help` loads every command's module, and this
# package's modules pull in pandas; import them on first use instead.
_DATA = "flownet2_core.data"
_WHERE = {  # name: (module, attribute there)
    "DATASETS": (f"{_DATA}.names", "BENCHMARK_DATASETS"),
    "Frame": (f"{_DATA}.datasets", "Frame"), "Sample": (f"{_DATA}.datasets", "Sample"),
    "list_samples": (f"{_DATA}.datasets", "list_samples"),
    "load_sample": (f"{_DATA}.datasets", "load_sample"),
    "load_motorcycle": (f"{_DATA}.datasets", "load_motorcycle"),
    "write_mini_all": (f"{_DATA}.mini", "write_mini_all"),
    "aggregate": (".metrics", "aggregate"), "angular_error": (".metrics", "angular_error"),
    "fl_outliers": (".metrics", "fl_outliers"), "frame_stats": (".metrics", "frame_stats"),
    "stats_to_metrics": (".metrics", "stats_to_metrics"),
    "render_report": (".report", "render_report"),
    "export_submission": (".runner", "export_submission"), "load_results": (".runner", "load_results"),
    "run_benchmark": (".runner", "run_benchmark"),
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        module, attr = _WHERE[name]
        return getattr(importlib.import_module(module, __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
