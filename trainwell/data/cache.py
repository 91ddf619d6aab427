"""Image folders decoded once into a uint8 file on disk and memory-mapped: data larger than memory.

A folder is decoded into CACHE/images/KEY/pixels.u8 (N x C x H x W bytes, in list_image_folder's
order) beside a manifest.json holding the folder's fingerprint: every file's path, size and
modification time, and the decoded shape. The next run whose folder has the same fingerprint maps the
file instead of decoding again; any added, removed, resized or touched image changes the fingerprint
and the folder is decoded afresh. Training then reads a batch of rows at a time (Rows), so memory holds
the batch, not the data set; the page cache keeps hot rows without counting against the process.

CACHE is $TRAINWELL_CACHE, else $XDG_CACHE_HOME/trainwell, else ~/.cache/trainwell.
"""
from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import shutil
import sys

import numpy as np
import torch

from trainwell.data.images import Geometry, folder_geometry, list_image_folder, read_image, read_image_folder, scan

FORMAT = 2  # bump when the layout of pixels.u8 or the manifest changes (2: the geometry is the whole folder's)


def cache_root() -> str:
    if os.environ.get("TRAINWELL_CACHE"):
        return os.environ["TRAINWELL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "trainwell")


def cached_image_folder(root: str, image_size: int | None, geometry: Geometry | None = None, skip_bad: bool = False,
                        device: str = "cpu") -> tuple[np.ndarray, np.ndarray, list[str], Geometry]:
    """x as a read-only uint8 memory map (N, C, H, W), y int64, class names and the geometry decoded to;
    decodes only what changed since the last call (that is: everything, or nothing). The geometry is the
    folder's own (images.folder_geometry) unless given (the splits of one data set share one)."""
    files, classes = list_image_folder(root)
    files, headers = scan(files, skip_bad)
    g = geometry or folder_geometry(headers, image_size, device)
    y = np.array([lbl for _, lbl in files], dtype=np.int64)
    fingerprint = _fingerprint(root, files, g)
    key = f"{os.path.abspath(root)}|{g.channels}x{g.height}x{g.width}|{g.fit}"
    folder = os.path.join(cache_root(), "images", hashlib.sha256(key.encode()).hexdigest()[:20])
    shape = _cached_shape(folder, fingerprint, len(files))
    if shape is None:
        try:
            shape = _decode(folder, root, files, g, fingerprint)
        except OSError as e:  # a read-only home, a full disk: decode in memory, as small folders always could
            print(f"note: cannot write the image cache {folder} ({e.strerror or e}); decoding {root} in memory. "
                  "Set TRAINWELL_CACHE to a writable folder for data larger than memory", file=sys.stderr)
            x, y, classes = read_image_folder(root, image_size, g, skip_bad)
            return x, y, classes, g
    x = np.memmap(os.path.join(folder, "pixels.u8"), dtype=np.uint8, mode="r", shape=shape)
    return x, y, classes, g


def _fingerprint(root: str, files: list[tuple[str, int]], g: Geometry) -> str:
    h = hashlib.sha256(f"{FORMAT}|{g.channels}|{g.height}|{g.width}|{g.fit}".encode())
    for path, label in files:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cached_shape(folder: str, fingerprint: str, n: int) -> tuple[int, ...] | None:
    """The shape of a cache entry that still matches the folder, or None (missing, stale or damaged)."""
    try:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        shape = tuple(int(v) for v in manifest["shape"])
        size = os.path.getsize(os.path.join(folder, "pixels.u8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if manifest.get("fingerprint") != fingerprint or len(shape) != 4 or shape[0] != n or size != int(np.prod(shape)):
        return None
    return shape


def _decode(folder: str, root: str, files: list[tuple[str, int]], g: Geometry, fingerprint: str) -> tuple[int, ...]:
    """Decode every image into pixels.u8, streaming (memory holds one image), then publish the manifest.
    Both files are written under temporary names and renamed: a reader sees the old entry or the new one."""
    c, h, w = g.channels, g.height, g.width
    shape = (len(files), c, h, w)
    os.makedirs(folder, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if int(np.prod(shape)) > free:
        raise OSError(errno.ENOSPC, f"{len(files)} images of {c}x{h}x{w} need {np.prod(shape) / 2**30:.1f} GiB, "
                      f"{free / 2**30:.1f} GiB is free")
    tmp = os.path.join(folder, f"pixels.u8.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for path, _ in files:
                f.write(read_image(path, (h, w), c, g.fit).tobytes())
        os.replace(tmp, os.path.join(folder, "pixels.u8"))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    manifest = {"format": FORMAT, "fingerprint": fingerprint, "shape": list(shape), "dtype": "uint8",
                "source": os.path.abspath(root)}
    tmp = os.path.join(folder, f"manifest.json.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    os.replace(tmp, os.path.join(folder, "manifest.json"))
    return shape


class Rows:
    """Some rows of a memory-mapped array, read a batch at a time: `rows[i]` (an int tensor or array of
    positions, or a slice) gathers those rows into a tensor; nothing else is ever read into memory."""

    def __init__(self, array: np.ndarray, index: np.ndarray) -> None:
        self.array, self.index = array, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def take(self, positions: np.ndarray | slice) -> Rows:
        """A sub-view (no data is read)."""
        return Rows(self.array, self.index[positions])

    def __getitem__(self, positions: torch.Tensor | np.ndarray | slice) -> torch.Tensor:
        if isinstance(positions, torch.Tensor):
            positions = positions.cpu().numpy()
        rows = np.take(self.array, self.index[positions], axis=0)
        # Mapped pages that were read (and the kernel's read-around of each) count as this process's
        # resident memory until it lets go of them; they stay in the page cache, so letting go after
        # every batch costs little and keeps memory at a batch, not the data set (measured: 600 MB of
        # mapped pages after 40,000 random 64x64 RGB rows otherwise).
        mapping = getattr(self.array, "_mmap", None)  # numpy's memmap keeps its mmap here
        if mapping is not None:
            mapping.madvise(mmap.MADV_DONTNEED)
        return torch.from_numpy(rows)


def take(x: np.ndarray | Rows, rows: np.ndarray | slice) -> np.ndarray | Rows:
    """x's rows `rows`: a copy for arrays in memory, a view for memory-mapped ones (which stay on disk)."""
    if isinstance(x, Rows):
        return x.take(rows)
    if isinstance(x, np.memmap):
        return Rows(x, np.arange(len(x))[rows])
    return x[rows]
