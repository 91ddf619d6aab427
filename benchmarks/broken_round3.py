"""Model files for the doctor battery's third round (benchmarks/doctor.py, `ho3-` cases): bugs of kinds the
literature's collections name (AutoTrainer, DeepFD, DeepDiagnosis), written after the rules of the second round
were chosen and not looked at while changing them. Each function takes (input_shape, num_classes) and nothing
else: an option trainwell passes and the file ignores would be refused.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Net(nn.Module):
    """Two conv layers for images, or one hidden layer for vectors, then a linear layer. Like broken_heldout._Net,
    but with its ReLUs as modules (that file calls F.relu on purpose, for a bug only functional ReLUs hide)."""

    def __init__(self, input_shape, num_classes, width=16):
        super().__init__()
        self.image = len(input_shape) == 3
        if self.image:
            c, h, w = input_shape
            self.body = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), 64), nn.ReLU())
        else:
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 64), nn.ReLU())
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


class _Clamped(_Net):
    def forward(self, x):
        return self.head(self.body(x)).clamp(0, 1)  # "scores between 0 and 1", as a function call


def clamped_logits(input_shape, num_classes):
    """The logits clamped to [0, 1]: most of them stuck at a bound, where no gradient passes."""
    return _Clamped(input_shape, num_classes)


class _BatchSoftmax(_Net):
    def forward(self, x):
        h = self.body(x)
        return self.head(torch.softmax(h, dim=0) * len(h))  # normalised over dim 0, the batch, not the features


def batch_softmax(input_shape, num_classes):
    """A softmax over the wrong dimension: each example's features are divided by the rest of its batch's."""
    return _BatchSoftmax(input_shape, num_classes)


def frozen_zero_head(input_shape, num_classes):
    """The last layer zeroed and frozen (meant to be trained later): the output is its bias, whatever the input."""
    net = _Net(input_shape, num_classes)
    nn.init.zeros_(net.head.weight)
    net.head.weight.requires_grad_(False)
    return net


def constant_init(input_shape, num_classes):
    """Every weight set to the same small constant: the units of a layer start equal and stay equal."""
    net = _Net(input_shape, num_classes)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.constant_(m.weight, 0.01)
            nn.init.zeros_(m.bias)
    return net


class _LogSoftmax(_Net):
    def forward(self, x):
        return F.log_softmax(self.head(self.body(x)), dim=1)


def log_softmax_output(input_shape, num_classes):
    """Nothing wrong: log-probabilities out. Cross-entropy of log_softmax(z) is cross-entropy of z (log_softmax
    is idempotent under it), so training is unchanged; a check that flags any output function would be wrong."""
    return _LogSoftmax(input_shape, num_classes)
