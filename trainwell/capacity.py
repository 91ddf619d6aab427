"""Capacity: the numbers to reason about a model's size (the course: "network is underperforming: compute
FLOPs and number of parameters; if too small, make the net larger").

Per top-level layer: output shape, parameters, forward FLOPs (counted by torch.utils.flop_counter, so a
multiply-add is 2 FLOPs and element-wise work is not counted); the training FLOPs of one example
(forward + backward, counted the same way); and an epoch time measured over a few real training steps
on this device. `measure()` returns it as plain data: `trainwell summary` prints it (summary.py) and the
doctor's cost finding quotes it.
"""
from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode  # the mode that counts

from trainwell import checkpoint, eager
from trainwell.models import count_params
from trainwell.trainer import Trainer

eager.skip_dynamo_marks(_FlopCounterMode)  # counting FLOPs imported torch._dynamo: 1.3 s (eager.py)


def layer_table(model: nn.Module, input_shape: list[int]) -> list[dict[str, Any]]:
    """One row per top-level child of `model`, in the order they run: name, type, output shape (without
    the batch), parameters, forward FLOPs for one example."""
    device = next(model.parameters()).device
    outputs: dict[str, list[int]] = {}
    order: list[str] = []

    def hook(name: str):
        def record(_module: nn.Module, _inputs: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                outputs[name] = list(out.shape[1:])
            order.append(name)
        return record

    children = dict(model.named_children())
    handles = [m.register_forward_hook(hook(n)) for n, m in children.items()]
    counter = FlopCounterMode(display=False)
    was = model.training
    try:
        model.eval()
        with counter, torch.no_grad():
            model(torch.zeros([1, *input_shape], device=device))
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    names = list(dict.fromkeys(order)) + [n for n in children if n not in order]  # run order, then unused
    return [{"layer": n, "type": type(children[n]).__name__, "output": outputs.get(n),
             "params": count_params(children[n]),
             "flops": int(sum(per_module.get(f"{root}.{n}", {}).values()))} for n in names]


def forward_flops(model: nn.Module, input_shape: list[int]) -> int:
    """Forward FLOPs of one example."""
    was = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with counter, torch.no_grad():
            model(torch.zeros([1, *input_shape], device=next(model.parameters()).device))
    finally:
        model.train(was)
    return int(counter.get_total_flops())


def training_flops(model: nn.Module, input_shape: list[int], num_classes: int) -> int:
    """Forward + backward FLOPs of one example in training mode (a batch of 2, halved: batch norm needs 2)."""
    device = next(model.parameters()).device
    x = torch.randn([2, *input_shape], device=device)
    y = torch.arange(2, device=device) % num_classes
    was = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.train()
        with counter:
            nn.functional.cross_entropy(model(x), y).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was)
    return int(counter.get_total_flops()) // 2


def measure_step_s(trainer: Any, steps: int = 5, warmup: int = 2) -> float:
    """Seconds per training step of `trainer`, the median of `steps` timed steps after `warmup` ones."""
    epoch, batches = 0, trainer.batches(0)
    times = []
    for i in range(warmup + steps):
        try:
            xb, yb = next(batches)
        except StopIteration:  # a small data set: carry on into the next epoch's batches
            epoch += 1
            batches = trainer.batches(epoch)
            xb, yb = next(batches)
        t = time.perf_counter()
        trainer.train_step(xb, yb)
        if trainer.precision.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def epochs_within(budget_s: float, model: nn.Module, splits: Any, config: Any, precision: Any,
                  steps: int = 5) -> tuple[int, float]:
    """(epochs, seconds per epoch) of training + validation that fit `budget_s` on this device, timed over
    a few steps of a copy of `model`: the run's own weights and random state are left as they were."""
    rng = checkpoint.rng_state()
    trainer = Trainer(copy.deepcopy(model), splits.without_test(), config, precision)
    step_s = measure_step_s(trainer, steps=steps)
    if step_s < 0.05:  # fast steps run slow at first: time about a second of them (an MLP's estimate was 2.4x)
        step_s = measure_step_s(trainer, steps=min(200, int(1.0 / step_s)), warmup=0)
    checkpoint.set_rng_state(rng)
    # validation runs forward only: about a third of a training step per example
    epoch_s = step_s * trainer.state.steps_per_epoch + step_s / 3 * len(splits.y_valid) / config.batch_size
    return max(1, int(budget_s // epoch_s)), epoch_s


def measure(model: nn.Module, splits: Any, config: Any, precision: Any, steps: int = 5) -> dict[str, Any]:
    """Size, FLOPs and measured step time of `model` trained as `config` says, on a copy of it: the
    model's weights and torch's random state are left as they were."""
    shape, classes = list(splits.preprocess.shape), splits.num_classes
    rng = checkpoint.rng_state()
    net = copy.deepcopy(model)
    layers = layer_table(net, shape)
    forward = forward_flops(net, shape)
    train = training_flops(net, shape, classes)
    trainer = Trainer(net, splits.without_test(), config, precision)
    step_s = measure_step_s(trainer, steps=steps)
    checkpoint.set_rng_state(rng)
    n = len(splits.y_train)
    return {
        "input_shape": shape, "num_classes": classes, "layers": layers,
        "params": count_params(model), "trainable_params": count_params(model, trainable=True),
        "forward_flops": forward, "train_flops_per_example": train, "train_examples": n,
        "train_flops_per_epoch": train * n, "batch_size": config.batch_size,
        "steps_per_epoch": trainer.state.steps_per_epoch, "step_s": step_s,
        "samples_per_s": config.batch_size / step_s,
        "epoch_s": step_s * trainer.state.steps_per_epoch, "measured_steps": steps,
        "precision": precision.to_dict(),
    }
