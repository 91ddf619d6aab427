"""The callback contract: eight no-op hooks, one signature `(self, trainer)`; the data is on trainer.state.

Order within an epoch end, so that every reader sees the same numbers:
  on_validation_end  the epoch's record (train + validation metrics) is in `trainer.state.record`;
                     callbacks may add or amend metrics there, in the order they were given.
  (the trainer)      selects the best epoch on the monitored metric and appends the record to the history;
                     from here on the record is final.
  on_epoch_end       readers: early stopping, the history file, progress, then the user's callbacks.

A callback that must survive a resume returns its state from `state_dict()` (JSON values and tensors)
and takes it back in `load_state_dict()`; checkpoints key it by class name and position among callbacks
of the same class.
"""
from __future__ import annotations

from typing import Any, Callable

EVENTS = ("on_fit_start", "on_epoch_start", "on_after_backward", "on_batch_end",
          "on_validation_end", "on_epoch_end", "on_fit_end", "on_exception")


class Callback:
    """Subclass and override the hooks you need. Stop training with `trainer.stop("why")`.

    A callback that adds metrics to the epoch's record (at on_validation_end) names them in `metrics`, so
    that a monitor of them is accepted when the fit starts; a `Monitor` attribute (early stopping's) must
    name a metric the records will hold, or the fit is refused before anything is written.
    """

    metrics: tuple[str, ...] = ()

    def on_fit_start(self, trainer: Any) -> None: ...
    def on_epoch_start(self, trainer: Any) -> None: ...
    def on_after_backward(self, trainer: Any) -> None: ...
    def on_batch_end(self, trainer: Any) -> None: ...
    def on_validation_end(self, trainer: Any) -> None: ...
    def on_epoch_end(self, trainer: Any) -> None: ...
    def on_fit_end(self, trainer: Any) -> None: ...
    def on_exception(self, trainer: Any) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        """What a resumed run needs to carry on exactly; None when there is nothing to keep."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict` returned in the interrupted run."""


class _FunctionCallback(Callback):
    """A plain function `f(trainer)` is called at the end of every epoch."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, trainer: Any) -> None:
        self.fn(trainer)


def as_callback(obj: Any) -> Callback:
    if isinstance(obj, Callback):
        return obj
    if callable(obj):
        return _FunctionCallback(obj)
    raise TypeError(f"callback {obj!r} is neither a trainwell Callback nor a function f(trainer)")
