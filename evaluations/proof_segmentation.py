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

import argparse
import json
from pathlib import Path

from flowapps.segmentation.proof import (find_golden_cases, golden_comparison, multicut_proof,
                                         proof_report, synthetic_proof, tracking_speed)
from flownet2_core.io import atomic_write_text

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="proof_out/segmentation", help="output folder")
    p.add_argument("--methods", nargs="+", default=["exact", "dis", "deepflow"], help="flow methods for part 3")
    p.add_argument("--sequences", type=int, default=10, help="generated sequences (seeds 0..N-1)")
    p.add_argument("--graphs", type=int, default=1000, help="random graphs for the multicut proof")
    p.add_argument("--golden", help="golden-case folder (default: the tests' copy)")
    p.add_argument("--skip", nargs="*", default=[], choices=("golden", "multicut", "synthetic", "tracking"))
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    res, ok = {}, True
    if "golden" not in args.skip:
        folder = Path(args.golden) if args.golden else find_golden_cases()
        if folder is None:
            print("golden cases not found; skipped")
        else:
            res["golden"] = golden_comparison(folder)
            ok &= res["golden"]["ok"]
            print(f"[1] evaluator vs official: {'all identical' if res['golden']['ok'] else 'MISMATCH'}", flush=True)
    if "multicut" not in args.skip:
        res["multicut"] = m = multicut_proof(args.graphs, progress=not args.quiet)
        ok &= m["ok"]
        print(f"[2] multicut: GAEC+KLj optimal on {m['klj_percent']:.1f} % of {m['graphs']} graphs "
              f"(GAEC {m['gaec_percent']:.1f} %), invalid cuts {m['invalid']}", flush=True)
    if "synthetic" not in args.skip:
        res["synthetic"] = s = synthetic_proof(out / "synthetic", range(args.sequences), args.methods,
                                               progress=not args.quiet)
        for method, r in s.items():
            if "skipped" in r:
                print(f"[3] {method}: {r['skipped']}")
                continue
            print(f"[3] {method}: every object extracted on {r['all_objects_extracted']} of {r['sequences']} "
                  f"sequences; F {r['overall']['f_measure']:.4f}", flush=True)
        if "exact" in s and "skipped" not in s["exact"]:
            ok &= s["exact"]["all_objects_extracted"] >= 0.9 * s["exact"]["sequences"]
    if "tracking" not in args.skip:
        res["tracking"] = t = tracking_speed(workdir=out / "tracking_clip", progress=not args.quiet)
        ok &= t["ok"]
        print(f"[4] tracking 200×640×480 at sampling 8: {t['seconds']:.1f} s", flush=True)
    res["ok"] = bool(ok)
    atomic_write_text(out / "proof.json", json.dumps(res, indent=1, default=float) + "\n")
    atomic_write_text(out / "report.md", proof_report(res))
    print(f"report: {out / 'report.md'}; {'all requirements met' if ok else 'A REQUIREMENT FAILED'}")
    return 0 if ok else 1

if __name__ == "__main__":
    raise SystemExit(main())
