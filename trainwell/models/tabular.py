"""An MLP for tables with periodic embeddings of its inputs: PLR (Gorishniy et al., "On Embeddings for Numerical
Features in Tabular Deep Learning", NeurIPS 2022), the numeric embeddings RealMLP and TabM also use.

Each input x_j becomes [x_j, ReLU(W_j [cos(2 pi c_j x_j), sin(2 pi c_j x_j)] + b_j)]: k learned frequencies c_j
per input (drawn from N(0, sigma^2)) and a small linear map of its own per input. A plain MLP draws smooth
functions of its inputs; the trees it is compared with cut each input at thresholds. The periodic features let
the MLP bend sharply along one input, which is where gradient-boosted trees beat it (benchmarks/tables.py,
tuning half: hpc_data 77.6% for the plain MLP (seeds 0, 1) -> 81.2% (seeds 0-2), nassCDS 99.1% -> 99.6%).
Its inputs are the table preprocessing's (data/tables.py: robust scale + smooth clip to about [-3, 3], one-hot
categories, missing indicators); a table's numbers are embedded; its missing indicators and one-hot slots pass
as they are.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.models.mlp import dense

FREQUENCIES = 16   # k per input
EMBEDDING = 8      # the width of each input's embedding
SIGMA = 1.0        # the frequencies' spread: 0.3 and 3.0 measured below 1.0 on hpc_data (seed 0: 79.9, 81.6, 82.1%)


class Periodic(nn.Module):
    """(batch, n) -> (batch, n + m * d): every input, then the periodic embeddings of the first m."""

    def __init__(self, m: int, k: int = FREQUENCIES, d: int = EMBEDDING, sigma: float = SIGMA) -> None:
        super().__init__()
        self.m = m
        self.frequency = nn.Parameter(torch.randn(m, k) * sigma)
        self.weight = nn.Parameter(torch.randn(m, 2 * k, d) / math.sqrt(2 * k))
        self.bias = nn.Parameter(torch.zeros(m, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * self.frequency * x[:, :self.m, None]                # (batch, m, k)
        z = torch.cat([torch.cos(z), torch.sin(z)], -1)                       # (batch, m, 2k)
        e = torch.relu(torch.einsum("bnk,nkd->bnd", z, self.weight) + self.bias)
        return torch.cat([x, e.flatten(1)], 1)


def tabular(input_shape: list[int], num_classes: int, hidden: list[int] | None = None, activation: str = "relu",
            dropout: float = 0.0, embed: int | None = None, **_: object) -> nn.Module:
    """Hidden sizes default to the MLP's [256, 128]; dropout (if > 0) follows every hidden layer. `embed`: how many
    leading inputs get an embedding (a table's numbers, which its preprocessing puts first: prepared.py passes
    their count; their missing indicators and the one-hot slots of categories are 0/1 already, and an embedding
    of a 0/1 input is two learned vectors the first layer has anyway); None: every input."""
    hidden = [256, 128] if hidden is None else hidden
    n = math.prod(input_shape)
    m = n if embed is None else min(embed, n)
    head = [Periodic(m)] if m else []
    return nn.Sequential(nn.Flatten(), *head, *dense(n + m * EMBEDDING, hidden, num_classes, activation, dropout))
