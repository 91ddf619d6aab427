"""Broken models written another way than `broken_models.py`, for the doctor's held-out battery
(`python benchmarks/doctor.py --battery heldout`): conv nets as well as MLPs, functional calls instead of
modules, other data. The doctor's rules were not tuned on these.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Net(nn.Module):
    """A small conv net for images, an MLP for vectors, with its forward written out by hand."""

    def __init__(self, input_shape, num_classes, width=16):
        super().__init__()
        self.image = len(input_shape) == 3
        if self.image:
            c, h, w = input_shape
            self.conv1 = nn.Conv2d(c, width, 3, padding=1)
            self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
            features = 2 * width * (h // 4) * (w // 4)
        else:
            features = math.prod(input_shape)
        self.fc1 = nn.Linear(features, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def features(self, x):
        if self.image:
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(self.features(x))


class _FunctionalSoftmax(_Net):
    def forward(self, x):
        return F.softmax(self.fc2(self.features(x)), dim=-1)  # probabilities out, via a function call


def functional_softmax(input_shape, num_classes, **_):
    return _FunctionalSoftmax(input_shape, num_classes)


def zero_init_conv(input_shape, num_classes, **_):
    """Every parameter 0 (a typo'd init loop): all units of a layer stay the same unit."""
    net = _Net(input_shape, num_classes)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    return net


class _ConstantOut(_Net):
    def forward(self, x):
        h = self.features(x)
        return self.fc2(h * 0 + h.mean().detach() * 0)  # a leftover debugging line zeroes the features


def dropped_features(input_shape, num_classes, **_):
    return _ConstantOut(input_shape, num_classes)


class _HalfGradTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y)  # should be 1 - y**2


class _TanhNet(_Net):
    def features(self, x):
        if self.image:
            x = F.max_pool2d(_HalfGradTanh.apply(self.conv1(x)), 2)
            x = F.max_pool2d(_HalfGradTanh.apply(self.conv2(x)), 2)
        return _HalfGradTanh.apply(self.fc1(x.flatten(1)))


def wrong_tanh_backward(input_shape, num_classes, **_):
    return _TanhNet(input_shape, num_classes)


def healthy_net(input_shape, num_classes, **_):
    """Nothing wrong: the held-out battery's healthy user model."""
    return _Net(input_shape, num_classes)
