"""Prescriptions that are tried before they are printed: each `trainwell train` command the doctor or a diagnosis
prescribes is run briefly, beside the run's own settings for the same short budget, and kept only when it
measurably helps; the measured effect goes into the finding ("tried for 23 epochs on 1,295 training examples:
validation error 6.3% -> 2.8%").

A trial is the run's own configuration (its data, split, model, seed) with the prescription's changes, on at most
TRIAL_EXAMPLES training examples for as many epochs as the budget of example-passes allows (the run's schedule
compressed into them; a prescription of more epochs gets proportionally more), scored on the run's validation
split. Both sides start from the same seed and are scored on the same validation examples, so the comparison is
paired: a change helps when the examples it gets right that the run's own settings got wrong outnumber the ones
it breaks by more than the noise of that count (McNemar's: one standard error of the difference is
sqrt(fixed + broken) / n), which is far sharper than comparing two error rates as if they were independent.
"""
from __future__ import annotations

import math
import re
import shlex
import time
from typing import Any, Callable

from trainwell import rundir
from trainwell.doctor.findings import Finding, Report
from trainwell.errors import TrainingFailed, UserError
from trainwell.metrics import evaluate
from trainwell.prepared import prepare
from trainwell.trainer import Trainer

__all__ = ["try_prescriptions", "try_before_run"]

TRIAL_EXAMPLES = 2000   # training examples a trial uses at most
TRIAL_BUDGET = 30_000   # example-passes (examples x epochs) a diagnosis' trial runs at most
DOCTOR_BUDGET = 15_000  # ... and the doctor's, which runs before the user's run and should stay quick
DOCTOR_SECONDS = 12.0   # and no further candidate starts once the doctor's trials have taken this long
MAX_TRIED = 4           # distinct prescriptions tried per report, the verdict's (and its alternatives) first
MIN_GAIN = 0.005        # and at least one standard error of the paired difference: smaller is no help
_OVERRIDE = re.compile(r"^[a-z_]+=")
# Not tried: a finding that measured its own prescription already (the doctor's config-suspect); the data
# findings (a leak, duplicates, empty columns) and `collapsed` predictions on imbalanced classes, fixed for
# honesty or balance, which the validation error does not measure (taking out a leaking column raises it: the
# leak is in validation too).
UNTRIED = ("collapsed",)


def try_prescriptions(run_dir: str, report: Report) -> Report:
    """A diagnosis' report with each prescribed `trainwell train` command tried: kept with its measured effect
    where it helps, removed (with the measurement) where it does not. Commands of another kind (`trainwell
    doctor`) and runs whose data or model cannot be rebuilt here (given in memory) are left as they are."""
    run = rundir.read_run(run_dir)
    n = ((run.summary or {}).get("sizes") or {}).get("train") or TRIAL_EXAMPLES  # a failed run has no summary
    config = rundir.path(run_dir.rstrip("/"), rundir.CONFIG)
    examples = min(n, run.config.limit_train or n, TRIAL_EXAMPLES)

    def run_with(changes: tuple[str, ...], epochs: int) -> dict[str, Any]:
        return _short_run({"config_file": config}, changes, epochs, examples)

    return _try(report, run_with, examples, run.config.epochs or 1, TRIAL_BUDGET)


def try_before_run(prep: Any, report: Report) -> Report:
    """The doctor's report with its prescriptions tried the same way (DOCTOR_BUDGET), from the prepared run's
    configuration; data or a model given as Python objects cannot be rebuilt, and stay untried."""
    values = prep.config.to_dict()
    if str(values.get("data", "")).startswith("python:") or (prep.spec or {}).get("name") == "custom":
        report.meta["tried"] = "prescriptions not tried: data or model given as a Python object"
        return report
    examples = min(len(prep.splits.y_train), TRIAL_EXAMPLES)

    def run_with(changes: tuple[str, ...], epochs: int) -> dict[str, Any]:
        return _short_run({"values": values}, changes, epochs, examples)

    return _try(report, run_with, examples, values.get("epochs") or 1, DOCTOR_BUDGET, DOCTOR_SECONDS)


