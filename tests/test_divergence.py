"""Divergence as state: the guard's rule, rollback with a lower learning rate, events, exit 3, exact resume."""
import json
import os
import math
import random

import pytest
import torch

import trainwell
from trainwell.callbacks import Callback
from trainwell.divergence import Guard
from trainwell.errors import Interrupted, TrainingFailed
from trainwell.trainer import TIMING_KEYS


def test_guard_ignores_the_noise_of_batch_size_1():
    """Per-example losses of a healthy run: mostly small, often large. No alarm over 20,000 steps."""
    rnd = random.Random(0)
    g = Guard(num_classes=10, batch_size=1, max_recoveries=3)
    for t in range(20_000):
        mean = 2.3 * math.exp(-t / 3000) + 0.2  # a falling loss
        assert g.observe(rnd.expovariate(1 / mean)) is None, t


def test_guard_fires_on_a_climb_of_a_chance_level_loss_and_on_non_finite():
    g = Guard(num_classes=10, batch_size=128, max_recoveries=3)
    for _ in range(50):
        assert g.observe(1.5) is None
    assert g.calm
    assert g.observe(3.0) is None and not g.calm  # up, but not by ln 10 yet
    why = None
    for _ in range(5):
        why = why or g.observe(5.0)
    assert why and why.startswith("exploding loss") and "ln(10)" in why
    assert Guard(10, 128, 3).observe(float("nan")) == "non-finite loss"


def test_a_loss_that_starts_far_above_chance_may_swing_by_more_than_ln_c_but_not_by_half_of_it():
    """N(0, 1) weights into tanh units on digits: the loss starts near 21 and swung to 23.4 within four steps,
    which ln(10) = 2.3 called exploding, at every rate (the run failed; with the margin it trains to 87%)."""
    rnd = random.Random(0)
    g = Guard(num_classes=10, batch_size=32, max_recoveries=3)
    assert all(g.observe(20.9 + rnd.uniform(-4, 4)) is None for _ in range(200))
    why = None
    for _ in range(40):
        why = why or g.observe(40.0)
    assert why and why.startswith("exploding loss") and "half of it" in why


def test_guard_fires_when_a_run_that_had_learned_is_back_at_chance_level():
    g = Guard(num_classes=10, batch_size=128, max_recoveries=3)
    for _ in range(50):
        g.observe(0.4)
    why = None
    for _ in range(10):
        why = why or g.observe(2.5)
    assert why and why.startswith("loss back at chance level")
    h = Guard(num_classes=10, batch_size=128, max_recoveries=3)  # one that never learned: no rollback helps
    assert all(h.observe(2.5) is None for _ in range(50))


def test_the_cut_is_halving_then_quartering_while_the_same_state_fails():
    g = Guard(10, 32, max_recoveries=3)
    assert g.next_factor() == 0.5
    g.recovered({"step": 0, "lr_factor": 0.5})
    assert g.next_factor() == 0.25  # no calm state kept since: the same state failed again
    g.kept_calm_state()
    assert g.next_factor() == 0.5
    g.recovered({"step": 5, "lr_factor": 0.5})
    g.recovered({"step": 5, "lr_factor": 0.25})
    assert g.next_factor() is None  # three spent


def test_a_rate_that_climbed_past_the_losss_low_is_cut_back_to_the_low():
    """Warm-up: the loss stopped improving at lr 0.2 while the rate went on to 1.0, then exploded."""
    g = Guard(10, 128, max_recoveries=3)
    for t in range(100):  # improving while the rate rises to 0.2
        g.observe(2.3 - 1.8 * t / 100, lr=0.002 * (t + 1))
    why = None
    for t in range(100):  # worse and worse as it rises on to 1.0
        why = why or g.observe(0.5 + 0.05 * t, lr=0.2 + 0.008 * (t + 1))
    low = g.low_lr
    assert why and 0.2 <= low < 0.25 and abs(g.next_factor() - low / g.lr) < 1e-12 and g.next_factor() < 0.5
    g.recovered({"step": 0, "lr_factor": 0.25})
    assert abs(g.low_lr - low / 4) < 1e-12  # in the units of the scaled schedule
    flat = Guard(10, 128, max_recoveries=3)  # a constant rate: no evidence beyond "too high", so halve
    for t in range(50):
        flat.observe(1.0, lr=0.5)
    assert flat.next_factor() == 0.5
    deep = Guard(10, 128, max_recoveries=3)  # never more than 16x at once
    deep.observe(1.0, lr=0.001)
    deep.observe(1.5, lr=1.0)
    assert deep.next_factor() == 1 / 16


def _digits(tmp_path, **kw):
    opts = dict(data="digits", model="mlp", hidden=[64], epochs=4, precision="fp32", device="cpu", quiet=True,
                out=str(tmp_path / "runs"), checkpoint_every=20)
    opts.update(kw)
    return trainwell.train(**opts)


