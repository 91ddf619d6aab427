"""Early stopping with look-ahead (the lecture): stop after `patience` epochs without improvement."""
from __future__ import annotations

from typing import Any

from trainwell.callbacks.base import Callback
from trainwell.callbacks.monitor import Monitor


class EarlyStopping(Callback):
    def __init__(self, monitor: str = "valid_error", patience: int = 5, mode: str = "min") -> None:
        self.monitor = Monitor(monitor, mode)
        self.patience = patience
        self.wait = 0

    def on_validation_end(self, trainer: Any) -> None:
        record = trainer.state.record
        if self.monitor.improved(record):
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.state.should_stop = True
            trainer.state.stop_reason = (f"early stopping: {self.monitor.metric} did not improve for "
                                         f"{self.patience} epochs (best {self.monitor.best:.4f} at epoch "
                                         f"{self.monitor.best_epoch})")

    def state_dict(self) -> dict[str, Any]:
        return {"wait": self.wait, **self.monitor.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = state["wait"]
        self.monitor.load(state)
