"""Diagnosis of finished and failed runs, from the run directory alone."""
import json
import os

import numpy as np
import pytest

import trainwell
from trainwell.doctor import diagnose


def _digits(tmp_path, name, **kw):
    opts = dict(data="digits", model="mlp", precision="fp32", device="cpu", quiet=True, out=str(tmp_path))
    opts.update(kw)
    return trainwell.train(name=name, **opts)


def _problems(report):
    return [f.check for f in report.findings if f.status != "pass"]


def test_a_healthy_run_is_healthy_and_every_run_writes_its_diagnosis(tmp_path):
    run = _digits(tmp_path, "ok")
    saved = json.load(open(os.path.join(run.dir, "diagnosis.json")))
    assert saved["verdict"] == "healthy" and diagnose(run.dir).verdict == "healthy"


def test_recoveries_mean_the_rate_was_too_high_and_the_fix_starts_where_it_held(tmp_path):
    run = _digits(tmp_path, "high", lr=1.0)
    r = diagnose(run.dir)
    f = next(f for f in r.findings if f.check == "lr-too-high")
    held = [e for rec in run.history for e in rec.get("events", [])][-1]["peak_lr"]
    assert r.verdict == "lr-too-high" and f.command.endswith(f"lr={held:.3g}")


def test_a_rate_100x_too_low(tmp_path):
    assert diagnose(_digits(tmp_path, "low", lr=0.0005).dir).verdict == "lr-too-low"


def test_shuffled_labels_are_chance_level(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    y = np.random.default_rng(0).permutation(d.target)
    np.savez(tmp_path / "shuffled.npz", x=d.data.astype(np.float32), y=y)
    run = _digits(tmp_path, "shuffled", data=str(tmp_path / "shuffled.npz"))
    assert diagnose(run.dir).verdict == "chance-level"


def test_a_failed_run_is_diagnosed_as_diverged(tmp_path):
    with pytest.raises(trainwell.TrainingFailed):
        _digits(tmp_path, "boom", lr=1e30, optimizer="sgd", schedule="constant")
    saved = json.load(open(tmp_path / "boom" / "diagnosis.json"))
    assert saved["verdict"] == "diverged"


def test_overfitting_prescribes_regularisation(tmp_path):
    """A big MLP on 300 examples, long, without weight decay or smoothing: it memorises them."""
    run = _digits(tmp_path, "overfit", hidden=[512, 512], limit_train=300, epochs=60, weight_decay=0.0,
                  label_smoothing=0.0, schedule="constant", lr=0.1)
    r = diagnose(run.dir)
    f = next((f for f in r.findings if f.check == "overfitting"), None)
    assert f is not None and "dropout=0.5" in f.command, r.render()


def test_cli_diagnose_json(tmp_path, capsys):
    from trainwell.cli import main

    run = _digits(tmp_path, "cli", lr=0.0005)
    assert main(["diagnose", run.dir, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "lr-too-low" and out["findings"][0]["command"].startswith("trainwell train --config")


def test_a_run_without_a_finished_epoch_is_refused_in_one_line(tmp_path, capsys):
    from trainwell import rundir
    from trainwell.cli import main
    from trainwell.config import Config

    rundir.create(str(tmp_path / "fresh"), Config(data="digits"), {})
    assert main(["diagnose", str(tmp_path / "fresh")]) == 2
    assert "no epoch has finished yet" in capsys.readouterr().err
    assert not (tmp_path / "fresh" / "diagnosis.json").exists()
