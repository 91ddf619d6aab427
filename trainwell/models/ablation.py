"""Ablation: take named layers out of a sequential model and fix up the shapes after them.

The course's AlexNet experiment (remove a layer, retrain, compare). A removed layer's successors that no
longer fit their input (a convolution's input channels, a linear layer's input features, a batch norm's
channels) are rebuilt with the same output size and hyper-parameters and fresh weights.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from trainwell.errors import UserError


def remove_layers(model: nn.Module, names: list[str], input_shape: list[int], num_classes: int) -> nn.Sequential:
    if not isinstance(model, nn.Sequential):
        raise UserError(f"--remove: only models built as a sequence of named layers can be ablated, not "
                        f"{type(model).__name__}")
    layers = OrderedDict(model.named_children())
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise UserError(f"--remove {','.join(unknown)}: no such layer; the layers are {', '.join(layers)}")
    kept = OrderedDict((n, m) for n, m in layers.items() if n not in names)
    x = torch.zeros(2, *input_shape)
    with torch.no_grad():
        for name, layer in kept.items():
            fitted = _fit(layer, x)
            if fitted is None:
                raise UserError(f"--remove {','.join(names)}: layer {name} ({type(layer).__name__}) no longer fits "
                                f"its input of shape {list(x.shape[1:])}; remove it too, or other layers")
            kept[name] = fitted
            x = fitted.eval()(x)
    if x.ndim != 2 or x.shape[1] != num_classes:
        raise UserError(f"--remove {','.join(names)}: the model would output shape {list(x.shape[1:])}, not "
                        f"{num_classes} class scores; keep the last layer")
    return nn.Sequential(kept)


def _fit(layer: nn.Module, x: torch.Tensor) -> nn.Module | None:
    """`layer`, or a fresh one of the same kind rebuilt for the input `x`; None when neither fits."""
    if isinstance(layer, nn.Conv2d) and layer.in_channels != x.shape[1]:
        return nn.Conv2d(x.shape[1], layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, 1, layer.bias is not None)
    if isinstance(layer, nn.Linear) and layer.in_features != x.shape[-1]:
        return nn.Linear(x.shape[-1], layer.out_features, layer.bias is not None)
    if isinstance(layer, nn.BatchNorm2d) and layer.num_features != x.shape[1]:
        return nn.BatchNorm2d(x.shape[1])
    try:
        layer.eval()(x)
    except RuntimeError:
        return None
    return layer
