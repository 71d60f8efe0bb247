"""``python -m flownet2_core.ops``: which implementation serves each op, and why.

``make`` runs it after installing, so the resolved build shows in every log.
"""

import sys

from flownet2_core.ops import backend

for op, info in backend().items():
    line = f"{op:<13} {info['implementation']:<9} devices: {', '.join(info['devices']) or 'none'}"
    if info.get("reason"):
        line += f"  ({info['reason']})"
    print(line)
sys.exit(0)
