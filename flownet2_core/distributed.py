"""One place that joins (and leaves) a ``torchrun`` process group: FlowNet
training, flow-stack extraction and action-recognition training all start here.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; a plain
``python`` start sets none and runs as the only process, and then torch is
not even imported here.
"""

from __future__ import annotations

import datetime
import os

__all__ = ["Dist", "join_process_group", "leave_process_group"]


class Dist:
    """Where this process stands: ``rank``, ``world``, ``local_rank``, and
    whether a process group is initialised (``active``)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, active: bool = False):
        self.rank, self.world, self.local_rank, self.active = rank, world, local_rank, active

    @property
    def main(self) -> bool:
        """True on the process that writes shared files (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (nothing when running alone)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def __repr__(self) -> str:
        return f"Dist(rank={self.rank}, world={self.world}, local_rank={self.local_rank})"


def join_process_group(backend: str | None = None, timeout: datetime.timedelta | None = None) -> Dist:
    """Initialise the process group once when started by ``torchrun`` (``WORLD_SIZE > 1``).

    ``backend``: NCCL when CUDA is available, else gloo (CPU processes).
    ``timeout``: how long collectives wait for the slowest rank (torch's default if None).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        kwargs = {"timeout": timeout} if timeout is not None else {}
        dist.init_process_group(backend, **kwargs)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, True)


def leave_process_group() -> None:
    """Destroy the process group if one is initialised (a command's last step under
    ``torchrun``, so NCCL/gloo shut down cleanly); nothing otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
