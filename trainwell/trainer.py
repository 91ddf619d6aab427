"""The training loop. `Trainer.fit` reads top to bottom; per-batch work is in `train_step`.

Determinism and exact resume rest on three facts: the data order of epoch e is a pure function of
(seed, e); every other random draw (dropout) comes from torch's global generator, whose state is
checkpointed; and the metric sums live in tensors that are checkpointed too. So a run resumed from
any step boundary replays exactly the computation of the uninterrupted run.

What is not the loop lives beside it: the roll-back after a divergence in `divergence.Rollback`, the
epoch's metric sums in `metrics.EpochSums`, what differs under torchrun behind `distributed.World`.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from trainwell import auto, distributed
from trainwell import checkpoint as ckpt
from trainwell.augment import Augment
from trainwell.callbacks.base import EVENTS, as_callback
from trainwell.callbacks.monitor import Monitor, require_metric
from trainwell.config import Config
from trainwell.data.splits import Splits, on_device
from trainwell.distributed import World
from trainwell.divergence import Diverged, Guard, Rollback
from trainwell.errors import Interrupted, TrainingFailed, UserError
from trainwell.history import History
from trainwell.metrics import EpochSums, evaluate, prepare_batch
from trainwell.optim import build_optimizer, build_schedule
from trainwell.precision import Precision
from trainwell.tta import with_tta

TIMING_KEYS = ("time_s", "samples_per_s")  # the only history fields that differ between identical runs
# Gradient norms are read every GRAD_EVERY steps (and at each epoch's first): on CPU each parameter
# tensor's norm is its own kernel, and reading them every step cost a small MLP 7% of its speed
# (benchmarks/ab_step.py). The loss is checked at every step.
GRAD_EVERY = 8
# Steps between host reads of the losses (and gradient norms). On a CPU a read costs nothing and a bad
# step is never applied; on CUDA each read stalls the queue (10-20% of a step), and a bad step applied
# between reads is undone by the rollback that follows.
CHECK_EVERY = {"cuda": 8}


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


def steps_per_epoch(n: int, batch_size: int, model: nn.Module, world: World = distributed.SINGLE) -> int:
    """Batches of an epoch. A last batch too small to train on is left out, as DataLoader's drop_last would:
    one that cannot give every rank an example, or with batch norm in the model, two (batch norm cannot
    normalise one example: "Expected more than 1 value per channel when training")."""
    steps = -(-n // batch_size)
    least = world.size * (2 if batch_size > 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                                       for m in model.modules()) else 1)
    return steps - 1 if 0 < n % batch_size < least else steps


# A table in memory is preprocessed once, whole, where its model inputs take at most this many values (256 MiB
# of float32): on a small table, preprocessing each batch was ~15% of a training step. Larger ones (a 1,000,000-row
# table's one-hot columns) stay a batch at a time, which bounds memory. Every operation of the preprocessing is
# per value, so both give the same inputs.
READY_VALUES = 2**26


def ready_inputs(x: Any, preprocess: Any) -> torch.Tensor | None:
    """A table's training inputs preprocessed whole, or None (images, Rows on disk, a table too large)."""
    if preprocess is None or preprocess.table is None or not isinstance(x, torch.Tensor):
        return None
    if len(x) * int(preprocess.shape[0]) > READY_VALUES:
        return None
    return preprocess.apply(x)


def check_callbacks(callbacks: Iterable[Any], config: Config, splits: Splits) -> list[Any]:
    """The callbacks as Callback objects, refused (one line, before anything is written) when one is neither
    a Callback nor a function, or monitors a metric the records will not hold. A callback that adds metrics
    to the record names them in its `metrics` attribute."""
    try:
        cbs = [as_callback(c) for c in callbacks]
    except TypeError as e:
        raise UserError(f"callbacks: {e}") from None
    has_valid = len(splits.y_valid) > 0
    available = record_keys(splits.num_classes, has_valid) + [m for cb in cbs for m in getattr(cb, "metrics", ())]
    for cb in cbs:
        for monitor in (v for v in vars(cb).values() if isinstance(v, Monitor)):
            require_metric(monitor.metric, available, what=f"{type(cb).__name__}: monitor {monitor.metric}")
    return cbs


