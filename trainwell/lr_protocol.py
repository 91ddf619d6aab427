"""The course's learning-rate protocol: "start large; halve until the loss no longer diverges", on a subset.

Each candidate rate trains a fresh copy of the prepared model for a fixed number of steps on a subset of
the training data (the run's optimizer, batch size and weight decay; a constant rate, so that the rate
alone is judged). A rate diverges when the loss goes non-finite, climbs (the divergence guard's rule), or
ends no lower than it began. The largest rate that does not diverge is the edge of stability; training at
the edge is noisy, so the recommended peak rate of the run's schedule is a fraction of it.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F

from trainwell.data.splits import take
from trainwell.divergence import Guard
from trainwell.optim import DEFAULT_LR, build_optimizer

START = 64          # the first rate tried: this many times the optimizer's default
TRIES = 12          # halvings at most (64x down to 1/32 of the default)
STEPS = 60          # steps per rate, at least ...
EXAMPLES = 1024     # ... enough to see this many examples (batch size 1: 1,024 steps)
SUBSET = 4096       # training examples the protocol draws its batches from
# The recommended peak rate, as a share of the largest stable one. benchmarks/lr_protocol.py, 4 epochs of
# Fashion-MNIST: the grid's best was 1x the edge for the default conv net (momentum, batch norm, onecycle
# warm-up) and 1/4 of it for an MLP with adam; 1/2 is within 2x of both (RESULTS.md).
RECOMMEND = 1 / 2


def lr_range(prep: Any, steps: int | None = None) -> dict[str, Any]:
    """{"largest_stable": lr, "recommended": lr, "tried": [{lr, first_loss, last_loss, diverged, why}]}.

    `prep`: a prepared.Prepared (its config, splits, model and precision); the model is copied, never trained.
    Leaves torch's global random state as it found it.
    """
    with torch.random.fork_rng():
        return _lr_range(prep, steps)


def _lr_range(prep: Any, steps: int | None) -> dict[str, Any]:
    cfg, splits = prep.config, prep.splits
    steps = steps or max(STEPS, EXAMPLES // cfg.batch_size)
    device = prep.precision.device
    n = min(SUBSET, len(splits.y_train))
    x_all = splits.preprocess.apply(take(splits.x_train, torch.arange(n))).to(device)
    y_all = splits.y_train[:n].to(device)
    bs = min(cfg.batch_size, n)
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(steps * bs // n + 1)]).to(device)
    lr = DEFAULT_LR[cfg.optimizer] * START
    tried = []
    stable = None
    for _ in range(TRIES):
        outcome = _try(prep, lr, x_all, y_all, order, bs, steps)
        tried.append({"lr": lr, **outcome})
        if not outcome["diverged"]:
            stable = lr
            break
        lr /= 2
    return {"largest_stable": stable, "recommended": stable * RECOMMEND if stable else None, "tried": tried,
            "steps_per_rate": steps, "subset": n, "optimizer": cfg.optimizer}


def describe(r: dict[str, Any]) -> str:
    """One line for `auto lr -> ...`: the pick and how it was found."""
    tried = r["tried"]
    if r["largest_stable"] is None:
        return (f"no rate from {tried[0]['lr']:.3g} down to {tried[-1]['lr']:.3g} trained on a subset "
                f"({r['subset']:,} examples); run `trainwell doctor` with these options")
    return (f"{r['recommended']:.3g}: {RECOMMEND:g} x {r['largest_stable']:.3g}, the largest {r['optimizer']} rate whose loss "
            f"did not diverge on {r['subset']:,} training examples ({r['steps_per_rate']} steps each, halving from "
            f"{tried[0]['lr']:.3g}; {len(tried)} tried)")


def _try(prep: Any, lr: float, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor, bs: int,
         steps: int) -> dict[str, Any]:
    cfg = prep.config
    torch.manual_seed(cfg.seed)
    net = copy.deepcopy(prep.model).to(prep.precision.device).train()
    opt = build_optimizer(cfg.optimizer, net.parameters(), lr, cfg.momentum, cfg.weight_decay)
    guard = Guard(prep.splits.num_classes, bs, 0)
    losses = []
    why = None
    for t in range(steps):
        idx = order[t * bs:(t + 1) * bs]
        with prep.precision.autocast():
            loss = F.cross_entropy(net(x[idx]), y[idx])
        value = loss.item()
        losses.append(value)
        why = guard.observe(value)
        if why:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    k = max(1, len(losses) // 6)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    if why is None and not last < first * 0.95:
        why = f"no progress: loss {first:.3g} -> {last:.3g}"
    return {"first_loss": _r(first), "last_loss": _r(last), "diverged": why is not None, "why": why}


def _r(v: float) -> float | None:
    return round(v, 4) if math.isfinite(v) else None
