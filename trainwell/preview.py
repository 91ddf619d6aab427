"""`trainwell augment-preview`: look at what an augmentation does before training on it.

A PNG grid: one row per training image (one of each class first), the original in the first column and
augmented copies after it, each row labelled with its class. The data, the splits, the normalisation and
the augmentation (`auto` included) are resolved exactly as `trainwell train` would resolve them.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from trainwell.augment import Augment
from trainwell.errors import UserError

CELL = 84      # pixels of a cell's longer side: 28x28 images are drawn 3x
LABEL_W = 110  # the class-name column


def augment_preview(out: str = "augment-preview.png", examples: int = 8, copies: int = 6,
                    **options: Any) -> dict[str, Any]:
    """Write the grid to `out` (PNG); returns what was drawn. Options are `trainwell.train`'s."""
    from PIL import Image, ImageDraw

    from trainwell.run import prepare

    if not out.lower().endswith(".png"):
        raise UserError(f"--out {out}: the preview is a PNG image; give a file name ending in .png")
    if examples < 1 or copies < 1:
        raise UserError("--examples and --copies must be >= 1")
    prep = prepare(**options)
    cfg, splits = prep.config, prep.splits
    pre = splits.preprocess
    if pre.kind != "image":
        raise UserError(f"{cfg.data}: holds feature vectors, not images; augmentation only applies to images")
    samples = augment_samples(splits, cfg.augment, cfg.seed, examples, copies)
    rows, shown = samples["rows"].tolist(), samples["images"]
    c, h, w = pre.shape
    zoom = max(1, CELL // max(h, w))
    ch, cw = h * zoom, w * zoom
    grid = Image.new("RGB", (LABEL_W + (copies + 1) * (cw + 4), 18 + examples * (ch + 4)), "white")
    draw = ImageDraw.Draw(grid)
    draw.text((LABEL_W, 3), "original", fill="black")
    draw.text((LABEL_W + cw + 4, 3), f"augmented: {cfg.augment or 'none'}", fill="black")
    for i, row in enumerate(rows):
        top = 18 + i * (ch + 4)
        draw.text((4, top + ch // 2 - 6), pre.classes[int(splits.y_train[row])][:16], fill="black")
        for j in range(copies + 1):
            img = Image.fromarray(shown[i, j].numpy()).resize((cw, ch), Image.NEAREST)
            grid.paste(img, (LABEL_W + j * (cw + 4), top))
    tmp = f"{out}.{os.getpid()}.tmp.png"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    grid.save(tmp)
    os.replace(tmp, out)  # a half-written picture is never left under the asked name
    return {"out": out, "examples": len(rows), "copies": copies, "augment": cfg.augment, "data": cfg.data}


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
    from trainwell.report.data import display_pixels

    mean = torch.tensor(pre.mean).view(-1, 1, 1)
    std = torch.tensor(pre.std).view(-1, 1, 1)
    return display_pixels(((x.float().cpu() * std + mean) / pre.input_scale).numpy(), pre.input_scale)
