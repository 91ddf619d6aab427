"""The optimizer names mean the lecture's update rules: replay a few steps by hand and compare."""
import math

import pytest
import torch

from trainwell.optim import build_optimizer, lr_multiplier

GRADS = [torch.tensor([0.5, -1.0, 2.0]), torch.tensor([-0.3, 0.2, 1.0]), torch.tensor([1.5, 0.0, -0.7])]


def _replay(name, lr=0.1, momentum=0.9):
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0, -1.0]))
    opt = build_optimizer(name, [p], lr=lr, momentum=momentum, weight_decay=0.0)
    out = []
    for g in GRADS:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    return out


def test_sgd():
    theta = torch.tensor([1.0, 2.0, -1.0])
    for g, got in zip(GRADS, _replay("sgd")):
        theta = theta - 0.1 * g
        assert torch.allclose(got, theta)


def test_momentum_is_heavy_ball_of_the_lecture():
    theta, v = torch.tensor([1.0, 2.0, -1.0]), torch.zeros(3)
    for g, got in zip(GRADS, _replay("momentum")):
        v = g + 0.9 * v                 # v <- g + beta v
        theta = theta - 0.1 * v         # theta <- theta - alpha v
        assert torch.allclose(got, theta)


def test_nesterov():
    theta, v = torch.tensor([1.0, 2.0, -1.0]), torch.zeros(3)
    for g, got in zip(GRADS, _replay("nesterov")):
        v = g + 0.9 * v
        theta = theta - 0.1 * (g + 0.9 * v)
        assert torch.allclose(got, theta)


def test_adagrad_eps_outside_the_root():
    theta, gamma = torch.tensor([1.0, 2.0, -1.0]), torch.zeros(3)
    for g, got in zip(GRADS, _replay("adagrad")):
        gamma = gamma + g * g
        theta = theta - 0.1 * g / (gamma.sqrt() + 1e-10)
        assert torch.allclose(got, theta)


def test_rmsprop():
    theta, gamma = torch.tensor([1.0, 2.0, -1.0]), torch.zeros(3)
    for g, got in zip(GRADS, _replay("rmsprop", lr=0.01)):
        gamma = 0.99 * gamma + 0.01 * g * g
        theta = theta - 0.01 * g / (gamma.sqrt() + 1e-8)
        assert torch.allclose(got, theta, atol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam(name):
    theta, m, v = torch.tensor([1.0, 2.0, -1.0]), torch.zeros(3), torch.zeros(3)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    for t, (g, got) in enumerate(zip(GRADS, _replay(name, lr=lr)), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        assert torch.allclose(got, theta, atol=1e-6)


def test_weight_decay_skips_biases_and_norms():
    w = torch.nn.Parameter(torch.ones(2, 2))
    b = torch.nn.Parameter(torch.ones(2))
    opt = build_optimizer("sgd", [w, b], lr=0.1, momentum=0.0, weight_decay=0.5)
    w.grad, b.grad = torch.zeros(2, 2), torch.zeros(2)
    opt.step()
    assert torch.allclose(w, torch.full((2, 2), 0.95)) and torch.allclose(b, torch.ones(2))


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "linear", "step", "exponential"])
def test_schedules_decay_about_100x(schedule):
    f = lr_multiplier(schedule, total_steps=1000, warmup=0.0, final=0.01)
    peak = max(f(t) for t in range(1000))
    assert peak == pytest.approx(1.0, rel=1e-3)
    assert f(999) == pytest.approx(0.01, rel=1e-6)


def test_constant_and_warmup():
    f = lr_multiplier("constant", 100, warmup=0.1, final=0.01)
    assert f(0) < 0.2 and f(9) == pytest.approx(1.0) and f(99) == 1.0
    g = lr_multiplier("onecycle", 100, warmup=0.0, final=0.01)  # one-cycle always warms up
    assert g(0) < g(14) and math.isclose(g(14), 1.0)


def test_schedule_sets_the_same_rates_as_torch_lambdalr_and_resumes():
    from trainwell.optim import Schedule

    mult = lr_multiplier("onecycle", total_steps=50, warmup=0.15, final=0.01)
    ours = build_optimizer("momentum", [torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))],
                           lr=0.05, momentum=0.9, weight_decay=5e-4)
    theirs = build_optimizer("momentum", [torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))],
                             lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched, ref = Schedule(ours, mult), torch.optim.lr_scheduler.LambdaLR(theirs, mult)
    for t in range(50):
        assert [g["lr"] for g in ours.param_groups] == pytest.approx([g["lr"] for g in theirs.param_groups], rel=1e-12)
        sched.step()
        theirs.step()
        ref.step()
    again = Schedule(ours, mult)
    again.load_state_dict(sched.state_dict())
    assert again.t == 50 and ours.param_groups[0]["lr"] == pytest.approx(0.05 * mult(50))


def test_training_and_counting_flops_never_import_torch_dynamo():
    """torch._dynamo costs 1.3 s to import and nothing here compiles (trainwell/eager.py): a fresh process that
    builds, steps, saves and reloads every optimizer, and counts a model's FLOPs, must not import it."""
    import subprocess
    import sys

    code = """
import sys, torch
from torch import nn
from trainwell.optim import OPTIMIZERS, build_optimizer
from trainwell.capacity import forward_flops, training_flops
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
for name in OPTIMIZERS:
    opt = build_optimizer(name, net.parameters(), 0.01, 0.9, 1e-4)
    nn.functional.cross_entropy(net(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1])).backward()
    opt.step()
    opt.zero_grad()
    opt.load_state_dict(opt.state_dict())
assert forward_flops(net, [4]) > 0 and training_flops(net, [4], 3) > 0
assert "torch._dynamo" not in sys.modules, "torch._dynamo was imported"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-800:]


def test_a_step_hook_still_runs_through_the_eager_step():
    """The eager step skips torch's wrapper (trainwell/eager.py), but a hook someone registers still runs."""
    import torch

    p = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer("sgd", [p], lr=0.1, momentum=0.0, weight_decay=0.0)
    seen = []
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(1))
    p.grad = torch.ones(3)
    opt.step()
    assert seen == [1] and torch.allclose(p.detach(), torch.full((3,), 0.9))
