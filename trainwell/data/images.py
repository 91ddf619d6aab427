"""Image folders (one sub-folder per class) and single image files, decoded with Pillow."""
from __future__ import annotations

import os
import warnings

import numpy as np

from trainwell.data._limits import MAX_IMAGE_PIXELS, check_bytes, file_error

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def read_image(path: str, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Decode one PNG/JPEG to uint8 (C, H, W); refuses huge images before decoding their pixels."""
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow is only needed for image data

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS or w < 1 or h < 1:
                    raise file_error(path, f"image of {w}x{h} pixels is too large (limit {MAX_IMAGE_PIXELS} pixels)",
                                     "shrink it before training")
                if im.format not in ("PNG", "JPEG"):
                    raise file_error(path, f"is {im.format}, not PNG or JPEG", "convert it or remove it")
                if channels is None:
                    channels = 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
                im = im.convert("L" if channels == 1 else "RGB")
                if size is not None and im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as e:
        raise file_error(path, f"is not a readable PNG/JPEG image ({type(e).__name__})",
                         "remove it from the folder or re-save it") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise file_error(path, f"is not a readable PNG/JPEG image ({type(e).__name__})",
                         "remove it from the folder or re-save it") from None
    if w * h > MAX_IMAGE_PIXELS:
        raise file_error(path, f"image of {w}x{h} pixels is too large (limit {MAX_IMAGE_PIXELS} pixels)",
                         "shrink it before training, or pass --image-size")
    return h, w


def list_image_folder(root: str) -> tuple[list[tuple[str, int]], list[str]]:
    """ROOT/CLASS/*.png|jpg -> [(path, label)] in a fixed order, and the class names (sorted folder names)."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if len(classes) < 2:
        raise file_error(root, f"image folder needs one sub-folder per class, at least 2 (found {len(classes)})",
                         "lay it out as ROOT/CLASS_NAME/image.png")
    files: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
        for e in entries:
            p = os.path.join(folder, e)
            if os.path.isdir(p):
                continue
            if not e.lower().endswith(IMAGE_EXTS):
                raise file_error(p, "is not a PNG or JPEG file", "remove it from the image folder")
            files.append((p, label))
        if not files or files[-1][1] != label:
            raise file_error(folder, "class folder has no PNG/JPEG images", "add images or remove the folder")
    return files, classes


def folder_geometry(files: list[tuple[str, int]], image_size: int | None) -> tuple[int, int, int]:
    """(channels, height, width) every image is converted to: the first image's channels (grey or RGB), and
    `image_size` squared or the first image's size."""
    first = files[0][0]
    h, w = (image_size, image_size) if image_size else _image_size(first)
    return read_image(first, (h, w), None).shape[0], h, w


def read_image_folder(root: str, image_size: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ROOT/CLASS/*.png|jpg decoded in memory -> x uint8 (N, C, H, W), y int64, class names.

    Used when the on-disk cache (data/cache.py) cannot be written; it holds every image in memory.
    """
    files, classes = list_image_folder(root)
    c, h, w = folder_geometry(files, image_size)
    check_bytes(root, len(files) * c * h * w, f"{len(files)} images of {c}x{h}x{w}")
    x = np.empty((len(files), c, h, w), dtype=np.uint8)
    for i, (p, _) in enumerate(files):
        x[i] = read_image(p, (h, w), c)
    return x, np.array([lbl for _, lbl in files], dtype=np.int64), classes
