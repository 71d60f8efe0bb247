"""Full-size proofs of the motion segmentation (``make proof``).

1. the FBMS-59 evaluator port against the official MoSegEval v2.0 outputs (golden shots);
2. multicut (GAEC + Kernighan–Lin) against brute force on random graphs;
3. generated FBMS-layout sequences segmented with exact and computed flow;
4. tracking speed (200 frames at 640×480, sampling 8, < 30 s).

The proofs are library code in :mod:`flowapps.segmentation.proof`, which the tests run
reduced; this is the entry script (all proof and benchmark scripts live in ``evaluations/``)::

    .venv/bin/python -m evaluations.proof_segmentation -o proof_out/segmentation [--methods exact dis deepflow]

Writes ``report.md`` and ``proof.json`` in the output folder; exits 1 when a requirement fails.
"""

from __future__ import annotations

from flowapps.segmentation.proof import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
