"""Report data -> one self-contained HTML page: inline CSS, inline SVG figures, inline PNG pictures, no script.

Every string from a run (class names, file and run names, config values, diagnosis text) is escaped here
or in `charts`; nothing from a run reaches the page as markup.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

from trainwell.report import charts
from trainwell.report.charts import esc
from trainwell.report.images import mosaic, png_uri, zoom

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #dde1e8; --bad: #b42318; --warn: #b54708; --ok: #067647; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0;
       background: #f6f7f9; }
main { max-width: 1120px; margin: 0 auto; padding: 20px 24px 48px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 2px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 14px 0 6px; }
.sub, .note { color: var(--muted); }
.note { font-size: 12.5px; margin: 4px 0 8px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.diff td { background: #fff7d6; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f1f3f6; padding: 1px 4px;
       border-radius: 3px; word-break: break-all; }
.verdict { border-left: 5px solid var(--ok); background: #f3faf6; padding: 10px 14px; margin: 14px 0; }
.verdict.warn { border-color: var(--warn); background: #fff8f0; }
.verdict.fail { border-color: var(--bad); background: #fef3f2; }
.verdict .v { font-size: 17px; font-weight: 700; }
.verdict ul { margin: 6px 0 0; padding-left: 20px; }
.figs { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: flex-start; }
figure { margin: 0; break-inside: avoid; }
figcaption { font-size: 12px; color: var(--muted); max-width: 520px; }
svg.chart { max-width: 100%; height: auto; display: block; }
img.px { image-rendering: pixelated; display: block; }
.examples { display: flex; flex-wrap: wrap; gap: 8px; }
.examples figure { width: 92px; font-size: 11px; }
.examples figcaption { max-width: 92px; word-break: break-word; }
.bad { color: var(--bad); }
.cols { display: flex; flex-wrap: wrap; gap: 8px 40px; }
details summary { cursor: pointer; color: var(--muted); }
@media print { body { background: #fff; } main { padding: 0; max-width: none; } h2 { break-after: avoid; }
  details { display: block; } }
"""


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>\n"
            + "\n".join(body) + f"\n<p class=\"note\">written by trainwell on {esc(time.strftime('%Y-%m-%d %H:%M'))}"
            "</p></main></body></html>\n")


def section(sid: str, title: str, parts: list[str]) -> str:
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>' + "".join(parts) + "</section>"


def fig(svg: str, caption: str = "") -> str:
    return f"<figure>{svg}" + (f"<figcaption>{esc(caption)}</figcaption>" if caption else "") + "</figure>"


def figs(items: list[str]) -> str:
    return '<div class="figs">' + "".join(items) + "</div>"


def img(pixels: Any, alt: str, cell: int | None = None) -> str:
    px = zoom(pixels, cell) if cell else pixels
    h, w = px.shape[:2]
    return f'<img class="px" src="{png_uri(px)}" width="{w}" height="{h}" alt="{esc(alt)}">'


def table(rows: Sequence[Sequence[Any]], head: Sequence[str] = (), numeric: Sequence[int] = (),
          row_class: Sequence[str] | None = None) -> str:
    out = ["<table>"]
    if head:
        out.append("<tr>" + "".join(f'<th class="{"num" if i in numeric else ""}">{esc(h)}</th>'
                                    for i, h in enumerate(head)) + "</tr>")
    for r, row in enumerate(rows):
        cls = f' class="{row_class[r]}"' if row_class and row_class[r] else ""
        out.append(f"<tr{cls}>" + "".join(f'<td class="{"num" if i in numeric else ""}">{_cell(v)}</td>'
                                         for i, v in enumerate(row)) + "</tr>")
    return "".join(out) + "</table>"


class Html(str):
    """Markup built here (already escaped), passed through `table` cells as is."""


def _cell(v: Any) -> str:
    return v if isinstance(v, Html) else esc(_text(v))


def _text(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(x) for x in v)
    return str(v)


