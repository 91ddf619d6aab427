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
    # digits are 8x8 images: augmentation, without mirror images (the run did not flip) or pixel shifts
    assert f is not None and f.command.endswith("augment=rotate=10,scale=0.1"), r.render()


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


def test_predictions_that_collapse_into_the_frequent_class_are_collapsed(tmp_path):
    """Noise features, 85% of the labels one class: the loss falls to the prior's entropy (below ln C)
    while every prediction is that class: the course's "loss is minimized but accuracy is low"."""
    rng = np.random.default_rng(0)
    y = np.where(rng.random(1500) < 0.85, 0, rng.integers(1, 5, 1500))
    np.savez(tmp_path / "skewed.npz", x=rng.normal(size=(1500, 20)).astype(np.float32), y=y)
    run = _digits(tmp_path, "skewed", data=str(tmp_path / "skewed.npz"), epochs=10)
    r = diagnose(run.dir)
    f = next((f for f in r.findings if f.check == "collapsed"), None)
    assert f is not None and f.evidence["pred_classes"] < 1.2 and f.evidence["label_classes"] > 1.5, r.render()
    assert "imbalanced" in f.prescription and f.command.endswith("class_weights=balanced")
    best = next(rec for rec in run.history if rec["epoch"] == run.summary["best_epoch"])
    assert best["valid_label_classes"] > 1.5 and run.summary["test"]["pred_classes"] < 1.2
    # weighed, the rare classes count as much as the frequent one: the predictions spread out again
    weighed = _digits(tmp_path, "weighed", data=str(tmp_path / "skewed.npz"), epochs=10, class_weights="balanced")
    assert weighed.summary["test"]["pred_classes"] > 2 * run.summary["test"]["pred_classes"]
    assert "collapsed" not in _problems(diagnose(weighed.dir))


def test_structure_from_the_monitors_only_when_training_error_stays_high(tmp_path):
    sig = _digits(tmp_path, "sigmoid", activation="sigmoid", hidden=[32] * 12, epochs=5)
    r = diagnose(sig.dir)
    assert r.verdict == "vanishing-gradients", r.render()
    assert "activation=relu" in next(f for f in r.findings if f.check == "vanishing-gradients").command
    # a healthy run has a few dead units and a smaller first-layer gradient too: no finding
    ok = _digits(tmp_path, "ok", hidden=[32] * 6, epochs=5)
    assert not {"vanishing-gradients", "dead-units", "exploding-gradients"} & set(_problems(diagnose(ok.dir)))


def test_units_dead_from_the_first_step_are_an_initialisation_problem(tmp_path):
    from torch import nn

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in (net[1], net[3]):
        nn.init.constant_(m.bias, -3.0)
    run = _digits(tmp_path, "dying", model=net, epochs=5)
    r = diagnose(run.dir)
    f = next((f for f in r.findings if f.check == "dead-units"), None)
    assert f is not None and f.command.endswith("init=kaiming") and "lr=" not in f.command, r.render()


def _rewrite(run_dir, history_losses, alive_at_start):
    """The run's records edited: its training loss per epoch, and its units alive at the first record."""
    path = os.path.join(run_dir, "history.jsonl")
    rows = [json.loads(line) for line in open(path)]
    for row, loss in zip(rows, history_losses):
        row["train_loss"] = loss
    open(path, "w").write("".join(json.dumps(r) + "\n" for r in rows))
    mon = os.path.join(run_dir, "monitors.jsonl")
    recs = [json.loads(line) for line in open(mon)]
    if alive_at_start:
        for u in recs[0].get("units", {}).values():
            u["dead"] = 0.0
    open(mon, "w").write("".join(json.dumps(r) + "\n" for r in recs))