def _try(report: Report, run: Callable[[tuple[str, ...], int], dict[str, Any]], examples: int, run_epochs: int,
         budget: int, seconds: float | None = None) -> Report:
    """`seconds`: once the trials have taken this long, the remaining prescriptions stay untried (printed as
    they are, and said so), the verdict's first having been tried."""
    epochs = max(2, min(run_epochs, round(budget / examples)))
    tried: dict[tuple[str, ...], dict[str, Any]] = {}
    baseline: dict[str, Any] | None = None
    start, untried = time.perf_counter(), 0
    for f in report.problems():
        measured = "subset_error_tried" in f.evidence  # the doctor's config-suspect tried it already
        if measured or f.check in UNTRIED or f.check.startswith("data-"):
            continue
        if seconds is not None and tried and time.perf_counter() - start > seconds:
            untried += _changes(f.command) is not None
            continue
        results = []  # (changes, measurement) of each candidate fix of this finding: its command, then alternatives
        for command in [f.command, *f.alternatives]:
            if seconds is not None and results and time.perf_counter() - start > seconds:
                break  # the first candidate measured; the time for the others is spent
            changes = _changes(command)
            if changes is None or (len(tried) >= MAX_TRIED and tuple(changes) not in tried):
                continue
            try:
                if baseline is None:
                    baseline = run((), epochs)
                key = tuple(changes)
                if key not in tried:  # a prescription of more epochs: as many more in the trial
                    asked = next((int(c.split("=", 1)[1]) for c in key if c.startswith("epochs=")), None)
                    tried[key] = run(key, max(1, round(asked * epochs / run_epochs)) if asked else epochs)
            except UserError as e:  # in-memory data, a moved model file: the prescription stays untried
                report.meta["tried"] = f"prescriptions not tried: {str(e).splitlines()[0]}"
                return report
            results.append((command, changes, _measure(changes, baseline, tried[key])))
        if results:
            _judge(f, results)
    if baseline is not None:
        report.meta["tried"] = (f"each prescription run for {epochs} epochs on {examples:,} training examples "
                                "beside the run's own settings"
                                + (f"; {untried} more not tried, the trials' {seconds:.0f} s being spent" if untried
                                   else ""))
    return report


def _changes(command: str) -> list[str] | None:
    """The key=value changes of a prescribed train command (None: not a train command, or no change)."""
    if not command.startswith("trainwell train "):
        return None
    changes = [t for t in shlex.split(command)[2:] if _OVERRIDE.match(t)]
    return changes or None


def _short_run(source: dict[str, Any], changes: tuple[str, ...], epochs: int, examples: int) -> dict[str, Any]:
    """A short run of the configuration (a run's config.yaml, or a prepared run's values) with `changes`: its
    best validation error, or 1.0 when it fails."""
    overrides = [c for c in changes if not c.startswith("epochs=")]
    short = {"monitor_every": 0, "time_budget": None, "patience": 0, "epochs": epochs, "limit_train": examples}
    if "config_file" in source:
        prep = prepare(config_file=source["config_file"], overrides=overrides, **short)
    else:
        prep = prepare({**source["values"], **short}, overrides=overrides)
    t = time.perf_counter()
    splits = prep.splits.without_test()
    trainer = Trainer(prep.model, splits, prep.config, prep.precision)
    try:
        trainer.fit()  # ends on the epoch selection kept, as a run does
        outputs: dict[str, Any] = {}
        evaluate(trainer.eval_model, splits.x_valid, splits.y_valid, prep.precision, splits.preprocess,
                 outputs=outputs)  # as validation scores it (test-time augmentation included)
        correct = (outputs["predicted"] == splits.y_valid.cpu()).tolist()
    except (TrainingFailed, RuntimeError):  # diverged past its recoveries, or the change breaks the model's
        correct = [False] * len(splits.y_valid)  # forward (a removed layer, a shape): as bad as it gets
    error = 1 - sum(correct) / max(1, len(correct))
    return {"error": float(error), "correct": correct, "epochs": epochs, "examples": examples,
            "valid": len(correct), "seconds": round(time.perf_counter() - t, 1)}


def _measure(changes: list[str], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One change against the run's own settings on the same validation examples: it helps where it fixed more
    examples than it broke, beyond the noise of that count."""
    n = max(1, before["valid"])
    fixed = sum(1 for x, y in zip(before["correct"], after["correct"]) if y and not x)
    broken = sum(1 for x, y in zip(before["correct"], after["correct"]) if x and not y)
    return {"changes": changes, "valid_error_before": round(before["error"], 4),
            "valid_error_after": round(after["error"], 4), "valid_examples": n, "fixed": fixed, "broken": broken,
            "epochs": after["epochs"], "baseline_epochs": before["epochs"], "train_examples": after["examples"],
            "helps": (fixed - broken) / n > max(MIN_GAIN, math.sqrt(fixed + broken) / n)}


def _judge(f: Finding, results: list[tuple[str, list[str], dict[str, Any]]]) -> None:
    """Keep the candidate that helped most (the most examples fixed net of those broken) as the command, with its
    measurement; with none that helped, no command, and the measurement of the first says why."""
    helping = [r for r in results if r[2]["helps"]]
    command, changes, m = max(helping, key=lambda r: r[2]["fixed"] - r[2]["broken"]) if helping else results[0]
    f.evidence["tried"] = m
    if len(results) > 1:
        f.evidence["candidates_tried"] = [r[2] for r in results]
    where = f"{m['epochs']} epochs on {m['train_examples']:,} training examples"
    effect = (f"validation error {m['valid_error_before']:.1%} -> {m['valid_error_after']:.1%}, {m['fixed']} of "
              f"{m['valid_examples']:,} examples fixed, {m['broken']} broken")
    others = f", best of {len(results)} fixes tried" if len(results) > 1 else ""
    f.alternatives = []
    if m["helps"]:
        f.command = command
        f.prescription += f" (tried for {where}: {effect}{others})"
    else:
        f.prescription += (f" (tried {' '.join(changes)} for {where}: {effect}, no better"
                           + (f", nor {len(results) - 1} other fix(es)" if len(results) > 1 else "")
                           + ", so no command is printed)")
        f.command = ""
