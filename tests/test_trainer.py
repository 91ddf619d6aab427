"""The loop: event order, callback contract, golden values, selection, early stopping, non-finite guard."""
import inspect

import pytest
import torch

import trainwell
from trainwell.callbacks import EVENTS, Callback, EarlyStopping, Progress
from trainwell.errors import TrainingFailed


def _train(path, tmp_path, **kw):
    opts = dict(data=path, model="mlp", hidden=[16], epochs=3, batch_size=32, precision="fp32", device="cpu",
                quiet=True, out=str(tmp_path / "runs"))
    opts.update(kw)
    return trainwell.train(**opts)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name in EVENTS:
            return lambda trainer: object.__getattribute__(self, "events").append(name)
        return object.__getattribute__(self, name)


def test_event_order_of_a_short_fit(blobs_npz, tmp_path):
    rec = Recorder()
    run = _train(blobs_npz, tmp_path, epochs=2, batch_size=64, callbacks=[rec])
    steps = (len(run.history) and run.summary["sizes"]["train"] + 63) // 64
    epoch = ["on_epoch_start"] + ["on_after_backward", "on_batch_end"] * steps + ["on_validation_end", "on_epoch_end"]
    assert rec.events == ["on_fit_start"] + epoch * 2 + ["on_fit_end"]


@pytest.mark.parametrize("cls", [Callback, EarlyStopping, Progress])
def test_callback_contract_every_hook_takes_only_the_trainer(cls):
    for event in EVENTS:
        params = list(inspect.signature(getattr(cls, event)).parameters)
        assert params == ["self", "trainer"], (cls, event, params)


def test_plain_function_is_a_callback(blobs_npz, tmp_path):
    seen = []
    _train(blobs_npz, tmp_path, callbacks=[lambda t: seen.append(t.state.epoch)])
    assert seen == [1, 2, 3]


def test_golden_values_of_a_seeded_fit(blobs_npz, tmp_path):
    """If this changes, a refactor changed the numbers: check why before updating the constants."""
    torch.set_num_threads(1)
    try:
        run = _train(blobs_npz, tmp_path, epochs=2, seed=7, split_seed=7)  # the splits from before split_seed
    finally:
        torch.set_num_threads(2)
    losses = [r["train_loss"] for r in run.history]
    assert losses == pytest.approx(GOLDEN_TRAIN_LOSS, rel=1e-5)
    assert run.history[-1]["valid_loss"] == pytest.approx(GOLDEN_VALID_LOSS, rel=1e-5)


GOLDEN_TRAIN_LOSS = [1.4008846329164135, 0.7546653724456018]
GOLDEN_VALID_LOSS = 0.5591398239135742


def test_same_flags_same_history(blobs_npz, tmp_path):
    a = _train(blobs_npz, tmp_path, name="a", dropout=0.3)
    b = _train(blobs_npz, tmp_path, name="b", dropout=0.3)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("time_s", "samples_per_s")} for r in h]
    assert strip(a.history) == strip(b.history)


class Script(Callback):
    """Replaces the validation error by a scripted sequence, to drive selection and early stopping."""

    def __init__(self, values):
        self.values, self.weights = values, {}

    def on_validation_end(self, trainer):
        trainer.state.record["valid_error"] = self.values[trainer.state.epoch]

    def on_epoch_end(self, trainer):
        self.weights[trainer.state.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_early_stopping_restores_the_best_epoch(blobs_npz, tmp_path):
    script = Script([0.5, 0.3, 0.35, 0.4, 0.1, 0.1])
    run = _train(blobs_npz, tmp_path, epochs=6, patience=2, callbacks=[script])
    assert len(run.history) == 4 and run.summary["best_epoch"] == 2
    assert "early stopping" in run.summary["stop_reason"]
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, script.weights[2][k])
    assert not torch.equal(script.weights[2]["1.weight"], script.weights[4]["1.weight"])


def test_a_monitor_of_a_metric_the_record_lacks_fails_naming_the_ones_it_has():
    from trainwell.callbacks import Monitor

    with pytest.raises(trainwell.UserError, match="did you mean 'valid_error'.*available: .*valid_error"):
        Monitor("valid_acc").improved({"epoch": 1, "valid_error": 0.1, "train_loss": 1.0})


