"""trainwell search end to end on digits: each sampler, pruning, the test set read once, resuming, workers."""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import trainwell
from trainwell import rundir
from trainwell.errors import UserError

BASE = dict(data="digits", model="mlp", hidden=[32], epochs=2, precision="fp32", device="cpu", tta="none",
            monitor_every=0, quiet=True)
SPACE = {"lr": {"low": 0.02, "high": 0.3, "log": True}, "optimizer": ["momentum", "adam"],
         "momentum": {"low": 0.8, "high": 0.95, "if": {"optimizer": "momentum"}}}


def _study(result) -> dict:
    with open(os.path.join(result.dir, "study.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("sampler", ["random", "bayes"])
def test_samplers_finish_the_trials_and_test_the_best_once(tmp_path, monkeypatch, sampler):
    import trainwell.run as run

    looks = []
    real = run._score_test
    monkeypatch.setattr(run, "_score_test", lambda *a, **k: looks.append(1) or real(*a, **k))
    r = trainwell.search(SPACE, sampler=sampler, trials=5, pruner="none", out=str(tmp_path), **BASE)
    assert len(r.trials) == 5 and all(t["state"] == "complete" for t in r.trials)
    assert r.best_value == min(t["value"] for t in r.trials)
    for t in r.trials:  # conditional: momentum only where the optimizer has one
        assert ("momentum" in t["params"]) == (t["params"]["optimizer"] == "momentum")
        assert 0.02 <= t["params"]["lr"] <= 0.3
    assert len(looks) == 1, "the test set is scored once per study"
    finished = [d for d in os.listdir(tmp_path / r.study / "trials") if rundir.is_finished(tmp_path / r.study / "trials" / d)]
    assert finished == [f"{r.best_trial:04d}"]  # only the chosen trial has test results
    assert r.test_accuracy == rundir.read_run(r.run_dir).summary["test_accuracy"] > 0.8
    assert os.path.realpath(tmp_path / r.study / "best") == os.path.realpath(r.run_dir)
    assert _study(r)["best_trial"] == r.best_trial
    # rerunning the same search resumes it: nothing new runs, nothing is tested again
    again = trainwell.search(SPACE, sampler=sampler, trials=5, pruner="none", out=str(tmp_path), **BASE)
    assert again.best_trial == r.best_trial and len(again.trials) == 5 and len(looks) == 1


def test_final_retrains_the_choice_on_train_and_validation_and_tests_only_that(tmp_path, monkeypatch):
    import trainwell.run as run

    looks = []
    real = run._score_test
    monkeypatch.setattr(run, "_score_test", lambda *a, **k: looks.append(1) or real(*a, **k))
    r = trainwell.search({"lr": [0.05, 0.2]}, sampler="grid", final=True, out=str(tmp_path), **{**BASE, "epochs": 3})
    assert os.path.basename(r.run_dir) == "final" and len(looks) == 1
    final = rundir.read_run(r.run_dir)
    best = next(t for t in r.trials if t["number"] == r.best_trial)
    assert final.config.valid_fraction == 0.0 and final.config.epochs == best["best_epoch"]
    assert final.config.lr == best["params"]["lr"]
    trial = rundir.read_selected(os.path.join(r.dir, best["run"]))["sizes"]
    assert final.summary["sizes"]["train"] == trial["train"] + trial["valid"] and final.summary["sizes"]["valid"] == 0
    assert not any(rundir.is_finished(tmp_path / r.study / "trials" / d) for d in os.listdir(tmp_path / r.study / "trials"))


def test_a_finite_space_smaller_than_the_trials_runs_each_combination_once(tmp_path, capsys):
    r = trainwell.search({"hidden": ["16", "32"]}, sampler="bayes", trials=5, out=str(tmp_path),
                         **{**BASE, "hidden": None})
    assert sorted(t["params"]["hidden"] for t in r.trials) == ["16", "32"]
    assert "only 2 combinations" in capsys.readouterr().err


def test_grid_runs_every_point_once(tmp_path):
    space = {"lr": [0.03, 0.1], "hidden": ["16", "32"]}
    r = trainwell.search(space, sampler="grid", out=str(tmp_path), **{**BASE, "hidden": None})
    points = sorted((t["params"]["lr"], t["params"]["hidden"]) for t in r.trials)
    assert points == [(0.03, "16"), (0.03, "32"), (0.1, "16"), (0.1, "32")]
    assert set(r.importances) <= {"lr", "hidden"}


def test_pruning_stops_bad_trials(tmp_path):
    # four good rates first (the median's start-up), then two hopeless ones: those stop after an epoch or two
    space = {"lr": [0.05, 0.1, 0.15, 0.2, 1e-6, 2e-6]}
    r = trainwell.search(space, sampler="grid", pruner="median", out=str(tmp_path), **{**BASE, "epochs": 6})
    by_lr = {t["params"]["lr"]: t for t in r.trials}
    for lr in (1e-6, 2e-6):
        assert by_lr[lr]["state"] == "pruned" and by_lr[lr]["epochs"] < 6
    assert all(by_lr[lr]["state"] == "complete" and by_lr[lr]["epochs"] == 6 for lr in (0.05, 0.1, 0.15, 0.2))
    pruned_dir = os.path.join(r.dir, by_lr[1e-6]["run"])
    assert not rundir.is_finished(pruned_dir)  # a pruned trial is never tested


def test_a_study_started_otherwise_is_not_resumed(tmp_path):
    trainwell.search({"lr": [0.05, 0.1]}, sampler="grid", study="s", out=str(tmp_path), **BASE)
    with pytest.raises(UserError, match="started with other base"):
        trainwell.search({"lr": [0.05, 0.1]}, sampler="grid", study="s", out=str(tmp_path), **{**BASE, "epochs": 3})


def test_bad_input_one_line(tmp_path):
    with pytest.raises(UserError, match="lr: both fixed"):
        trainwell.search({"lr": [0.05, 0.1]}, out=str(tmp_path), **{**BASE, "lr": 0.1})
    with pytest.raises(UserError, match="--sampler tpe: choose one of grid, random, bayes"):
        trainwell.search({"lr": [0.05, 0.1]}, sampler="tpe", out=str(tmp_path), **BASE)
    with pytest.raises(UserError, match="--storage mysql"):
        trainwell.search({"lr": [0.05, 0.1]}, storage="mysql://x", out=str(tmp_path), **BASE)
    with pytest.raises(UserError, match="cannot open it"):  # nobody listens on port 1
        trainwell.search({"lr": [0.05, 0.1]}, storage="postgresql://me:pw@127.0.0.1:1/x", out=str(tmp_path), **BASE)
    import torch

    with pytest.raises(UserError, match="model: search takes options that can be written down"):
        trainwell.search({"lr": [0.05, 0.1]}, out=str(tmp_path), **{**BASE, "model": torch.nn.Linear(64, 10)})
    assert not os.listdir(tmp_path)  # nothing half-written


def test_cli_search_and_show(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("lr: [0.05, 0.1]\n")
    cmd = [sys.executable, "-m", "trainwell", "search", "--space", str(space), "--sampler", "grid", "--data", "digits",
           "--model", "mlp", "--hidden", "16", "--epochs", "2", "--precision", "fp32", "--out", str(tmp_path), "tta=none"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "best: trial" in out.stdout and "test accuracy" in out.stdout
    shown = subprocess.run([sys.executable, "-m", "trainwell", "search", "--show", "search-space-digits", "--out",
                            str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "complete" in shown.stdout and "best: trial" in shown.stdout
    bad = subprocess.run([*cmd[:5], str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr


SCRIPT = """
import sys, trainwell
trainwell.search({space!r}, sampler="random", trials={trials}, jobs={jobs}, heartbeat=1, pruner="none",
                 out={out!r}, study="s", **{base!r})
"""


def _launch(tmp_path, trials, jobs, base=None):
    code = SCRIPT.format(space=SPACE, trials=trials, jobs=jobs, out=str(tmp_path), base=base or BASE)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _states(tmp_path) -> list[str]:
    import optuna

    st = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s/study.db")
    return [t.state.name for t in st.get_trials(deepcopy=False)]


@pytest.mark.slow
def test_a_killed_search_is_retried_and_resumed(tmp_path):
    base = {**BASE, "epochs": 40, "checkpoint_every": 20}
    p = _launch(tmp_path, 3, 1, base)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it in the middle of a trial that has a checkpoint
        ck = tmp_path / "s" / "trials" / "0001" / "checkpoints"
        if ck.is_dir() and os.listdir(ck):
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert "RUNNING" in _states(tmp_path)  # left behind by the dead worker
    again = _launch(tmp_path, 3, 1, base)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    states = _states(tmp_path)
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states
    assert states.count("FAIL") >= 1  # the killed attempt, retried under a new number
    with open(tmp_path / "s" / "study.json") as f:
        trials = json.load(f)["trials"]
    retry = next(t for t in trials if t["retry_of"] == 1 and t["state"] == "complete")
    assert retry["run"] == "trials/0001"  # it resumed the dead trial's run directory


@pytest.mark.slow
def test_four_workers_share_the_embedded_storage(tmp_path):
    p = _launch(tmp_path, 8, 4, {**BASE, "epochs": 3})
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert "locked" not in err.lower()
    states = _states(tmp_path)
    assert states.count("COMPLETE") == 8 and "RUNNING" not in states
    assert len(os.listdir(tmp_path / "s" / "trials")) == 8


@pytest.mark.slow
def test_two_machines_share_one_study_on_postgresql(tmp_path, postgres_url):
    """Two search commands, each with its own run folder (two machines), one study in PostgreSQL."""
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 0.02, high: 0.3, log: true}\nhidden: ['16', '32']\n")
    procs = []
    for machine in ("a", "b"):
        cmd = [sys.executable, "-m", "trainwell", "search", "--space", str(space), "--sampler", "random", "--trials", "6",
               "--storage", postgres_url, "--study", "shared", "--pruner", "none", "--data", "digits", "--model", "mlp",
               "--epochs", "3", "--precision", "fp32", "--threads", "1", "--out", str(tmp_path / machine), "tta=none"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    import optuna

    st = optuna.load_study(study_name="shared", storage=postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    assert [t.state.name for t in st.get_trials()].count("COMPLETE") == 6
    ran = {m: os.listdir(tmp_path / m / "shared" / "trials") for m in ("a", "b")}
    assert ran["a"] and ran["b"] and not set(ran["a"]) & set(ran["b"])  # both worked, on different trials
    tested = [d for m in ("a", "b") for d in glob.glob(str(tmp_path / m / "shared" / "trials" / "*" / "summary.json"))]
    assert len(tested) == 1  # the best was tested once, by the machine that held it


@pytest.mark.slow
def test_ctrl_c_saves_and_queues_the_trial_for_the_rerun(tmp_path):
    base = {**BASE, "epochs": 40, "checkpoint_every": 20}
    p = _launch(tmp_path, 2, 1, base)
    deadline = time.time() + 120
    while time.time() < deadline:
        ck = tmp_path / "s" / "trials" / "0000" / "checkpoints"
        if ck.is_dir() and os.listdir(ck):
            break
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode != 0 and "rerun the same trainwell search command" in err
    assert sorted(_states(tmp_path)) == ["FAIL", "WAITING"]  # queued at once: no grace period to wait out
    again = _launch(tmp_path, 2, 1, base)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    with open(tmp_path / "s" / "study.json") as f:
        trials = json.load(f)["trials"]
    assert [t["run"] for t in trials if t["state"] == "complete"].count("trials/0000") == 1


def test_pruning_callback_reports_on_the_schedules_common_axis():
    """The callback contract: reports each epoch (scaled when epochs vary), stops the run when told to."""
    from types import SimpleNamespace

    from trainwell.tune.trial import Pruning

    class FakeTrial:
        def __init__(self):
            self.reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return len(self.reports) >= 2

    trial = FakeTrial()
    cb = Pruning(trial, "valid_error", scale=4.0)  # a 4-epoch trial in a space of up to 16
    trainer = SimpleNamespace(history=[{"epoch": 1, "valid_error": 0.3}],
                              state=SimpleNamespace(should_stop=False, stop_reason=None))
    cb.on_fit_start(trainer)  # a resumed trial re-reports what it has
    trainer.history.append({"epoch": 2, "valid_error": 0.2})
    cb.on_epoch_end(trainer)
    assert trial.reports == [(4, 0.3), (8, 0.2)]
    assert trainer.state.should_stop and cb.pruned_at == 2 and "pruned after epoch 2" in trainer.state.stop_reason
