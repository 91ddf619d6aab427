"""'Monitor a metric', written once: used by early stopping and the best-model keeper."""
from __future__ import annotations

import math
from typing import Any


class Monitor:
    def __init__(self, metric: str, mode: str = "min", min_delta: float = 0.0) -> None:
        self.metric, self.mode, self.min_delta = metric, mode, min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None

    def check(self, record: dict[str, Any]) -> None:
        """Fail at the first epoch, naming the metrics that exist, rather than never firing."""
        if self.metric not in record:
            available = sorted(k for k in record if k != "epoch")
            raise KeyError(f"monitor: no metric '{self.metric}' in the history; available: {', '.join(available)}")

    def improved(self, record: dict[str, Any]) -> bool:
        """Update with this epoch's record; True when it is the best so far."""
        self.check(record)
        value = record[self.metric]
        if value is None or not math.isfinite(value):
            return False
        better = self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                       else value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch = value, record["epoch"]
        return better

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
