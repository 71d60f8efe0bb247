"""Keep freed memory for reuse: page faults were a fifth of a FlowNet2 forward on the CPU.

PyTorch's CPU tensors come from ``malloc``. glibc serves every request above 32 MB with a
fresh ``mmap`` and returns it to the kernel on ``free``, so each forward pass of FlowNet2 at
1024×448 maps and zero-fills about 800 MB of activations again: ≈ 200,000 page faults, about
20 % of the pass on this machine (``docs/benchmarks.md``). :func:`reuse_freed_memory` tells
glibc to serve large requests from its heap and to keep freed memory there, so later passes
reuse the same pages (peak memory about the same; the process keeps it until exit).

The inference runner and the trainer call it when they run on the CPU (a FlowNetS training
step: 17 % faster). It is a no-op elsewhere (another C library, or ``FLOWNET2_KEEP_MEMORY=0``
in the environment). The cost: freed blocks are kept and reused as they fit, so a process
whose large allocations change size from call to call can hold more memory than its peak
(up to about twice in a synthetic worst case); repeated passes of one network settle at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
_done: bool | None = None


def reuse_freed_memory() -> bool:
    """Switch glibc's allocator to reuse freed memory (once per process); True if it did."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("FLOWNET2_KEEP_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to change
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # No mmap for large blocks (they come from the heap), and never hand freed heap back.
    _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))
    return _done
