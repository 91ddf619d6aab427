"""The train / validation / test protocol and the preprocessing fitted on the training split only."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trainwell.data.sources import Source
from trainwell.errors import UserError


@dataclass
class Preprocess:
    """What turns raw inputs into model inputs: saved in model.json so evaluate/predict can redo it."""

    kind: str                 # "image" or "features"
    shape: list[int]          # one example's shape after preprocessing: [C, H, W] or [D]
    input_scale: float        # raw -> [0, 1] for uint8 pixels, 1 otherwise
    mean: list[float]         # per channel (images) or per feature
    std: list[float]
    classes: list[str]
    feature_names: list[str]
    label_column: str | None

    def apply(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            x = x.copy()  # decoded images are read-only views; torch wants to own writable memory
        x = torch.as_tensor(x).float() * self.input_scale
        view = (1, -1, 1, 1) if self.kind == "image" else (1, -1)
        mean = torch.tensor(self.mean).view(view)
        std = torch.tensor(self.std).view(view)
        return ((x - mean) / std).contiguous()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Splits:
    """Preprocessed tensors; the test set is only read once, by run.py, at the very end."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    preprocess: Preprocess

    @property
    def num_classes(self) -> int:
        return len(self.preprocess.classes)

    def without_test(self) -> "Splits":
        """The same splits with an empty test set: what fitting sees, so it cannot peek."""
        return dataclasses.replace(self, x_test=self.x_test[:0], y_test=self.y_test[:0])

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
    return (src.x[keep], src.y[keep]), (src.x[test], src.y[test])


def make_splits(src: Source, valid_fraction: float, test_fraction: float, seed: int,
                limit_train: int | None = None) -> Splits:
    """Test split first (if the source has none), then validation from what is left; fit normalisation."""
    (x, y), (x_test, y_test) = split_test(src, test_fraction, seed)
    if valid_fraction > 0:
        keep, valid = stratified_split(y, valid_fraction, seed + 1)
        x_valid, y_valid, x, y = x[valid], y[valid], x[keep], y[keep]
    else:
        x_valid, y_valid = x[:0], y[:0]
    if limit_train is not None:
        x, y = x[:limit_train], y[:limit_train]
    if len(y) == 0 or len(y_test) == 0:
        raise UserError(f"{src.name}: too few examples ({len(src.y)}) to hold out validation and test sets; "
                        "add data, or lower valid_fraction / test_fraction")
    pre = fit_preprocess(src, x)
    tensors = [pre.apply(a) for a in (x, x_valid, x_test)]
    labels = [torch.as_tensor(a, dtype=torch.long) for a in (y, y_valid, y_test)]
    return Splits(tensors[0], labels[0], tensors[1], labels[1], tensors[2], labels[2], pre)


def fit_preprocess(src: Source, x_train: np.ndarray) -> Preprocess:
    """Standardise with statistics of the training split only (per channel for images, per feature else)."""
    x = x_train.astype(np.float64) * src.input_scale
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    mean = x.mean(axis=axes)
    std = x.std(axis=axes)
    std = np.where(std < 1e-8, 1.0, std)  # constant features/channels are left centred, not blown up
    return Preprocess(src.kind, list(x_train.shape[1:]), src.input_scale, mean.tolist(), std.tolist(),
                      list(src.classes), list(src.feature_names), src.label_column)
