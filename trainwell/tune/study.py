"""`trainwell search`: trials are trainwell runs (prepare + fit + keep) driven by an Optuna study; only the
chosen configuration ever sees the test set.

    OUT/STUDY/
      search.yaml      the base options, the space and the sampler, for people (the study holds the same)
      study.db         the embedded storage: SQLite in WAL mode with a long busy timeout, shared by the
                       --jobs worker processes (--storage postgresql://... instead joins machines)
      trials/0007/     one trainwell run directory per trial; a retried trial resumes its directory
      best             -> trials/0007 once the chosen trial is tested (or final/ with --final)
      study.json       every trial and the result, written at the end

A worker that dies stops its heartbeat; any other worker (or a rerun of the command) marks the trial failed
after the grace period and queues it again with the same values, and the retry resumes from the dead
trial's last checkpoint. A study ends with exactly --trials finished (complete or pruned) trials.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from trainwell.callbacks.base import Callback
from trainwell.errors import Interrupted, TrainingFailed, UserError
from trainwell.tune.space import Space, parse_space

PRUNERS = ("auto", "none", "median", "halving", "hyperband")
METRICS = ("valid_error", "valid_loss")
DEFAULT_TRIALS = 20
HEARTBEAT_S = 10
MAX_RETRY = 3
IDENTITY = ("base", "space", "sampler", "metric", "pruner", "seed")  # what a rerun or another machine must match


@dataclass
class Study:
    """Everything a worker process needs, rebuilt from the study's own record (no pickles cross processes)."""

    name: str
    dir: str
    storage_url: str
    base: dict[str, Any]
    space: Space
    sampler: str
    trials: int | None
    metric: str = "valid_error"
    pruner: str = "auto"
    seed: int = 0
    heartbeat: int = HEARTBEAT_S
    grid: list[dict[str, Any]] = field(default_factory=list)
    threads: int = 0               # torch threads per worker (not part of what the study is)
    tensorboard: str | None = None  # TensorBoard folder of this study's trials (nor is this)

    @property
    def trials_dir(self) -> str:
        return os.path.join(self.dir, "trials")

    def record(self) -> dict[str, Any]:
        return {"base": self.base, "space": self.space.to_dict(), "sampler": self.sampler, "metric": self.metric,
                "pruner": self.pruner, "seed": self.seed, "trials": self.trials}

    def storage(self) -> Any:
        import optuna

        quiet_optuna()
        url = self.storage_url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite:///"):
            _wal(url[len("sqlite:///"):])
            kwargs = {"connect_args": {"timeout": 120}}  # writers wait for each other instead of failing
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=self.heartbeat, grace_period=3 * self.heartbeat,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
            except Exception as e:  # sqlalchemy / driver errors
                # two machines starting at once race to create the tables: the loser finds them on a retry
                if attempt == 4 or "connect" in str(e).lower() and "refused" in str(e).lower():
                    raise UserError(f"--storage {redact(url)}: cannot open it ({str(e).splitlines()[0][:200]})") from None
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def optuna_study(self, worker: int = 0) -> Any:
        import optuna

        return optuna.load_study(study_name=self.name, storage=self.storage(), sampler=self._sampler(worker),
                                 pruner=self._pruner())

    def _sampler(self, worker: int) -> Any:
        import optuna

        seed = self.seed * 1000 + worker  # workers must not draw the same values
        if self.sampler == "bayes":
            startup = min(10, max(4, (self.trials or DEFAULT_TRIALS) // 4))
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, group=True,
                                              constant_liar=True)
        return optuna.samplers.RandomSampler(seed=seed)  # grid: every trial's values come from the queue

    def _pruner(self) -> Any:
        import optuna

        kind = self.pruner if self.pruner != "auto" else {"grid": "none", "random": "median"}.get(self.sampler, "hyperband")
        if kind == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
        if kind == "halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        if kind == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
        return optuna.pruners.NopPruner()


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # trainwell's workers beat the heart themselves around ask/tell (work() below)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db"""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        return f"{head}://{user}:***@{tail.split('@', 1)[1]}"
    return url


def storage_url(given: str | None, study_dir: str) -> str:
    if not given:
        return "sqlite:///" + os.path.abspath(os.path.join(study_dir, "study.db"))
    if given.startswith(("postgresql://", "postgres://")):  # SQLAlchemy's default driver is psycopg2: use psycopg 3
        return "postgresql+psycopg://" + given.split("://", 1)[1]
    if given.startswith(("postgresql+psycopg://", "sqlite:///")):
        return given
    raise UserError(f"--storage {redact(given)}: use postgresql://USER:PASSWORD@HOST/DATABASE (or leave it out for "
                    "the study folder's own SQLite file)")


def _wal(path: str) -> None:
    """WAL lets readers and one writer work at once; the mode stays with the file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=120)) as db:
        db.execute("PRAGMA journal_mode=WAL")


# --- one worker: ask, train, tell, until the study has its trials ------------------------------------------


def work(study: Study, worker: int = 0, deadline: float | None = None,
         on_trial: Callable[[Any], None] | None = None) -> None:
    """Run trials until the study has `trials` finished ones (or the deadline passes). Safe to run in
    several processes and on several machines at once."""
    import optuna
    from optuna.trial import TrialState

    ost = study.optuna_study(worker)
    failures = 0
    while True:
        optuna.storages.fail_stale_trials(ost)  # a dead worker's trial: failed and queued again
        counts = _counts(ost)
        if study.trials is not None and counts["done"] >= study.trials:
            return
        if deadline is not None and time.time() >= deadline:
            return
        if study.trials is not None and counts["done"] + counts["running"] >= study.trials and not counts["waiting"]:
            time.sleep(min(study.heartbeat, 2))  # the last trials run elsewhere; stay in case one of them dies
            continue
        if study.sampler == "grid" and not counts["waiting"]:
            if counts["running"]:
                time.sleep(min(study.heartbeat, 2))
                continue
            return  # the grid is done (points that failed for good stay failed)
        trial = ost.ask()
        if _surplus(ost, trial, study.trials):
            ost.tell(trial, state=TrialState.FAIL)  # asked after the last needed one: it never ran
            continue
        with _heartbeat(ost._storage, trial._trial_id, study.heartbeat):
            try:
                state, value = run_trial(study, trial)
            except (Interrupted, KeyboardInterrupt):
                ost.tell(trial, state=TrialState.FAIL)
                _requeue(ost, trial)  # a rerun resumes it from its last checkpoint
                raise Interrupted(f"interrupted; trial {trial.number} was saved and queued again: rerun the same "
                                  "trainwell search command to resume the study") from None
            except UserError as e:
                trial.set_user_attr("error", str(e))
                ost.tell(trial, state=TrialState.FAIL)
                failures += 1
                if failures >= 3:
                    raise UserError(f"three trials in a row could not start; the last: {e}") from None
                continue
            except BaseException:
                ost.tell(trial, state=TrialState.FAIL)
                raise
        failures = 0
        if state == TrialState.COMPLETE:
            ost.tell(trial, value)
        else:
            ost.tell(trial, state=state)
        if on_trial is not None:
            on_trial(ost.trials[trial.number])


def _counts(ost: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    trials = ost.get_trials(deepcopy=False)
    return {"done": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
            "running": sum(t.state == TrialState.RUNNING for t in trials),
            "waiting": sum(t.state == TrialState.WAITING for t in trials)}


def _surplus(ost: Any, trial: Any, n: int | None) -> bool:
    """True when `n` trials that were asked before this one are finished, running or queued: several
    workers asking at once then settle on exactly n by trial number, whoever asked first."""
    from optuna.trial import TrialState

    if n is None:
        return False
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    ahead = [t for t in ost.get_trials(deepcopy=False) if t.number < trial.number and t.state in live]
    return len(ahead) >= n


def _requeue(ost: Any, trial: Any) -> None:
    import optuna

    frozen = ost._storage.get_trial(trial._trial_id)
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(ost, frozen)


@contextlib.contextmanager
def _heartbeat(storage: Any, trial_id: int, interval: int) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is retried; the grace period is 3 beats
                storage.record_heartbeat(trial_id)

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, name="trainwell-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- one trial: a trainwell run that reports each epoch to the pruner --------------------------------------


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

    from trainwell import rundir
    from trainwell.run import fit, keep, prepare

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
        from trainwell.callbacks.tensorboard import TensorBoard

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
    import shutil

    from trainwell import rundir

    ckpts = rundir.checkpoints(run_dir)
    if os.path.isdir(run_dir) and not rundir.is_finished(run_dir) and not (os.path.isdir(ckpts) and os.listdir(ckpts)):
        shutil.rmtree(run_dir)


def open_study(study: Study) -> tuple[Any, bool]:
    """The Optuna study, created (with the grid queued) or joined; a joined study must have been started with
    the same base options, space and sampler."""
    import optuna

    storage = study.storage()
    record = study.record()
    try:
        ost = optuna.create_study(study_name=study.name, storage=storage, direction="minimize")
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        ost = optuna.load_study(study_name=study.name, storage=storage)
        created = False
    if created:
        for key, value in record.items():
            ost.set_user_attr(key, value)
        if study.sampler == "grid":
            for i, point in enumerate(study.grid[: study.trials or None]):
                ost.enqueue_trial({"point": i}, user_attrs={"params": point})
        ost.set_user_attr("ready", True)  # the grid is queued: other workers may ask now
        return ost, True
    saved = ost.user_attrs
    for _ in range(60):  # its creator may still be queueing the grid
        if saved.get("ready"):
            break
        time.sleep(0.5)
        saved = optuna.load_study(study_name=study.name, storage=storage).user_attrs
    differs = [k for k in IDENTITY if saved.get(k) != record[k]]
    if differs:
        raise UserError(f"study '{study.name}' was started with other {', '.join(differs)}; rerun it with the same "
                        f"options to resume it, or pick another name with --study")
    if record["trials"] != saved.get("trials"):
        ost.set_user_attr("trials", record["trials"])  # more (or fewer) trials: allowed on a rerun
    return ost, False


def from_record(name: str, study_dir: str, url: str, record: dict[str, Any], heartbeat: int = HEARTBEAT_S) -> Study:
    space = parse_space(record["space"], record["base"], record["sampler"], source="space")
    study = Study(name, study_dir, url, record["base"], space, record["sampler"], record.get("trials"),
                  record.get("metric", "valid_error"), record.get("pruner", "auto"), record.get("seed", 0), heartbeat)
    if study.sampler == "grid":
        study.grid = space.grid()
    return study
