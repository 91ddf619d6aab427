"""Image folders (one sub-folder per class, or ROOT/train|valid|test/CLASS) and single image files, decoded with
Pillow: every format torchvision's ImageFolder takes. The geometry every image is decoded to is decided from
the whole folder, not its first file (`folder_geometry`)."""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from trainwell.data._limits import MAX_IMAGE_PIXELS, check_bytes, file_error
from trainwell.errors import UserError

# torchvision's IMG_EXTENSIONS, the formats ImageFolder takes
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# The largest side auto decodes varied images to, for the compute it implies: on a CPU, 32 (a 64-pixel input
# costs 4x per image; the hand-written peers of benchmarks/image_zoo.py crop 32 and reach their accuracy there).
MAX_SIZE = {"cpu": 32, "cuda": 224}
MIN_SIZE = 8
BACKGROUND = 128  # the neutral grey a transparent pixel is composited on


@dataclass(frozen=True)
class Geometry:
    """What every image of a folder is decoded to: channels, height, width, and how it gets there: `resize`
    (the folder's images all have this size, or --image-size squashes them) or `crop` (the shorter side
    resized to the size, aspect kept, then the centre cropped)."""

    channels: int
    height: int
    width: int
    fit: str = "resize"
    why: str = ""


def read_image(path: str, size: tuple[int, int] | None, channels: int | None, fit: str = "resize") -> np.ndarray:
    """Decode one image to uint8 (C, H, W); refuses huge images before decoding their pixels. Transparent
    pixels are composited on grey, 16-bit grey is scaled to 8 bits, palette images expanded."""
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow is only needed for image data

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS or w < 1 or h < 1:
                    raise file_error(path, f"image of {w}x{h} pixels is too large (limit {MAX_IMAGE_PIXELS} pixels)",
                                     "shrink it before training")
                if channels is None:
                    channels = 1 if im.mode in GREY_MODES else 3
                im = _to_mode(im, channels)
                if size is not None and im.size != (size[1], size[0]):
                    im = _fit(im, size, fit)
                arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as e:
        raise file_error(path, f"is not a readable image ({type(e).__name__})",
                         "remove it from the folder or re-save it") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _to_mode(im, channels: int):
    """L (grey) or RGB, as a person sees the image: alpha on a neutral grey, 16-bit grey scaled down."""
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.round(a * 255.0 / peak), 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = a * 255.0 if a.max() <= 1.0 else a
        im = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (BACKGROUND, BACKGROUND, BACKGROUND, 255))
        im = Image.alpha_composite(background, rgba)
    return im.convert("L" if channels == 1 else "RGB")


def _fit(im, size: tuple[int, int], fit: str):
    from PIL import Image

    h, w = size
    if fit != "crop":
        return im.resize((w, h), Image.BILINEAR)
    scale = max(h / im.size[1], w / im.size[0])  # the shorter side to the size, aspect kept
    im = im.resize((max(w, round(im.size[0] * scale)), max(h, round(im.size[1] * scale))), Image.BILINEAR)
    left, top = (im.size[0] - w) // 2, (im.size[1] - h) // 2
    return im.crop((left, top, left + w, top + h))


