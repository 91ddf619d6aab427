"""What a search found, for people: the trials table (live and at the end), the best trial, importances."""
from __future__ import annotations

import math
import os
import warnings
from typing import Any

from trainwell.errors import UserError
from trainwell.tune.space import Space
from trainwell.tune.storage import Study, from_record, quiet_optuna, storage_url

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "queued"}


def trial_row(t: Any) -> dict[str, Any]:
    """One trial as plain values (study.json, the table, the Python result)."""
    state = STATES.get(t.state.name, t.state.name.lower())
    if state == "pruned" and str(t.user_attrs.get("stopped", "")).startswith("diverged"):
        state = "diverged"
    last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
    return {"number": t.number, "state": state, "value": t.value, "last_value": last,
            "epochs": t.user_attrs.get("epochs"), "best_epoch": t.user_attrs.get("best_epoch"),
            "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
            "params": t.user_attrs.get("params", {}), "run": t.user_attrs.get("run"),
            "retry_of": t.system_attrs.get("failed_trial"), "host": t.user_attrs.get("host"), "note": t.user_attrs.get("stopped") or t.user_attrs.get("error")}


def completed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials that completed with a value: the only ones a best is chosen from."""
    return [r for r in rows if r["state"] == "complete" and r["value"] is not None]


def best_of(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed trial with the lowest value (the study minimises), or None."""
    done = completed(rows)
    return min(done, key=lambda r: r["value"]) if done else None


def shown_value(row: dict[str, Any]) -> float | None:
    """A trial's value, or for a trial that did not complete, the last epoch it reported."""
    return row["value"] if row["value"] is not None else row["last_value"]


def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials worth a line: all but the ones asked after the study was full (they never ran)."""
    return [r for r in rows if r["params"] or r["state"] not in ("failed",)]


def _width(name: str) -> int:
    return max(len(name), 9)


def header(names: list[str], metric: str) -> str:
    return (f"{'trial':>5}  {'state':<9} {metric:>12}  {'ran':>6}  {'time s':>7}  "
            + "  ".join(f"{n:<{_width(n)}}" for n in names)).rstrip()


def line(row: dict[str, Any], names: list[str], best: float | None = None) -> str:
    value = shown_value(row)
    text = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "-"
    if row["state"] != "complete" and value is not None:
        text = f"({text})"  # the last reported epoch's value, not a selected result
    mark = "*" if best is not None and row["value"] == best else " "
    params = "  ".join(f"{_fmt(row['params'].get(n, '-')):<{_width(n)}}" for n in names)
    secs = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
    return f"{row['number']:>5}{mark} {row['state']:<9} {text:>12}  {row['epochs'] or '-':>6}  {secs:>7}  {params}".rstrip()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(rows: list[dict[str, Any]], names: list[str], metric: str) -> str:
    best = best_of(rows)
    best = best["value"] if best else None
    return "\n".join([header(names, metric), *(line(r, names, best) for r in shown(rows))])


def importances(rows: list[dict[str, Any]], space: Space) -> dict[str, float]:
    """fANOVA importances (Optuna's default evaluator) of the options over the complete trials, computed on
    the trials' real values whatever the sampler (a grid's trials carry only a point number in Optuna)."""
    import optuna

    complete = completed(rows)
    dists = space.distributions()
    varied = [n for n in space.names() if len({repr(r["params"].get(n)) for r in complete}) > 1
              and all(n in r["params"] for r in complete)]
    if len(complete) < 3 or not varied:
        return {}
    quiet_optuna()
    scratch = optuna.create_study(direction="minimize")
    for r in complete:
        params = {n: r["params"][n] for n in varied}
        scratch.add_trial(optuna.trial.create_trial(params=params, distributions={n: dists[n] for n in varied},
                                                    value=r["value"]))
    try:
        with warnings.catch_warnings():  # "importances will be equal" and the like: the numbers say it
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(scratch, params=varied)
        return {k: round(float(v), 3) for k, v in found.items()}
    except (RuntimeError, ValueError):  # too few distinct results to split on
        return {}


def load(study: str, out: str = "runs", storage: str | None = None) -> tuple[Study, list[dict[str, Any]]]:
    """A study (running or done) and its trials as rows, read from its storage; changes nothing."""
    import optuna

    study_dir = study if os.path.isdir(study) else os.path.join(out, study)
    name = os.path.basename(os.path.normpath(study_dir))
    if storage is None and not os.path.isfile(os.path.join(study_dir, "study.db")):
        raise UserError(f"--show {study}: no study there (no {os.path.join(study_dir, 'study.db')}); give the study "
                        "folder, or --storage for a shared one")
    url = storage_url(storage, study_dir)
    quiet_optuna()
    probe = Study(name, study_dir, url, {}, Space([]), "random", None)
    try:
        ost = optuna.load_study(study_name=name, storage=probe.storage())
    except KeyError:
        raise UserError(f"--show {study}: the storage holds no study named '{name}'") from None
    spec = from_record(name, study_dir, url, ost.user_attrs)
    return spec, [trial_row(t) for t in ost.get_trials(deepcopy=False)]


