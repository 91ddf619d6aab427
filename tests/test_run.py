"""run.py: prepare / fit / finish apart, the run directory reader, validation before anything is written."""
import os

import numpy as np
import pytest
import torch

import trainwell
from trainwell import rundir
from trainwell.cli import main
from trainwell.prepared import prepare
from trainwell.run import finish, fit


def _opts(path, tmp_path, **kw):
    o = dict(data=path, hidden=[16], epochs=2, batch_size=32, precision="fp32", device="cpu",
             out=str(tmp_path / "runs"))
    o.update(kw)
    return o


def test_prepare_writes_nothing_fit_never_sees_the_test_set_finish_tests_once(blobs_npz, tmp_path):
    prep = prepare(**_opts(blobs_npz, tmp_path, name="p"))
    assert not os.path.exists(prep.dir)
    trainer = fit(prep, quiet=True)
    assert len(trainer.splits.y_test) == 0 and len(prep.splits.y_test) > 0
    assert not rundir.is_finished(prep.dir) and os.path.isfile(rundir.path(prep.dir, rundir.HISTORY))
    run = finish(prep, trainer, quiet=True)
    assert run.finished and run.summary["sizes"]["test"] == len(prep.splits.y_test)
    back = trainwell.load_run(prep.dir)
    assert type(back) is type(run) and back.summary == run.summary and back.history.records == run.history.records
    assert back.classes == run.classes and back.config == run.config