def _header(path: str) -> tuple[int, int, str]:
    """(height, width, mode) from the file's header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            mode = im.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise file_error(path, f"is not a readable image ({type(e).__name__})",
                         "remove it from the folder or re-save it") from None
    if w * h > MAX_IMAGE_PIXELS:
        raise file_error(path, f"image of {w}x{h} pixels is too large (limit {MAX_IMAGE_PIXELS} pixels)",
                         "shrink it before training, or pass --image-size")
    return h, w, mode


def split_folders(root: str) -> dict[str, str] | None:
    """ROOT/train|valid|val|test/ (each holding class folders): the given splits, by split; else None."""
    subs = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")]
    given = {SPLIT_NAMES[d.lower()]: os.path.join(root, d) for d in subs if d.lower() in SPLIT_NAMES}
    if "train" not in given or len(given) != len(subs):
        return None  # a class may be called "test" in a plain folder: only a full split layout counts
    return given


def list_image_folder(root: str, skip_bad: bool = False, quiet: bool = False) -> tuple[list[tuple[str, int]], list[str]]:
    """ROOT/CLASS/* -> [(path, label)] in a fixed order, and the class names (sorted folder names). Files that
    are not images are skipped (one line names them); an image whose header cannot be read refuses the
    folder, naming it and counting the others like it, unless `skip_bad`."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if len(classes) < 2:
        raise file_error(root, f"image folder needs one sub-folder per class, at least 2 (found {len(classes)})",
                         "lay it out as ROOT/CLASS_NAME/image.png")
    files: list[tuple[str, int]] = []
    other: list[str] = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
        before = len(files)
        for e in entries:
            p = os.path.join(folder, e)
            if os.path.isdir(p):
                continue
            if e.lower().endswith(IMAGE_EXTS):
                files.append((p, label))
            else:
                other.append(os.path.relpath(p, root))
        if len(files) == before:
            raise file_error(folder, "class folder has no images (" + ", ".join(IMAGE_EXTS) + ")",
                             "add images or remove the folder")
    if other and not quiet:
        what = "files that are not images" if len(other) > 1 else "file that is not an image"
        print(f"note: {root}: skipped {len(other)} {what} ({', '.join(other[:3])}{', ...' if len(other) > 3 else ''})",
              file=sys.stderr)
    return files, classes


def scan(files: list[tuple[str, int]], skip_bad: bool = False, quiet: bool = False
         ) -> tuple[list[tuple[str, int]], list[tuple[int, int, str]]]:
    """Every image's header: (height, width, mode). Unreadable ones refuse the folder (the first named, the
    others counted) before anything is decoded or written, or with `skip_bad` are left out, saying so."""
    good, headers, bad = [], [], []
    for path, label in files:
        try:
            headers.append(_header(path))
            good.append((path, label))
        except UserError as e:
            bad.append((path, str(e)))
    if bad and not skip_bad:
        more = f"; {len(bad) - 1} more like it" if len(bad) > 1 else ""
        raise UserError(f"{bad[0][1]}{more} (of {len(files)} files); remove them, or pass --skip-bad-images to "
                        "train without them")
    if bad and not quiet:
        print(f"note: skipped {len(bad)} unreadable image{'s' if len(bad) > 1 else ''} "
              f"({', '.join(os.path.basename(p) for p, _ in bad[:3])}{', ...' if len(bad) > 3 else ''})",
              file=sys.stderr)
    return good, headers


def folder_geometry(headers: list[tuple[int, int, str]], image_size: int | None, device: str = "cpu") -> Geometry:
    """Colour if any image has colour (grey is replicated), grey otherwise; the size every image has, or with
    sizes that vary, the median shorter side (at most MAX_SIZE for this device), shorter side resized and the
    centre cropped; `image_size` wins."""
    colour = any(mode not in GREY_MODES for _, _, mode in headers)
    c = 3 if colour else 1
    sizes = {(h, w) for h, w, _ in headers}
    kinds = "colour" if colour else "grey"
    if image_size:
        return Geometry(c, image_size, image_size, "resize", f"{image_size}x{image_size} ({kinds}): --image-size")
    if len(sizes) == 1:
        h, w = sizes.pop()
        return Geometry(c, h, w, "resize", f"{h}x{w} ({kinds}): every image has that size")
    shorter = np.array([min(h, w) for h, w, _ in headers])
    median = int(np.median(shorter))
    cap = MAX_SIZE.get(device, MAX_SIZE["cpu"])
    s = int(min(cap, max(MIN_SIZE, median)))
    why = (f"{s}x{s} ({kinds}): sizes vary ({int(shorter.min())} to {int(shorter.max())} pixels on the shorter "
           f"side, median {median}); each image's shorter side resized to {s}, aspect kept, the centre cropped"
           + (f" (at most {cap} on {device}: the compute of larger inputs)" if median > cap else ""))
    return Geometry(c, s, s, "crop", why)


def read_image_folder(root: str, image_size: int | None, geometry: Geometry | None = None, skip_bad: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ROOT/CLASS/* decoded in memory -> x uint8 (N, C, H, W), y int64, class names.

    Used when the on-disk cache (data/cache.py) cannot be written; it holds every image in memory.
    """
    files, classes = list_image_folder(root, quiet=True)
    files, headers = scan(files, skip_bad, quiet=True)
    g = geometry or folder_geometry(headers, image_size)
    check_bytes(root, len(files) * g.channels * g.height * g.width, f"{len(files)} images of {g.channels}x{g.height}x{g.width}")
    x = np.empty((len(files), g.channels, g.height, g.width), dtype=np.uint8)
    for i, (p, _) in enumerate(files):
        x[i] = read_image(p, (g.height, g.width), g.channels, g.fit)
    return x, np.array([lbl for _, lbl in files], dtype=np.int64), classes
