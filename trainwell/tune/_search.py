"""trainwell.tune: `trainwell search` and trainwell.search(): grid, random and Bayesian (TPE) search with pruning over any train option.

    >>> result = trainwell.search("space.yaml", sampler="bayes", trials=20, data="digits")   # doctest: +SKIP
    >>> result.best_params, result.best_value, result.test_accuracy                           # doctest: +SKIP

Trials select on validation; the chosen configuration alone is tested, once (study.py has the layout).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from trainwell import rundir
from trainwell.callbacks.tensorboard import require
from trainwell.config import build_config, merge_options
from trainwell.errors import Interrupted, UserError
from trainwell.pipeline import train, write_diagnosis, write_report
from trainwell.run import test
from trainwell.rundir import atomic_write
from trainwell.tune.report import write_study_report
from trainwell.tune.results import best_of, header, importances, line, load, shown, table, trial_row
from trainwell.tune.space import SAMPLERS, load_space, parse_space
from trainwell.tune.storage import (DEFAULT_TRIALS, HEARTBEAT_S, METRICS, PRUNERS, Study, open_study, quiet_optuna, redact,
                                     storage_url)
from trainwell.tune.study import counts, work

__all__ = ["SearchResult", "search", "show"]


@dataclass
class SearchResult:
    study: str
    dir: str
    best_trial: int | None
    best_params: dict[str, Any]
    best_value: float | None
    metric: str
    test_accuracy: float | None
    run_dir: str | None                    # the tested run: the best trial's, or final/ with --final
    trials: list[dict[str, Any]] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)


def search(space: str | dict, *, sampler: str = "bayes", trials: int | None = None, timeout: float | None = None,
           jobs: int = 1, storage: str | None = None, study: str | None = None, metric: str = "valid_error",
           pruner: str = "auto", final: bool = False, out: str = "runs", quiet: bool = False,
           config_file: str | None = None, overrides: list[str] | None = None, heartbeat: int = HEARTBEAT_S,
           tensorboard: str | None = None, **options: Any) -> SearchResult:
    """Search `space` (a YAML file or a dict) with every other option as the fixed base; then test the best
    configuration once. Rerunning the same call resumes the study. With `tensorboard`, each trial also writes
    TensorBoard event files to TENSORBOARD/STUDY/TRIAL."""
    _check_choice("sampler", sampler, SAMPLERS)
    _check_choice("pruner", pruner, PRUNERS)
    _check_choice("metric", metric, METRICS)
    for flag, value in (("trials", trials), ("jobs", jobs)):
        if value is not None and value < 1:
            raise UserError(f"--{flag} {value}: must be at least 1")
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout {timeout}: must be > 0 seconds")
    objects = [k for k, v in options.items() if not isinstance(v, (str, int, float, bool, list, tuple, type(None)))]
    if objects:  # every trial (and every worker process, on any machine) rebuilds the run from written options
        raise UserError(f"{', '.join(objects)}: search takes options that can be written down; give a model as "
                        "'FILE.py:FUNCTION' and data as a file or a built-in name")
    base = merge_options(options, config_file=config_file, overrides=overrides)
    base.pop("monitor", None)  # selection follows the search's metric
    build_config(base)  # the base alone must be valid: one line naming the field otherwise
    parsed = load_space(space, base, sampler) if isinstance(space, str) else parse_space(space, base, sampler)
    both = sorted(set(parsed.names()) & set(base))
    if both:
        raise UserError(f"{', '.join(both)}: both fixed (as a train option) and searched (in the space); drop one")
    name = study or _default_name(space, base)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UserError(f"--study {name}: use letters, digits, '.', '_' and '-' only")
    study_dir = os.path.join(out, name)
    url = storage_url(storage, study_dir)
    spec = Study(name, study_dir, url, base, parsed, sampler, trials, metric, pruner, int(base.get("seed") or 0),
                 heartbeat)
    finite = all(p.kind == "categorical" or p.kind == "int" for p in parsed.params)
    if sampler != "grid" and finite and len(parsed.grid()) <= (trials or DEFAULT_TRIALS):
        # random or TPE draws would repeat combinations: every one of them, once, is the better search
        print(f"search: the space has only {len(parsed.grid())} combinations; running each once (--sampler grid)",
              file=sys.stderr)
        sampler = spec.sampler = "grid"
        trials = None
    if sampler == "grid":
        spec.grid = parsed.grid()
        if trials is not None and trials > len(spec.grid):
            print(f"search: the grid has {len(spec.grid)} points; running those, not {trials}", file=sys.stderr)
        spec.trials = min(trials or len(spec.grid), len(spec.grid))
    elif trials is None and timeout is None:
        spec.trials = DEFAULT_TRIALS
    cores = os.cpu_count() or 1
    spec.threads = max(1, cores // jobs) if jobs > 1 else 0
    if tensorboard:
        require()
        spec.tensorboard = os.path.join(os.path.abspath(tensorboard), name)
    _, created = open_study(spec)  # a storage that cannot be opened leaves no study folder behind
    os.makedirs(study_dir, exist_ok=True)
    _write_record(spec)
    if not quiet:
        _intro(spec, created, jobs, timeout)
    deadline = time.time() + timeout if timeout else None
    if jobs == 1:
        names = parsed.names()
        work(spec, 0, deadline, on_trial=None if quiet else lambda t: print(line(trial_row(t), names), flush=True))
    else:
        _run_workers(spec, jobs, deadline, quiet)
    return conclude(spec, final=final, quiet=quiet, jobs_table=jobs > 1)  # several workers: rows came in any order


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"--{flag} {value}: choose one of {', '.join(choices)}")


def _default_name(space: str | dict, base: dict[str, Any]) -> str:
    stem = os.path.splitext(os.path.basename(space))[0] if isinstance(space, str) else "space"
    stem = re.sub(r"^search[-_]?(?=.)", "", stem)  # search_fashion.yaml -> search-fashion-..., not search-search_...
    data = os.path.basename(os.path.normpath(str(base.get("data") or "fashion-mnist")))
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in f"search-{stem}-{data}")


def _write_record(spec: Study) -> None:
    text = yaml.safe_dump({"study": spec.name, "storage": redact(spec.storage_url), **spec.record()}, sort_keys=False)
    atomic_write(os.path.join(spec.dir, "search.yaml"), text.encode())


def _intro(spec: Study, created: bool, jobs: int, timeout: float | None) -> None:
    what = "started" if created else "resumed"
    limit = [f"{spec.trials} trials" if spec.trials else "", f"{timeout:g} s" if timeout else ""]
    print(f"search {spec.name} {what}: {spec.sampler} over {len(spec.space.params)} options "
          f"({' or '.join(x for x in limit if x)}), {jobs} worker{'s' if jobs > 1 else ''}, "
          f"storage {redact(spec.storage_url)}", flush=True)
    for p in spec.space.params:
        print(f"  {p.describe()}", flush=True)
    print(header(spec.space.names(), spec.metric), flush=True)


def _run_workers(spec: Study, jobs: int, deadline: float | None, quiet: bool) -> None:
    """J worker processes on this machine; this one prints each trial as it ends."""
    env = {**os.environ, "TRAINWELL_STORAGE": spec.storage_url, "TRAINWELL_TENSORBOARD": spec.tensorboard or ""}
    procs = []
    for w in range(jobs):
        cmd = [sys.executable, "-m", "trainwell.tune.worker", spec.dir, spec.name, str(w), str(spec.heartbeat),
               str(spec.threads), str(deadline or 0)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
    quiet_optuna()
    ost = spec.optuna_study()
    printed: set[int] = set()
    names = spec.space.names()
    try:
        while True:
            running = [p for p in procs if p.poll() is None]
            for t in ost.get_trials(deepcopy=False):
                if t.state.is_finished() and t.number not in printed:
                    printed.add(t.number)
                    row = trial_row(t)
                    if not quiet and row in shown([row]):
                        print(line(row, names), flush=True)
            if not running:
                break
            time.sleep(1)
    except KeyboardInterrupt:  # a terminal's Ctrl-C reached the workers too: each saves and queues its trial
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.terminate()  # only this process was signalled: pass it on, once
                p.wait()
        raise Interrupted("interrupted; the running trials were saved and queued again: rerun the same trainwell "
                          "search command to resume the study") from None
    failed = [p.returncode for p in procs if p.returncode not in (0, None)]
    if not failed:
        return
    done = counts(ost)["done"]
    if spec.trials is not None and done >= spec.trials:  # the others took over its trial: say so, go on
        print(f"search: {len(failed)} of {jobs} workers died (exit {failed[0]}); their trials were retried",
              file=sys.stderr, flush=True)
        return
    raise UserError(f"{len(failed)} of {jobs} workers failed (exit {failed[0]}); see the error above, fix it "
                    "and rerun the same command to resume the study")


def conclude(spec: Study, final: bool = False, quiet: bool = False, jobs_table: bool = False) -> SearchResult:
    """Wait for trials still running elsewhere, then test the best configuration once (or retrain it on train +
    validation with --final and test that), and write study.json."""
    import optuna

    ost = spec.optuna_study()
    while counts(ost)["running"]:
        optuna.storages.fail_stale_trials(ost)
        time.sleep(min(spec.heartbeat, 2))
    rows = [trial_row(t) for t in ost.get_trials(deepcopy=False)]
    names = spec.space.names()
    best = best_of(rows)
    if best is None:
        raise UserError(f"search {spec.name}: no trial completed ({len(shown(rows))} ran); see the trials above")
    imp = importances(rows, spec.space)
    tested_dir, accuracy = _test_best(spec, best, final, quiet)
    result = SearchResult(spec.name, spec.dir, best["number"], best["params"], best["value"], spec.metric, accuracy,
                          tested_dir, rows, imp)
    _write_summary(spec, result)
    _write_reports(spec, tested_dir, quiet)
    if not quiet:
        by_state = {s: sum(r["state"] == s for r in shown(rows)) for s in ("complete", "pruned", "diverged", "failed")}
        if jobs_table:
            print("\n" + table(rows, names, spec.metric), flush=True)
        print(f"\n{len(shown(rows))} trials: " + ", ".join(f"{n} {s}" for s, n in by_state.items() if n), flush=True)
        print(f"best: trial {best['number']}, {spec.metric} {best['value']:.4f} at epoch {best['best_epoch']}: "
              + ", ".join(f"{k}={v}" for k, v in best["params"].items()), flush=True)
        if imp:
            print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()), flush=True)
        if accuracy is not None:
            print(f"test accuracy {accuracy:.2%} ({'retrained on train + validation, ' if final else ''}"
                  f"the one look at the test set): {tested_dir}", flush=True)
    return result


def _test_best(spec: Study, best: dict[str, Any], final: bool, quiet: bool) -> tuple[str | None, float | None]:
    """The one look at the test set per study: done by the machine that holds the best trial's run, once."""
    if final:
        run_dir = os.path.join(spec.dir, "final")
        if rundir.is_finished(run_dir):
            return run_dir, rundir.read_run(run_dir).summary["test_accuracy"]
        epochs = best["best_epoch"] or best["epochs"]
        options = {**spec.base, **best["params"], "epochs": epochs, "valid_fraction": 0.0, "monitor": "auto"}
        if not quiet:
            print(f"final: retraining trial {best['number']}'s configuration on train + validation for {epochs} "
                  "epochs (its selected epoch)", flush=True)
        run = train(options, out=spec.dir, name="final", quiet=quiet, tensorboard=spec.tensorboard)
        _link_best(spec.dir, "final")
        return run.dir, run.summary["test_accuracy"]
    run_dir = os.path.join(spec.dir, best["run"])
    if not os.path.isdir(run_dir):
        if not quiet:
            print(f"the best trial ran on another machine ({best.get('host') or 'elsewhere'}); it is tested there, "
                  f"not here ({socket.gethostname()})", flush=True)
        return None, None
    if not rundir.is_finished(run_dir):
        test(run_dir, quiet=True)
    _link_best(spec.dir, best["run"])
    return run_dir, rundir.read_run(run_dir).summary["test_accuracy"]


