"""The report of a search: trials table, metric by trial, each parameter against the metric, importances,
the per-epoch curves of complete and pruned trials, and a link to the best trial's own report."""
from __future__ import annotations

import json
import math
import os
from typing import Any

from trainwell import rundir
from trainwell.errors import UserError
from trainwell.report import charts
from trainwell.report.charts import esc
from trainwell.report.pages import write_page
from trainwell.report.render import fig, figs, page, pct, section, table
from trainwell.tune.results import best_of, importances, load, shown, shown_value

STATE_COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "diverged": "#d62728", "failed": "#7f7f7f",
                "running": "#2ca02c", "queued": "#bcbd22"}


def is_study(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "study.db")) or os.path.isfile(os.path.join(path, "study.json"))


def study_data(study_dir: str) -> dict[str, Any]:
    """Trials (from the study's storage), the space, the outcome (study.json, once concluded) and each
    trial's per-epoch metric (from its run directory)."""
    spec, rows = load(study_dir)
    rows = shown(rows)
    done = {}
    record = os.path.join(study_dir, "study.json")
    if os.path.isfile(record):
        try:
            with open(record, encoding="utf-8") as f:
                done = json.load(f)
        except (OSError, ValueError):  # damaged: the storage still has the trials; the outcome is left out
            done = {}
        done = done if isinstance(done, dict) else {}
    best = best_of(rows)
    curves = {}
    for r in rows:
        run_dir = os.path.join(study_dir, r["run"]) if r.get("run") else None
        if run_dir and os.path.isfile(rundir.path(run_dir, rundir.HISTORY)):
            try:
                hist = rundir.read_run(run_dir).history
            except UserError:  # one damaged trial folder: its curve is left out, not the report
                continue
            curves[r["number"]] = {"epoch": hist.column("epoch"), "value": hist.column(spec.metric)}
    tested = done.get("tested_run")
    report_link = None
    if tested and os.path.isfile(rundir.path(tested, rundir.REPORT)):
        report_link = os.path.relpath(rundir.path(tested, rundir.REPORT), study_dir)
    return {"name": spec.name, "dir": study_dir, "sampler": spec.sampler, "metric": spec.metric,
            "pruner": spec.pruner, "base": spec.base,
            "space": [{"name": p.name, "kind": p.kind, "low": p.low, "high": p.high, "log": p.log,
                       "choices": [str(c) for c in p.choices], "describe": p.describe()} for p in spec.space.params],
            "rows": rows, "best": best, "importances": done.get("importances") or importances(rows, spec.space),
            "test_accuracy": done.get("test_accuracy"), "tested_run": tested, "report_link": report_link,
            "curves": curves, "concluded": bool(done)}


def render_study(d: dict[str, Any]) -> str:
    rows, best, metric = d["rows"], d["best"], d["metric"]
    names = [p["name"] for p in d["space"]]
    percent = metric.endswith("error") or metric.endswith("accuracy")
    counts = {s: sum(r["state"] == s for r in rows) for s in STATE_COLORS}
    head = [f"<h1>search {esc(d['name'])}</h1>",
            f'<div class="sub">{esc(d["sampler"])} sampler · pruner {esc(d["pruner"])} · {len(rows)} trials ('
            + ", ".join(f"{n} {esc(s)}" for s, n in counts.items() if n) + f') · metric {esc(metric)}'
            + ("" if d["concluded"] else " · still running or not concluded") + "</div>"]
    outcome = []
    if best:
        outcome.append(table([("best trial", best["number"]),
                              (f"its {metric}", pct(best["value"]) if percent else best["value"]),
                              ("selected epoch", best.get("best_epoch")),
                              *[(k, v) for k, v in best["params"].items()],
                              ("test accuracy (the one look)", pct(d.get("test_accuracy"))),
                              ("tested run", d.get("tested_run"))]))
        if d.get("report_link"):
            outcome.append(f'<p><a href="{esc(d["report_link"])}">the tested run\'s report</a></p>')
    epochs_total = sum(r["epochs"] or 0 for r in rows)
    outcome.append(f'<p class="note">{epochs_total} epochs trained over all trials.</p>')
    out = [_by_trial(rows, metric, percent)]
    if d["importances"]:
        imp = d["importances"]
        out.append(fig(charts.bars(list(imp), list(imp.values()), title="parameter importance (fANOVA)"),
                       "Share of the metric's variance over complete trials that each parameter explains."))
    if d["curves"]:
        out.append(_curves(d, percent))
    params = [_param_plot(p, rows, metric, percent) for p in d["space"]]
    legend = " ".join(f'<span style="color:{c}">●</span> {esc(s)}' for s, c in STATE_COLORS.items() if counts.get(s))
    trial_rows = [(r["number"], r["state"], _value(r, percent), r["epochs"], r["best_epoch"], r["seconds"],
                   *[r["params"].get(n) for n in names], r.get("note")) for r in rows]
    body = head + [section("outcome", "Outcome", outcome),
                   section("trials-figures", "Trials", [figs(out), f'<p class="note">{legend}</p>']),
                   section("parameters", "Parameters against the metric", [figs([p for p in params if p])]),
                   section("trials", "All trials", [table(trial_rows, ("trial", "state", metric, "epochs", "selected",
                                                                        "seconds", *names, "note"),
                                                          numeric=(0, 2, 3, 4, 5))]),
                   section("space", "Search space and fixed options",
                           [table([(p["name"], p["describe"]) for p in d["space"]], ("option", "searched over")),
                            table(sorted(d["base"].items()), ("fixed option", "value"))])]
    return page(f"trainwell search: {d['name']}", body)


