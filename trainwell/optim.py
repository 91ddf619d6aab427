"""Named torch.optim optimizers and learning-rate schedules, built fresh for every run.

How the names map to the lecture's update rules (tests/test_optim.py replays them by hand):
- sgd:       theta <- theta - alpha * g                      (with --batch-size 1, per-example SGD)
- momentum:  v <- g + beta * v;  theta <- theta - alpha * v   (torch SGD, dampening 0: the same rule)
- nesterov:  torch's Nesterov form: theta <- theta - alpha * (g + beta * v)
- adagrad:   gamma <- gamma + g^2;  theta <- theta - alpha * g / (sqrt(gamma) + eps).
             The lecture puts eps inside the root, sqrt(gamma + eps); torch puts it outside. With
             eps = 1e-10 the two differ only while gamma is ~0.
- rmsprop:   gamma <- beta * gamma + (1 - beta) * g^2; theta <- theta - alpha * g / (sqrt(gamma) + eps)
             (torch's `alpha` argument is the lecture's beta; eps outside the root as for adagrad)
- adam:      RMSProp with momentum and bias correction (Kingma & Ba), torch.optim.Adam.
- adamw:     Adam with decoupled weight decay.
Weight decay for all but adamw is L2 added to the gradient (torch's convention).
"""
from __future__ import annotations

import math
from typing import Callable

import torch


def build_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float,
                    fused: bool = False) -> torch.optim.Optimizer:
    """`fused` (CUDA): one kernel per step instead of one per parameter, where torch has a fused variant."""
    # Batch-norm scales/shifts and biases are not decayed: decaying them only fights normalisation.
    params = list(params)
    decay = [p for p in params if p.ndim > 1]
    rest = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    f = {"fused": True} if fused else {}
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, **f)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, **f)
    if name == "nesterov":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True, **f)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.99)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, **f)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **f)
    raise ValueError(f"unknown optimizer {name}")  # Config validation makes this unreachable


def lr_multiplier(schedule: str, total_steps: int, warmup: float, final: float) -> Callable[[int], float]:
    """Multiplier of the base learning rate at step t (0-based), for torch's LambdaLR.

    Warm-up ramps linearly from `final` to 1 over the first `warmup` fraction of the steps; then the
    schedule decays to `final` (default 0.01: the lecture's ~100x) at the last step. `onecycle` is
    warm-up + cosine with at least 15% warm-up; `constant` never decays.
    """
    total = max(1, total_steps)
    if schedule == "onecycle":
        warmup = max(warmup, 0.15)
    n_warm = int(round(warmup * total))

    def decay(p: float) -> float:  # p in [0, 1]: progress through the post-warm-up phase
        if schedule in ("onecycle", "cosine"):
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * p))
        if schedule == "linear":
            return 1 - (1 - final) * p
        if schedule == "exponential":
            return final ** p
        if schedule == "step":  # divide by 10 at 50% and 75%, and reach `final` at the end
            return 1.0 if p < 0.5 else 0.1 if p < 0.75 else final
        return 1.0

    def multiplier(t: int) -> float:
        if t < n_warm:
            return final + (1 - final) * (t + 1) / n_warm
        span = max(1, total - 1 - n_warm)
        return decay(min(1.0, (t - n_warm) / span))

    return multiplier


def build_schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int, warmup: float,
                   final: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(schedule, total_steps, warmup, final))
