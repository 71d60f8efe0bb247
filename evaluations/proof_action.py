"""Full-size proof of two-stream action recognition on a generated mini-UCF101 (``make proof``).

The claims (temporal stream ≥ 90 % on the motion classes with exact flow, above chance with
computed flow; spatial stream wins on the appearance classes; fusion at least as good as the
better stream; a torchrun run equal to one process) and the proof itself are library code in
:mod:`flowapps.action.proof`, which the demo and ``tests/action/test_action_proof.py``
(reduced settings) run too. This is the entry script; all proof and benchmark scripts live in
``evaluations/``. About 7 minutes on 2 CPU cores::

    .venv/bin/python -m evaluations.proof_action -o proof_out/action [--methods exact dis] [--no-ddp]

Prints the accuracy table and PASS/FAIL per claim, writes ``proof.md`` and ``proof.json`` with
``-o``; exits 1 when a claim fails.
"""

from __future__ import annotations

import sys

from flowapps.action.proof import get_args_parser, main

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