@dataclass
class TrainState:
    """Everything callbacks may read; `Trainer.stop(reason)` is how anything stops training."""

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
    best_epoch: int | None = None    # the selected epoch so far (Trainer.selection's)
    spent_s: float = 0.0             # wall time of the completed epochs, training + validation

    @property
    def grad_norm(self) -> torch.Tensor | None:
        """The global gradient norm (L2 over all parameters) at the last step whose gradients were read."""
        return None if self.grad_norms is None else torch.linalg.vector_norm(self.grad_norms)


class Trainer:
    """Train `model` on `splits` as `config` says. Reads the training and validation splits, never the test set.

    `config` must be resolved (no `auto` left: `trainwell.prepare` resolves it, or `auto.resolve(config,
    splits, model)`). Public per-step API (benchmarks and tools use it; `fit` is built from it):
    `batches(epoch)` yields an epoch's mini-batches, `train_step(x, y)` makes one optimizer step,
    `running_metrics()` reads the epoch so far; `stop(reason)` and `interrupt()` end a fit; `state_dict()` /
    `load_state_dict()` are what checkpoints hold.

    >>> cfg, _ = auto.resolve(Config(epochs=2), splits, model)                                     # doctest: +SKIP
    >>> trainer = Trainer(model, splits, cfg, precision=choose_precision("cpu", "fp32", False))   # doctest: +SKIP
    >>> history = trainer.fit()                                                                   # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, splits: Splits, config: Config, precision: Precision,
                 callbacks: Iterable[Any] = (), checkpoint_dir: str | None = None, world: World | None = None) -> None:
        # the auto fields the loop reads (the monitor it resolves itself; model and init were for building)
        left = [k for k in auto.unresolved(config) if k in ("augment", "tta", "batch_size", "epochs", "lr")]
        if left:
            raise UserError(f"Trainer: {', '.join(left)} left to auto; resolve the config first (config, _ = "
                            "trainwell.auto.resolve(config, splits, model)) or start from trainwell.prepare")
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
        # the weights a recovery starts over from (start_over); built from the seed, so a resumed run holds
        # the same ones
        self._initial_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.rollback = Rollback(Guard(splits.num_classes, config.batch_size, config.recoveries),
                                 CHECK_EVERY.get(precision.device.type, 1))
        self.callbacks = check_callbacks(callbacks, config, splits)
        self.checkpoint_dir = checkpoint_dir
        self.state = TrainState()
        self.history = History()
        self.state.steps_per_epoch = steps_per_epoch(len(splits.y_train), config.batch_size, model, self.world)
        self.optimizer = build_optimizer(config.optimizer, self.model.parameters(), config.resolved_lr(),
                                         config.momentum, config.weight_decay, fused=precision.device.type == "cuda")
        # Raw inputs in memory move to the device once, so a batch is an index operation there, not a copy.
        self.x_train, self.y_train = on_device(splits.x_train, precision.device), splits.y_train.to(precision.device)
        self.x_valid, self.y_valid = on_device(splits.x_valid, precision.device), splits.y_valid.to(precision.device)
        self._train_inputs = ready_inputs(self.x_train, splits.preprocess)
        self.class_weight = class_weights(config.class_weights, self.y_train, splits.num_classes)
        self.schedule = build_schedule(self.optimizer, config.schedule, config.epochs * self.state.steps_per_epoch,
                                       config.warmup, config.final_lr_fraction)
        self.selection = Monitor(self.selection_metric(config, splits))  # the best epoch on it is kept
        self.best_weights: dict[str, torch.Tensor] | None = None  # the selected epoch's
        self.sums = EpochSums(precision.device)
        self.resumed_from: int | None = None
        self._interrupted = 0      # Ctrl-C / SIGTERM presses so far
        self._stop_agreed = False  # stop at this step's end (under torchrun: some rank was interrupted)
        self._elapsed = 0.0
        self.wall_s = 0.0  # of the last fit, set by whoever times it
        self._saved_step = 0  # step of the last checkpoint

    @staticmethod
    def selection_metric(config: Config, splits: Splits) -> str:
        """The metric selection monitors, checked against the records this trainer will write."""
        has_valid = len(splits.y_valid) > 0
        monitor = auto.default_monitor(has_valid) if config.monitor == "auto" else config.monitor
        require_metric(monitor, record_keys(splits.num_classes, has_valid), what=f"--monitor {monitor}")
        return monitor

    # --- the loop ---------------------------------------------------------------------------------------
    def fit(self) -> History:
        state, cfg = self.state, self.config
        self._dispatch("on_fit_start")
        previous_handlers = self._catch_signals()
        try:
            self.rollback.remember(self.state_dict(), state.step)  # a divergence before the first checkpoint
            while state.epoch < cfg.epochs and not state.should_stop:
                try:
                    self._epoch()
                except Diverged as d:
                    self._recover(str(d))  # rolls back and goes on, or raises TrainingFailed
            if not state.stop_reason:
                state.stop_reason = f"completed {cfg.epochs} epochs"
            self._restore_selected()
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
            if self._stop_agreed:  # Ctrl-C: every rank saves this step and stops
                self._elapsed += time.perf_counter() - t0
                self.save_checkpoint()
                raise Interrupted(f"interrupted at epoch {state.epoch + 1}, step {state.step}; state saved")
            if state.batch < state.steps_per_epoch and self._checkpoint_due():  # (an epoch's last
                self.save_checkpoint()                                           # step saves below)
        self.rollback.read(self._lr())             # the epoch's last losses (read in groups on CUDA) count
        self._elapsed += time.perf_counter() - t0
        t0 = time.perf_counter()
        state.record = self._epoch_record()        # train metrics of this epoch + validation
        self._dispatch("on_validation_end")        # callbacks may add or amend metrics here
        self._select(state.record)                 # from here on the record is final
        self.history.append(state.record)
        state.spent_s += self._elapsed + time.perf_counter() - t0
        state.epoch, state.batch, self._elapsed = state.epoch + 1, 0, 0.0
        # rank 0's clock decides for all (its writing makes it the slowest)
        if cfg.time_budget and self.world.broadcast(state.spent_s >= cfg.time_budget) and state.epoch < cfg.epochs:
            self.stop(f"time budget of {cfg.time_budget:g} s spent after {state.epoch} epochs")
        self._dispatch("on_epoch_end")             # readers: early stopping, history file, progress
        if self._checkpoint_due() or not cfg.checkpoint_every:
            self.save_checkpoint()

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One optimizer step on one batch. The model must be in train mode (`fit` sets it once an epoch)."""
        if self.augment:
            xb = self.augment(xb)
        with self.precision.autocast():
            logits = self.step_model(xb)
            loss = F.cross_entropy(logits, yb, weight=self.class_weight, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        local_loss = loss.detach()
        self.state.loss, self._stop_agreed = self.world.agree(local_loss, self._interrupted)
        self._dispatch("on_after_backward")
        # The divergence guard reads the loss every `check_every` steps (every step on a CPU: a bad
        # update is then never applied). Every GRAD_EVERY steps the gradients are checked too; a
        # non-finite gradient behind a finite loss poisons the weights and so the next loss, which is
        # caught there and rolled back. NaN and Inf survive the sum.
        norms = None
        if self.state.batch == 0 or self.state.step % GRAD_EVERY == 0:
            norms = self.state.grad_norms = torch.stack(torch._foreach_norm(
                [p.grad for p in self._params if p.grad is not None]))
        self.rollback.note(self.state.loss, None if norms is None else norms.sum(), self._lr())  # may raise
        self.optimizer.step()                                                       # Diverged: no update
        self.schedule.step()
        self.state.step += 1
        self.state.batch += 1
        self.sums.add(logits.detach(), yb, local_loss, norms)

    def running_metrics(self) -> dict[str, float]:
        """This epoch's training loss and accuracy so far. Reads the device: call it only to log."""
        a = self.sums.totals()
        seen = max(1.0, a["seen"])
        return {"loss": a["loss_sum"] / seen, "accuracy": a["correct1"] / seen}

    def stop(self, reason: str) -> None:
        """End the fit after this epoch (early stopping, a time budget, a callback); `reason` is recorded."""
        self.state.should_stop, self.state.stop_reason = True, reason

    def interrupt(self) -> None:
        """Save and stop at this step's end, as the first Ctrl-C does: `fit` raises Interrupted (resumable).
        Under torchrun the ranks agree on the step at the next one."""
        self._interrupted += 1
        self._stop_agreed = self._stop_agreed or not self.world.distributed

    # --- pieces of the loop -----------------------------------------------------------------------------
    def batches(self, epoch: int, start: int = 0):
        """Epoch `epoch`'s shuffled mini-batches from batch `start` on; the order depends on (seed, epoch) only."""
        x, y, bs = self.x_train, self.y_train, self.config.batch_size
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(y), generator=g)
        if isinstance(x, torch.Tensor):
            order = order.to(x.device)
        for b in range(start, self.state.steps_per_epoch):
            idx = self.world.shard(order[b * bs:(b + 1) * bs])  # this rank's share of the global batch
            # raw rows: an index operation on the device, or (Rows) read from the memory-mapped file;
            # normalised a batch at a time (a table in memory was once, whole: the same values)
            if self._train_inputs is not None:
                xb = prepare_batch(self._train_inputs[idx], self.precision)
            else:
                xb = prepare_batch(x[idx], self.precision, self.splits.preprocess)
            yield xb, y[idx.to(y.device)]

    def _epoch_record(self) -> dict[str, Any]:
        a = self.sums.totals(self.world)
        n = max(1.0, a["seen"])
        record: dict[str, Any] = {"epoch": self.state.epoch + 1, "step": self.state.step, "lr": self._lr(),
                                  "train_loss": a["loss_sum"] / n, "train_error": 1 - a["correct1"] / n}
        if self.splits.num_classes > 5:
            record["train_top5_error"] = 1 - a["correct5"] / n
        record["grad_norm"] = a["grad_norm_sum"] / a["grad_norm_steps"] if a["grad_norm_steps"] else None
        for k, v in evaluate(self.eval_model, self.x_valid, self.y_valid, self.precision, self.splits.preprocess).items():
            record[f"valid_{k}"] = v
        last = self.history[-1]["step"] if len(self.history) else 0
        events = self.rollback.guard.events_between(last, self.state.step)
        if events:
            record["events"] = events
        record["time_s"] = round(self._elapsed, 3)
        record["samples_per_s"] = round(n / self._elapsed, 1) if self._elapsed > 0 else None
        self.sums.reset()
        return self.world.broadcast(record)  # rank 0's numbers: every rank selects and stops on the same record

    def _select(self, record: dict[str, Any]) -> None:
        """Selection on validation: keep this epoch's weights when the monitored metric is the best so far."""
        if self.selection.improved(record):
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.state.best_epoch = record["epoch"]

    def _restore_selected(self) -> None:
        """The model handed back is the selected epoch's, not the last one."""
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _dispatch(self, event: str) -> None:
        assert event in EVENTS
        for cb in self.callbacks:
            getattr(cb, event)(self)

    # --- divergence -------------------------------------------------------------------------------------
    def _recover(self, why: str) -> None:
        """Roll back to the last calm state with a lower rate (divergence.Rollback), or fail (exit 3)."""
        started_over = self.rollback.recover(self, why)
        self.save_checkpoint(force=True)  # on disk too, so that a resume carries on at the lower rate
        if started_over and self.checkpoint_dir is not None and self.world.main:  # the abandoned run's later
            ckpt.discard_after(self.checkpoint_dir, self.state.step)  # checkpoints must go, or a resume picks them
            self.resumed_from = None

    def start_over(self) -> None:
        """Back to step 0 with the initial weights, a fresh optimizer and schedule, no history (a recovery
        whose evidence says every state since the loss's low was reached too fast); what callbacks keep is
        theirs (the layer monitors keep the abandoned stretch's records as evidence)."""
        self.model.load_state_dict(self._initial_weights)
        self.optimizer.state.clear()
        self.schedule.t = 0
        self.selection = Monitor(self.selection.metric)
        self.best_weights = None
        self.sums.reset()
        self._elapsed = 0.0
        s = self.state
        s.epoch, s.batch, s.step, s.best_epoch = 0, 0, 0, None
        self.history = History()
        self.rollback.guard.forget_loss()

    # --- interruption -----------------------------------------------------------------------------------
    def _catch_signals(self) -> dict[int, Any]:
        """SIGINT/SIGTERM only set a flag; the loop saves at the step's end and raises Interrupted (exit 130)."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            self.interrupt()
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
        return {
            "model": self.model.state_dict(), "best_weights": self.best_weights,
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "rng": ckpt.rng_state(), "metrics": {**self.sums.state_dict(), "elapsed": self._elapsed},
            "progress": {"epoch": self.state.epoch, "batch": self.state.batch, "step": self.state.step,
                         "best_epoch": self.state.best_epoch, "spent_s": self.state.spent_s},
            "monitor": self.selection.state_dict(), "history": self.history.records,
            "guard": self.rollback.guard.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in self._callback_keys()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put the trainer back exactly where `state_dict()` left it."""
        self.selection.load_state_dict(state["monitor"])  # first: a changed monitor is refused before anything moves
        self.model.load_state_dict(state["model"])
        self.best_weights = state["best_weights"]
        self.optimizer.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
        self.schedule.load_state_dict(state["schedule"])
        rngs = state.get("rng_ranks")
        ckpt.set_rng_state(rngs[self.world.rank] if rngs and self.world.rank < len(rngs) else state["rng"])
        m, p = state["metrics"], state["progress"]
        self.sums.load_state_dict(m)
        self._elapsed = m["elapsed"]
        if m.get("over_ranks") and not self.world.main:  # rank 0 carries the sums of all ranks
            self.sums.reset()
        s = self.state
        s.epoch, s.batch, s.step, s.best_epoch = p["epoch"], p["batch"], p["step"], p["best_epoch"]
        s.spent_s = p.get("spent_s", 0.0)
        self.history = History(state["history"])
        if "guard" in state:  # checkpoints from before recoveries existed have none
            self.rollback.guard.load_state_dict(state["guard"])
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
            self.rollback.read(self._lr())
            if not self.rollback.guard.calm:
                return
            if not math.isfinite(torch.stack(torch._foreach_norm(self._params)).sum().item()):
                raise Diverged("non-finite weights")
        state = self.state_dict()
        self.rollback.remember(state, self.state.step)
        if self.checkpoint_dir is not None:
            self._write_checkpoint(self._for_disk(state))

    def _write_checkpoint(self, state: dict[str, Any]) -> None:
        """The one save path, alone or under torchrun: rank 0 writes, and every rank learns whether it could,
        so that none trains on after a failed save. A save that fails (a full disk, non-finite buffers) ends
        the run with one line (exit 3); the last good checkpoint is intact (checkpoints are written whole)."""
        error = None
        if self.world.main:
            protect = {self.resumed_from} if self.resumed_from is not None else set()
            try:
                ckpt.save_state(self.checkpoint_dir, self.state.step, state, protect=protect)
            except ValueError as e:  # non-finite buffers
                error = f"{e} at step {self.state.step}; lower the learning rate or check the data"
            except OSError as e:
                error = (f"{e.strerror or e} writing {self.checkpoint_dir} at step {self.state.step}; free disk space "
                         "(or train into another --out) and resume the run")
        error = self.world.broadcast(error)
        if error:
            raise TrainingFailed(f"checkpoint not saved: {error}. The last good checkpoint is kept")

    def _for_disk(self, state: dict[str, Any]) -> dict[str, Any]:
        """One checkpoint for all ranks: the epoch's metric sums over every rank (rank 0 takes them back on
        resume, the others start from zero) and every rank's RNG state (one process: its own)."""
        metrics = dict(state["metrics"], **self.sums.state_dict(self.world), over_ranks=True)
        return dict(state, metrics=metrics, rng_ranks=self.world.gather(ckpt.rng_state()))

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