def pct(v: Any, digits: int = 2) -> str:
    return f"{v * 100:.{digits}f}%" if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def si(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= k:
            return f"{v / k:.3g}{unit}"
    return f"{v:g}"


# --- one run ---------------------------------------------------------------------------------------------

def render_run(d: dict[str, Any]) -> str:
    cfg = d["config"]
    head = [f"<h1>{esc(d['name'])}</h1>",
            f'<div class="sub">{esc(cfg.get("data"))} · {esc(cfg.get("model"))} · '
            f'{"finished" if d["finished"] else "not finished (report of the epochs so far)"} · '
            f'<code>{esc(d["dir"])}</code></div>']
    body = head + [verdict(d.get("diagnosis")), summary_section(d), curves_section(d), columns_section(d),
                   weights_section(d), units_section(d), filters_section(d), test_section(d), augment_section(d),
                   config_section(d)]
    return page(f"trainwell report: {d['name']}", [b for b in body if b])


def verdict(diag: dict[str, Any] | None) -> str:
    if not diag:
        return ""
    findings = [f for f in diag.get("findings", []) if f.get("status") in ("warn", "fail")]
    v = diag.get("verdict", "")
    level = "fail" if any(f["status"] == "fail" for f in findings) else "warn" if findings else ""
    items = []
    for f in findings:
        line = f'<li><b>{esc(f.get("check"))}</b>: {esc(f.get("summary"))}'
        if f.get("prescription"):
            line += f'<br>{esc(f["prescription"])}'
        if f.get("command"):
            line += f'<br>try: <code>{esc(f["command"])}</code>'
        for other in f.get("alternatives") or []:  # untried (--no-try): the other fixes, for the reader to weigh
            line += f'<br>or: <code>{esc(other)}</code>'
        items.append(line + "</li>")
    return (f'<div id="verdict" class="verdict {level}"><div class="v">diagnosis: {esc(v)}</div>'
            f'<div>{esc(diag.get("meaning", ""))}</div>' + (f"<ul>{''.join(items)}</ul>" if items else "") + "</div>")


def summary_section(d: dict[str, Any]) -> str:
    s, sel, cur = d.get("summary") or {}, d.get("selected") or {}, d.get("curves")
    info = s or sel
    test = s.get("test", {})
    rows: list[tuple[str, Any]] = []
    if test:
        rows += [("test accuracy", pct(s.get("test_accuracy"))), ("test error (top-1)", pct(test.get("error"))),
                 ("test error (top-5)", pct(test.get("top5_error"))), ("test loss", test.get("loss"))]
        if s.get("test_without_tta"):
            rows.append((f"test error without {d['config'].get('tta')} averaging", pct(s["test_without_tta"].get("error"))))
    best_valid = info.get("best_valid") or {}
    rows += [("selected epoch", info.get("best_epoch")), ("validation error there", pct(best_valid.get("valid_error"))),
             ("epochs run", info.get("epochs_run") or (len(cur["epoch"]) if cur else None)),
             ("stopped because", info.get("stop_reason")), ("parameters", si(info.get("params"))),
             ("forward FLOPs per example", si(info.get("flops_per_example"))),
             ("training time", f"{info['train_time_s']:.1f} s" if info.get("train_time_s") is not None else None),
             ("wall time of fit", f"{info['fit_wall_s']:.1f} s" if info.get("fit_wall_s") is not None else None)]
    speeds = [v for v in (cur or {}).get("series", {}).get("samples_per_s", []) if v]
    if speeds:
        rows.append(("training samples/s (median)", f"{sorted(speeds)[len(speeds) // 2]:,.0f}"))
    sizes = info.get("sizes") or {}
    if sizes:
        rows.append(("examples (train / valid / test)", " / ".join(f"{sizes.get(k, 0):,}" for k in ("train", "valid", "test"))))
    prec = info.get("precision") or {}
    if prec:
        rows.append(("device, precision", f"{prec.get('device')}, {prec.get('precision')}"))
    return section("summary", "Summary", [table([r for r in rows if r[1] not in (None, "-")])])


def curves_section(d: dict[str, Any]) -> str:
    c = d.get("curves")
    if not c:
        return ""
    ep, ser = c["epoch"], c["series"]
    marks = []
    if c.get("best_epoch"):
        marks.append({"x": c["best_epoch"], "label": f"selected ({c['best_epoch']})", "color": "#067647"})
    for e in c["events"]:
        marks.append({"x": e["epoch"], "label": e["event"], "color": "#b42318"})
    stop = ((d.get("summary") or d.get("selected") or {}).get("stop_reason")) or ""
    if stop.startswith("early stopping") and ep:
        marks.append({"x": ep[-1], "label": "early stop", "color": "#b54708"})

    def lines(keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"name": label, "x": ep, "y": ser[k], "dash": k.startswith("valid")} for k, label in keys if k in ser]

    out = []
    loss = lines([("train_loss", "training"), ("valid_loss", "validation")])
    if loss:
        out.append(fig(charts.line_chart(loss, title="loss", marks=marks, log_y=_spans_decades(loss)),
                       "Cross-entropy per epoch (training: mean over the epoch's batches, with augmentation)."))
    err = lines([("train_error", "training"), ("valid_error", "validation"), ("valid_top5_error", "validation top-5")])
    if err:
        out.append(fig(charts.line_chart(err, title="error", marks=marks, percent=True, y_floor=0.0),
                       "Top-1 error per epoch; the dashed green line is the epoch selected on validation."))
    if "lr" in ser:
        out.append(fig(charts.line_chart([{"name": "", "x": ep, "y": ser["lr"]}], title="learning rate", marks=marks),
                       "The learning rate at each epoch's end."))
    if "grad_norm" in ser:
        out.append(fig(charts.line_chart([{"name": "", "x": ep, "y": ser["grad_norm"]}], title="gradient norm",
                                         marks=marks), "Mean norm of the whole gradient per epoch."))
    parts = [figs(out)]
    if c["events"]:
        parts.append("<h3>Events</h3>" + table([(e["epoch"], e["event"], e["reason"], e.get("lr_factor"))
                                                for e in c["events"]], ("epoch", "event", "why", "lr factor")))
    if stop:
        parts.append(f'<p class="note">Training stopped: {esc(stop)}.</p>')
    return section("curves", "Learning curves", parts)


def _spans_decades(series: list[dict[str, Any]]) -> bool:
    ys = [y for s in series for y in s["y"] if isinstance(y, (int, float)) and y > 0]
    return bool(ys) and max(ys) / min(ys) > 30


def weights_section(d: dict[str, Any]) -> str:
    m = d.get("monitors")
    if not m or not m["layers"]:
        return ""
    steps = m["step"]

    def per_layer(key: str) -> list[dict[str, Any]]:
        return [{"name": n, "x": steps, "y": v[key]} for n, v in m["layers"].items()]

    ref = [{"name": "1e-3 (rule of thumb)", "x": [steps[0], steps[-1]], "y": [1e-3, 1e-3], "color": "#999", "dash": True}]
    out = [fig(charts.line_chart(per_layer("weight_norm"), title="weight norm ||W|| per layer", xlabel="step",
                                 log_y=_spans_decades(per_layer("weight_norm"))), "Frobenius norm of each layer's weight."),
           fig(charts.line_chart(per_layer("grad_norm"), title="gradient norm per layer", xlabel="step", log_y=True),
               "Norm of each layer's weight gradient: the first layers far below the last ones suggest vanishing "
               "gradients."),
           fig(charts.line_chart(per_layer("update_ratio") + ref, title="update / weight ratio", xlabel="step", log_y=True),
               "||ΔW|| / ||W|| of one step; the course's rule of thumb is about 1e-3 (far above: learning rate too "
               "high; far below: too low).")]
    return section("weights", "Weights and gradients", [figs(out)])


