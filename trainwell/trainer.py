"""The training loop. `Trainer.fit` reads top to bottom; per-batch work is in `train_step`.

Determinism and exact resume rest on three facts: the data order of epoch e is a pure function of
(seed, e); every other random draw (dropout) comes from torch's global generator, whose state is
checkpointed; and metric accumulators live in tensors that are checkpointed too. So a run resumed from
any step boundary replays exactly the computation of the uninterrupted run.
"""
from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from trainwell import auto, distributed
from trainwell import checkpoint as ckpt
from trainwell.augment import Augment
from trainwell.auto import default_monitor
from trainwell.callbacks.base import EVENTS, as_callback
from trainwell.callbacks.monitor import Monitor, check_metric
from trainwell.config import Config
from trainwell.data.splits import Splits, on_device
from trainwell.distributed import World
from trainwell.divergence import Guard
from trainwell.errors import Interrupted, TrainingFailed
from trainwell.history import History
from trainwell.metrics import evaluate, prepare_batch, rank_counts
from trainwell.optim import build_optimizer, build_schedule
from trainwell.precision import Precision
from trainwell.tta import with_tta

TIMING_KEYS = ("time_s", "samples_per_s")  # the only history fields that differ between identical runs
ACC_FIELDS = ("loss_sum", "grad_norm_sum", "grad_norm_steps")  # then 6 counts: true class ranked 0..5+
# Gradient norms are read every GRAD_EVERY steps (and at each epoch's first): on CPU each parameter
# tensor's norm is its own kernel, and reading them every step cost a small MLP 7% of its speed
# (benchmarks/ab_step.py). The loss is checked at every step.
GRAD_EVERY = 8
# Steps between host reads of the losses (and gradient norms). On a CPU a read costs nothing and a bad
# step is never applied; on CUDA each read stalls the queue (10-20% of a step), and a bad step applied
# between reads is undone by the rollback that follows.
CHECK_EVERY = {"cuda": 8}
PENDING_LOGITS = 1 << 20  # logits (elements) of steps whose metrics wait to be summed together: <= 4 MB


def record_keys(num_classes: int, has_valid: bool) -> list[str]:
    """The metrics of every epoch record, as `_epoch_record` writes them: what a monitor may name."""
    keys = ["train_loss", "train_error"] + (["train_top5_error"] if num_classes > 5 else []) + ["grad_norm"]
    if has_valid:
        keys += ["valid_loss", "valid_error"] + (["valid_top5_error"] if num_classes > 5 else [])
    return keys


