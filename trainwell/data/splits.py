"""The train / validation / test protocol and the preprocessing fitted on the training split only."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trainwell.data.cache import Rows, take
from trainwell.data.sources import Source
from trainwell.data.tables import apply_table, fit_table, table_width
from trainwell.errors import UserError


@dataclass
class Preprocess:
    """What turns raw inputs into model inputs: saved in model.json so evaluate/predict can redo it."""

    kind: str                 # "image", "features" or "table"
    shape: list[int]          # one example's shape after preprocessing: [C, H, W] or [D]
    input_scale: float        # raw -> [0, 1] for uint8 pixels, 1 otherwise
    mean: list[float]         # per channel (images) or per feature
    std: list[float]
    classes: list[str]
    feature_names: list[str]
    label_column: str | None
    table: dict[str, Any] | None = None  # a table's fitted columns (data/tables.py: fit_table)
    fit: str = "resize"       # images: how a file is brought to `shape` (resize, or crop: shorter side, centre)

    def apply(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw inputs (uint8 pixels, float features or table rows, any batch size) -> normalised float32,
        on x's device."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x if x.flags.writeable else x.copy())  # torch wants writable memory
        if self.table is not None:
            return apply_table(x, self.table, self.__dict__.setdefault("_table_on", {}))
        scale, shift = self._affine(x.device)
        # (x * input_scale - mean) / std as one fused multiply-add: it runs on every batch
        return torch.addcmul(shift, x.float(), scale).contiguous()

    def _affine(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self.__dict__.setdefault("_affine_on", {})
        if device not in cache:
            view = (1, -1, 1, 1) if self.kind == "image" else (1, -1)
            mean = torch.tensor(self.mean, dtype=torch.float64)
            std = torch.tensor(self.std, dtype=torch.float64)
            cache[device] = ((self.input_scale / std).float().view(view).to(device),
                             (-mean / std).float().view(view).to(device))
        return cache[device]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class Splits:
    """Raw inputs (uint8 pixels or float32 features) and labels; `preprocess` normalises a batch at a time,
    so data is held at 1 byte per pixel, or left on disk (Rows of a memory-mapped image folder). The test
    set is only read once, by run.py, at the very end."""

    x_train: torch.Tensor | Rows
    y_train: torch.Tensor
    x_valid: torch.Tensor | Rows
    y_valid: torch.Tensor
    x_test: torch.Tensor | Rows
    y_test: torch.Tensor
    preprocess: Preprocess

    @property
    def num_classes(self) -> int:
        return len(self.preprocess.classes)

    def without_test(self) -> "Splits":
        """The same splits with an empty test set: what fitting sees, so it cannot peek."""
        return dataclasses.replace(self, x_test=_as_tensor(take(self.x_test, slice(0, 0))), y_test=self.y_test[:0])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: returns (kept, held_out) index arrays, each class split in proportion."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_held = int(round(len(idx) * fraction))
        if fraction > 0 and len(idx) >= 2:
            n_held = min(max(n_held, 1), len(idx) - 1)
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def split_test(src: Source, test_fraction: float, seed: int) -> tuple[tuple[np.ndarray, np.ndarray],
                                                                    tuple[np.ndarray, np.ndarray]]:
    """(train + validation, test) as raw arrays: the source's own test set, or a seeded stratified split."""
    if src.x_test is not None:
        return (src.x, src.y), (src.x_test, src.y_test)
    if test_fraction <= 0:
        raise UserError(f"{src.name}: has no test set and test_fraction is 0; set test_fraction, e.g. 0.2")
    keep, test = stratified_split(src.y, test_fraction, seed)
    return (take(src.x, keep), src.y[keep]), (take(src.x, test), src.y[test])


def make_splits(src: Source, valid_fraction: float, test_fraction: float, seed: int,
                limit_train: int | None = None) -> Splits:
    """Test split first (if the source has none), then validation from what is left; fit normalisation."""
    (x, y), (x_test, y_test) = split_test(src, test_fraction, seed)
    if src.x_valid is not None:  # the data came with its validation set (ROOT/valid/CLASS)
        x_valid, y_valid = src.x_valid, src.y_valid
    elif valid_fraction > 0:
        keep, valid = stratified_split(y, valid_fraction, seed + 1)
        x_valid, y_valid, x, y = take(x, valid), y[valid], take(x, keep), y[keep]
    else:
        x_valid, y_valid = take(x, slice(0, 0)), y[:0]
    if limit_train is not None:
        x, y = take(x, slice(0, limit_train)), y[:limit_train]
    if len(y) == 0 or len(y_test) == 0:
        raise UserError(f"{src.name}: too few examples ({len(src.y)}) to hold out validation and test sets; "
                        "add data, or lower valid_fraction / test_fraction")
    pre = fit_preprocess(src, x)
    tensors = [_as_tensor(a) for a in (x, x_valid, x_test)]
    labels = [torch.as_tensor(a, dtype=torch.long) for a in (y, y_valid, y_test)]
    return Splits(tensors[0], labels[0], tensors[1], labels[1], tensors[2], labels[2], pre)


def fit_preprocess(src: Source, x_train: np.ndarray | Rows) -> Preprocess:
    """Standardise with statistics of the training split only (per channel for images, per feature else).
    Two passes over chunks of rows, in float64: memory holds a chunk, whatever the data's size. A table's
    columns are fitted by data/tables.py (median, robust scale, categories)."""
    if src.columns is not None:
        table = fit_table(np.asarray(x_train), src.columns, src.left_out)
        return Preprocess("table", [table_width(table)], 1.0, [], [], list(src.classes), list(src.feature_names),
                          src.label_column, table)
    axes = (0, 2, 3) if len(x_train.shape) == 4 else (0,)
    per_row = max(1, int(np.prod(x_train.shape[1:])))
    step = max(1, CHUNK_VALUES // per_row)
    count = len(x_train) * (int(np.prod(x_train.shape[2:])) if len(axes) == 3 else 1)  # values per channel
    total = 0.0
    for i in range(0, len(x_train), step):
        total = total + _chunk(x_train, i, step, src.input_scale).sum(axis=axes)
    mean = total / max(count, 1)
    view = (1, -1, 1, 1) if len(axes) == 3 else (1, -1)
    sq = 0.0
    for i in range(0, len(x_train), step):
        sq = sq + ((_chunk(x_train, i, step, src.input_scale) - mean.reshape(view)) ** 2).sum(axis=axes)
    std = np.sqrt(sq / max(count, 1))
    std = np.where(std < 1e-8, 1.0, std)  # constant features/channels are left centred, not blown up
    return Preprocess(src.kind, list(x_train.shape[1:]), src.input_scale, mean.tolist(), std.tolist(),
                      list(src.classes), list(src.feature_names), src.label_column, fit=src.image_fit)


CHUNK_VALUES = 2**21  # values per chunk when computing statistics: 16 MiB of float64


def _chunk(x: np.ndarray | Rows, start: int, n: int, scale: float) -> np.ndarray:
    rows = x[start:start + n]
    rows = rows.numpy() if isinstance(rows, torch.Tensor) else rows
    return rows.astype(np.float64) * scale


def _as_tensor(x: np.ndarray | Rows | torch.Tensor) -> torch.Tensor | Rows:
    """Arrays in memory become tensors (their dtype kept: uint8 pixels stay bytes); Rows stay on disk."""
    if isinstance(x, (Rows, torch.Tensor)):
        return x
    if isinstance(x, np.memmap):
        return take(x, slice(None))
    return torch.from_numpy(np.ascontiguousarray(x) if x.flags.writeable else np.array(x))


def on_device(x: torch.Tensor | Rows, device: torch.device) -> torch.Tensor | Rows:
    """Inputs in memory move to the device once (a batch is then an index operation there); Rows stay on
    disk and each batch is read and moved on its own."""
    return x if isinstance(x, Rows) else x.to(device)
