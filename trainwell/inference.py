"""Use a finished run: rebuild model and preprocessing from the run directory alone, evaluate, predict."""
from __future__ import annotations

import dataclasses
import os
import zipfile
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwell.data.images import IMAGE_EXTS, read_image
from trainwell.data.sources import Source, image_layout, load_source
from trainwell.data.splits import Preprocess, split_test
from trainwell.data.tables import Column, encode, is_table, read_table
from trainwell.errors import UserError
from trainwell.metrics import evaluate, predict_logits
from trainwell.models import build_model
from trainwell.precision import choose_precision
from trainwell.rundir import Run, load_weights, read_run
from trainwell.tta import with_tta


def load_run(run_dir: str, device: str = "auto") -> Run:
    """A finished run with its selected model, rebuilt from the run directory alone.

    >>> run = trainwell.load_run("runs/my-run"); run.classes, run.summary["test_accuracy"]  # doctest: +SKIP
    """
    run = read_run(run_dir)
    state, meta = load_weights(run_dir)
    spec = meta["model"]
    if spec["name"] == "custom":
        raise UserError(f"{run_dir}: trained with a Python nn.Module; rebuild it yourself and load "
                        "model.safetensors with safetensors.torch.load_file")
    model = build_model(spec)
    model.load_state_dict(state)
    is_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    precision = choose_precision(device, meta["precision"]["precision"], is_conv)
    model = model.to(precision.device).eval()
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return dataclasses.replace(run, model=model, preprocess=Preprocess(**meta["preprocess"]), precision=precision)


def evaluate_run(run_dir: str, data: str | None = None, data_dir: str | None = None,
                 label: str | None = None) -> dict[str, Any]:
    """Metrics of the run's model on its own test split (default) or on another data source.

    Another source is scored on its own test set when it has one, otherwise on all its examples.
    """
    run = load_run(run_dir)
    raw, y, where = scoring_set(run, data, data_dir, label)
    metrics = evaluate(with_tta(run.model, run.config.tta), raw, torch.as_tensor(y), run.precision, run.preprocess)
    return {"data": where, "examples": len(y), **metrics, "accuracy": 1 - metrics["error"]}


