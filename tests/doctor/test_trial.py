"""Prescriptions tried before they are printed (trainwell/doctor/trial.py): a change that helps keeps its command
with the measured effect; one that does not is dropped, with the measurement; nothing else is touched."""
import json

import pytest

import trainwell
from trainwell.doctor import Finding, Report, diagnose, try_prescriptions
from trainwell.doctor.trial import _judge, _measure


def _run(tmp_path, name="r", **kw):
    opts = dict(data="digits", model="mlp", epochs=4, precision="fp32", device="cpu", out=str(tmp_path), name=name,
                quiet=True, monitor_every=0)
    opts.update(kw)
    return trainwell.train(**opts)


def test_a_rate_far_too_low_is_raised_and_the_measured_gain_is_in_the_finding(tmp_path):
    run = _run(tmp_path, lr=0.0005)
    report = try_prescriptions(run.dir, diagnose(run.dir))
    f = next(f for f in report.findings if f.check == "lr-too-low")
    tried = f.evidence["tried"]
    assert tried["helps"] and tried["valid_error_after"] < tried["valid_error_before"] - 0.05, tried
    assert f.command.endswith("lr=0.05") and "tried for 4 epochs on 1,29" in f.prescription
    assert "prescription run for 4 epochs" in report.meta["tried"]


def test_a_change_that_does_not_help_loses_its_command_but_keeps_the_measurement(tmp_path):
    run = _run(tmp_path)
    same = f"trainwell train --config {run.dir}/config.yaml --name r-fix lr={run.config.lr}"
    f = Finding("underfitting", "warn", "made up for the test", {}, "grow the model", same)
    report = try_prescriptions(run.dir, Report("underfitting", [f]))
    assert f.command == "" and not f.evidence["tried"]["helps"]
    assert f.evidence["tried"]["valid_error_after"] == f.evidence["tried"]["valid_error_before"]  # the same run
    assert "no better, so no command is printed" in f.prescription


def test_commands_that_are_not_a_train_run_are_left_alone(tmp_path):
    run = _run(tmp_path)
    f = Finding("chance-level", "fail", "x", {}, "run the checks", "trainwell doctor --config c.yaml")
    try_prescriptions(run.dir, Report("chance-level", [f]))
    assert f.command == "trainwell doctor --config c.yaml" and "tried" not in f.evidence


def _side(correct):
    return {"error": 1 - sum(correct) / len(correct), "correct": correct, "valid": len(correct), "epochs": 4,
            "examples": 100}


@pytest.mark.parametrize("fixed,broken,n,helps", [(4, 0, 180, True),     # 2.2 points, nothing broken
                                                  (12, 8, 180, False),   # the same net gain, inside the noise
                                                  (20, 2, 180, True), (1, 0, 180, False),  # under MIN_GAIN
                                                  (30, 30, 5000, False)])
def test_a_gain_counts_only_beyond_one_standard_error_of_the_paired_difference(fixed, broken, n, helps):
    """The same examples on both sides: what matters is the examples the change fixes against those it breaks."""
    before = [False] * fixed + [True] * broken + [True] * (n - fixed - broken)
    after = [True] * fixed + [False] * broken + [True] * (n - fixed - broken)
    f = Finding("overfitting", "warn", "x", {}, "regularise", "trainwell train a=1")
    _judge(f, [(f.command, ["a=1"], _measure(["a=1"], _side(before), _side(after)))])
    tried = f.evidence["tried"]
    assert tried["helps"] is helps and bool(f.command) is helps
    assert (tried["fixed"], tried["broken"], tried["valid_examples"]) == (fixed, broken, n)
    assert f"{fixed} of {n:,} examples fixed, {broken} broken" in f.prescription


def test_the_cli_tries_by_default_and_writes_the_measurement_to_diagnosis_json(tmp_path):
    from trainwell.cli import main

    run = _run(tmp_path, lr=0.0005)
    assert main(["diagnose", run.dir, "--json"]) == 0
    written = json.load(open(f"{run.dir}/diagnosis.json"))
    f = next(f for f in written["findings"] if f["check"] == "lr-too-low")
    assert f["evidence"]["tried"]["helps"] and "tried for" in f["prescription"]
    assert "validation error" in open(f"{run.dir}/report.html").read().split("tried for", 1)[1][:80]
    assert main(["diagnose", run.dir, "--no-try", "--json"]) == 0
    f = next(f for f in json.load(open(f"{run.dir}/diagnosis.json"))["findings"] if f["check"] == "lr-too-low")
    assert "tried" not in f["evidence"]


