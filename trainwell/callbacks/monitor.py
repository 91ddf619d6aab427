"""'Monitor a metric', written once: used by the trainer's best-epoch selection and by early stopping."""
from __future__ import annotations

import difflib
import math
from typing import Any, Iterable

from trainwell.errors import UserError


def check_metric(name: str, available: Iterable[str], what: str = "monitor") -> None:
    """Refuse a metric name that the history will not hold, naming the ones it will."""
    available = sorted(available)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        tip = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"{what}: no metric '{name}' in this run's records; {tip}available: {', '.join(available)}")


def tiebreak_for(metric: str) -> str | None:
    """An error rate ties often on a small validation set (12 iris flowers: steps of 8%); among tied
    epochs the one with the lower loss of the same split is the better model, not the earliest."""
    split, _, kind = metric.partition("_")
    return f"{split}_loss" if kind.endswith("error") else None


class Monitor:
    """The best value of one metric over epochs; error metrics break ties with their split's loss.

    >>> m = Monitor("valid_error"); m.improved({"epoch": 1, "valid_error": 0.1, "valid_loss": 0.5})
    True
    >>> m.improved({"epoch": 2, "valid_error": 0.1, "valid_loss": 0.4}), m.best_epoch
    (True, 2)
    """

    def __init__(self, metric: str, mode: str = "min", min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: '{mode}' must be 'min' or 'max'")
        self.metric, self.mode, self.min_delta = metric, mode, min_delta
        self.tiebreak = tiebreak_for(metric) if mode == "min" else None
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_tiebreak: float | None = None

    def check(self, record: dict[str, Any]) -> None:
        """Fail at the first epoch, naming the metrics that exist, rather than never firing."""
        check_metric(self.metric, (k for k in record if k != "epoch"))

    def improved(self, record: dict[str, Any]) -> bool:
        """Update with this epoch's record; True when it is the best so far."""
        self.check(record)
        value = record[self.metric]
        if value is None or not math.isfinite(value):
            return False
        tie = record.get(self.tiebreak) if self.tiebreak else None
        tie = tie if isinstance(tie, (int, float)) and math.isfinite(tie) else None
        better = self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                       else value > self.best + self.min_delta)
        if not better and value == self.best and tie is not None:
            better = self.best_tiebreak is None or tie < self.best_tiebreak
        if better:
            self.best, self.best_epoch, self.best_tiebreak = value, record["epoch"], tie
        return better

    def state(self) -> dict[str, Any]:
        return {"metric": self.metric, "best": self.best, "best_epoch": self.best_epoch,
                "best_tiebreak": self.best_tiebreak}

    def load(self, state: dict[str, Any]) -> None:
        if state.get("metric", self.metric) != self.metric:
            # Never compare one metric's values with another's best (a changed --monitor on resume).
            raise UserError(f"monitor: the checkpoint tracked '{state['metric']}', this run monitors "
                            f"'{self.metric}'; resume with the same monitor or start a new run")
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_tiebreak = state.get("best_tiebreak")