def class_weights(scheme: str, y: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """`balanced` (scikit-learn's and Keras' class_weight): each class weighs n / (C * n_c) in the training
    loss, so that every class counts as much as the others however rare it is; `none`: None."""
    if scheme == "none":
        return None
    counts = torch.bincount(y, minlength=num_classes).clamp(min=1).float()
    return len(y) / (num_classes * counts)


class _Diverged(Exception):
    """Raised within an epoch when the loss has diverged; `fit` catches it and rolls back (never escapes)."""


@dataclass
class TrainState:
    """Everything callbacks may read; `should_stop` + `stop_reason` is how anything stops training."""

    epoch: int = 0                   # epochs completed
    batch: int = 0                   # batches completed in the current epoch
    step: int = 0                    # optimizer steps completed in the whole run
    loss: torch.Tensor | None = None  # last batch loss (on device; call .item() only when logging)
    grad_norms: torch.Tensor | None = None  # each parameter tensor's gradient norm, at the last step
                                            # whose gradients were read (every GRAD_EVERY steps; on device)
    record: dict[str, Any] = field(default_factory=dict)  # the current epoch's record, once validated
    should_stop: bool = False
    stop_reason: str = ""
    steps_per_epoch: int = 0
    best_epoch: int | None = None
    spent_s: float = 0.0             # wall time of the completed epochs, training + validation

    @property
    def grad_norm(self) -> torch.Tensor | None:
        """The global gradient norm (L2 over all parameters) at the last step whose gradients were read."""
        return None if self.grad_norms is None else torch.linalg.vector_norm(self.grad_norms)


class Trainer:
    """Train `model` on `splits` as `config` says. Reads the training and validation splits, never the test set.

    Public per-step API (benchmarks and tools use it; `fit` is built from it): `batches(epoch)` yields an
    epoch's mini-batches, `train_step(x, y)` makes one optimizer step, `running_metrics()` reads the
    epoch so far; `state_dict()` / `load_state_dict()` are what checkpoints hold.

    >>> trainer = Trainer(model, splits, Config(epochs=2), precision=choose("cpu", "fp32", False))  # doctest: +SKIP
    >>> history = trainer.fit()                                                                   # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, splits: Splits, config: Config, precision: Precision,
                 callbacks: Iterable[Any] = (), checkpoint_dir: str | None = None, world: World | None = None) -> None:
        config, _ = auto.resolve(config, splits, user_model=model)  # a no-op when run.prepare already did it
        self.config, self.splits, self.precision = config, splits, precision
        self.world = world or distributed.SINGLE  # run.fit passes torchrun's group; probes (capacity, lr) train alone
        self.model = model.to(precision.device)
        if precision.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        ddp = distributed.wrap(self.model, self.world, precision.device)  # gradients averaged over ranks
        self.step_model = torch.compile(ddp) if config.compile else ddp
        self.eval_model = with_tta(self.model, config.tta)  # how validation (and later test) scores it
        self.augment = Augment(config.augment)
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        # the weights a recovery starts over from (divergence.Guard.start_over); built from the seed, so
        # a resumed run holds the same ones
        self._initial_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.guard = Guard(splits.num_classes, config.batch_size, config.recoveries)
        self.check_every = CHECK_EVERY.get(precision.device.type, 1)
        self._unchecked: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # (loss, grad-norm sum) not yet read
        self._good: dict[str, Any] | None = None  # the last calm state, in memory: where a divergence rolls back to
        self._good_step = -1
        self.callbacks = [as_callback(c) for c in callbacks]
        self.checkpoint_dir = checkpoint_dir
        self.state = TrainState()
        self.history = History()
        n, bs = len(splits.y_train), config.batch_size
        self.state.steps_per_epoch = (n + bs - 1) // bs
        if 0 < n % bs < self.world.size:  # a last batch too small to give every rank an example is dropped
            self.state.steps_per_epoch -= 1
        self.optimizer = build_optimizer(config.optimizer, self.model.parameters(), config.resolved_lr(),
                                         config.momentum, config.weight_decay, fused=precision.device.type == "cuda")
        # Raw inputs in memory move to the device once, so a batch is an index operation there, not a copy.
        self.x_train, self.y_train = on_device(splits.x_train, precision.device), splits.y_train.to(precision.device)
        self.x_valid, self.y_valid = on_device(splits.x_valid, precision.device), splits.y_valid.to(precision.device)
        self.class_weight = class_weights(config.class_weights, self.y_train, splits.num_classes)
        self.schedule = build_schedule(self.optimizer, config.schedule, config.epochs * self.state.steps_per_epoch,
                                       config.warmup, config.final_lr_fraction)
        self.best = Monitor(self.check(config, splits))  # selection: the best epoch on this metric is kept
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.resumed_from: int | None = None
        self._acc = self._zero_accumulators()
        self._interrupted = 0
        self._stop_agreed = False  # under torchrun: some rank was interrupted, as of the last step
        self._elapsed = 0.0
        self.wall_s = 0.0  # of the last fit, set by whoever times it
        self._saved_step = 0  # step of the last checkpoint

    @staticmethod
    def check(config: Config, splits: Splits) -> str:
        """The metric selection monitors, checked against the records this trainer will write."""
        has_valid = len(splits.y_valid) > 0
        monitor = default_monitor(has_valid) if config.monitor == "auto" else config.monitor
        check_metric(monitor, record_keys(splits.num_classes, has_valid), what=f"--monitor {monitor}")
        return monitor

    # --- the loop ---------------------------------------------------------------------------------------
    def fit(self) -> History:
        state, cfg = self.state, self.config
        self._dispatch("on_fit_start")
        previous_handlers = self._catch_signals()
        try:
            self._keep_good(self.state_dict())  # a divergence before the first checkpoint rolls back here
            while state.epoch < cfg.epochs and not state.should_stop:
                try:
                    self._epoch()
                except _Diverged as d:
                    self._recover(str(d))  # rolls back and goes on, or raises TrainingFailed
            if not state.stop_reason:
                state.stop_reason = f"completed {cfg.epochs} epochs"
            self._restore_best()
            self._dispatch("on_fit_end")
        except BaseException:
            self._dispatch("on_exception")
            raise
        finally:
            self._restore_signals(previous_handlers)
        return self.history

    def _epoch(self) -> None:
        """The rest of the current epoch: its steps, validation, the record, callbacks, a checkpoint."""
        state, cfg = self.state, self.config
        if state.batch == 0:
            self._dispatch("on_epoch_start")
        self.step_model.train()
        t0 = time.perf_counter()
        for xb, yb in self.batches(state.epoch, start=state.batch):
            self.train_step(xb, yb)
            self._dispatch("on_batch_end")
            if (self._stop_agreed if self.world.distributed else self._interrupted):
                self._elapsed += time.perf_counter() - t0
                self.save_checkpoint()
                raise Interrupted(f"interrupted at epoch {state.epoch + 1}, step {state.step}; state saved. "
                                  f"Resume with: trainwell train --resume {self._run_dir()}")
            if state.batch < state.steps_per_epoch and self._checkpoint_due():  # (an epoch's last
                self.save_checkpoint()                                           # step saves below)
        self._check()  # the epoch's last losses (read in groups on CUDA) before they count
        self._elapsed += time.perf_counter() - t0
        t0 = time.perf_counter()
        state.record = self._epoch_record()        # train metrics of this epoch + validation
        self._dispatch("on_validation_end")        # callbacks may add or amend metrics here
        self._keep_best(state.record)              # from here on the record is final
        self.history.append(state.record)
        state.spent_s += self._elapsed + time.perf_counter() - t0
        state.epoch, state.batch, self._elapsed = state.epoch + 1, 0, 0.0
        if cfg.time_budget and self.world.broadcast(state.spent_s >= cfg.time_budget) and state.epoch < cfg.epochs:
            state.should_stop = True  # rank 0's clock decides for all (its writing makes it the slowest)
            state.stop_reason = f"time budget of {cfg.time_budget:g} s spent after {state.epoch} epochs"
        self._dispatch("on_epoch_end")             # readers: early stopping, history file, progress
        if self._checkpoint_due() or not cfg.checkpoint_every:
            self.save_checkpoint()

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One optimizer step on one batch; the model is in train mode (set once per epoch by fit)."""
        if self.augment:
            xb = self.augment(xb)
        with self.precision.autocast():
            logits = self.step_model(xb)
            loss = F.cross_entropy(logits, yb, weight=self.class_weight, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        local_loss = self.state.loss = loss.detach()
        if self.world.distributed:  # every rank judges the same loss, and stops at the same step
            agreed = torch.stack([local_loss.float(), torch.tensor(float(self._interrupted), device=loss.device)])
            self.world.all_reduce(agreed)
            self.state.loss = agreed[0] / self.world.size
            self._stop_agreed = bool(agreed[1] > 0)  # acted on at this step's end, by every rank
        self._dispatch("on_after_backward")
        # The divergence guard reads the loss every `check_every` steps (every step on a CPU: a bad
        # update is then never applied). Every GRAD_EVERY steps the gradients are checked too; a
        # non-finite gradient behind a finite loss poisons the weights and so the next loss, which is
        # caught there and rolled back. NaN and Inf survive the sum.
        norms = None
        if self.state.batch == 0 or self.state.step % GRAD_EVERY == 0:
            norms = self.state.grad_norms = torch.stack(torch._foreach_norm(
                [p.grad for p in self._params if p.grad is not None]))
        self._unchecked.append((self.state.loss, None if norms is None else norms.sum()))
        if len(self._unchecked) >= self.check_every:
            self._check()  # raises _Diverged before this step's update
        self.optimizer.step()
        self.schedule.step()
        self.state.step += 1
        self.state.batch += 1
        # Metrics are summed many steps at a time, in a few ops on the device: per-step ops cost a
        # small model (a 0.7 ms MLP step) more than its own arithmetic.
        self._pending.append((logits.detach(), yb, local_loss, norms))
        self._pending_size += logits.numel()
        if self._pending_size >= PENDING_LOGITS:
            self._sum_pending()

    def running_metrics(self) -> dict[str, float]:
        """This epoch's training loss and accuracy so far. Reads the device: call it only to log."""
        a = self._epoch_sums()
        seen = max(1.0, a["seen"])
        return {"loss": a["loss_sum"] / seen, "accuracy": a["correct1"] / seen}

    # --- pieces of the loop -----------------------------------------------------------------------------
    def batches(self, epoch: int, start: int = 0):
        """Epoch `epoch`'s shuffled mini-batches from batch `start` on; the order depends on (seed, epoch) only."""
        x, y, bs = self.x_train, self.y_train, self.config.batch_size
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(y), generator=g)
        if isinstance(x, torch.Tensor):
            order = order.to(x.device)
        for b in range(start, self.state.steps_per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            if self.world.distributed:  # this rank's share of the global batch
                idx = idx.tensor_split(self.world.size)[self.world.rank]
            # raw rows: an index operation on the device, or (Rows) read from the memory-mapped file;
            # normalised a batch at a time
            xb = prepare_batch(x[idx], self.precision, self.splits.preprocess)
            yield xb, y[idx.to(y.device)]

    def _epoch_record(self) -> dict[str, Any]:
        a = self._epoch_sums(over_ranks=True)
        n = max(1.0, a["seen"])
        record: dict[str, Any] = {"epoch": self.state.epoch + 1, "step": self.state.step,
                                  "lr": self.optimizer.param_groups[0]["lr"],
                                  "train_loss": a["loss_sum"] / n, "train_error": 1 - a["correct1"] / n}
        if self.splits.num_classes > 5:
            record["train_top5_error"] = 1 - a["correct5"] / n
        record["grad_norm"] = a["grad_norm_sum"] / a["grad_norm_steps"] if a["grad_norm_steps"] else None
        for k, v in evaluate(self.eval_model, self.x_valid, self.y_valid, self.precision, self.splits.preprocess).items():
            record[f"valid_{k}"] = v
        last = self.history[-1]["step"] if len(self.history) else 0
        events = self.guard.events_between(last, self.state.step)
        if events:
            record["events"] = events
        record["time_s"] = round(self._elapsed, 3)
        record["samples_per_s"] = round(n / self._elapsed, 1) if self._elapsed > 0 else None
        self._acc = self._zero_accumulators()
        return self.world.broadcast(record)  # rank 0's numbers: every rank selects and stops on the same record

    def _keep_best(self, record: dict[str, Any]) -> None:
        if self.best.improved(record):
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.state.best_epoch = record["epoch"]

    def _restore_best(self) -> None:
        """Select on validation: the model handed back is the best epoch's, not the last one."""
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    @torch.no_grad()
    def _sum_pending(self) -> None:
        """Fold the pending steps into the epoch's accumulators (exact: counts, and sums in float64)."""
        if not self._pending:
            return
        logits, y, loss, grad_norms = zip(*self._pending)
        sizes = torch.tensor([len(b) for b in y], dtype=torch.float64, device=self._acc.device)
        self._acc[len(ACC_FIELDS):] += rank_counts(torch.cat(logits), torch.cat(y))
        self._acc[0] += (torch.stack(loss).double() * sizes).sum()
        read = [g for g in grad_norms if g is not None]
        if read:
            # float32 norms summed in float64: exact, so the sum does not depend on how steps were grouped
            # (a resumed run groups them differently and must match to the bit)
            self._acc[1] += torch.linalg.vector_norm(torch.stack(read).float(), dim=1).double().sum()
            self._acc[2] += len(read)
        self._seen += sum(len(b) for b in y)
        self._pending, self._pending_size = [], 0

    def _zero_accumulators(self) -> torch.Tensor:
        """[loss sum, grad-norm sum, steps whose gradients were read, examples whose true class ranked
        0, 1, .. 4, >= 5] of the epoch so far (float64: counts are exact below 2^53)."""
        self._seen = 0
        self._pending: list[tuple[torch.Tensor, ...]] = []  # (logits, y, loss, grad norms) of steps not yet summed
        self._pending_size = 0
        return torch.zeros(len(ACC_FIELDS) + 6, dtype=torch.float64, device=self.precision.device)

    def _epoch_sums(self, over_ranks: bool = False) -> dict[str, float]:
        self._sum_pending()
        acc, seen = self._acc, float(self._seen)
        if over_ranks and self.world.distributed:
            both = self.world.all_reduce(torch.cat([acc, acc.new_tensor([seen])]))
            acc, seen = both[:-1], float(both[-1])
        v = acc.tolist()
        ranks = v[len(ACC_FIELDS):]
        return {**dict(zip(ACC_FIELDS, v)), "correct1": ranks[0], "correct5": sum(ranks[:5]), "seen": seen}

    # --- divergence -------------------------------------------------------------------------------------
    def _check(self) -> None:
        """Read the losses (and gradient-norm sums) of the steps not yet read; raise _Diverged on a bad one."""
        if not self._unchecked:
            return
        pending, self._unchecked = self._unchecked, []
        flat = [t.float() for pair in pending for t in pair if t is not None]
        values = iter([flat[0].item()] if len(flat) == 1 else torch.stack(flat).tolist())
        lr = self.optimizer.param_groups[0]["lr"]  # of the last of these steps (8 at most on CUDA, 1 on a CPU)
        for _, grad_sum in pending:
            loss = next(values)
            grads_ok = grad_sum is None or math.isfinite(next(values))
            why = self.guard.observe(loss, lr) if grads_ok else "non-finite gradient norm"
            if why:
                raise _Diverged(why)

    def _keep_good(self, state: dict[str, Any]) -> None:
        """Keep `state` in memory as the one a divergence rolls back to."""
        if self.state.step > self._good_step:
            self.guard.kept_calm_state()  # progress since the last recovery: the next cut is a halving again
        self._good, self._good_step = _clone(state), self.state.step

    def _recover(self, why: str) -> None:
        """Roll back to the last calm state, cut the learning rate, record the event; or give up (exit 3)."""
        s, g = self.state, self.guard
        failed_step, failed_at = s.step + 1, f"epoch {s.epoch + 1}, step {s.step + 1}"
        lr_before = self.optimizer.param_groups[0]["lr"]
        factor = g.next_factor()
        if factor is None:
            tried = (f"after {g.recoveries} recoveries (each rolled back and cut the learning rate), "
                     if g.recoveries else "")
            failed = TrainingFailed(
                f"{why} at {failed_at}; {tried}the update was not applied and the last good checkpoint is kept. "
                f"Lower the learning rate (now {lr_before:.3g}) or check the data")
            failed.events = list(g.events)  # for the diagnosis of the failed run
            raise failed
        self._unchecked, self._pending, self._pending_size = [], [], 0  # the failed stretch's steps count for nothing
        start_over = g.start_over()
        counters = g.counters()
        self.load_state_dict(_clone(self._good))  # a copy: the optimizer would share the kept tensors
        g.restore_counters(counters)
        if start_over:
            self._start_over()
        self.schedule.scale(factor)
        g.recovered({"event": "recovery", "reason": why, "failed_at_step": failed_step,
                     "step": s.step, "epoch": s.epoch + 1, "lr_factor": factor, "lr_before": lr_before,
                     "lr_after": self.optimizer.param_groups[0]["lr"], "peak_lr": self.schedule.base_lrs[0],
                     "recovery": g.recoveries, "started_over": start_over})
        self.save_checkpoint(force=True)  # on disk too, so that a resume carries on at the lower rate
        if start_over and self.checkpoint_dir is not None and self.world.main:  # the abandoned run's later
            ckpt.discard_after(self.checkpoint_dir, s.step)  # checkpoints must go, or a resume would pick them
            self.resumed_from = None

    def _start_over(self) -> None:
        """Back to step 0 with the initial weights, a fresh optimizer and schedule, no history; what
        callbacks keep is theirs (the layer monitors keep the abandoned stretch's records as evidence)."""
        self.model.load_state_dict(self._initial_weights)
        self.optimizer.state.clear()
        self.schedule.t = 0
        self.best = Monitor(self.best.metric)
        self.best_weights = None
        self._acc, self._elapsed = self._zero_accumulators(), 0.0
        s = self.state
        s.epoch, s.batch, s.step, s.best_epoch = 0, 0, 0, None
        self.history = History()
        self.guard.forget_loss()

    def _run_dir(self) -> str:
        import os

        return os.path.dirname(self.checkpoint_dir) if self.checkpoint_dir else "RUN"

    def _dispatch(self, event: str) -> None:
        assert event in EVENTS
        for cb in self.callbacks:
            getattr(cb, event)(self)

    # --- interruption -----------------------------------------------------------------------------------
    def _catch_signals(self) -> dict[int, Any]:
        """SIGINT/SIGTERM only set a flag; the loop saves at the next step boundary and exits 130."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            self._interrupted += 1
            if self._interrupted > 1:  # a second Ctrl-C means "now"
                raise KeyboardInterrupt

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    # --- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to carry on exactly from this step boundary (checkpoint.save_state writes it)."""
        self._sum_pending()
        return {
            "model": self.model.state_dict(), "best_weights": self.best_weights,
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "rng": ckpt.rng_state(), "metrics": {"acc": self._acc, "seen": self._seen, "elapsed": self._elapsed},
            "progress": {"epoch": self.state.epoch, "batch": self.state.batch, "step": self.state.step,
                         "best_epoch": self.state.best_epoch, "spent_s": self.state.spent_s},
            "monitor": self.best.state(), "history": self.history.records, "guard": self.guard.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in self._callback_keys()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put the trainer back exactly where `state_dict()` left it."""
        self.best.load(state["monitor"])  # first: a changed monitor is refused before anything moves
        self.model.load_state_dict(state["model"])
        self.best_weights = state["best_weights"]
        self.optimizer.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
        self.schedule.load_state_dict(state["schedule"])
        rngs = state.get("rng_ranks")
        ckpt.set_rng_state(rngs[self.world.rank] if rngs and self.world.rank < len(rngs) else state["rng"])
        m, p = state["metrics"], state["progress"]
        self._acc, self._seen, self._elapsed = m["acc"].to(self.precision.device), m["seen"], m["elapsed"]
        if m.get("over_ranks") and not self.world.main:  # rank 0 carries the sums of all ranks
            self._acc, self._seen = torch.zeros_like(self._acc), 0
        s = self.state
        s.epoch, s.batch, s.step, s.best_epoch = p["epoch"], p["batch"], p["step"], p["best_epoch"]
        s.spent_s = p.get("spent_s", 0.0)
        self.history = History(state["history"])
        if "guard" in state:  # checkpoints from before recoveries existed have none
            self.guard.load_state_dict(state["guard"])
        saved = state["callbacks"]
        for key, cb in self._callback_keys():
            if saved.get(key) is not None:
                cb.load_state_dict(saved[key])

    def _checkpoint_due(self) -> bool:
        """Every `checkpoint_every` steps, at a step or at an epoch's end: a crash loses at most that many
        steps. (Saving at every epoch end made a 4-step epoch of a tiny data set 5x slower: fsyncs.)"""
        every = self.config.checkpoint_every
        return bool(every) and self.state.step - self._saved_step >= every

    def save_checkpoint(self, force: bool = False) -> None:
        """Keep the state in memory (where a divergence rolls back to) and on disk, if it is calm.

        A state whose loss is climbing is not kept anywhere, so that the newest checkpoint is always the
        state a rollback returns to, and a resumed run does what the uninterrupted one would have done.
        `force`: the state just rolled back to, now with its lower learning rate."""
        self._saved_step = self.state.step
        if not force:
            self._check()
            if not self.guard.calm:
                return
            if not math.isfinite(torch.stack(torch._foreach_norm(self._params)).sum().item()):
                raise _Diverged("non-finite weights")
        state = self.state_dict()
        self._keep_good(state)
        if self.checkpoint_dir is None:
            return
        if self.world.distributed:
            self._save_for_all(self._for_disk(state))
            return
        protect = {self.resumed_from} if self.resumed_from is not None else set()
        try:
            ckpt.save_state(self.checkpoint_dir, self.state.step, state, protect=protect)
        except ValueError as e:  # non-finite buffers: keep the last good checkpoint instead
            raise TrainingFailed(f"{e} at step {self.state.step}; the last good checkpoint is kept. "
                                 "Lower the learning rate or check the data") from None

    def _save_for_all(self, state: dict[str, Any]) -> None:
        """Rank 0 writes; every rank learns whether it could, so none trains on alone after a failed save."""
        error = None
        if self.world.main:
            protect = {self.resumed_from} if self.resumed_from is not None else set()
            try:
                ckpt.save_state(self.checkpoint_dir, self.state.step, state, protect=protect)
            except (ValueError, OSError) as e:
                error = f"{e} at step {self.state.step}"
        error = self.world.broadcast(error)
        if error:
            raise TrainingFailed(f"checkpoint not saved: {error}; the last good checkpoint is kept. Lower the "
                                 "learning rate or check the data (or the disk)")

    def _for_disk(self, state: dict[str, Any]) -> dict[str, Any]:
        """Under torchrun rank 0 writes one checkpoint for all: the epoch's metric sums over every rank
        (rank 0 takes them back on resume, the others start from zero) and every rank's RNG state."""
        both = self.world.all_reduce(torch.cat([self._acc, self._acc.new_tensor([float(self._seen)])]))
        rngs = self.world.gather(ckpt.rng_state())
        metrics = dict(state["metrics"], acc=both[:-1], seen=int(both[-1]), over_ranks=True)
        return dict(state, metrics=metrics, rng_ranks=rngs)

    def resume_latest(self) -> bool:
        """Load the newest checkpoint that verifies; False when there is none."""
        found = ckpt.load_latest_state(self.checkpoint_dir) if self.checkpoint_dir else None
        if found is None:
            return False
        step, state = found
        self.load_state_dict(state)
        self.resumed_from = self._saved_step = step
        return True

    def _callback_keys(self) -> list[tuple[str, Any]]:
        """'ClassName#k' for the k-th callback of that class: two of one class never share a slot."""
        seen: dict[str, int] = {}
        keys = []
        for cb in self.callbacks:
            name = type(cb).__name__
            keys.append((f"{name}#{seen.get(name, 0)}", cb))
            seen[name] = seen.get(name, 0) + 1
        return keys


def _clone(obj: Any) -> Any:
    """A copy of a nested state whose tensors share no memory with the original."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj
