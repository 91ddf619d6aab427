"""`trainwell augment-preview`: look at what an augmentation does before training on it.

A PNG grid: one row per training image (one of each class first), the original in the first column and
augmented copies after it, each row labelled with its class. The data, the splits, the normalisation and
the augmentation (`auto` included) are resolved exactly as `trainwell train` would resolve them.
"""
from __future__ import annotations

import os
from typing import Any

from trainwell.errors import UserError
from trainwell.prepared import prepare
from trainwell.samples import augment_samples

CELL = 84      # pixels of a cell's longer side: 28x28 images are drawn 3x
LABEL_W = 110  # the class-name column


def augment_preview(out: str = "augment-preview.png", examples: int = 8, copies: int = 6,
                    **options: Any) -> dict[str, Any]:
    """Write the grid to `out` (PNG); returns what was drawn. Options are `trainwell.train`'s."""
    from PIL import Image, ImageDraw

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
