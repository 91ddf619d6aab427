"""'Monitor a metric', written once: used by the trainer's best-epoch selection and by early stopping."""
from __future__ import annotations

import difflib
from typing import Any, Iterable

from trainwell.errors import UserError
from trainwell.history import better, finite, tiebreak_for


def require_metric(name: str, available: Iterable[str], what: str = "monitor") -> None:
    """Refuse a metric name that the history will not hold, naming the ones it will."""
    available = sorted(available)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        tip = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"{what}: no metric '{name}' in this run's records; {tip}available: {', '.join(available)}")


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

    def improved(self, record: dict[str, Any]) -> bool:
        """Update with this epoch's record; True when it is the best so far (history.better). A metric the
        record lacks fails, naming the ones it has (the trainer checks callbacks' monitors at fit start)."""
        require_metric(self.metric, (k for k in record if k != "epoch"))
        value = finite(record[self.metric])
        if value is None:
            return False
        tie = finite(record.get(self.tiebreak)) if self.tiebreak else None
        if not better(value, tie, self.best, self.best_tiebreak, self.mode, self.min_delta):
            return False
        self.best, self.best_epoch, self.best_tiebreak = value, record["epoch"], tie
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "best": self.best, "best_epoch": self.best_epoch,
                "best_tiebreak": self.best_tiebreak}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("metric", self.metric) != self.metric:
            # Never compare one metric's values with another's best (a changed --monitor on resume).
            raise UserError(f"monitor: the checkpoint tracked '{state['metric']}', this run monitors "
                            f"'{self.metric}'; resume with the same monitor or start a new run")
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_tiebreak = state.get("best_tiebreak")
