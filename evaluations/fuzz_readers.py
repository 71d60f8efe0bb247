"""``make proof``'s long fuzzing run: every reader's property-based test of
``tests/test_fuzz_readers.py`` with many more examples than ``make test`` gives it (40)::

    python -m evaluations.fuzz_readers --examples 2000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=2000, help="examples per reader (default 2000)")
    args = p.parse_args(argv)
    if args.examples < 1:
        p.error(f"--examples must be positive, got {args.examples}")
    import pytest

    os.environ["FUZZ_EXAMPLES"] = str(args.examples)
    tests = Path(__file__).resolve().parents[1] / "tests" / "test_fuzz_readers.py"
    return int(pytest.main(["-q", "-p", "no:cacheprovider", str(tests)]))


if __name__ == "__main__":
    sys.exit(main())