def scoring_set(run: Run, data: str | None = None, data_dir: str | None = None,
                label: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Raw inputs and labels (as the run's class indices) to score `run` on: its own test split, or another
    source's test set (all its examples when it has none). Preprocessing is the caller's: run.preprocess.
    A table is encoded with the run's own columns and vocabularies, whatever order its columns come in."""
    columns = saved_columns(run.preprocess)
    if data is None:
        cfg = run.config
        src = load_source(cfg.data, data_dir or cfg.data_dir, cfg.label, cfg.image_size, columns=columns,
                          test_data=cfg.test_data)
        _, (x, y) = split_test(src, cfg.test_fraction, cfg.split_seed)
        return x, y, f"{cfg.data} ({'test file' if cfg.test_data else 'test split'})"
    pre = run.preprocess
    size = pre.shape[1] if pre.kind == "image" else None
    geometry = {"channels": pre.shape[0], "height": pre.shape[1], "width": pre.shape[2], "fit": pre.fit} \
        if pre.kind == "image" else None  # another folder is decoded as the run's images were
    src = load_source(data, data_dir, label or pre.label_column, size, training=False, columns=columns,
                      geometry=geometry)
    xs, ys = (src.x_test, src.y_test) if src.x_test is not None else (src.x, src.y)
    if columns is None:
        xs = _match_columns(xs, src.feature_names, run.preprocess.feature_names, data)
        xs = _check_shape(xs, run.preprocess, data)
    return xs, _align_labels(src, ys, run.classes, data), data


def saved_columns(pre: Preprocess) -> list[dict[str, Any]] | None:
    """The columns a table run was trained on (roles, vocabularies); a run from before tables had roles
    took every CSV column as a number."""
    if pre.table is not None:
        return pre.table["columns"]
    if pre.kind == "features" and pre.feature_names and pre.label_column is not None:
        return [dataclasses.asdict(Column(n, "numeric")) for n in pre.feature_names]
    return None


def predict(run_dir: str, input_path: str, top: int = 1, out: str | None = None) -> list[list[tuple[str, float]]]:
    """Class names and probabilities for an image file, or for every row of a .npz (`x`) or a table.

    With `out` (a table's rows only), writes the input's rows as they are, with the predicted class and its
    probability added (`predicted`, `probability`; with `top` > 1 the next classes too), as CSV or Parquet.
    """
    run = load_run(run_dir)
    if out is not None and not is_table(input_path):
        raise UserError(f"--out {out}: writes a table's rows with their predictions; {input_path} is not a table "
                        "(give a .csv, .tsv or .parquet file)")
    if out is not None and not is_table(out):
        raise UserError(f"--out {out}: give a file name ending in .csv, .tsv or .parquet")
    raw, rows = _read_inputs(input_path, run.preprocess)
    logits = predict_logits(with_tta(run.model, run.config.tta), raw, run.precision, run.preprocess)
    probs = torch.softmax(logits, dim=1)
    k = min(top, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    found = [[(run.classes[i], float(p)) for p, i in zip(pv.tolist(), iv.tolist())] for pv, iv in zip(values, indices)]
    if out is not None:
        _write_predictions(out, rows, found, k)
    return found


def _read_inputs(path: str, pre: Preprocess) -> tuple[np.ndarray, Any]:
    """Raw inputs, and for a table the rows as read (a pyarrow Table), to write back with the predictions."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: input file not found")
    lower = path.lower()
    if lower.endswith(IMAGE_EXTS):
        if pre.kind != "image":
            raise UserError(f"{path}: this run was trained on feature vectors, not images; pass a table or a .npz")
        c, h, w = pre.shape
        # Pixels are scaled by the run's input_scale in Preprocess.apply, as the training images were.
        return read_image(path, (h, w), c, pre.fit)[None], None
    if lower.endswith(".npz"):
        return _check_shape(_npz_inputs(path), pre, path), None
    if is_table(path):
        columns = saved_columns(pre)
        if columns is None:
            raise UserError(f"{path}: this run was trained on images; pass an image file or a .npz")
        rows = read_table(path)
        x = encode(rows, [Column(**c) for c in columns], path)
        if pre.table is None:  # a run from before tables: every feature a finite number
            x = _check_shape(x, pre, path)
        return x, rows
    raise UserError(f"{path}: unsupported input; give a PNG/JPEG image, a .npz with array 'x', or a table "
                    "(.csv, .tsv, .parquet)")


def _write_predictions(out: str, rows: Any, found: list[list[tuple[str, float]]], k: int) -> None:
    """The user's rows, untouched, with the predictions beside them; written whole or not at all."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UserError(f"--out {out}: no folder {folder}; create it first")
    table = rows
    for rank in range(k):
        suffix = "" if rank == 0 else f"_{rank + 1}"
        for name, values in ((f"predicted{suffix}", [f[rank][0] for f in found]),
                             (f"probability{suffix}", [round(f[rank][1], 6) for f in found])):
            if name in table.column_names:
                name = f"trainwell_{name}"
            table = table.append_column(name, pa.array(values))
    tmp = f"{out}.{os.getpid()}.tmp"
    try:
        if out.lower().endswith((".parquet", ".pq")):
            pq.write_table(table, tmp)
        else:
            pacsv.write_csv(table, tmp, pacsv.WriteOptions(delimiter="\t" if out.lower().endswith(".tsv") else ","))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _npz_inputs(path: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files:
                raise UserError(f"{path}: needs an array 'x' of inputs (found {sorted(z.files)})")
            x = z["x"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a readable .npz file ({type(e).__name__}); save it with numpy.savez") from None
    return image_layout(path, x, "x")


def _match_columns(x: np.ndarray, have: list[str], want: list[str], where: str) -> np.ndarray:
    """CSV features by name: put the columns in the order the run was trained on."""
    if not want or not have or have == want:
        return x
    missing = [c for c in want if c not in have]
    if missing:
        raise UserError(f"{where}: missing feature columns {missing[:5]}; the run was trained on {', '.join(want[:10])}")
    return x[:, [have.index(c) for c in want]]


def _check_shape(x: np.ndarray, pre: Preprocess, where: str) -> np.ndarray:
    if list(x.shape[1:]) != list(pre.shape):
        raise UserError(f"{where}: examples have shape {list(x.shape[1:])}, the run expects {pre.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise UserError(f"{where}: inputs contain NaN or Inf; drop or impute them")
    return x


def _align_labels(src: Source, y: np.ndarray, classes: list[str], where: str) -> np.ndarray:
    """Map the source's class names onto the run's class indices."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in src.classes if c not in index]
    if unknown:
        raise UserError(f"{where}: classes {unknown[:5]} were not in the training data ({', '.join(classes[:10])})")
    lookup = np.array([index[c] for c in src.classes], dtype=np.int64)
    return lookup[y]
