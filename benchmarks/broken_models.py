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


def zero_init(input_shape, num_classes, **_):
    """Every weight and bias 0: all hidden units compute the same thing forever."""
    net = _mlp(input_shape, num_classes)
    for p in net.parameters():
        nn.init.zeros_(p)
    return net


def softmax_inside(input_shape, num_classes, **_):
    """Returns probabilities; the cross-entropy applies its own softmax on top."""
    return nn.Sequential(_mlp(input_shape, num_classes), nn.Softmax(dim=1))


class _Blind(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = _mlp(input_shape, num_classes)

    def forward(self, x):
        return self.net(torch.zeros_like(x))  # a bug: the input is replaced before it is used


def ignores_input(input_shape, num_classes, **_):
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


def wrong_backward(input_shape, num_classes, **_):
    return _mlp(input_shape, num_classes, act=_BadReLUModule)


def deep_sigmoid(input_shape, num_classes, **_):
    """Twelve sigmoid layers: each passes back at most a quarter of the gradient."""
    return _mlp(input_shape, num_classes, hidden=(32,) * 12, act=nn.Sigmoid)


def dying_relu(input_shape, num_classes, **_):
    """A deep ReLU stack whose biases start very negative: most units never fire."""
    net = _mlp(input_shape, num_classes, hidden=(64,) * 8)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, -3.0)
    return net
