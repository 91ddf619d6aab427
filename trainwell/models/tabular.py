"""An MLP shaped for tables, after RealMLP-TD-S (Holzmueller et al., NeurIPS 2024): a learnable scale per input
in front (each column's weight in the first layer learned apart from its mixing), then [Linear -> SELU]
x 3 at width 256, then the output layer. Its inputs are the table preprocessing's (data/tables.py: robust
scale + smooth clip, one-hot categories, missing indicators)."""
from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.models.mlp import dense


class InputScale(nn.Module):
    """x * s, one learnable s per input, starting at 1."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def tabular(input_shape: list[int], num_classes: int, hidden: list[int] | None = None, activation: str = "selu",
            dropout: float = 0.0, **_: object) -> nn.Module:
    """Hidden sizes default to [256, 256, 256]; dropout (if > 0) follows every hidden layer."""
    hidden = [256, 256, 256] if hidden is None else hidden
    width = math.prod(input_shape)
    return nn.Sequential(nn.Flatten(), InputScale(width), *dense(width, hidden, num_classes, activation, dropout))
