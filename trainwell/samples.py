"""Augmented copies of a few training images as display pixels: for the run's report (written at fit start)
and for `trainwell augment-preview`."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainwell.augment import Augment
from trainwell.data.pixels import display_pixels


def augment_samples(splits: Any, augment: str, seed: int, examples: int = 8, copies: int = 6) -> dict[str, torch.Tensor]:
    """Training images, one of each class first, and augmented copies, as display pixels: "images" is
    (examples, 1 + copies, H, W[, 3]) uint8, the original first; "rows" and "labels" say which images.
    Draws its random numbers from a forked generator: a run that calls it computes what it would without."""
    pre = splits.preprocess
    rows = _one_per_class(splits.y_train.cpu().numpy(), examples, seed)
    x = pre.apply(splits.x_train[torch.as_tensor(rows)])
    aug = Augment(augment)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        shown = [x] + [aug(x) for _ in range(copies)]
    images = torch.stack([torch.stack([torch.from_numpy(_pixels(b[i], pre)) for b in shown])
                          for i in range(len(rows))])
    return {"rows": torch.as_tensor(rows), "labels": splits.y_train[torch.as_tensor(rows)].cpu().long(),
            "images": images}


def _one_per_class(y: np.ndarray, n: int, seed: int) -> list[int]:
    """n training rows, visiting the classes in turn, so the first rows show one image of each class."""
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(y == c)).tolist() for c in np.unique(y)]
    rows: list[int] = []
    while len(rows) < min(n, len(y)):
        for members in by_class:
            if members and len(rows) < n:
                rows.append(members.pop())
    return rows


def _pixels(x: torch.Tensor, pre: Any) -> np.ndarray:
    """A normalised image back to uint8 pixels (H, W) or (H, W, 3) for display."""
    mean = torch.tensor(pre.mean).view(-1, 1, 1)
    std = torch.tensor(pre.std).view(-1, 1, 1)
    return display_pixels(((x.float().cpu() * std + mean) / pre.input_scale).numpy(), pre.input_scale)