def test_a_callbacks_unknown_metric_is_refused_before_the_run_directory_exists(blobs_npz, tmp_path):
    from trainwell.callbacks import EarlyStopping

    with pytest.raises(trainwell.UserError, match="EarlyStopping: monitor valid_acc: no metric 'valid_acc'.*did you mean"):
        _train(blobs_npz, tmp_path, callbacks=[EarlyStopping(2, monitor="valid_acc")], name="bad")
    assert not (tmp_path / "runs" / "bad").exists()


def test_a_metric_a_callback_declares_may_be_monitored(blobs_npz, tmp_path):
    from trainwell.callbacks import EarlyStopping

    class Adds(Callback):
        metrics = ("valid_margin",)

        def on_validation_end(self, trainer):
            trainer.state.record["valid_margin"] = 1.0 / trainer.state.epoch if trainer.state.epoch else 1.0

    run = _train(blobs_npz, tmp_path, callbacks=[Adds(), EarlyStopping(1, monitor="valid_margin")], name="ok",
                 epochs=4)
    assert "valid_margin" in run.history[0] and "early stopping: valid_margin" in run.summary["stop_reason"]


def test_something_that_is_not_a_callback_is_refused_before_the_run_directory_exists(blobs_npz, tmp_path):
    with pytest.raises(trainwell.UserError, match="callbacks: callback 3 is neither"):
        _train(blobs_npz, tmp_path, callbacks=[3], name="bad")
    assert not (tmp_path / "runs" / "bad").exists()


