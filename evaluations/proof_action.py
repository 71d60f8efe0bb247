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

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from flowapps.action.proof import ProofSettings, check_claims, remove_data, results_table, run_proof
from flownet2_core.reporting import markdown_table

__all__ = ["get_args_parser", "main"]


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", help="flow methods for the motion temporal stream "
                   f"(default: {' '.join(ProofSettings.methods)}; exact is always run)")
    p.add_argument("--positions", type=int, help=f"test positions per video (default {ProofSettings.positions})")
    p.add_argument("--no-ddp", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reduced", action="store_true", help="the tests' reduced settings")
    p.add_argument("-o", "--output", help="keep the results here (default: a temporary folder, removed)")
    p.add_argument("--keep-data", action="store_true",
                   help="with -o: keep the generated videos and flow stacks too (about 120 MB)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    s = ProofSettings.reduced() if args.reduced else ProofSettings()
    if args.methods:
        s = replace(s, methods=("exact", *[m for m in args.methods if m != "exact"]))
    if args.positions:
        s = replace(s, positions=args.positions)
    s = replace(s, ddp=not args.no_ddp, seed=args.seed, threads=args.threads)
    work = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="proof_action_"))
    try:
        res = run_proof(work, s)
        print(markdown_table(["data", "stream", "flow", "top-1 %", "train clips/s"], results_table(res)))
        claims = check_claims(res)
        for claim, ok, numbers in claims:
            print(f"{'PASS' if ok else 'FAIL'}  {claim}: {numbers}")
        ok = all(c[1] for c in claims)
        (work / "proof.json").write_text(json.dumps({"results": res, "claims": claims, "pass": ok}, indent=1))
        (work / "proof.md").write_text(
            "# Two-stream proof on generated data\n\n"
            + markdown_table(["data", "stream", "flow", "top-1 %", "train clips/s"], results_table(res)) + "\n"
            + markdown_table(["", "claim", "measured"], [["PASS" if c[1] else "FAIL", c[0], c[2]] for c in claims]))
        print(f"action proof: {'PASS' if ok else 'FAIL'} ({res['seconds']:.0f} s)")
        return 0 if ok else 1
    finally:
        if not args.output:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep_data:
            remove_data(work)



if __name__ == "__main__":
    sys.exit(main())
