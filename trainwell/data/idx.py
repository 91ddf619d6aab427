"""IDX files (MNIST, Fashion-MNIST), plain or gzipped; the header is checked against the file size first."""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from trainwell.data._limits import check_bytes, file_error

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file into a numpy array, refusing anything whose size disagrees with its header."""
    if not os.path.isfile(path):
        raise file_error(path, "file not found", "pass --data-dir with the folder that holds the IDX files")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
                raise file_error(path, "not an IDX file (bad magic number)")
            dtype = np.dtype(_DTYPES[head[2]])
            dims_raw = f.read(4 * head[3])
            if len(dims_raw) < 4 * head[3]:
                raise file_error(path, "IDX header is truncated")
            dims = struct.unpack(f">{head[3]}I", dims_raw)
            nbytes = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            check_bytes(path, nbytes, f"an array of shape {dims}")
            if not path.endswith(".gz"):
                expected = 4 + 4 * len(dims) + nbytes
                actual = os.path.getsize(path)
                if actual != expected:
                    raise file_error(path, f"size {actual} bytes does not match its header ({expected} expected)")
            body = f.read(nbytes)
            if len(body) != nbytes:
                raise file_error(path, f"truncated: {len(body)} of {nbytes} data bytes")
            if f.read(1):
                raise file_error(path, "has data past what its header declares")
    except (OSError, EOFError, zlib.error) as e:
        raise file_error(path, f"cannot be read ({type(e).__name__}: {e})",
                         "the download is incomplete or corrupt; fetch it again") from None
    # A writable native-endian copy: torch refuses to wrap read-only buffers without a warning.
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def find_idx(folder: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    raise file_error(os.path.join(folder, stem + "[.gz]"), "file not found",
                     "pass --data-dir with the folder that holds the four Fashion-MNIST IDX files")