def test_monitor_top5_on_three_classes_is_refused_before_the_run_directory_exists(tmp_path, capsys):
    """Defect 2: this used to end with a KeyError traceback after a whole epoch."""
    rng = np.random.default_rng(0)
    path = tmp_path / "three.csv"
    rows = ["a,b,label"] + [f"{rng.normal():.3f},{rng.normal():.3f},{c}" for c in ["x", "y", "z"] * 20]
    path.write_text("\n".join(rows) + "\n")
    code = main(["train", "--data", str(path), "--monitor", "valid_top5_error", "--out", str(tmp_path / "runs"),
                 "--name", "m", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "valid_top5_error" in err and "valid_error" in err  # names what is available
    assert not os.path.exists(tmp_path / "runs" / "m")


def test_monitor_without_a_validation_split_is_refused(blobs_npz, tmp_path):
    with pytest.raises(trainwell.UserError, match="no metric 'valid_loss'.*train_loss"):
        prepare(**_opts(blobs_npz, tmp_path, valid_fraction=0.0, monitor="valid_loss"))
    prep = prepare(**_opts(blobs_npz, tmp_path, valid_fraction=0.0))  # auto: train_loss
    assert trainwell.Trainer.selection_metric(prep.config, prep.splits) == "train_loss"


class _Pretrained(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 3)
        with torch.no_grad():
            self.lin.weight.fill_(0.125)
            self.lin.bias.fill_(0.5)

    def forward(self, x):
        return self.lin(x)


def test_a_users_module_keeps_its_weights_unless_asked(blobs_npz, tmp_path):
    """Defect 4: a user's pretrained nn.Module used to be re-initialised with Glorot."""
    net = _Pretrained()
    prep = prepare(model=net, **_opts(blobs_npz, tmp_path, hidden=None))
    assert prep.model is net and prep.config.init == "default"
    assert torch.all(net.lin.weight == 0.125) and torch.all(net.lin.bias == 0.5)
    net2 = _Pretrained()
    prepare(model=net2, init="glorot", **_opts(blobs_npz, tmp_path, hidden=None))
    assert not torch.all(net2.lin.weight == 0.125) and torch.all(net2.lin.bias == 0)


def test_read_run_of_a_damaged_directory_is_one_clear_error(blobs_npz, tmp_path):
    run = trainwell.train(quiet=True, **_opts(blobs_npz, tmp_path, name="d"))
    with open(rundir.path(run.dir, rundir.HISTORY), "a") as f:
        f.write("{not json\n")
    with pytest.raises(trainwell.UserError, match="history.jsonl: not valid JSON"):
        rundir.read_run(run.dir)


def test_a_resumed_run_keeps_what_auto_chose_and_why(blobs_npz, tmp_path):
    from trainwell.errors import Interrupted
    from trainwell.callbacks import Callback

    class Stop(Callback):
        def on_batch_end(self, trainer):
            if trainer.state.step == 3:
                trainer.interrupt()

    o = dict(data=blobs_npz, precision="fp32", device="cpu", out=str(tmp_path / "runs"), name="r", quiet=True,
             epochs=3)
    with pytest.raises(Interrupted):
        trainwell.train(callbacks=[Stop()], **o)
    first = rundir.read_run(str(tmp_path / "runs" / "r")).env
    assert "mlp" in first["auto"]["model"] and "batch_size" in first["auto"]
    run = trainwell.train(**o)
    assert run.env["auto"] == first["auto"] and run.env["started"] == first["started"] and "resumed" in run.env
    assert run.config.model == "mlp" and run.config.batch_size == 32


def test_public_names_stay_the_functions_after_their_modules_are_imported():
    """A public function named like its own module would turn into the module on the second access."""
    import importlib

    for name in trainwell.__all__:
        first = getattr(trainwell, name)
        importlib.import_module(trainwell._WHERE[name])
        assert getattr(trainwell, name) is first, name


def test_a_time_budget_stops_training_once_spent(tmp_path):
    run = trainwell.train(data="digits", model="mlp", epochs=50, time_budget=1e-6, out=str(tmp_path), name="b",
                          quiet=True)
    assert run.summary["epochs_run"] == 1 and "time budget of 1e-06 s spent after 1 epochs" in run.summary["stop_reason"]
    assert run.finished and run.config.epochs == 50  # the schedule was the one asked for


def test_auto_epochs_fit_the_time_budget(tmp_path):
    """The epochs are the budget over a measured epoch time (a digits MLP epoch: ~0.1 s idle, 4 s on a loaded
    machine): a budget shorter than any epoch still runs one; a long one gets many."""
    small = prepare(data="digits", model="mlp", time_budget=1e-3, out=str(tmp_path))
    large = prepare(data="digits", model="mlp", time_budget=600.0, out=str(tmp_path))
    assert small.config.epochs == 1 and large.config.epochs > 20
    assert "time budget" in large.choices["epochs"]
    assert prepare(data="digits", model="mlp", time_budget=600.0, epochs=3, out=str(tmp_path)).config.epochs == 3
    # measuring leaves the run's random state alone: the same model weights as without a budget
    plain = prepare(data="digits", model="mlp", out=str(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(large.model.state_dict().values(), plain.model.state_dict().values()))
    trainer = fit(small, quiet=True)
    assert len(trainer.history) == 1  # the one epoch, then the spent budget stops it


def test_model_options_the_model_would_ignore_are_refused(blobs_npz, tmp_path, capsys):
    """No option that silently does nothing: --dropout with your own nn.Module, --width with an MLP."""
    from trainwell.cli import main

    with pytest.raises(trainwell.UserError, match="--dropout: your _Pretrained is built already and would ignore it"):
        prepare(model=_Pretrained(), **_opts(blobs_npz, tmp_path, hidden=None, dropout=0.5))
    code = main(["train", "--data", blobs_npz, "--model", "mlp", "--width", "8", "--out", str(tmp_path), "--name", "w"])
    err = capsys.readouterr().err
    assert code == 2 and "--width: model mlp does not take it (it takes --activation, --dropout, --hidden)" in err
    assert not (tmp_path / "w").exists()


def test_a_model_files_function_gets_the_options_it_takes_and_refuses_the_others(blobs_npz, tmp_path):
    (tmp_path / "net.py").write_text(
        "from torch import nn\n"
        "def small(input_shape, num_classes, dropout=0.0):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], 16), nn.ReLU(), nn.Dropout(dropout),\n"
        "                         nn.Linear(16, num_classes))\n")
    ref = f"{tmp_path / 'net.py'}:small"
    prep = prepare(model=ref, **_opts(blobs_npz, tmp_path, hidden=None, dropout=0.3))
    assert [m.p for m in prep.model.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]
    assert prep.spec["kwargs"] == {"dropout": 0.3}  # model.json rebuilds it with the option
    with pytest.raises(trainwell.UserError, match=r"--hidden: model .*net.py:small does not take it \(it takes --dropout\)"):
        prepare(model=ref, **_opts(blobs_npz, tmp_path))
