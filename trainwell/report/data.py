"""What a report shows, extracted from run directories: pure functions of the files, no drawing.

`run_data(run_dir)` reads one run through `rundir` and returns plain values (lists, dicts, numbers) and
numpy arrays for pictures. A section whose files a run does not have (no monitors, tabular data, an
unfinished run) comes back as None and the renderer leaves it out.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from trainwell import rundir
from trainwell.data.pixels import display_pixels
from trainwell.errors import UserError

MAX_LAYERS = 12         # weight layers / activation layers drawn (evenly picked when a net has more)
MAX_FILTERS = 64        # first-layer filters (or MLP input weights) drawn


def run_data(run_dir: str) -> dict[str, Any]:
    """Everything the report of one run shows."""
    run = rundir.read_run(run_dir)
    cfg = run.config.to_dict()
    env = run.env
    classes = list(run.preprocess.classes) if run.preprocess is not None else []
    shape = list(run.preprocess.shape) if run.preprocess is not None else list(env.get("input_shape") or [])
    kind = run.preprocess.kind if run.preprocess is not None else ("image" if len(shape) == 3 else "features")
    history = list(run.history)
    try:
        selected = rundir.read_selected(run_dir)
    except UserError:  # damaged: the summary (if any) says the same
        selected = {}
    summary = run.summary
    best_epoch = (summary or selected).get("best_epoch")
    return {
        "name": os.path.basename(os.path.normpath(run_dir)),
        "dir": run_dir,
        "finished": run.finished,
        "config": cfg,
        "env": env,
        "summary": summary,
        "selected": selected,
        "diagnosis": rundir.read_diagnosis(run_dir) or None,
        "classes": classes,
        "kind": kind,
        "input_shape": shape,
        "curves": curves(history, best_epoch),
        "monitors": monitors(rundir.read_monitors(run_dir)),
        "units": unit_snapshots(rundir.read_tensors(run_dir, rundir.UNITS), order=_unit_order(run_dir)),
        "filters": filters(rundir.read_tensors(run_dir, rundir.FILTERS), kind, shape),
        "test": test_outputs(rundir.read_tensors(run_dir, rundir.TEST_OUTPUTS), classes, run.preprocess),
        "augment": augment_samples(rundir.read_tensors(run_dir, rundir.AUGMENT_SAMPLES), classes, cfg.get("augment")),
        "columns": table_columns(run.preprocess, selected.get("importance")),
    }


def table_columns(preprocess: Any, importance: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """A table's columns: role, share of empty cells in training, categories, importance; and those left out."""
    table = getattr(preprocess, "table", None)
    if not table:
        return None
    rise = {r["column"]: r for r in importance or []}
    rows = []
    for col, missing in zip(table["columns"], table.get("missing") or [None] * len(table["columns"])):
        cats = col.get("categories") or []
        r = rise.get(col["name"], {})
        rows.append({"name": col["name"], "role": col["role"], "missing": missing,
                     "categories": len(cats) if col["role"] == "categorical" else None, "examples": cats[:5],
                     "error_rise": r.get("error_rise"), "loss_rise": r.get("loss_rise")})
    if importance:
        rows.sort(key=lambda r: -(r["loss_rise"] if r["loss_rise"] is not None else float("-inf")))
    return {"rows": rows, "left_out": table.get("left_out") or {}, "ranked": bool(importance)}


def curves(history: list[dict[str, Any]], best_epoch: int | None) -> dict[str, Any] | None:
    """Per-epoch series of the history, the selected epoch, and the recovery / stopping events."""
    if not history:
        return None
    keys: dict[str, None] = {}
    for r in history:
        keys.update(dict.fromkeys(k for k, v in r.items() if isinstance(v, (int, float)) and k != "epoch"))
    series = {k: [_num(r.get(k)) for r in history] for k in keys}
    events = []
    for r in history:
        for e in r.get("events") or []:
            events.append({"epoch": r["epoch"], "event": e.get("event", "event"), "reason": e.get("reason", ""),
                           "lr_factor": e.get("lr_factor")})
    return {"epoch": [r["epoch"] for r in history], "series": series, "best_epoch": best_epoch, "events": events}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _pick(names: list[str], n: int) -> list[str]:
    """At most n names, evenly spread from first to last (the first and last layers always in)."""
    if len(names) <= n:
        return names
    idx = sorted({round(i * (len(names) - 1) / (n - 1)) for i in range(n)})
    return [names[i] for i in idx]


