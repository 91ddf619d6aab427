"""Early stopping with look-ahead (the lecture): stop after `patience` epochs without improvement."""
from __future__ import annotations

from typing import Any

from trainwell.callbacks.base import Callback
from trainwell.callbacks.monitor import Monitor


class EarlyStopping(Callback):
    """Stop when the monitored metric has not improved for `patience` epochs.

    With no `monitor`, it follows the trainer's own selection (the `--monitor` metric): it stops when the
    best epoch lies `patience` epochs back, so selection and stopping can never disagree. With a metric
    name, it keeps its own Monitor. Either way it reads the epoch's final record, at on_epoch_end.

    >>> trainwell.train(data="digits", callbacks=[EarlyStopping(patience=3)])   # doctest: +SKIP
    """

    def __init__(self, patience: int = 5, monitor: str | None = None, mode: str = "min") -> None:
        self.patience = patience
        self.monitor = Monitor(monitor, mode) if monitor else None

    def on_epoch_end(self, trainer: Any) -> None:
        state = trainer.state
        if self.monitor is None:
            metric, best, best_epoch = trainer.selection.metric, trainer.selection.best, state.best_epoch
        else:
            self.monitor.improved(trainer.history[-1])
            metric, best, best_epoch = self.monitor.metric, self.monitor.best, self.monitor.best_epoch
        waited = state.epoch - (best_epoch or 0)
        if waited >= self.patience:
            shown = "none" if best is None else f"{best:.4f}"
            trainer.stop(f"early stopping: {metric} did not improve for {self.patience} epochs "
                         f"(best {shown} at epoch {best_epoch})")

    def state_dict(self) -> dict[str, Any] | None:
        return self.monitor.state_dict() if self.monitor else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.monitor is not None:
            self.monitor.load_state_dict(state)