def test_dead_units_on_a_falling_loss_keep_the_rate_and_a_rising_loss_lowers_it(tmp_path):
    """Issue 23: a run crawling off a plateau near chance was prescribed a 10x lower rate. Without evidence
    that the steps were too large (a recovery, a training loss that rose), the rate is kept."""
    import shutil

    from torch import nn

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in (net[1], net[3]):
        nn.init.constant_(m.bias, -3.0)
    run = _digits(tmp_path, "dying", model=net, epochs=5)
    crawl, rising = str(tmp_path / "crawl"), str(tmp_path / "rising")
    shutil.copytree(run.dir, crawl)
    shutil.copytree(run.dir, rising)
    _rewrite(crawl, [2.30, 2.29, 2.27, 2.2, 2.1], alive_at_start=True)
    _rewrite(rising, [2.30, 2.0, 2.4, 2.2, 2.1], alive_at_start=True)
    dead = {d: next((f for f in diagnose(d).findings if f.check == "dead-units"), None) for d in (crawl, rising)}
    assert dead[crawl] is not None and "lr=" not in dead[crawl].command and "keep the rate" in dead[crawl].prescription
    assert dead[rising] is not None and "lr=" in dead[rising].command


def test_a_layer_narrower_than_the_classes_is_named_as_the_cause_of_underfitting(tmp_path):
    """Issue 24: a 2-unit bottleneck MLP stuck at 80% training accuracy was called healthy."""
    run = _digits(tmp_path, "narrow", hidden=[64, 1, 64], epochs=8)
    r = diagnose(run.dir)
    f = next(f for f in r.findings if f.check == "underfitting")
    assert r.verdict == "underfitting" and f.evidence["units"] == 1 and f.evidence["bottleneck"] == "3 Linear"
    assert "hidden=" in f.command and "lr=" not in f.command, r.render()


def test_saturated_tanh_units_are_named_even_when_the_training_set_is_fitted(tmp_path):
    """Issue 24: a tanh MLP with N(0, 1) weights (86 - 92% of its outputs at the limits) fits its training set,
    overfits, and was called healthy or overfitting; the same net at Glorot scale is 0 - 3% saturated."""
    model = tmp_path / "m.py"
    model.write_text(
        "from torch import nn\n\n\n"
        "def big_tanh(input_shape, num_classes):\n"
        "    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(),\n"
        "                        nn.Linear(128, num_classes))\n"
        "    for m in net:\n"
        "        if isinstance(m, nn.Linear):\n"
        "            nn.init.normal_(m.weight, 0, 1.0)\n"
        "    return net\n")
    run = _digits(tmp_path, "saturated", model=f"{model}:big_tanh", epochs=8)
    r = diagnose(run.dir)
    f = next(f for f in r.findings if f.check == "saturated-units")
    assert r.verdict == "saturated-units" and f.command.endswith("init=glorot"), r.render()
    assert min(f.evidence["saturated"].values()) > 0.5
    ok = _digits(tmp_path, "glorot", model="mlp", activation="tanh", epochs=8)
    assert "saturated-units" not in _problems(diagnose(ok.dir))


def _set_history(run_dir, errors, losses):
    path = os.path.join(run_dir, "history.jsonl")
    rows = [json.loads(line) for line in open(path)]
    for row, err, loss in zip(rows, errors, losses):
        row["train_error"], row["train_loss"] = err, loss
    open(path, "w").write("".join(json.dumps(r) + "\n" for r in rows))


def test_a_run_that_learned_then_climbed_back_to_chance_had_too_high_a_rate(tmp_path):
    """Issue 24: a deep tanh net learned to 39% error by epoch 2, then climbed back to chance as one-cycle
    raised the rate; it was called vanishing-gradients and prescribed ReLU. The cause comes first."""
    import shutil

    run = _digits(tmp_path, "base", epochs=5, hidden=[32])
    lr = run.config.resolved_lr()
    unlearned, never, learning = (str(tmp_path / n) for n in ("unlearned", "never", "learning"))
    for d in (unlearned, never, learning):
        shutil.copytree(run.dir, d)
    _set_history(unlearned, [0.57, 0.39, 0.55, 0.87, 0.90], [1.88, 1.40, 1.78, 2.39, 2.30])
    _set_history(never, [0.90, 0.90, 0.89, 0.90, 0.90], [2.31, 2.30, 2.31, 2.30, 2.30])
    _set_history(learning, [0.50, 0.30, 0.20, 0.10, 0.05], [1.50, 0.90, 0.60, 0.35, 0.20])
    report = diagnose(unlearned)
    found = next(f for f in report.findings if f.check == "lr-too-high")
    assert report.verdict == "lr-too-high" and "fell to 39.0% by epoch 2" in found.summary
    assert f"lr={lr / 5:.3g}" in found.command
    assert not any("fell to" in f.summary for f in diagnose(never).findings if f.check == "lr-too-high")
    assert "lr-too-high" not in _problems(diagnose(learning))


