"""Where a study lives: its spec (`Study`), its Optuna storage (SQLite in WAL mode in the study folder, or
PostgreSQL shared by machines), creating or joining it, and reading it back (`load`) without changing it."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from trainwell.errors import UserError
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