def _events(history):
    return [e for r in history for e in r.get("events", [])]


def test_a_learning_rate_20x_too_high_recovers_and_learns(tmp_path):
    """The default MLP on digits (lr 0.05): at 1.0 its loss explodes as the warm-up peaks."""
    good = _digits(tmp_path, name="good", lr=0.05, hidden=None, epochs=None)
    high = _digits(tmp_path, name="high", lr=1.0, hidden=None, epochs=None)
    events = _events(high.history)
    assert not _events(good.history) and events
    assert all(e["peak_lr"] < 1.0 and e["step"] < e["failed_at_step"] for e in events)
    assert high.test_accuracy > good.test_accuracy - 0.03
    on_disk = [json.loads(line) for line in open(f"{high.dir}/history.jsonl")]
    assert _events(on_disk) == events


def test_starting_over_then_resuming_is_bit_exact(tmp_path, monkeypatch):
    """The mechanics of a start-over (the guard's decision is tested above): step 0, the initial weights,
    the lower rate; the history is the new run's, every epoch once; the abandoned run's checkpoints go;
    an interrupted run resumes exactly."""
    from trainwell.divergence import Guard as G

    monkeypatch.setattr(G, "start_over", lambda self: True)
    whole = _digits(tmp_path, name="whole", lr=10.0, schedule="constant")
    events = _events(whole.history)
    assert events and all(e["started_over"] and e["step"] == 0 for e in events)
    assert [r["epoch"] for r in whole.history] == [1, 2, 3, 4] and whole.history[0]["lr"] < 10.0
    cut = InterruptAfterRecovery()
    with pytest.raises(Interrupted):
        _digits(tmp_path, name="cut", lr=10.0, schedule="constant", callbacks=[cut])
    steps = [int(n[5:14]) for n in os.listdir(tmp_path / "runs" / "cut" / "checkpoints") if n.endswith(".json")]
    assert cut.fired and max(steps) <= 7  # the abandoned run's checkpoints are gone
    resumed = _digits(tmp_path, name="cut", lr=10.0, schedule="constant")
    strip = [[{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in run.history] for run in (whole, resumed)]
    assert strip[0] == strip[1]
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_recovery_is_deterministic(tmp_path):
    a = _digits(tmp_path, name="a", lr=10.0, schedule="constant")
    b = _digits(tmp_path, name="b", lr=10.0, schedule="constant")
    strip = [[{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in run.history] for run in (a, b)]
    assert _events(a.history) and strip[0] == strip[1]


class InterruptAfterRecovery(Callback):
    def __init__(self):
        self.fired = False

    def on_batch_end(self, trainer):
        if trainer.rollback.guard.recoveries and trainer.state.step == trainer.rollback.guard.events[-1]["step"] + 7 and not self.fired:
            self.fired = True
            trainer.interrupt()


def test_resume_after_a_recovery_is_bit_exact(tmp_path):
    whole = _digits(tmp_path, name="whole", lr=10.0, schedule="constant")
    cut = InterruptAfterRecovery()
    with pytest.raises(Interrupted):
        _digits(tmp_path, name="cut", lr=10.0, schedule="constant", callbacks=[cut])
    resumed = _digits(tmp_path, name="cut", lr=10.0, schedule="constant")
    strip = [[{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in run.history] for run in (whole, resumed)]
    assert cut.fired and strip[0] == strip[1]
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_out_of_recoveries_exits_3_naming_them(tmp_path):
    with pytest.raises(TrainingFailed, match="after 3 recoveries"):
        _digits(tmp_path, name="boom", lr=1e30, optimizer="sgd", schedule="constant")


class PoisonOnce(Callback):
    """NaN gradients at one step, once: applied unseen when the guard reads losses in groups."""

    def __init__(self, at):
        self.at, self.done = at, False

    def on_after_backward(self, trainer):
        if trainer.state.step == self.at and not self.done:
            self.done = True
            for p in trainer.model.parameters():
                p.grad.fill_(float("nan"))


def test_losses_read_in_groups_still_roll_back_an_applied_bad_step(tmp_path, monkeypatch):
    """CUDA reads the loss every few steps: a poisoned update is applied, the next read sees NaN and
    rolls back to the last calm state; no checkpoint ever holds a non-finite tensor."""
    from trainwell import checkpoint as ckpt
    from trainwell import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "CHECK_EVERY", {"cpu": 8})
    run = _digits(tmp_path, name="grouped", callbacks=[PoisonOnce(at=45)], epochs=2)
    events = _events(run.history)
    assert len(events) == 1 and events[0]["step"] == 40 and events[0]["failed_at_step"] > 45
    folder = f"{run.dir}/checkpoints"
    step, tensors, _ = ckpt.latest_checkpoint(folder)
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
