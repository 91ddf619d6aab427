"""Test-time augmentation: predict from each image and its mirror image, and average the probabilities.

The course's ensembles average the predictions of several networks; flip averaging gets part of that
from one network trained with flipped images (`--augment flip`), for one extra forward pass. It is
used wherever a run is scored or asked for predictions: validation (so selection sees what test sees),
the test set, `evaluate`, `predict` and `ensemble`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.config import TTA_CHOICES


class FlipAverage(nn.Module):
    """Wraps a classifier; returns log of the mean of the class probabilities of x and of x mirrored left
    to right. Log-probabilities are logits to softmax, argmax and cross-entropy alike. In training mode
    the wrapped network alone is run, so a training step through the wrapper costs nothing extra."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.net(x)
        a = self.net(x).float().log_softmax(1)
        b = self.net(x.flip(-1)).float().log_softmax(1)
        return torch.logaddexp(a, b) - math.log(2)


def with_tta(net: nn.Module, tta: str) -> nn.Module:
    """`net` as it predicts under `tta` (the network itself for "none")."""
    if tta == "none":
        return net
    if tta == "flip":
        return FlipAverage(net)
    raise ValueError(f"unknown tta '{tta}'; choose one of {', '.join(c for c in TTA_CHOICES if c != 'auto')} "
                     "(auto is resolved before training)")
