"""Shared fixtures: the golden FBMS-59 evaluation cases (copied from the official program's runs)."""

import shutil
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "fbms_eval_cases"


@pytest.fixture(scope="session")
def golden_dir():
    """The golden cases, read-only."""
    return GOLDEN


@pytest.fixture
def golden(tmp_path, monkeypatch):
    """A private copy of the golden cases, made the working directory (the official programs
    resolve list entries against it)."""
    dst = tmp_path / "fbms_eval_cases"
    shutil.copytree(GOLDEN, dst)
    monkeypatch.chdir(dst)
    return dst
