"""`outputs=probabilities`: for a model that ends in a softmax (Keras' `from_logits=False`).

trainwell's loss, metrics, test-time averaging and predictions all take logits. A model that already
returns probabilities is wrapped so that it returns their logarithms: log p is a valid logit vector
(softmax(log p) = p), so nothing downstream changes and the cross-entropy sees the model's own
distribution. Returning raw scores from the model is still better (log of a softmax loses precision
where a probability underflows): this is for a model one cannot or will not edit.
"""
from __future__ import annotations

import torch
from torch import nn

TINY = 1e-30  # a probability that underflowed to 0 becomes log(1e-30) = -69, not -inf


class ProbabilitiesToLogits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.model(x)
        if p.dtype not in (torch.float32, torch.float64):  # bf16/fp16 under autocast: the log wants more bits
            p = p.float()
        return p.clamp_min(TINY).log()