def units_section(d: dict[str, Any]) -> str:
    m, snaps = d.get("monitors"), d.get("units")
    if not (m and m["units"]) and not snaps:
        return ""
    parts = []
    if m and m["units"]:
        steps = m["step"]

        def per_layer(key: str) -> list[dict[str, Any]]:
            return [{"name": n, "x": steps, "y": v[key]} for n, v in m["units"].items()]

        parts.append(figs([
            fig(charts.line_chart(per_layer("sparsity"), title="sparsity (share of outputs off)", xlabel="step",
                                  percent=True, y_floor=0.0), "Healthy rectifier layers are sparse, not silent."),
            fig(charts.line_chart(per_layer("dead"), title="dead units", xlabel="step", percent=True, y_floor=0.0),
                "Units off for every probe example; they no longer learn."),
            fig(charts.line_chart(per_layer("correlation"), title="mean |correlation| between units", xlabel="step",
                                  y_floor=0.0), "Good training decorrelates units; units that move together waste capacity."),
            fig(charts.line_chart(per_layer("variance"), title="unit variance across examples", xlabel="step",
                                  log_y=True), "Near zero: the layer ignores its input.")]))
    for layer, snap in (snaps or {}).items():
        latest, init = snap.get("latest", {}), snap.get("init")
        items = []
        if "hist" in latest:
            has_init = bool(init and "hist" in init and "edges" in init)
            items.append(fig(charts.histogram(latest["hist"], latest["edges"], title="activations", xlabel="value",
                                              overlay=init["hist"] if has_init else None,
                                              overlay_edges=init["edges"] if has_init else None,
                                              names=("latest", "at start"))))
        if "unit_off" in latest:
            counts, edges = _hist(latest["unit_off"], 20, 0.0, 1.0)
            items.append(fig(charts.histogram(counts, edges, title="units by share of examples off",
                                              xlabel="share of probe examples on which the unit is off")))
        if "corr" in latest and len(latest["corr"]) > 1:
            k = len(latest["corr"])
            items.append(fig(charts.heatmap(latest["corr"], title=f"correlation of the first {k} units", lo=-1, hi=1,
                                            diverging=True, cell=max(6, 200 // k))))
        parts.append(f"<h3>layer <code>{esc(layer)}</code></h3>" + figs(items))
    note = ('<p class="note">Measured on a fixed probe batch of validation examples; the histograms show the '
            "latest epoch (red line: at the start).</p>")
    return section("units", "Hidden units", [note, *parts])


def _hist(values: list[float], bins: int, lo: float, hi: float) -> tuple[list[int], list[float]]:
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    return counts, [lo + (hi - lo) * i / bins for i in range(bins + 1)]


def filters_section(d: dict[str, Any]) -> str:
    f = d.get("filters")
    if not f:
        return ""
    items = []
    for when, label in (("init", "at initialisation"), ("latest", "after training")):
        if when in f["images"]:
            pics = f["images"][when]
            # small kernels (3x3) enlarged nearest-neighbour to ~48 pixels, 8 a row: large enough to see
            items.append(f"<figure>{img(mosaic(pics, columns=8, cell=48, gap=3), f'first layer {label}')}"
                         f"<figcaption>{esc(label)}</figcaption></figure>")
    shown = len(f["images"].get("latest", []))
    note = (f'<p class="note">The first layer\'s {esc(f["what"])} ({shown} of {f["count"]}); grey is 0, white '
            "and black the largest weights of each. Trained filters should show structure (edges, blobs), not "
            "noise.</p>")
    return section("filters", "First-layer filters", [note, figs(items)])


def test_section(d: dict[str, Any]) -> str:
    t = d.get("test")
    if not t:
        return ""
    names = t["classes"]
    conf = t["confusion"]
    rates = [[c / max(1, sum(row)) for c in row] for row in conf]
    parts = [figs([
        fig(charts.heatmap(rates, title="confusion matrix", rows=names, cols=names, xlabel="predicted",
                           ylabel="true", lo=0.0, hi=1.0, numbers=conf),
            "Counts of test examples by true (rows) and predicted (columns) class; colour is the share of the row."),
        fig(charts.bars(names, [e if e is not None else float("nan") for e in t["per_class_error"]],
                        title="test error per class", percent=True,
                        highlight=[e is not None and e >= 2 * max(t["error"], 1e-9) for e in t["per_class_error"]]),
            "Red: at least twice the overall error.")])]
    if t["worst"]:
        cells = "".join(
            f"<figure>{img(w['image'], 'test image ' + str(w['index']), 84)}<figcaption>true <b>{esc(w['label'])}</b>"
            f"<br>predicted <span class=\"bad\">{esc(w['predicted'])}</span> ({w['confidence']:.0%})</figcaption></figure>"
            for w in t["worst"])
        parts.append("<h3>The most confidently wrong test images</h3>" f'<div class="examples">{cells}</div>')
    return section("test", f"Test set ({t['count']:,} examples, error {pct(t['error'])})", parts)


def augment_section(d: dict[str, Any]) -> str:
    a = d.get("augment")
    if not a:
        return ""
    rows = []
    for label, row in zip(a["labels"], a["images"]):
        pics = "".join(f"<figure>{img(im, 'original' if j == 0 else 'augmented', 56)}</figure>"
                       for j, im in enumerate(row))
        rows.append(f'<tr><td>{esc(label)}</td><td><div class="examples">{pics}</div></td></tr>')
    return section("augment", "Augmentation samples",
                   [f'<p class="note">Training images (first column) and copies under <code>{esc(a["spec"])}</code>, '
                    "as the network sees them.</p><table>" + "".join(rows) + "</table>"])


def columns_section(d: dict[str, Any]) -> str:
    """A table's columns, most important first (permutation importance on validation), and those left out."""
    c = d.get("columns")
    if not c:
        return ""
    rows = [(r["name"], r["role"], pct(r["missing"]), r["categories"] if r["categories"] is not None else "-",
             ", ".join(map(str, r["examples"])) + (" ..." if (r["categories"] or 0) > len(r["examples"]) else ""),
             pct(r["error_rise"]) if r["error_rise"] is not None else "-",
             f"{r['loss_rise']:+.4f}" if r["loss_rise"] is not None else "-") for r in c["rows"]]
    parts = [f'<p>{"Most important first: " if c["ranked"] else ""}the rise in validation error and loss when the '
             "column's values are shuffled across rows (permutation importance); empty cells are imputed with the "
             "training median (numbers, with an indicator) or get a slot of their own (categories).</p>",
             table(rows, ("column", "role", "empty in training", "categories", "most frequent", "error rise",
                          "loss rise"), numeric=(2, 3, 5, 6))]
    if c["left_out"]:
        parts.append("<h3>Left out</h3>" + table(sorted(c["left_out"].items()), ("column", "why")))
    return section("columns", "Columns", parts)


def config_section(d: dict[str, Any]) -> str:
    cfg = d["config"]
    env = d.get("env") or {}
    auto = env.get("auto") or {}
    env_rows = [(k, v) for k, v in env.items() if k != "auto" and not isinstance(v, dict)]
    parts = ['<div class="cols"><div><h3>Config</h3>' + table(sorted(cfg.items())) + "</div>",
             "<div><h3>Environment</h3>" + table(env_rows) + "</div></div>"]
    if auto:
        parts.append("<h3>What auto chose</h3>" + table(list(auto.items())))
    return section("config", "Config and environment", parts)


# --- several runs side by side ----------------------------------------------------------------------------

def render_comparison(runs: list[dict[str, Any]], diff_keys: list[str]) -> str:
    names = [r["name"] for r in runs]
    rows = []
    for r in runs:
        s, sel = r.get("summary") or {}, r.get("selected") or {}
        info = s or sel
        rows.append((r["name"], pct(s.get("test_accuracy")), pct((s.get("test") or {}).get("error")),
                     pct((info.get("best_valid") or {}).get("valid_error")), info.get("best_epoch"),
                     info.get("epochs_run"), si(info.get("params")),
                     f"{info['train_time_s']:.0f} s" if info.get("train_time_s") is not None else "-",
                     (r.get("diagnosis") or {}).get("verdict", "-")))
    summary = table(rows, ("run", "test accuracy", "test error", "best valid error", "selected epoch", "epochs",
                           "params", "training time", "diagnosis"), numeric=(1, 2, 3, 4, 5, 7))
    keys = list(dict.fromkeys(k for r in runs for k in r["config"]))
    cfg_rows = [(k, *[r["config"].get(k) for r in runs]) for k in keys]
    differ = (table([row for row in cfg_rows if row[0] in diff_keys], ("differs", *names),
                    row_class=["diff"] * len(diff_keys)) if diff_keys
              else '<p class="note">The runs share every setting.</p>')
    cfg = ("<details><summary>every setting</summary>"
           + table(cfg_rows, ("config", *names), row_class=["diff" if k in diff_keys else "" for k in keys])
           + "</details>")
    out = []
    for key, title, percent in (("valid_error", "validation error", True), ("train_error", "training error", True),
                                ("valid_loss", "validation loss", False), ("train_loss", "training loss", False),
                                ("lr", "learning rate", False)):
        series = [{"name": r["name"], "x": r["curves"]["epoch"], "y": r["curves"]["series"][key], "color": charts.color(i)}
                  for i, r in enumerate(runs) if r.get("curves") and key in r["curves"]["series"]]
        if series:
            out.append(fig(charts.line_chart(series, title=title, percent=percent,
                                             log_y=not percent and _spans_decades(series))))
    body = [f"<h1>{len(runs)} runs side by side</h1>",
            section("summary", "Summary", [summary]),
            section("curves", "Learning curves", [figs(out)]) if out else "",
            section("config", "Config", [differ, cfg])]
    return page("trainwell comparison: " + ", ".join(names), [b for b in body if b])
