"""Classification metrics, accumulated on the device; one host sync per evaluation, not per batch."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.precision import Precision


def rank_counts(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Counts of examples whose true class ranks 0, 1, 2, 3, 4, >= 5, where the rank is the number of
    other classes scoring at least as high. counts[0] = top-1 hits, counts[:5].sum() = top-5 hits. A tie
    counts against the example (bf16 logits do tie): errors are never flattered. A few small ops and no
    host sync: cheap enough for every training step."""
    ranks = ((logits >= logits.gather(1, y[:, None])).sum(dim=1) - 1).clamp_(max=5)
    return torch.bincount(ranks, minlength=6)


ACC_FIELDS = ("loss_sum", "grad_norm_sum", "grad_norm_steps")  # then 6 counts: true class ranked 0..5+
PENDING_LOGITS = 1 << 20  # logits (elements) of steps whose metrics wait to be summed together: <= 4 MB


class EpochSums:
    """The training metrics of the epoch so far, summed on the device and checkpointed with the trainer.

    Steps are summed many at a time, in a few ops: per-step ops cost a small model (a 0.7 ms MLP step) more
    than its own arithmetic. The sums are [loss sum, grad-norm sum, steps whose gradients were read, examples
    whose true class ranked 0, 1, .. 4, >= 5] in float64 (counts are exact below 2^53).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.acc = torch.zeros(len(ACC_FIELDS) + 6, dtype=torch.float64, device=self.device)
        self.seen = 0
        self.discard_pending()

    def discard_pending(self) -> None:
        """Forget the steps not yet summed (a stretch that diverged counts for nothing)."""
        self._pending: list[tuple[torch.Tensor, ...]] = []  # (logits, y, loss, grad norms) per step
        self._pending_size = 0

    def add(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor, grad_norms: torch.Tensor | None) -> None:
        self._pending.append((logits, y, loss, grad_norms))
        self._pending_size += logits.numel()
        if self._pending_size >= PENDING_LOGITS:
            self.flush()

    @torch.no_grad()
    def flush(self) -> None:
        """Fold the pending steps into the sums (exact: counts, and sums in float64)."""
        if not self._pending:
            return
        logits, y, loss, grad_norms = zip(*self._pending)
        sizes = torch.tensor([len(b) for b in y], dtype=torch.float64, device=self.acc.device)
        self.acc[len(ACC_FIELDS):] += rank_counts(torch.cat(logits), torch.cat(y))
        self.acc[0] += (torch.stack(loss).double() * sizes).sum()
        read = [g for g in grad_norms if g is not None]
        if read:
            # float32 norms summed in float64: exact, so the sum does not depend on how steps were grouped
            # (a resumed run groups them differently and must match to the bit)
            self.acc[1] += torch.linalg.vector_norm(torch.stack(read).float(), dim=1).double().sum()
            self.acc[2] += len(read)
        self.seen += sum(len(b) for b in y)
        self.discard_pending()

    def totals(self, world: Any = None) -> dict[str, float]:
        """The sums as numbers (reads the device); with a `world`, summed over its ranks."""
        self.flush()
        acc, seen = self.acc, float(self.seen)
        if world is not None:
            both = world.all_reduce(torch.cat([acc, acc.new_tensor([seen])]))
            acc, seen = both[:-1], float(both[-1])
        v = acc.tolist()
        ranks = v[len(ACC_FIELDS):]
        return {**dict(zip(ACC_FIELDS, v)), "correct1": ranks[0], "correct5": sum(ranks[:5]), "seen": seen}

    def state_dict(self, world: Any = None) -> dict[str, Any]:
        """{"acc", "seen"}: with a `world`, the sums of all its ranks (rank 0 takes them back on resume)."""
        self.flush()
        if world is None:
            return {"acc": self.acc, "seen": self.seen}
        both = world.all_reduce(torch.cat([self.acc, self.acc.new_tensor([float(self.seen)])]))
        return {"acc": both[:-1], "seen": int(both[-1])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.acc, self.seen = state["acc"].to(self.device), state["seen"]
        self.discard_pending()


@torch.no_grad()
def evaluate(model: nn.Module, x: Any, y: torch.Tensor, precision: Precision, preprocess: Any = None,
             batch_size: int | None = None, outputs: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Mean loss, top-1 error and (with more than 5 classes) top-5 error of `model` on (x, y).

    x is model inputs, or raw inputs (a tensor, array or Rows) that `preprocess` turns into them a batch
    at a time. Given an `outputs` dict, the same pass also fills it with each example's predicted class
    ("predicted") and the probability the model gave it ("confidence"), on the CPU."""
    if len(y) == 0:
        return {}
    batch_size = batch_size or eval_batch_size(x)
    was_training = model.training
    model.eval()
    dev = precision.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    counts = torch.zeros(6, dtype=torch.long, device=dev)
    predicted = labelled = None  # per-class counts of predictions and of labels
    num_classes = None
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    for i in range(0, len(y), batch_size):
        xb = prepare_batch(x[i:i + batch_size], precision, preprocess)
        yb = y[i:i + batch_size].to(dev, non_blocking=True)
        with precision.autocast():
            logits = model(xb)
        logits = logits.float()
        num_classes = logits.shape[1]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        counts += rank_counts(logits, yb)
        p, t = (torch.bincount(v, minlength=num_classes)[:num_classes] for v in (logits.argmax(1), yb))
        predicted, labelled = (p, t) if predicted is None else (predicted + p, labelled + t)
        if outputs is not None:
            conf, cls = logits.softmax(1).max(1)
            kept.append((cls.cpu(), conf.cpu()))
    model.train(was_training)
    if outputs is not None and kept:
        outputs["predicted"] = torch.cat([c for c, _ in kept])
        outputs["confidence"] = torch.cat([p for _, p in kept])
    n = len(y)
    c = counts.tolist()
    out = {"loss": loss_sum.item() / n, "error": 1 - c[0] / n}
    if num_classes is not None and num_classes > 5:
        out["top5_error"] = 1 - sum(c[:5]) / n
    if predicted is not None:  # the course's "parameters collapse": predictions fall into a few classes
        out["pred_classes"] = round(effective_classes(predicted), 3)
        out["label_classes"] = round(effective_classes(labelled), 3)
    return out