def monitors(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The layer monitors' records as series per layer: weight / gradient norms and update ratios of the
    weight layers, variance / sparsity / dead share / correlation of the activation layers."""
    if not records:
        return None
    steps = [r["step"] for r in records]
    layer_names = _pick(list(dict.fromkeys(n for r in records for n in r.get("layers", {}))), MAX_LAYERS)
    unit_names = _pick(list(dict.fromkeys(n for r in records for n in r.get("units", {}))), MAX_LAYERS)
    layers = {n: {k: [_num(r.get("layers", {}).get(n, {}).get(k)) for r in records]
                  for k in ("weight_norm", "grad_norm", "update_ratio")} for n in layer_names}
    units = {n: {k: [_num(r.get("units", {}).get(n, {}).get(k)) for r in records]
                 for k in ("variance", "sparsity", "dead", "correlation")} for n in unit_names}
    return {"step": steps, "epoch": [r.get("epoch") for r in records], "layers": layers, "units": units}


def _unit_order(run_dir: str) -> list[str]:
    records = rundir.read_monitors(run_dir)
    return list(records[-1].get("units", {})) if records else []


def unit_snapshots(tensors: dict[str, Any], order: list[str] | None = None) -> dict[str, Any] | None:
    """{layer: {"init": {...}, "latest": {...}}} with hist / edges / unit_off / corr as lists, layers in the
    network's order (the monitors' records) -- a safetensors file keeps its keys sorted as text."""
    if not tensors:
        return None
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, t in tensors.items():
        when, _, rest = key.partition("/")
        layer, _, what = rest.rpartition("/")
        out.setdefault(layer, {}).setdefault(when, {})[what] = t.numpy().tolist()
    rank = {n: i for i, n in enumerate(order or [])}
    names = sorted((n for n in out if "latest" in out[n]), key=lambda n: (rank.get(n, len(rank)), _natural(n)))
    names = _pick(names, MAX_LAYERS)
    return {n: out[n] for n in names} or None


def _natural(name: str) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def filters(tensors: dict[str, Any], kind: str, shape: list[int]) -> dict[str, Any] | None:
    """First-layer weights as small images: conv filters (RGB when the input has 3 channels, else the mean
    over input channels), or an MLP's input weights reshaped to the input image. None when not images."""
    if not tensors or "latest" not in tensors:
        return None
    out = {}
    for when in ("init", "latest"):
        if when not in tensors:
            continue
        w = tensors[when].float().numpy()
        if w.ndim == 4:  # conv: out, in, kh, kw
            imgs = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w.mean(1)
        elif w.ndim == 2 and kind == "image" and len(shape) == 3 and w.shape[1] == int(np.prod(shape)):
            imgs = w.reshape(len(w), *shape)
            imgs = imgs.transpose(0, 2, 3, 1) if shape[0] == 3 else imgs.mean(1)
        else:
            return None
        out[when] = [_signed_pixels(f) for f in imgs[:MAX_FILTERS]]
    return {"images": out, "count": int(tensors["latest"].shape[0]),
            "what": "conv filters" if tensors["latest"].ndim == 4 else "input weights of the first hidden units"}


def _signed_pixels(w: np.ndarray) -> np.ndarray:
    """A weight map to uint8: 0 is mid-grey, the largest magnitude white or black."""
    m = float(np.abs(w).max()) or 1.0
    return np.clip(np.round(127.5 + 127.5 * w / m), 0, 255).astype(np.uint8)


def test_outputs(tensors: dict[str, Any], classes: list[str], preprocess: Any) -> dict[str, Any] | None:
    """Confusion matrix, per-class error and the most confidently wrong test images."""
    if not tensors or "label" not in tensors:
        return None
    y = tensors["label"].numpy()
    p = tensors["predicted"].numpy()
    conf = tensors["confidence"].numpy()
    k = max(len(classes), int(y.max()) + 1, int(p.max()) + 1)
    names = classes + [str(i) for i in range(len(classes), k)]
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y, p), 1)
    support = matrix.sum(1)
    per_class = [None if s == 0 else float(1 - matrix[i, i] / s) for i, s in enumerate(support)]
    worst = []
    if "worst_images" in tensors and preprocess is not None:
        for idx, img in zip(tensors["worst_index"].numpy().tolist(), tensors["worst_images"].numpy()):
            worst.append({"index": int(idx), "label": names[y[idx]], "predicted": names[p[idx]],
                          "confidence": float(conf[idx]), "image": display_pixels(img, preprocess.input_scale)})
    return {"classes": names, "confusion": matrix.tolist(), "support": support.tolist(),
            "per_class_error": per_class, "error": float((y != p).mean()), "count": int(len(y)),
            "mean_confidence_wrong": float(conf[y != p].mean()) if (y != p).any() else None, "worst": worst}


def augment_samples(tensors: dict[str, Any], classes: list[str], spec: str | None) -> dict[str, Any] | None:
    if not tensors or "images" not in tensors:
        return None
    labels = [classes[i] if i < len(classes) else str(i) for i in tensors["labels"].numpy().tolist()]
    return {"spec": spec or "", "images": tensors["images"].numpy(), "labels": labels}


def differences(configs: list[dict[str, Any]]) -> list[str]:
    """The config keys whose values differ between runs (what a comparison highlights)."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
