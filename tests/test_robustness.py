"""Every bad input of ``docs/robustness.md`` (``evaluations.robustness.CASES``): refused with exit
1 or 2, a last stderr line naming the culprit, no traceback, every input unchanged; and the
document lists exactly these cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluations.robustness import CASES, last_line, make_inputs, run_case, snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    d = make_inputs(tmp_path_factory.mktemp("robust") / "in")
    yield d, snapshot(d)
    torch.set_num_threads(threads)


def test_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({(c.argv) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_bad_input_is_refused_in_one_line(inputs, case):
    d, before = inputs
    status, err = run_case(case, d)
    line = last_line(err)
    assert status in (1, 2), (status, err)
    assert "Traceback" not in err, err
    assert line.startswith("flownet2") and "error" in line, err
    for text in case.must:
        assert text in line, (text, line)
    after = snapshot(d)
    assert {k: after.get(k) for k in before} == before, "an input file changed"


def test_document_lists_every_case():
    doc = (ROOT / "docs" / "robustness.md").read_text()
    rows = [ln for ln in doc.splitlines() if ln.startswith("| ") and not ln.startswith("| #")]
    assert len(rows) == len(CASES)
    for row, case in zip(rows, CASES):
        assert f"| {case.what} |" in row, (row, case.what)
