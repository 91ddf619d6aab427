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


def functional_softmax(input_shape, num_classes):
    return _FunctionalSoftmax(input_shape, num_classes)


def zero_init_conv(input_shape, num_classes):
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


def dropped_features(input_shape, num_classes):
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


def wrong_tanh_backward(input_shape, num_classes):
    return _TanhNet(input_shape, num_classes)


def healthy_net(input_shape, num_classes):
    """Nothing wrong: the held-out battery's healthy user model."""
    return _Net(input_shape, num_classes)


# --- held-out kinds added with the 40-kind battery (issue 24): not looked at while the rules were chosen ---

class _SigmoidOut(_Net):
    def forward(self, x):
        return torch.sigmoid(self.fc2(self.features(x)))  # per-class probabilities handed to a softmax loss


def sigmoid_output(input_shape, num_classes):
    return _SigmoidOut(input_shape, num_classes)


def frozen_by_name(input_shape, num_classes):
    """Freezes by parameter name, and the pattern matches more than meant: only the classifier trains."""
    net = _Net(input_shape, num_classes)
    for name, p in net.named_parameters():
        if not name.startswith("fc2"):
            p.requires_grad = False
    return net


class _AlwaysBatchStats(_Net):
    """Batch norm written as a function call with training=True: evaluation uses the batch's statistics."""

    def features(self, x):
        if self.image:
            x = F.max_pool2d(F.relu(F.batch_norm(self.conv1(x), None, None, training=True)), 2)
            x = F.max_pool2d(F.relu(F.batch_norm(self.conv2(x), None, None, training=True)), 2)
        else:
            x = F.batch_norm(x.flatten(1), None, None, training=True)
        return F.relu(self.fc1(x.flatten(1)))


def always_batch_stats(input_shape, num_classes):
    return _AlwaysBatchStats(input_shape, num_classes)


def exploding_init(input_shape, num_classes):
    """Every weight 5x He's scale (an init written with std=gain instead of gain/sqrt(fan_in) in spirit)."""
    net = _Net(input_shape, num_classes)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0, 5 * math.sqrt(2 / fan_in))
    return net


def dead_conv(input_shape, num_classes):
    """Biases initialised to -5 (a constant meant for another layer): the ReLUs after them never fire."""
    net = _Net(input_shape, num_classes)
    for m in (net.conv1, net.conv2, net.fc1) if net.image else (net.fc1,):
        nn.init.constant_(m.bias, -5.0)
    return net


def healthy_bn_net(input_shape, num_classes):
    """Nothing wrong: batch norm in training mode depends on the batch by design (and not in evaluation)."""
    c = input_shape[0]
    return nn.Sequential(nn.Conv2d(c, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
