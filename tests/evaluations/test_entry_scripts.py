"""Every benchmark and proof entry script lives in ``evaluations/``: the ``make bench`` and
``make proof`` targets run only ``evaluations.*`` modules, and each of them exists and answers
``--help`` (argument parsing only: nothing is measured or trained)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _target_modules(target: str) -> list[str]:
    """The ``-m`` modules a Makefile target's recipe runs."""
    modules, inside = [], False
    for line in (ROOT / "Makefile").read_text().splitlines():
        if re.match(r"^[A-Za-z_.-]+:", line):
            inside = line.startswith(f"{target}:")
            continue
        if inside and line.startswith("\t"):
            modules += re.findall(r"\s-m\s+([\w.]+)", line)
    return modules


@pytest.mark.parametrize("target", ["bench", "proof"])
def test_make_targets_run_only_evaluations_scripts(target):
    modules = _target_modules(target)
    assert modules, f"no `-m module` found in the Makefile's {target} target"
    outside = [m for m in modules if not m.startswith("evaluations.")]
    assert not outside, f"make {target} runs scripts outside evaluations/: {outside}"
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    assert not missing, f"make {target} names modules that do not exist: {missing}"


@pytest.mark.parametrize("module", ["evaluations.proof_action", "evaluations.proof_segmentation"])
def test_proof_scripts_parse_arguments(module):
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout
