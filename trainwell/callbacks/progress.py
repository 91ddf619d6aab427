"""Progress: a live bar on a terminal (epoch, batch, loss, accuracy, samples/s, ETA); plain lines otherwise."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from trainwell.callbacks.base import Callback

# The bar reads the loss from the device only this often: every read is a host sync.
REFRESH_S = 0.5


class Progress(Callback):
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._bar = None
        self._task = None
        self._last = 0.0
        self._t0 = 0.0
        self._start_batch = 0

    def on_fit_start(self, trainer: Any) -> None:
        s, cfg = trainer.state, trainer.config
        self._line(f"training {s.steps_per_epoch} batches/epoch x {cfg.epochs} epochs on "
                   f"{trainer.precision.device} ({trainer.precision.name}"
                   f"{', channels_last' if trainer.precision.channels_last else ''})"
                   + (f", resumed at epoch {s.epoch + 1} batch {s.batch}" if trainer.resumed_from is not None else ""))
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            self._bar = Bar(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                            console=Console(file=self.stream), transient=True)
            self._bar.start()

    def on_epoch_start(self, trainer: Any) -> None:
        self._epoch_start(trainer)

    def _epoch_start(self, trainer: Any) -> None:
        s = trainer.state
        self._t0, self._start_batch = time.perf_counter(), s.batch
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task("", total=s.steps_per_epoch, completed=s.batch,
                                            epoch=f"{s.epoch + 1}/{trainer.config.epochs}", stats="")

    def on_batch_end(self, trainer: Any) -> None:
        if self._bar is None:
            return
        if self._task is None:  # resumed mid-epoch: no on_epoch_start was sent
            self._epoch_start(trainer)
        now = time.perf_counter()
        s = trainer.state
        if now - self._last < REFRESH_S and s.batch < s.steps_per_epoch:
            return
        self._last = now
        m = trainer.running_metrics()
        rate = (s.batch - self._start_batch) * trainer.config.batch_size / max(1e-9, now - self._t0)
        stats = f"loss {m['loss']:.4f}  acc {m['accuracy']:.2%}  {rate:,.0f} samples/s"
        self._bar.update(self._task, completed=s.batch, stats=stats)

    def on_epoch_end(self, trainer: Any) -> None:
        r = trainer.history[-1]
        parts = [f"epoch {r['epoch']}/{trainer.config.epochs}", f"train loss {r['train_loss']:.4f}",
                 f"err {r['train_error']:.2%}"]
        if "valid_error" in r:
            parts += [f"valid loss {r['valid_loss']:.4f}", f"err {r['valid_error']:.2%}"]
        if r.get("samples_per_s"):
            parts.append(f"{r['samples_per_s']:,.0f} samples/s")
        parts.append(f"lr {r['lr']:.3g}")
        if trainer.state.best_epoch == r["epoch"]:
            parts.append("*best")
        for e in r.get("events", []):
            self._line(f"recovery {e['recovery']}: {e['reason']} at step {e['failed_at_step']}; rolled back to step "
                       f"{e['step']}, learning rate x{e['lr_factor']:g} (peak now {e['peak_lr']:.3g})")
        self._line("  ".join(parts))

    def on_fit_end(self, trainer: Any) -> None:
        self._close()
        self._line(f"stopped: {trainer.state.stop_reason}; best epoch {trainer.state.best_epoch}")

    def on_exception(self, trainer: Any) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