class PoisonGrad(Callback):
    def __init__(self, at):
        self.at, self.before, self.after = at, None, None

    def on_after_backward(self, trainer):
        if trainer.state.step == self.at:
            self.before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            next(trainer.model.parameters()).grad[0] = float("nan")

    def on_exception(self, trainer):  # the weights as the failed run left them
        self.after = {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_non_finite_gradient_on_a_checked_step_is_caught_before_the_update(blobs_npz, tmp_path):
    from trainwell.trainer import GRAD_EVERY

    poison = PoisonGrad(at=GRAD_EVERY)  # gradients are read on this step
    with pytest.raises(TrainingFailed, match="non-finite gradient norm"):
        _train(blobs_npz, tmp_path, callbacks=[poison], name="nan", batch_size=8)
    assert poison.before is not None and poison.after is not None
    for k, v in poison.before.items():  # the poisoned update was never applied (nor any after it)
        assert torch.equal(poison.after[k], v), k


def test_non_finite_gradient_between_checks_stops_the_run_at_the_next_loss(blobs_npz, tmp_path):
    """Between gradient reads the poisoned update is applied; the next loss is NaN and stops the run,
    and the checkpoints on disk hold no non-finite tensor."""
    from trainwell import checkpoint as ckpt
    from trainwell.trainer import GRAD_EVERY

    with pytest.raises(TrainingFailed, match="non-finite loss"):
        _train(blobs_npz, tmp_path, callbacks=[PoisonGrad(at=GRAD_EVERY + 1)], name="nan2", batch_size=8,
               checkpoint_every=4)
    step, tensors, _ = ckpt.latest_checkpoint(str(tmp_path / "runs" / "nan2" / "checkpoints"))
    assert step <= GRAD_EVERY + 1 and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


class Infinite(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += self.training  # training steps only: checks and monitors also call it, in eval mode
        out = self.lin(x)
        return out * float("inf") if self.training and self.calls == 3 else out


def test_non_finite_loss_from_a_users_module_is_rolled_back_once(blobs_npz, tmp_path):
    run = _train(blobs_npz, tmp_path, model=Infinite(), name="inf", hidden=None)
    events = [e for r in run.history for e in r.get("events", [])]
    assert [e["reason"] for e in events] == ["non-finite loss"] and events[0]["failed_at_step"] == 3
    assert events[0]["step"] == 0 and events[0]["lr_factor"] == 0.5 and len(run.history) == 3


def test_non_finite_loss_stops_at_once_without_recoveries(blobs_npz, tmp_path):
    with pytest.raises(TrainingFailed, match="non-finite loss at epoch 1, step 3"):
        _train(blobs_npz, tmp_path, model=Infinite(), name="inf", recoveries=0, hidden=None)


def test_users_module_and_datasets(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    y = (x[:, 0] > 0).long()
    ds = torch.utils.data.TensorDataset(x, y)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    run = trainwell.train(model=net, data=ds, epochs=30, quiet=True, out=str(tmp_path), lr=0.1, precision="fp32")
    assert run.test_accuracy > 0.85 and run.model is net


class Improving(Callback):
    """Amends valid_error at on_validation_end to a sequence that keeps improving."""

    def __init__(self, values):
        self.values, self.seen_by_epoch_end = values, []

    def on_validation_end(self, trainer):
        trainer.state.record["valid_error"] = self.values[trainer.state.epoch]

    def on_epoch_end(self, trainer):
        self.seen_by_epoch_end.append(trainer.history[-1]["valid_error"])


def test_selection_and_early_stopping_read_the_same_amended_record(blobs_npz, tmp_path):
    """Defect 3: built-in early stopping used to read the record before a user's callback amended it.

    On these easy blobs the real validation error hits 0 at once and stays there, so early stopping on
    the real values would stop at epoch 3; on the amended values it never stops and the last epoch wins.
    """
    values = [0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    cb = Improving(values)
    run = _train(blobs_npz, tmp_path, epochs=6, patience=2, callbacks=[cb])
    assert len(run.history) == 6 and run.summary["best_epoch"] == 6
    assert run.history.column("valid_error") == values == cb.seen_by_epoch_end
    assert "completed" in run.summary["stop_reason"]


def test_early_stopping_with_its_own_monitor(blobs_npz, tmp_path):
    script = Script([0.5, 0.3, 0.35, 0.4, 0.1, 0.1])
    stop = EarlyStopping(patience=1, monitor="valid_error")
    run = _train(blobs_npz, tmp_path, epochs=6, callbacks=[script, stop])
    assert len(run.history) == 3 and "valid_error did not improve for 1 epochs" in run.summary["stop_reason"]


def test_error_ties_go_to_the_lower_loss_not_the_earliest_epoch():
    from trainwell.callbacks import Monitor

    m = Monitor("valid_error")
    picks = [m.improved({"epoch": e, "valid_error": err, "valid_loss": loss})
             for e, err, loss in [(1, 0.1, 0.9), (2, 0.1, 0.5), (3, 0.1, 0.7), (4, 0.2, 0.1), (5, 0.05, 0.8)]]
    assert picks == [True, True, False, False, True] and m.best_epoch == 5
    m = Monitor("valid_loss")  # a loss has no tie-break
    assert m.tiebreak is None
    again = Monitor("valid_error")
    again.load_state_dict(Monitor("valid_error").state_dict())
    assert again.best_tiebreak is None


def test_balanced_class_weights_are_n_over_c_times_the_class_count():
    import torch

    from trainwell.trainer import class_weights

    w = class_weights("balanced", torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(w, torch.tensor([4 / 9, 4 / 3, 4 / 3]))  # an unseen class counts as one example
    assert class_weights("none", torch.tensor([0, 1]), 2) is None


def test_a_last_batch_of_one_is_left_out_for_a_batch_norm_model(tmp_path):
    """Defect: 1,213 training examples at batch size 2 left a last batch of one, and a user's BatchNorm1d
    ended the run in a traceback ("Expected more than 1 value per channel when training")."""
    from torch import nn

    from trainwell.trainer import steps_per_epoch

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    run = trainwell.train(data="digits", model=net, limit_train=1213, batch_size=2, epochs=1, precision="fp32",
                          out=str(tmp_path), name="bn", quiet=True, monitor_every=0)
    assert run.finished and run.summary["sizes"]["train"] == 1213
    assert run.history[0]["step"] == 606  # 1,213 // 2: the one-example batch is left out
    assert steps_per_epoch(1213, 2, nn.Linear(2, 2)) == 607  # without batch norm a batch of one trains
