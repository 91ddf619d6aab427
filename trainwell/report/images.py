"""Pictures as inline PNG (data: URIs): filter mosaics and example images, enlarged without smoothing."""
from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np

CELL = 56   # the longer side of one example image on the page, in pixels


def png_uri(pixels: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def zoom(pixels: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Enlarge by an integer factor (nearest neighbour) so the longer side is about `cell` pixels."""
    k = max(1, cell // max(pixels.shape[:2]))
    return pixels.repeat(k, 0).repeat(k, 1)


def mosaic(images: Sequence[np.ndarray], columns: int = 16, cell: int = 28, gap: int = 2) -> np.ndarray:
    """Equal-shaped images (H, W) or (H, W, 3) in a grid on a white background, each enlarged to ~cell."""
    tiles = [zoom(im, cell) for im in images]
    h, w = tiles[0].shape[:2]
    rgb = tiles[0].ndim == 3
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    shape = (rows * (h + gap) + gap, columns * (w + gap) + gap) + ((3,) if rgb else ())
    out = np.full(shape, 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        out[gap + r * (h + gap):gap + r * (h + gap) + h, gap + c * (w + gap):gap + c * (w + gap) + w] = t
    return out
