"""`trainwell train` and `trainwell.train()`: the whole pipeline of one run, top to bottom.

    prepare   (prepared.py)  config, data, model, precision; checks everything, writes nothing
    fit       (run.py)       the run directory, training, selection on validation
    finish    (run.py)       the selected model saved, the test set scored once, summary.json
    diagnose  (doctor/)      diagnosis.json: the triage of the run (a failed run's too)
    report    (report/)      report.html
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

from torch import nn

from trainwell import distributed, rundir
from trainwell.callbacks.tensorboard import TensorBoard, require
from trainwell.config import Config
from trainwell.doctor import diagnose
from trainwell.errors import TrainingFailed, UserError
from trainwell.prepared import prepare
from trainwell.report import write_run_report
from trainwell.run import finish, fit
from trainwell.rundir import Run

__all__ = ["train", "write_diagnosis", "write_report"]


def train(config: Config | dict | None = None, *, model: str | nn.Module | None = None, data: Any = None,
          test_data: Any = None, callbacks: Iterable[Any] = (), out: str = "runs", name: str | None = None,
          resume: str | None = None, quiet: bool = False, config_file: str | None = None,
          overrides: list[str] | None = None, tensorboard: str | None = None, **options: Any) -> Run:
    """Train, select on validation, test once, and keep the evidence in `out/name/`.

    >>> run = trainwell.train(data="digits", hidden=[64], epochs=5)   # doctest: +SKIP
    >>> run.test_accuracy, run.dir                                    # doctest: +SKIP

    `model` may be your own nn.Module (its weights are kept unless you pass init="glorot" or "kaiming")
    and `data`/`test_data` torch Datasets of (x, y) pairs; any Config field can be passed as a keyword
    (lr=0.01, optimizer="adam", ...). With `tensorboard`, the run also writes TensorBoard event files to
    TENSORBOARD/NAME.
    """
    callbacks = list(callbacks)
    if tensorboard:
        require()  # before anything is written
    prep = prepare(config, model=model, data=data, test_data=test_data, out=out, name=name, resume=resume,
                   config_file=config_file, overrides=overrides, **options)
    if tensorboard and distributed.world().main:
        callbacks.append(TensorBoard(os.path.join(tensorboard, os.path.basename(os.path.normpath(prep.dir)))))
    try:
        trainer = fit(prep, callbacks=callbacks, quiet=quiet)
    except TrainingFailed as e:  # why it failed, beside the last good checkpoint
        if distributed.world().main:
            write_diagnosis(prep.dir, quiet=True, failure={"reason": str(e), "events": getattr(e, "events", [])})
            write_report(prep.dir, quiet=True)
        raise
    if not distributed.world().main:  # under torchrun rank 0 alone tests and writes (no collective follows:
        return rundir.read_run(prep.dir)  # a long test on rank 0 must not time the others out)
    run = finish(prep, trainer, quiet=quiet)
    write_diagnosis(prep.dir, quiet=quiet)
    write_report(prep.dir, quiet=quiet)
    return run


def write_report(run_dir: str, quiet: bool = True) -> None:
    """report.html: the run's evidence on one page. A failure to draw it never fails the run: say so."""
    try:
        path = write_run_report(run_dir)
    except Exception as e:  # noqa: BLE001 -- the trained, tested run is on disk; a drawing bug must not lose it
        print(f"trainwell: note: no report.html written ({type(e).__name__}: {e}); the run itself is saved",
              file=sys.stderr)
        return
    if not quiet:
        print(f"report: {path}", flush=True)


def write_diagnosis(run_dir: str, quiet: bool, failure: dict[str, Any] | None = None) -> None:
    """diagnosis.json: the triage of the run (trainwell diagnose RUN prints the same)."""
    try:
        report = diagnose(run_dir, failure=failure)
        rundir.write_diagnosis(run_dir, report.to_dict())
    except (OSError, UserError) as e:  # the run itself is saved; say so rather than fail it here
        print(f"trainwell: note: no diagnosis.json written ({e})", file=sys.stderr)
        return
    if not quiet and report.problems():
        p = report.problems()[0]
        print(f"diagnosis: {report.verdict}: {p.summary}" + (f"\n  try: {p.command}\n  (untried: trainwell diagnose "
              f"{run_dir} runs it briefly first and prints it only if it helps)" if p.command else ""), flush=True)
