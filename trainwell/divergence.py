"""Divergence as trainer state: watch the training loss, and say when a run has blown up.

The course: "if the loss diverges, the learning rate is too high; halve it." The guard reads every step's
loss on the host (the trainer already syncs once a step on the CPU; on CUDA it reads them in groups) and
says a run has diverged when

- a loss or gradient norm is not finite, or
- the smoothed loss has climbed more than ln(C) above its lowest value: worse than it was by a whole
  chance-level loss (or by half its low, when that is above 2 ln(C): a model confidently wrong from the start,
  N(0, 1) weights into tanh units, starts at ~20 for 10 classes and swings by more than ln(C) as it learns), or
- the smoothed loss is back above ln(C), chance level, after it had fallen below half of that.

A window of ~256 examples smooths the loss, so the noise of small batches (batch size 1 included) stays
far below those margins; a real explosion crosses them within a step or two.

The trainer then rolls back to the last *calm* state (weights, optimizer, schedule, RNG, metrics, all of
it), multiplies the learning rate by a factor and goes on; the guard's counters, carried across the
rollback, decide the factor (halve; quarter when the same state diverges again) and when to give up.
Where the evidence says more, it cuts more: when the rate rose after the smoothed loss set its last low
(a warm-up, or a schedule that climbs), the loss stopped improving at the rate of that low, so the cut
goes down to it (at most 16x at once). A run started 10x too high under onecycle falls back near the
right rate in one recovery instead of creeping down by halves (benchmarks/recovery.py).
Calm (a state worth rolling back to, and the only kind written as a checkpoint): the smoothed loss within
a quarter of ln(C) of its minimum.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from trainwell.errors import TrainingFailed

WINDOW_EXAMPLES = 256   # the loss is smoothed over about this many training examples
CALM_MARGIN = 0.25      # of ln(C): above its minimum by less than this, the state is worth keeping
FACTOR = 0.5            # the learning rate's cut per recovery; squared again while the same state fails
MAX_CUT = 1 / 16        # the deepest cut one recovery makes on the evidence of the rate at the loss's low
START_OVER = 0.5        # ... and when that cut is at least 2x deeper than halving, the run starts over


class Guard:
    """The training loss's running state, and the recoveries made so far (checkpointed with the trainer)."""

    def __init__(self, num_classes: int, batch_size: int, max_recoveries: int) -> None:
        self.chance = math.log(max(2, num_classes))
        self.beta = min(0.996, max(0.5, 1 - batch_size / WINDOW_EXAMPLES))
        self.max_recoveries = max_recoveries
        self.ema: float | None = None
        self.low: float | None = None
        self.low_lr: float | None = None   # the learning rate when the smoothed loss set its low
        self.lr: float | None = None       # the learning rate of the last step observed
        self.recoveries = 0
        self.failures_since_calm = 0   # divergences since the last calm state was kept
        self.events: list[dict[str, Any]] = []  # every recovery of the run, in order

    def observe(self, loss: float, lr: float | None = None) -> str | None:
        """Take one step's loss (and the learning rate it was taken at); return why the run has diverged, or None."""
        self.lr = lr
        if not math.isfinite(loss):
            return "non-finite loss"
        self.ema = loss if self.ema is None else self.beta * self.ema + (1 - self.beta) * loss
        if self.low is None or self.ema <= self.low:
            self.low, self.low_lr = self.ema, lr
        margin = max(self.chance, 0.5 * self.low)  # a loss that starts far above chance (confidently wrong
        if self.ema > self.low + margin:           # logits) swings by more than ln(C) without exploding
            return (f"exploding loss: smoothed training loss {self.ema:.3g}, up from {self.low:.3g} "
                    f"by more than " + (f"ln({round(math.exp(self.chance))}) = {self.chance:.3g}"
                                        if margin == self.chance else f"half of it ({margin:.3g})"))
        if self.ema > self.chance and self.low < 0.5 * self.chance:
            return (f"loss back at chance level: smoothed training loss {self.ema:.3g} > ln({round(math.exp(self.chance))})"
                    f" = {self.chance:.3g} after it had fallen to {self.low:.3g}")
        return None

    @property
    def calm(self) -> bool:
        return self.ema is None or self.ema <= self.low + CALM_MARGIN * self.chance

    def kept_calm_state(self) -> None:
        self.failures_since_calm = 0

    def next_factor(self) -> float | None:
        """The learning-rate factor for the next recovery, or None when the recoveries are spent."""
        if self.recoveries >= self.max_recoveries:
            return None
        evidence = self._evidence()
        return min(self._halving(), evidence) if evidence else self._halving()

    def start_over(self) -> bool:
        """Whether the evidence cut applies: the rate climbed past the loss's low and failed there, so every
        state since the low was reached at rates that were too high (batch norm nets come out of such a
        stretch working but worse: the 10x conv net ended 1.9 points lower after rolling back only to the
        last calm state). The trainer then starts over from the initial weights at the lower rate."""
        evidence = self._evidence()
        return evidence is not None and evidence <= START_OVER * self._halving()

    def _halving(self) -> float:
        return FACTOR ** (1 + self.failures_since_calm)

    def _evidence(self) -> float | None:
        if self.low_lr and self.lr and self.low_lr < self.lr:  # the loss stopped improving at a lower rate
            return max(MAX_CUT, self.low_lr / self.lr)
        return None

    def recovered(self, event: dict[str, Any]) -> None:
        """After the rollback (the loss statistics are the kept state's again) and the cut."""
        if self.low_lr is not None:  # rates from here on are scaled: the low's rate in the same units
            self.low_lr *= event["lr_factor"]
        self.recoveries += 1
        self.failures_since_calm += 1
        self.events.append(event)

    def events_between(self, first_step: int, end_step: int) -> list[dict[str, Any]]:
        """The recoveries that resumed training at a step in [first_step, end_step): one epoch's. Steps count
        from 0 again after a start-over: the abandoned stretch's events go to the new first epoch."""
        last = max((i for i, e in enumerate(self.events) if e.get("started_over")), default=-1)
        earlier = self.events[:last + 1] if first_step == 0 else []
        return earlier + [e for e in self.events[last + 1:] if first_step <= e["step"] < end_step]

    # The loss statistics travel with a rolled-back state; the recovery counters and events never go back
    # (a rollback only ever returns to a state kept after the last recovery, so events stay in step order).
    def counters(self) -> tuple[int, int, list[dict[str, Any]]]:
        return self.recoveries, self.failures_since_calm, list(self.events)

    def restore_counters(self, counters: tuple[int, int, list[dict[str, Any]]]) -> None:
        self.recoveries, self.failures_since_calm, self.events = counters[0], counters[1], list(counters[2])

    def forget_loss(self) -> None:
        """Starting over from the initial weights: the loss statistics start over too."""
        self.ema = self.low = self.low_lr = None

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema, "low": self.low, "low_lr": self.low_lr, "recoveries": self.recoveries,
                "failures_since_calm": self.failures_since_calm, "events": list(self.events)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema, self.low, self.low_lr = state["ema"], state["low"], state.get("low_lr")
        self.recoveries, self.failures_since_calm = state["recoveries"], state["failures_since_calm"]
        self.events = list(state["events"])


