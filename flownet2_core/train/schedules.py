"""The paper's learning-rate schedules (SPEC §5) and the optimiser they go with.

Iterations are optimiser steps. ``S_short``: lr 1e-4, halved at 300k, 400k,
500k, stop at 600k; ``S_long``: 1e-4, halved at 400k, 600k, 800k, 1M, stop
1.2M; ``S_fine`` (after S_long): 1e-5, halved at 200k, 300k, 400k, 500k, stop
600k. Adam with β = (0.9, 0.999) and weight decay 4e-4.

``scaled(schedule, f)`` multiplies every milestone and the stop by ``f`` (at
least one iteration each), so a short run keeps the schedule's shape:
``S_long`` at ``f = 0.001`` halves at 400, 600, 800, 1000 and stops at 1200.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch

__all__ = ["SCHEDULES", "Schedule", "make_optimizer", "make_scheduler", "scaled"]

ADAM_BETAS = (0.9, 0.999)
WEIGHT_DECAY = 4e-4


@dataclass(frozen=True)
class Schedule:
    """A multi-step schedule: ``lr`` times ``gamma`` at each milestone; ``stop`` iterations."""

    name: str
    lr: float
    milestones: tuple[int, ...]
    stop: int
    gamma: float = 0.5

    def lr_at(self, iteration: int) -> float:
        """Learning rate used for the step that starts at ``iteration`` (0-based)."""
        return self.lr * self.gamma ** sum(iteration >= m for m in self.milestones)


SCHEDULES: dict[str, Schedule] = {
    "short": Schedule("S_short", 1e-4, (300_000, 400_000, 500_000), 600_000),
    "long": Schedule("S_long", 1e-4, (400_000, 600_000, 800_000, 1_000_000), 1_200_000),
    "fine": Schedule("S_fine", 1e-5, (200_000, 300_000, 400_000, 500_000), 600_000),
}


def scaled(schedule: Schedule | str, factor: float) -> Schedule:
    """``schedule`` with every milestone and the stop multiplied by ``factor`` (≥ 1 iteration)."""
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
        schedule = SCHEDULES[schedule]
    if not factor > 0:
        raise ValueError(f"scale must be positive, got {factor}")
    if factor == 1:
        return schedule
    ms = tuple(max(1, round(m * factor)) for m in schedule.milestones)
    stop = max(1, round(schedule.stop * factor))
    return replace(schedule, name=f"{schedule.name}×{factor:g}", milestones=ms, stop=stop)


def make_optimizer(params: Iterable[torch.nn.Parameter], schedule: Schedule) -> torch.optim.Adam:
    """Adam with the paper's β and weight decay, at the schedule's initial rate."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    return torch.optim.Adam(params, lr=schedule.lr, betas=ADAM_BETAS, weight_decay=WEIGHT_DECAY)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule
                   ) -> torch.optim.lr_scheduler.MultiStepLR:
    """``MultiStepLR`` stepping once per iteration."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(schedule.milestones), schedule.gamma)
