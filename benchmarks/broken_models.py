"""Deliberately broken models for the doctor's battery (`--model benchmarks/broken_models.py:NAME`).

Each factory takes what trainwell gives a user's model (input_shape, num_classes) and returns an nn.Module
with one classic defect from the course's "When it does not work".
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _mlp(input_shape, num_classes, hidden=(64, 64), act=nn.ReLU):
    layers, width = [nn.Flatten()], math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


def zero_init(input_shape, num_classes):
    """Every weight and bias 0: all hidden units compute the same thing forever."""
    net = _mlp(input_shape, num_classes)
    for p in net.parameters():
        nn.init.zeros_(p)
    return net


def softmax_inside(input_shape, num_classes):
    """Returns probabilities; the cross-entropy applies its own softmax on top."""
    return nn.Sequential(_mlp(input_shape, num_classes), nn.Softmax(dim=1))


class _Blind(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = _mlp(input_shape, num_classes)

    def forward(self, x):
        return self.net(torch.zeros_like(x))  # a bug: the input is replaced before it is used


def ignores_input(input_shape, num_classes):
    return _Blind(input_shape, num_classes)


class _BadReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x < 0)  # the wrong side of the kink


class _BadReLUModule(nn.Module):
    def forward(self, x):
        return _BadReLU.apply(x)


def wrong_backward(input_shape, num_classes):
    return _mlp(input_shape, num_classes, act=_BadReLUModule)


def deep_sigmoid(input_shape, num_classes):
    """Twelve sigmoid layers: each passes back at most a quarter of the gradient."""
    return _mlp(input_shape, num_classes, hidden=(32,) * 12, act=nn.Sigmoid)


def dying_relu(input_shape, num_classes):
    """A deep ReLU stack whose biases start very negative: most units never fire."""
    net = _mlp(input_shape, num_classes, hidden=(64,) * 8)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, -3.0)
    return net


# --- the kinds issue 24 found on runs the doctor had never seen (the tuning half since) ---------------------

class _MixingReshape(nn.Module):
    """Flattens with the batch and feature axes swapped: every row mixes pixels of several images."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = _mlp(input_shape, num_classes)
        self.features = math.prod(input_shape)

    def forward(self, x):
        n = x.shape[0]
        x = x.reshape(n, -1).t().reshape(n, self.features)  # a reshape where a permute was meant
        return self.net(x)


def mixing_reshape(input_shape, num_classes):
    return _MixingReshape(input_shape, num_classes)


class _BatchCentred(nn.Module):
    """Centres each input by the mean of its batch, in evaluation as well: a prediction depends on the rest."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = _mlp(input_shape, num_classes)

    def forward(self, x):
        return self.net(x - x.mean(0, keepdim=True))


def batch_centred(input_shape, num_classes):
    return _BatchCentred(input_shape, num_classes)


def frozen_but_last(input_shape, num_classes):
    """Every layer but the last has requires_grad=False (a fine-tuning recipe applied to a fresh net)."""
    net = _mlp(input_shape, num_classes, hidden=(16, 16))
    for m in list(net)[:-1]:
        for p in m.parameters():
            p.requires_grad_(False)
    return net


def relu_after_logits(input_shape, num_classes):
    """A ReLU left after the output layer: negative scores clipped to 0, their gradient gone."""
    return nn.Sequential(_mlp(input_shape, num_classes), nn.ReLU())


def bottleneck(input_shape, num_classes):
    """A 2-unit layer between two wide ones: ten classes through two numbers."""
    return _mlp(input_shape, num_classes, hidden=(256, 2, 256))


def deep_tanh(input_shape, num_classes):
    """30 tanh layers with weights N(0, 1.3^2 / fan-in): gradients grow towards the input."""
    net = _mlp(input_shape, num_classes, hidden=(64,) * 30, act=nn.Tanh)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 1.3 / math.sqrt(m.in_features))
            nn.init.zeros_(m.bias)
    return net


def tanh_unit_normal(input_shape, num_classes):
    """A tanh MLP with N(0, 1) weights (no 1/sqrt(fan-in)): most units saturate at +-1."""
    net = _mlp(input_shape, num_classes, hidden=(256, 256), act=nn.Tanh)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 1.0)
    return net


class _Detached(nn.Module):
    """`.detach()` left on the hidden features (from a feature-extraction snippet): only the last layer learns."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = _mlp(input_shape, 32, hidden=(16,))
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)).detach())


def detached(input_shape, num_classes):
    return _Detached(input_shape, num_classes)
