"""Learning-rate schedules the trainer implements itself (torch's cover "step" and
"exponential")."""
from __future__ import annotations

from typing import Mapping

import torch


class _Plateau:
    """Keras-style ReduceLROnPlateau: LR × ``factor`` once ``patience`` epochs in a row bring no
    improvement, then the count restarts. Improvement is decided by the trainer so that the best
    checkpoint, this schedule and early stopping agree. (torch's ReduceLROnPlateau waits for
    ``patience + 1`` bad epochs; the papers used Keras.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float, patience: int, min_lr: float):
        self.optimizer, self.factor, self.patience, self.min_lr = optimizer, factor, patience, min_lr
        self.wait = 0

    def step(self, improved: bool) -> None:
        if improved:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.wait = 0

    def state_dict(self) -> dict:
        return {"wait": self.wait}

    def load_state_dict(self, state: Mapping) -> None:
        self.wait = int(state["wait"])
