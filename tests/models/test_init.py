import math

import torch
from torch import nn

from trainwell.models import build_model, initialise
from trainwell.models.init import glorot_bound


def test_glorot_uniform_bound_and_zero_biases():
    torch.manual_seed(0)
    net = initialise(nn.Sequential(nn.Linear(300, 100), nn.Tanh(), nn.Linear(100, 10)), "glorot")
    lin = net[0]
    b = math.sqrt(6) / math.sqrt(300 + 100)
    assert glorot_bound(lin.weight) == b
    assert lin.weight.abs().max() <= b and lin.weight.abs().max() > 0.95 * b
    # U[-b, b] has variance b^2 / 3
    assert abs(lin.weight.var().item() - b * b / 3) < 0.05 * b * b / 3
    assert torch.all(lin.bias == 0) and torch.all(net[2].bias == 0)


def test_glorot_conv_uses_kernel_area():
    conv = initialise(nn.Conv2d(3, 8, 3), "glorot")
    b = math.sqrt(6) / math.sqrt(3 * 9 + 8 * 9)
    assert conv.weight.abs().max() <= b


def test_dropout_is_inverted_and_off_at_eval():
    net = build_model({"name": "mlp", "kwargs": {"hidden": [1000], "dropout": 0.5}, "input_shape": [4],
                       "num_classes": 2})
    drop = net[3]
    x = torch.ones(1, 20000)
    torch.manual_seed(0)
    y = drop.train()(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0} and abs(y.mean().item() - 1) < 0.05
    assert torch.equal(drop.eval()(x), x)


def test_convnet_shapes_and_small_inputs():
    for shape in ([1, 28, 28], [3, 8, 8], [1, 3, 3]):
        net = build_model({"name": "convnet", "kwargs": {"width": 4, "depth": 3}, "input_shape": shape,
                           "num_classes": 5})
        assert net(torch.zeros(2, *shape)).shape == (2, 5)