class Diverged(Exception):
    """Raised within an epoch when the loss has diverged; `Trainer.fit` catches it and recovers (never escapes)."""


class Rollback:
    """The roll-back half of divergence: the losses not yet read, the last calm state (in memory), and the
    recovery itself: back to that state, the learning rate cut as the guard says, or give up (exit 3).

    It works on a trainer through what any trainer has: `state`, `optimizer`, `schedule`, `state_dict()`,
    `load_state_dict()`, `sums` and `start_over()`.
    """

    def __init__(self, guard: Guard, read_every: int) -> None:
        self.guard = guard
        self.read_every = read_every  # steps between host reads of the losses: 1 on a CPU, 8 on CUDA
        self.unread: list[tuple[Any, Any]] = []  # (loss, gradient-norm sum or None) of steps not yet read
        self.calm: dict[str, Any] | None = None  # the last calm state: where a divergence rolls back to
        self.calm_step = -1

    def note(self, loss: Any, grad_sum: Any, lr: float) -> None:
        """One step's loss (a device tensor); read them all once `read_every` are waiting."""
        self.unread.append((loss, grad_sum))
        if len(self.unread) >= self.read_every:
            self.read(lr)

    def read(self, lr: float) -> None:
        """Read the waiting losses (and gradient-norm sums) in one host sync; raise Diverged on a bad one."""
        if not self.unread:
            return
        pending, self.unread = self.unread, []
        flat = [t.float() for pair in pending for t in pair if t is not None]
        values = iter([flat[0].item()] if len(flat) == 1 else torch.stack(flat).tolist())
        for _, grad_sum in pending:  # `lr`: of the last of these steps (8 at most on CUDA, 1 on a CPU)
            loss = next(values)
            grads_ok = grad_sum is None or math.isfinite(next(values))
            why = self.guard.observe(loss, lr) if grads_ok else "non-finite gradient norm"
            if why:
                raise Diverged(why)

    def remember(self, state: dict[str, Any], step: int) -> None:
        """Keep `state` (a trainer's state_dict, copied) as the one a divergence rolls back to."""
        if step > self.calm_step:
            self.guard.kept_calm_state()  # progress since the last recovery: the next cut is a halving again
        self.calm, self.calm_step = clone(state), step

    def recover(self, trainer: Any, why: str) -> bool:
        """Roll `trainer` back to the calm state and cut its learning rate, recording the event; True when it
        started over from its initial weights. Raises TrainingFailed when the recoveries are spent."""
        s, g = trainer.state, self.guard
        failed_step, failed_at = s.step + 1, f"epoch {s.epoch + 1}, step {s.step + 1}"
        lr_before = trainer.optimizer.param_groups[0]["lr"]
        factor = g.next_factor()
        if factor is None:
            tried = (f"after {g.recoveries} recoveries (each rolled back and cut the learning rate), "
                     if g.recoveries else "")
            failed = TrainingFailed(
                f"{why} at {failed_at}; {tried}the update was not applied and the last good checkpoint is kept. "
                f"Lower the learning rate (now {lr_before:.3g}) or check the data")
            failed.events = list(g.events)  # for the diagnosis of the failed run
            raise failed
        self.unread = []
        trainer.sums.discard_pending()  # the failed stretch's steps count for nothing
        start_over = g.start_over()
        counters = g.counters()
        trainer.load_state_dict(clone(self.calm))  # a copy: the optimizer would share the kept tensors
        g.restore_counters(counters)
        if start_over:
            trainer.start_over()
        trainer.schedule.scale(factor)
        g.recovered({"event": "recovery", "reason": why, "failed_at_step": failed_step,
                     "step": s.step, "epoch": s.epoch + 1, "lr_factor": factor, "lr_before": lr_before,
                     "lr_after": trainer.optimizer.param_groups[0]["lr"], "peak_lr": trainer.schedule.base_lrs[0],
                     "recovery": g.recoveries, "started_over": start_over})
        return start_over


def clone(obj: Any) -> Any:
    """A copy of a nested state whose tensors share no memory with the original."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone(v) for v in obj)
    return obj
