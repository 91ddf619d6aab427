"""One trial: a trainwell run (prepare + fit + keep) in its own run directory, reporting each epoch's metric
to the study so that the pruner can stop it; it never reads the test set."""
from __future__ import annotations

import os
import shutil
import socket
import time
from typing import Any

from trainwell import rundir
from trainwell.callbacks.base import Callback
from trainwell.callbacks.tensorboard import TensorBoard
from trainwell.errors import TrainingFailed
from trainwell.prepared import prepare
from trainwell.run import fit, keep
from trainwell.tune.storage import Study

class Pruning(Callback):
    """Reports the epoch's validation metric to the trial; stops the run when the pruner says so.

    When the search varies the number of epochs, a trial reports at its fraction of the schedule, scaled to
    the longest: a 4-epoch trial of a space up to 16 reports at steps 4, 8, 12, 16. The pruner then compares
    trials at the same point of their learning-rate schedule: by epoch count, a short schedule that has
    already decayed its rate would look better than a long one still at its peak, and long trials would be
    pruned for being long (the benchmark's first run chose 8 epochs where the grid's best had 16)."""

    def __init__(self, trial: Any, metric: str, scale: float = 1.0) -> None:
        self.trial, self.metric, self.scale = trial, metric, scale
        self.pruned_at: int | None = None

    def on_fit_start(self, trainer: Any) -> None:  # a resumed trial reports the epochs it already has
        for record in trainer.history:
            self._report(record)

    def on_epoch_end(self, trainer: Any) -> None:
        record = trainer.history[-1]
        self._report(record)
        if self.trial.should_prune():
            self.pruned_at = record["epoch"]
            trainer.state.should_stop = True
            trainer.state.stop_reason = f"pruned after epoch {record['epoch']}: {self.metric} behind other trials"

    def _report(self, record: dict[str, Any]) -> None:
        if record.get(self.metric) is not None:
            self.trial.report(float(record[self.metric]), round(int(record["epoch"]) * self.scale))


def trial_values(study: Study, trial: Any) -> dict[str, Any]:
    if study.sampler == "grid":
        point = trial.suggest_categorical("point", list(range(len(study.grid))))
        return dict(study.grid[point])
    return study.space.suggest(trial)


def run_trial(study: Study, trial: Any) -> tuple[Any, float | None]:
    """Train one configuration (prepare + fit + keep) in its own run directory; never reads the test set."""
    from optuna.trial import TrialState

    values = trial_values(study, trial)
    number = trial.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial", trial.number)
    name = f"{number:04d}"
    run_dir = os.path.join(study.trials_dir, name)
    trial.set_user_attr("params", values)
    trial.set_user_attr("run", os.path.relpath(run_dir, study.dir))
    trial.set_user_attr("host", socket.gethostname())
    _forget_unstarted(run_dir)
    options = {**study.base, **values, "monitor": study.metric}
    if study.threads and "threads" not in study.base:
        options["threads"] = study.threads
    prep = prepare(options, out=study.trials_dir, name=name)
    longest = study.space.longest_epochs()
    scale = longest / prep.config.epochs if longest and "epochs" in values and prep.config.epochs else 1.0
    pruning = Pruning(trial, study.metric, scale)
    started = time.perf_counter()
    callbacks: list[Any] = [pruning]
    if study.tensorboard:
        callbacks.append(TensorBoard(os.path.join(study.tensorboard, name)))
    try:
        trainer = fit(prep, callbacks=callbacks, quiet=True)
    except TrainingFailed as e:  # diverged for good: a result about this configuration, ranked as pruned
        trial.set_user_attr("stopped", f"diverged: {e}")
        history = rundir.read_run(run_dir).history
        trial.set_user_attr("epochs", len(history))
        return TrialState.PRUNED, None
    trial.set_user_attr("epochs", len(trainer.history))
    trial.set_user_attr("train_s", round(time.perf_counter() - started, 1))
    if pruning.pruned_at is not None:
        trial.set_user_attr("stopped", trainer.state.stop_reason)
        return TrialState.PRUNED, None
    keep(prep, trainer)
    best = trainer.state.best_epoch
    record = next((r for r in trainer.history if r["epoch"] == best), trainer.history[-1])
    trial.set_user_attr("best_epoch", best)
    return TrialState.COMPLETE, float(record[study.metric])


def _forget_unstarted(run_dir: str) -> None:
    """A directory left by a trial that died before its first checkpoint cannot be resumed: start it afresh."""
    ckpts = rundir.checkpoints(run_dir)
    if os.path.isdir(run_dir) and not rundir.is_finished(run_dir) and not (os.path.isdir(ckpts) and os.listdir(ckpts)):
        shutil.rmtree(run_dir)