def _write_reports(spec: Study, tested_dir: str | None, quiet: bool) -> None:
    """The tested run's report.html, then the study's, which links to it. Drawing never fails a search."""
    if tested_dir and not os.path.isfile(rundir.path(tested_dir, rundir.REPORT)):
        if not os.path.isfile(rundir.path(tested_dir, rundir.DIAGNOSIS)):
            write_diagnosis(tested_dir, quiet=True)
        write_report(tested_dir, quiet=True)
    try:
        path = write_study_report(spec.dir)
    except Exception as e:  # noqa: BLE001 -- the search's results are on disk; a drawing bug must not lose them
        print(f"trainwell: note: no study report written ({type(e).__name__}: {e})", file=sys.stderr)
        return
    if not quiet:
        print(f"report: {path}", flush=True)


def _link_best(study_dir: str, target: str) -> None:
    link = os.path.join(study_dir, "best")
    try:
        if os.path.islink(link):
            os.remove(link)
        os.symlink(target, link)
    except OSError:  # a file system without links: study.json names the run as well
        pass


def _write_summary(spec: Study, result: SearchResult) -> None:
    body = {"study": spec.name, "sampler": spec.sampler, "metric": spec.metric, "best_trial": result.best_trial,
            "best_params": result.best_params, "best_value": result.best_value, "test_accuracy": result.test_accuracy,
            "tested_run": result.run_dir, "importances": result.importances, "trials": result.trials}
    atomic_write(os.path.join(spec.dir, "study.json"), json.dumps(body, indent=1, default=str).encode())


def show(study: str, out: str = "runs", storage: str | None = None) -> SearchResult:
    """The table, best trial and importances of a study (running or done); changes nothing."""
    spec, rows = load(study, out, storage)
    study_dir, name = spec.dir, spec.name
    print(table(rows, spec.space.names(), spec.metric))
    best = best_of(rows)
    imp = importances(rows, spec.space)
    accuracy, run_dir = None, None
    if best:
        print(f"best: trial {best['number']}, {spec.metric} {best['value']:.4f}: "
              + ", ".join(f"{k}={v}" for k, v in best["params"].items()))
        run_dir = os.path.join(study_dir, best["run"])
        if rundir.is_finished(run_dir):
            accuracy = rundir.read_run(run_dir).summary["test_accuracy"]
            print(f"test accuracy {accuracy:.2%}: {run_dir}")
    if imp:
        print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()))
    return SearchResult(name, study_dir, best["number"] if best else None, best["params"] if best else {},
                        best["value"] if best else None, spec.metric, accuracy, run_dir, rows, imp)