def effective_classes(counts: torch.Tensor) -> float:
    """exp(entropy) of a class histogram: C when spread evenly over C classes, 1 when all in one."""
    p = counts.double() / counts.sum().clamp(min=1)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def predict_logits(model: nn.Module, x: Any, precision: Precision, preprocess: Any = None,
                   batch_size: int | None = None) -> torch.Tensor:
    """Logits of `model` (in eval mode) on x (raw when `preprocess` is given, as in evaluate); the model is
    handed back in the mode it came in."""
    batch_size = batch_size or eval_batch_size(x)
    was_training = model.training
    model.eval()
    outs = []
    try:
        for i in range(0, len(x), batch_size):
            with precision.autocast():
                outs.append(model(prepare_batch(x[i:i + batch_size], precision, preprocess)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0)


def eval_batch_size(x: Any) -> int:
    """Large batches make evaluation fast, but a conv net's activations grow with the input: 1024 examples
    of 28x28 pixels, fewer of larger images (at 1024, one 32-channel activation of 64x64 RGB took 0.5 GiB;
    at 341 the evaluation still set the peak memory of a 64x64 RGB run)."""
    values = max(1, math.prod(x.shape[1:]))
    return max(16, min(1024, EVAL_VALUES // values))


EVAL_VALUES = 2**20  # input values per evaluation batch: 4 MiB of float32 input (1024 28x28, 85 64x64 RGB)


def prepare_batch(xb: Any, precision: Precision, preprocess: Any = None) -> torch.Tensor:
    """A batch on the device, normalised by `preprocess` (a splits.Preprocess) when given, in the layout
    the precision policy wants."""
    if isinstance(xb, np.ndarray):  # rows of a read-only array: torch wants memory it may write
        xb = torch.from_numpy(xb if xb.flags.writeable else xb.copy())
    xb = xb.to(precision.device, non_blocking=True)
    if preprocess is not None:
        xb = preprocess.apply(xb)
    if precision.channels_last and xb.ndim == 4:
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb
