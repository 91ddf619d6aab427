"""A multi-layer perceptron: [Linear -> activation -> dropout]* -> Linear."""
from __future__ import annotations

import math

from torch import nn

from trainwell.models import activation as make_activation


def mlp(input_shape: list[int], num_classes: int, hidden: list[int] | None = None, activation: str = "relu",
        dropout: float = 0.0, **_: object) -> nn.Module:
    """Hidden sizes default to [256, 128]; dropout (if > 0) follows every hidden layer."""
    hidden = [256, 128] if hidden is None else hidden
    return nn.Sequential(nn.Flatten(), *dense(math.prod(input_shape), hidden, num_classes, activation, dropout))


def dense(width: int, hidden: list[int], num_classes: int, activation: str, dropout: float) -> list[nn.Module]:
    """[Linear -> activation -> dropout] per hidden size, then the output Linear: the fully connected stack
    of the MLP, the conv net's head and the tabular model."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), make_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))  # inverted dropout: scaled at train time, identity at eval
        width = h
    layers.append(nn.Linear(width, num_classes))
    return layers
