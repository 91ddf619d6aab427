"""`--tensorboard DIR`: the run's scalars and histograms as TensorBoard event files, for users who live there.

Per epoch: every number of the history record (losses, errors, learning rate, speed) under `epoch/`, and a
histogram of each weight layer's weights and gradients. The layer monitors' records (norms, update ratios,
hidden-unit statistics), when on, under `layers/` and `units/` at their steps. TensorBoard is an optional
extra, imported only when asked for.
"""
from __future__ import annotations

import math
from typing import Any

from trainwell.callbacks.base import Callback
from trainwell.callbacks.layers import WEIGHTED
from trainwell.errors import UserError


def require() -> None:
    """One line, before anything runs, when the optional package is missing."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package: pip install 'trainwell[tensorboard]' "
                        "(or pip install tensorboard)") from None


def summary_writer(log_dir: str) -> Any:
    require()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)


class TensorBoard(Callback):
    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.writer: Any = None
        self._monitors_seen = 0

    def on_fit_start(self, trainer: Any) -> None:
        if self.writer is None:
            self.writer = summary_writer(self.log_dir)

    def on_epoch_end(self, trainer: Any) -> None:
        record = trainer.history[-1]
        epoch = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"epoch/{key}", value, epoch)

        for name, m in trainer.model.named_modules():
            if isinstance(m, WEIGHTED):
                self.writer.add_histogram(f"weights/{name}", m.weight.detach().float().cpu(), epoch)
                if m.weight.grad is not None:
                    self.writer.add_histogram(f"gradients/{name}", m.weight.grad.detach().float().cpu(), epoch)
        self._monitor_records(trainer)
        self.writer.flush()

    def _monitor_records(self, trainer: Any) -> None:
        monitor = next((cb for cb in trainer.callbacks if type(cb).__name__ == "LayerMonitor"), None)
        if monitor is None:
            return
        for rec in monitor.records[self._monitors_seen:]:
            for group in ("layers", "units"):
                for layer, stats in rec.get(group, {}).items():
                    for key, value in stats.items():
                        if isinstance(value, (int, float)) and math.isfinite(value):
                            self.writer.add_scalar(f"{group}/{key}/{layer}", value, rec["step"])
        self._monitors_seen = len(monitor.records)

    def state_dict(self) -> dict[str, Any]:  # a resume or rollback logs each monitor record once
        return {"monitors_seen": self._monitors_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._monitors_seen = int(state.get("monitors_seen", 0))

    def on_fit_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