def _value(r: dict[str, Any], percent: bool) -> Any:
    v = shown_value(r)
    if v is None:
        return None
    text = pct(v) if percent else f"{v:.4g}"
    return text if r["state"] == "complete" else f"({text})"


def _by_trial(rows: list[dict[str, Any]], metric: str, percent: bool) -> str:
    pts = []
    for r in rows:
        v = shown_value(r)
        if v is not None:
            pts.append({"x": r["number"], "y": v, "color": STATE_COLORS.get(r["state"], "#333"),
                        "label": f"trial {r['number']} {r['state']}: {v:.4g}"})
    svg = charts.scatter(pts, title=f"{metric} by trial", xlabel="trial", ylabel=metric, percent_y=percent,
                         legend=[(s, c) for s, c in STATE_COLORS.items() if any(r["state"] == s for r in rows)])
    return fig(svg, "Pruned trials show the value they had reached when stopped.")


def _curves(d: dict[str, Any], percent: bool) -> str:
    series = []
    for r in d["rows"]:
        c = d["curves"].get(r["number"])
        if c:
            series.append({"name": "", "x": c["epoch"], "y": c["value"], "color": STATE_COLORS.get(r["state"], "#333"),
                           "dash": r["state"] != "complete"})
    svg = charts.line_chart(series, title=f"{d['metric']} per epoch, every trial", percent=percent)
    return fig(svg, "Complete trials solid, pruned ones dashed: pruning stops a trial whose curve trails the others.")


def _param_plot(p: dict[str, Any], rows: list[dict[str, Any]], metric: str, percent: bool) -> str:
    pts = []
    cats = p["choices"] if p["kind"] == "categorical" else None
    for r in rows:
        v = shown_value(r)
        x = r["params"].get(p["name"])
        if v is None or x is None:
            continue
        if cats is not None:
            if str(x) not in cats:
                continue
            x = cats.index(str(x))
        elif not isinstance(x, (int, float)) or not math.isfinite(x):
            continue
        pts.append({"x": x, "y": v, "color": STATE_COLORS.get(r["state"], "#333"),
                    "label": f"trial {r['number']}: {p['name']}={r['params'].get(p['name'])}, {metric} {v:.4g}"})
    if not pts:
        return ""
    return fig(charts.scatter(pts, title=p["name"], xlabel=p["name"], ylabel=metric, log_x=p["log"],
                              percent_y=percent, categories=cats, width=300, height=220))


def write_study_report(study_dir: str, out: str | None = None) -> str:
    """Write the study's report (to STUDY/report.html unless `out`); returns its path."""
    return write_page(out or os.path.join(study_dir, "report.html"), render_study(study_data(study_dir)))


__all__ = ["is_study", "render_study", "study_data", "write_study_report"]
