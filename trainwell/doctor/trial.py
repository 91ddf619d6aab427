"""Prescriptions that are tried before they are printed: each `trainwell train` command a diagnosis prescribes
is run briefly, beside the run's own settings for the same short budget, and kept only when it measurably
helps; the measured effect goes into the finding ("tried: validation error 88.0% -> 3.1%").

A trial is the run's own config.yaml (its data, split, model, seed) with the prescription's changes, on at most
TRIAL_EXAMPLES training examples for as many epochs as TRIAL_BUDGET example-passes allow (the run's schedule
compressed into them; a prescription of more epochs gets proportionally more), scored on the run's validation
split. Both sides start from the same seed, so the comparison is paired: the difference is the change's.
"""
from __future__ import annotations

import math
import re
import shlex
import time
from typing import Any

from trainwell import rundir
from trainwell.doctor.findings import Finding, Report
from trainwell.errors import TrainingFailed, UserError
from trainwell.prepared import prepare
from trainwell.trainer import Trainer

__all__ = ["try_prescriptions"]

TRIAL_EXAMPLES = 2000   # training examples a trial uses at most
TRIAL_BUDGET = 30_000   # example-passes (examples x epochs) a trial runs at most
MIN_GAIN = 0.005        # and at least one standard error of the validation error: smaller is no help
_OVERRIDE = re.compile(r"^[a-z_]+=")


def try_prescriptions(run_dir: str, report: Report) -> Report:
    """The report with each prescribed `trainwell train` command tried: kept with its measured effect where it
    helps, removed (with the measurement) where it does not. Commands of another kind (`trainwell doctor`) and
    runs whose data or model cannot be rebuilt here (given in memory) are left as they are."""
    tried: dict[tuple[str, ...], dict[str, Any]] = {}
    baseline: dict[str, Any] | None = None
    for f in report.problems():
        changes = _changes(f.command)
        if changes is None:
            continue
        try:
            if baseline is None:
                baseline = _trial(run_dir, ())
            key = tuple(changes)
            tried[key] = tried.get(key) or _trial(run_dir, key, baseline["epochs"], baseline["run_epochs"])
        except UserError as e:  # in-memory data, a moved model file: the prescription stays untried
            report.meta["tried"] = f"prescriptions not tried: {str(e).splitlines()[0]}"
            return report
        _judge(f, changes, baseline, tried[key])
    if baseline is not None:
        report.meta["tried"] = (f"each prescription run for {baseline['epochs']} epochs on "
                                f"{baseline['examples']:,} training examples beside the run's own settings")
    return report


def _changes(command: str) -> list[str] | None:
    """The key=value changes of a prescribed train command (None: not a train command, or no change)."""
    if not command.startswith("trainwell train "):
        return None
    changes = [t for t in shlex.split(command)[2:] if _OVERRIDE.match(t)]
    return changes or None


def _trial(run_dir: str, changes: tuple[str, ...], epochs: int | None = None,
           run_epochs: int | None = None) -> dict[str, Any]:
    """A short run of the run's config with `changes`: its best validation error, or 1.0 when it fails."""
    config = rundir.path(run_dir.rstrip("/"), rundir.CONFIG)
    run = rundir.read_run(run_dir)
    n = ((run.summary or {}).get("sizes") or {}).get("train") or TRIAL_EXAMPLES  # a failed run has no summary
    examples = min(n, run.config.limit_train or n, TRIAL_EXAMPLES)
    run_epochs = run_epochs or run.config.epochs or 1
    if epochs is None:
        epochs = max(2, min(run_epochs, round(TRIAL_BUDGET / examples)))
    scale = epochs / run_epochs
    overrides = [c for c in changes if not c.startswith("epochs=")]
    asked = next((int(c.split("=", 1)[1]) for c in changes if c.startswith("epochs=")), None)
    trial_epochs = max(1, round(asked * scale)) if asked else epochs
    prep = prepare(config_file=config, overrides=overrides, monitor_every=0, time_budget=None, patience=0,
                   epochs=trial_epochs, limit_train=examples)
    t = time.perf_counter()
    trainer = Trainer(prep.model, prep.splits.without_test(), prep.config, prep.precision)
    try:
        history = trainer.fit()
        errors = [r["valid_error"] for r in history.records if isinstance(r.get("valid_error"), (int, float))]
        error = min(errors) if errors else 1.0
    except TrainingFailed:  # diverged past its recoveries: as bad as it gets
        error = 1.0
    valid = len(prep.splits.y_valid)
    return {"error": float(error), "epochs": epochs, "trial_epochs": trial_epochs, "run_epochs": run_epochs,
            "examples": examples, "valid": valid, "seconds": round(time.perf_counter() - t, 1)}


def _judge(f: Finding, changes: list[str], before: dict[str, Any], after: dict[str, Any]) -> None:
    """Keep the command where the change lowered the validation error by more than its noise, else drop it."""
    b, a = before["error"], after["error"]
    noise = max(MIN_GAIN, math.sqrt(max(b * (1 - b), 1e-4) / max(1, before["valid"])))
    where = f"{after['trial_epochs']} epochs on {after['examples']:,} training examples"
    f.evidence["tried"] = {"changes": changes, "valid_error_before": round(b, 4), "valid_error_after": round(a, 4),
                           "epochs": after["trial_epochs"], "baseline_epochs": before["trial_epochs"],
                           "train_examples": after["examples"], "helps": b - a > noise}
    if b - a > noise:
        f.prescription += f" (tried for {where}: validation error {b:.1%} -> {a:.1%})"
    else:
        f.prescription += (f" (tried {' '.join(changes)} for {where}: validation error {b:.1%} -> {a:.1%}, no "
                           "better, so no command is printed)")
        f.command = ""