def test_the_doctor_tries_its_prescriptions_before_the_run_and_can_be_told_not_to():
    from trainwell.doctor import doctor

    report = doctor(data="digits", model="mlp", hidden=[2], lr=False, epochs=3, precision="fp32", device="cpu")
    f = next(f for f in report.findings if f.check == "underfitting")
    assert f.evidence["tried"]["helps"] and f.command.endswith("hidden=64") and "tried for 3 epochs" in f.prescription
    assert "tried" in report.meta["check_seconds"]
    untried = doctor(data="digits", model="mlp", hidden=[2], lr=False, epochs=3, precision="fp32", device="cpu",
                     try_fixes=False)
    f = next(f for f in untried.findings if f.check == "underfitting")
    assert "tried" not in f.evidence and f.command.endswith("hidden=64")


def test_a_model_given_as_an_object_cannot_be_rebuilt_for_a_trial_and_says_so():
    from torch import nn

    from trainwell.doctor import doctor

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2), nn.ReLU(), nn.Linear(2, 10))
    report = doctor(data="digits", model=net, lr=False, epochs=1, precision="fp32", device="cpu")
    assert report.meta["tried"].startswith("prescriptions not tried: data or model given as a Python object")


def test_a_leaking_column_is_not_judged_by_the_validation_error_it_flatters(tmp_path):
    """Taking the leak out raises the validation error (the leak is in validation too): data findings keep
    their command untried."""
    import numpy as np

    from trainwell.doctor import doctor

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    rows = [f"{10 * v + rng.integers(0, 3)},{v + rng.normal(0, 2):.3f},{['no', 'yes'][v]}" for v in y]
    (tmp_path / "leak.csv").write_text("code,signal,y\n" + "\n".join(rows) + "\n")
    report = doctor(data=str(tmp_path / "leak.csv"), label="y", lr=False, epochs=2)
    f = next(f for f in report.findings if f.check == "data-leak")
    assert f.command.endswith("ignore=code") and "tried" not in f.evidence


def test_of_several_candidate_fixes_the_one_that_helps_most_becomes_the_command():
    n = 200
    before = _side([False] * 40 + [True] * (n - 40))
    f = Finding("vanishing-gradients", "fail", "x", {}, "use relu", "trainwell train a=1",
                alternatives=["trainwell train a=1 b=2", "trainwell train c=3"])
    results = [(f.command, ["a=1"], _measure(["a=1"], before, _side([True] * 10 + [False] * 30 + [True] * (n - 40)))),
               (f.alternatives[0], ["a=1", "b=2"], _measure(["a=1", "b=2"], before, _side([True] * n))),
               (f.alternatives[1], ["c=3"], _measure(["c=3"], before, _side([False] * n)))]
    _judge(f, results)
    assert f.command == "trainwell train a=1 b=2" and f.alternatives == []
    assert f.evidence["tried"]["fixed"] == 40 and len(f.evidence["candidates_tried"]) == 3
    assert "best of 3 fixes tried" in f.prescription
    none = Finding("overfitting", "warn", "x", {}, "regularise", "trainwell train a=1", alternatives=["trainwell train c=3"])
    _judge(none, [results[2], results[2]])
    assert none.command == "" and "nor 1 other fix" in none.prescription


def test_once_the_trials_time_is_spent_the_remaining_prescriptions_stay_untried_and_printed():
    from trainwell.doctor.trial import _try

    calls = []

    def run(changes, epochs):
        calls.append(changes)
        return {**_side([bool(changes)] * 100), "epochs": epochs, "examples": 100}

    first = Finding("lr-too-high", "fail", "x", {}, "lower it", "trainwell train lr=0.01")
    second = Finding("dead-units", "warn", "x", {}, "He init", "trainwell train init=kaiming")
    report = _try(Report("lr-too-high", [first, second]), run, 100, 4, 400, seconds=0.0)
    assert calls == [(), ("lr=0.01",)] and first.evidence["tried"]["helps"]
    assert "tried" not in second.evidence and second.command == "trainwell train init=kaiming"
    assert "1 more not tried" in report.meta["tried"]
