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
from typing import Any, Callable

from trainwell import eager

# The one registry of optimizer names: name -> (torch.optim class name, fixed keyword arguments).
# torch is imported only when one is built, so that `trainwell --help` can list the names instantly.
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": None}),                     # None: the config's momentum
    "nesterov": ("SGD", {"momentum": None, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
    "rmsprop": ("RMSprop", {"alpha": 0.99}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
}
# The learning rate each optimizer gets when none is given: the usual safe starting points.
DEFAULT_LR = {"sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.01,
              "rmsprop": 0.001, "adam": 0.001, "adamw": 0.001}
_FUSED = ("SGD", "Adam", "AdamW")  # torch has a one-kernel-per-step variant of these on CUDA


def build_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float,
                    fused: bool = False):
    """`fused` (CUDA): one kernel per step instead of one per parameter, where torch has a fused variant."""
    import torch

    # Batch-norm scales/shifts and biases are not decayed: decaying them only fights normalisation.
    params = list(params)
    decay = [p for p in params if p.ndim > 1]
    rest = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    cls_name, fixed = OPTIMIZERS[name]
    kwargs = {k: momentum if v is None else v for k, v in fixed.items()}
    if fused and cls_name in _FUSED:
        kwargs["fused"] = True
    eager.skip_dynamo_marks(torch.optim.Optimizer)
    return _eager_step(getattr(torch.optim, cls_name)(groups, lr=lr, **kwargs))


def _eager_step(optimizer):
    """`step` as the optimizer's own method under no_grad, without torch's wrapper, whose graph break for
    torch.compile imports torch._dynamo on every call (see eager.py). The wrapper also runs step hooks:
    trainwell registers none, and where a callback has, the step goes through torch's wrapper after all."""
    import inspect
    import types

    import torch
    from torch.optim import optimizer as torch_optimizer

    wrapped = type(optimizer).step
    method = inspect.unwrap(wrapped)
    if method is wrapped:
        return optimizer

    def step(self, closure=None):
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or torch_optimizer._global_optimizer_pre_hooks or torch_optimizer._global_optimizer_post_hooks):
            return wrapped(self, closure)
        with torch.no_grad():
            return method(self, closure)

    optimizer.step = types.MethodType(step, optimizer)  # bound, as torch's LR schedulers expect to find it
    return optimizer


def _cosine(p: float, final: float) -> float:
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * p))


# The one registry of schedule names: name -> decay(p, final), the multiplier after warm-up at progress
# p in [0, 1]. "step" divides by 10 at 50% and 75% and reaches `final` at the end.
SCHEDULES: dict[str, Callable[[float, float], float]] = {
    "onecycle": _cosine,
    "cosine": _cosine,
    "linear": lambda p, final: 1 - (1 - final) * p,
    "step": lambda p, final: 1.0 if p < 0.5 else 0.1 if p < 0.75 else final,
    "exponential": lambda p, final: final ** p,
    "constant": lambda p, final: 1.0,
}


def lr_multiplier(schedule: str, total_steps: int, warmup: float, final: float) -> Callable[[int], float]:
    """Multiplier of the base learning rate at step t (0-based).

    Warm-up ramps linearly from `final` to 1 over the first `warmup` fraction of the steps; then the
    schedule decays to `final` (default 0.01: the lecture's ~100x) at the last step. `onecycle` is
    warm-up + cosine with at least 15% warm-up; `constant` never decays.
    """
    total = max(1, total_steps)
    if schedule == "onecycle":
        warmup = max(warmup, 0.15)
    n_warm = int(round(warmup * total))
    decay = SCHEDULES[schedule]

    def multiplier(t: int) -> float:
        if t < n_warm:
            return final + (1 - final) * (t + 1) / n_warm
        span = max(1, total - 1 - n_warm)
        return decay(min(1.0, (t - n_warm) / span), final)

    return multiplier


class Schedule:
    """The learning rate at every step: each group's base rate times `lr_multiplier(t)`.

    The same numbers as torch's LambdaLR with that multiplier, set with a few Python operations per step
    instead of LambdaLR's bookkeeping (2% of a small MLP's step). It starts by setting step 0's rate.
    """

    def __init__(self, optimizer, multiplier: Callable[[int], float]) -> None:
        self.optimizer, self.multiplier = optimizer, multiplier
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.t = 0
        self._apply()

    def step(self) -> None:
        self.t += 1
        self._apply()

    def _apply(self) -> None:
        m = self.multiplier(self.t)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * m

    def scale(self, factor: float) -> None:
        """Multiply every group's base rate (a divergence recovery): the schedule's shape stays, lower."""
        self.base_lrs = [b * factor for b in self.base_lrs]
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.base_lrs = state["t"], list(state["base_lrs"])
        self._apply()


def build_schedule(optimizer, schedule: str, total_steps: int, warmup: float, final: float) -> Schedule:
    return Schedule(optimizer, lr_multiplier(schedule, total_steps, warmup, final))
