"""What a search found, for people: the trials table (live and at the end), the best trial, importances."""
from __future__ import annotations

import math
from typing import Any

from trainwell.tune.space import Space

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


def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials worth a line: all but the ones asked after the study was full (they never ran)."""
    return [r for r in rows if r["params"] or r["state"] not in ("failed",)]


def _width(name: str) -> int:
    return max(len(name), 9)


def header(names: list[str], metric: str) -> str:
    return (f"{'trial':>5}  {'state':<9} {metric:>12}  {'ran':>6}  {'time s':>7}  "
            + "  ".join(f"{n:<{_width(n)}}" for n in names)).rstrip()


def line(row: dict[str, Any], names: list[str], best: float | None = None) -> str:
    value = row["value"] if row["value"] is not None else row["last_value"]
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
    complete = [r["value"] for r in rows if r["state"] == "complete" and r["value"] is not None]
    best = min(complete) if complete else None
    return "\n".join([header(names, metric), *(line(r, names, best) for r in shown(rows))])


def importances(rows: list[dict[str, Any]], space: Space) -> dict[str, float]:
    """fANOVA importances (Optuna's default evaluator) of the options over the complete trials, computed on
    the trials' real values whatever the sampler (a grid's trials carry only a point number in Optuna)."""
    import optuna

    from trainwell.tune.study import quiet_optuna

    complete = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
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
    import warnings

    try:
        with warnings.catch_warnings():  # "importances will be equal" and the like: the numbers say it
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(scratch, params=varied)
        return {k: round(float(v), 3) for k, v in found.items()}
    except (RuntimeError, ValueError):  # too few distinct results to split on
        return {}
