"""``python -m flownet2_core.ops``: which implementation serves each op, and why.

One line per op (implementation, devices whose tensors use the compiled
kernels), then the tensors that use the pure-PyTorch twin instead, one
indented line each. ``make`` runs it after installing, so the resolved build
shows in every log.
"""

import sys

from flownet2_core.ops import backend

for op, info in backend().items():
    print(f"{op:<13} {info['implementation']:<9} devices: {', '.join(info['devices']) or 'none'}")
    for note in info["notes"]:
        print(f"    {note}")
sys.exit(0)