def test_a_prescription_leaves_out_the_options_the_model_does_not_take(tmp_path):
    """Issue 24: `activation=relu` was prescribed for a model file that takes no options; trainwell refuses it."""
    from trainwell.doctor.findings import applicable, train_command

    f = tmp_path / "net.py"
    f.write_text("from torch import nn\n\ndef plain(input_shape, num_classes):\n    return nn.Linear(4, num_classes)\n\n"
                 "def sized(input_shape, num_classes, hidden=None):\n    return nn.Linear(4, num_classes)\n")
    change = {"activation": "relu", "init": "kaiming"}
    assert applicable(change, f"{f}:plain") == {"init": "kaiming"}
    assert train_command(["--config", "c.yaml"], {"activation": "relu"}, f"{f}:plain") == ""
    assert applicable({"hidden": [64], "width": 8}, f"{f}:sized") == {"hidden": [64]}
    assert applicable(change, "mlp") == change and applicable({"width": 8}, "mlp") == {}
    assert applicable(change, "custom") == {"init": "kaiming"}  # a module object: built already


def test_the_runs_own_dropout_is_the_root_cause_before_its_dead_units_and_the_fix_is_tried(tmp_path):
    """Dropout 0.95 on digits' MLP: dead units and a loss at chance, once read as a rate too high."""
    from trainwell.doctor import try_prescriptions

    run = _digits(tmp_path, "d95", dropout=0.95, epochs=6)
    report = diagnose(run.dir)
    f = next(f for f in report.findings if f.check == "config-suspect")
    assert report.verdict == "config-suspect" and f.command.endswith("dropout=0.2")
    assert "dropout 0.95 is far outside the usual range" in f.summary
    f = next(f for f in try_prescriptions(run.dir, report).findings if f.check == "config-suspect")
    assert f.evidence["tried"]["helps"] and f.command.endswith("dropout=0.2")


def test_usual_settings_are_not_suspected_after_a_run(tmp_path):
    run = _digits(tmp_path, "ok", dropout=0.5, epochs=3)
    assert "config-suspect" not in {f.check for f in diagnose(run.dir).findings}


def test_a_run_of_a_handful_of_updates_stopped_too_soon_and_gets_smaller_batches(tmp_path):
    """Batch 1,024 for 3 epochs on 1,300 digits is 6 optimizer steps: the loss is still falling at 45% training
    error. The default run's own amount (>= 1,000 steps) is not flagged."""
    run = _digits(tmp_path, "few", batch_size=1024, epochs=3, seed=1)
    f = next(f for f in diagnose(run.dir).findings if f.check == "still-improving")
    assert f.evidence["steps"] == 6 and "batch_size=32" in f.command and "epochs=25" in f.command, f
    healthy = _digits(tmp_path, "default", seed=1)
    assert "still-improving" not in _problems(diagnose(healthy.dir))


def test_a_vanishing_gradient_comes_with_the_courses_other_cure_fewer_layers_for_the_trial_to_weigh(tmp_path):
    run = _digits(tmp_path, "deep", activation="sigmoid", hidden=[32] * 8, epochs=3, seed=1)
    f = next(f for f in diagnose(run.dir).findings if f.check == "vanishing-gradients")
    assert f.command.endswith("activation=relu init=kaiming")
    assert f.alternatives == [f.command + " hidden=32,32,32"], f.alternatives  # the MLP takes no batch_norm
