"""A catalogue of broken data files, each built on the fly: (name, builder(tmp) -> CLI args)."""
from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
import zlib

import numpy as np


def _npz(tmp, name, **arrays):
    p = os.path.join(tmp, name + ".npz")
    np.savez(p, **arrays)
    return ["--data", p]


def _bytes(tmp, name, data):
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(data)
    return ["--data", p]


def _good_npz_bytes():
    buf = io.BytesIO()
    np.savez(buf, x=np.random.default_rng(0).random((30, 4)).astype(np.float32), y=np.arange(30) % 3)
    return buf.getvalue()


def _idx_dir(tmp, name, images: bytes, labels: bytes, gz=False):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    good_img = bytes([0, 0, 8, 3]) + struct.pack(">3I", 20, 28, 28) + rng.integers(0, 255, 20 * 784, np.uint8).tobytes()
    good_lbl = bytes([0, 0, 8, 1]) + struct.pack(">I", 20) + (np.arange(20) % 10).astype(np.uint8).tobytes()
    files = {"train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
             "t10k-images-idx3-ubyte": good_img, "t10k-labels-idx1-ubyte": good_lbl}
    for stem, data in files.items():
        data = good_img if data is None and "images" in stem else good_lbl if data is None else data
        if gz:
            with gzip.open(os.path.join(d, stem + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(d, stem), "wb") as f:
                f.write(data)
    return ["--data", "fashion-mnist", "--data-dir", d]


def _png(h, w, value=100):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((h, w), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _huge_png_header():
    """A valid PNG signature + IHDR claiming 100000 x 100000 pixels, with no pixel data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def _folder(tmp, name, layout: dict[str, dict[str, bytes]]):
    root = os.path.join(tmp, name)
    for cls, files in layout.items():
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        for fname, data in files.items():
            with open(os.path.join(root, cls, fname), "wb") as f:
                f.write(data)
    return ["--data", root]


def cases():
    rng = np.random.default_rng(0)
    x = rng.random((30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    good = _good_npz_bytes()
    good_img = bytes([0, 0, 8, 3]) + struct.pack(">3I", 20, 28, 28) + bytes(20 * 784)
    good_lbl = bytes([0, 0, 8, 1]) + struct.pack(">I", 20) + (np.arange(20) % 10).astype(np.uint8).tobytes()
    c = []
    # --- npz ---
    c += [("npz-missing-file", lambda t: ["--data", os.path.join(t, "nope.npz")])]
    c += [("npz-not-zip", lambda t: _bytes(t, "a.npz", b"hello world"))]
    c += [("npz-empty-file", lambda t: _bytes(t, "e.npz", b""))]
    for cut in (10, 50, 100, 200, 300, len(good) // 2, len(good) - 30, len(good) - 5):
        c.append((f"npz-truncated-{cut}", lambda t, cut=cut: _bytes(t, f"t{cut}.npz", good[:cut])))
    # Bytes flipped inside the x.npy payload: zip's CRC must catch every one.
    start = good.index(b"\x93NUMPY") + 128
    for k in range(8):
        def flip(t, k=k):
            b = bytearray(good)
            b[start + 37 * k] ^= 0xFF
            return _bytes(t, f"f{k}.npz", bytes(b))
        c.append((f"npz-flipped-payload-{k}", flip))
    c += [
        ("npz-no-x", lambda t: _npz(t, "nox", y=y)),
        ("npz-no-y", lambda t: _npz(t, "noy", x=x)),
        ("npz-object-array", lambda t: _npz(t, "obj", x=np.array([{"a": 1}] * 30, dtype=object), y=y)),
        ("npz-object-labels", lambda t: _npz(t, "objy", x=x, y=np.array([None] * 30, dtype=object))),
        ("npz-1d-x", lambda t: _npz(t, "x1d", x=x[:, 0], y=y)),
        ("npz-5d-x", lambda t: _npz(t, "x5d", x=np.zeros((30, 1, 2, 2, 2)), y=y)),
        ("npz-2d-y", lambda t: _npz(t, "y2d", x=x, y=y[:, None])),
        ("npz-length-mismatch", lambda t: _npz(t, "len", x=x, y=y[:20])),
        ("npz-nan", lambda t: _npz(t, "nan", x=np.where(np.arange(4) == 2, np.nan, x), y=y)),
        ("npz-inf", lambda t: _npz(t, "inf", x=np.where(np.arange(4) == 1, np.inf, x), y=y)),
        ("npz-neg-inf", lambda t: _npz(t, "ninf", x=np.where(np.arange(4) == 1, -np.inf, x), y=y)),
        ("npz-negative-label", lambda t: _npz(t, "neg", x=x, y=y - 1)),
        ("npz-fractional-label", lambda t: _npz(t, "frac", x=x, y=y + 0.5)),
        ("npz-nan-label", lambda t: _npz(t, "nanlab", x=x, y=np.where(y == 1, np.nan, y))),
        ("npz-string-x", lambda t: _npz(t, "strx", x=np.array([["a"] * 4] * 30), y=y)),
        ("npz-complex-x", lambda t: _npz(t, "cx", x=x.astype(np.complex64), y=y)),
        ("npz-only-x-test", lambda t: _npz(t, "xt", x=x, y=y, x_test=x)),
        ("npz-test-shape", lambda t: _npz(t, "ts", x=x, y=y, x_test=x[:, :3], y_test=y)),
        ("npz-test-unknown-class", lambda t: _npz(t, "tc", x=x, y=np.array(["a", "b", "c"] * 10),
                                                 x_test=x, y_test=np.array(["a", "z", "c"] * 10))),
        ("npz-one-class", lambda t: _npz(t, "one", x=x, y=np.zeros(30, int))),
        ("npz-empty", lambda t: _npz(t, "empty", x=np.zeros((0, 4)), y=np.zeros(0, int))),
        ("npz-classes-too-few", lambda t: _npz(t, "cls", x=x, y=y, classes=np.array(["a", "b"]))),
        ("npz-test-nan", lambda t: _npz(t, "tnan", x=x, y=y, x_test=np.full((3, 4), np.nan), y_test=y[:3])),
        ("npz-test-label-range", lambda t: _npz(t, "tlab", x=x, y=y, x_test=x[:3], y_test=np.array([0, 1, 7]))),
        ("npz-bool-labels-one-class", lambda t: _npz(t, "bool", x=x, y=np.ones(30, bool))),
    ]

    def zip_bomb(t):
        p = os.path.join(t, "bomb.npz")
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("x.npy", "w", force_zip64=True) as f:
                f.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 1), }"
                        .ljust(118, b" ") + b"\n")
                chunk = bytes(2**24)
                for _ in range(24):
                    f.write(chunk)
            z.writestr("y.npy", b"")
        return ["--data", p]
    c.append(("npz-zip-bomb", zip_bomb))

    def big_header(t):  # a .npy header that claims a 1e12-element array
        p = os.path.join(t, "claims.npz")
        hdr = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 4), }"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("x.npy", hdr.ljust(128 - 1, b" ") + b"\n")
            buf = io.BytesIO()
            np.save(buf, y)
            z.writestr("y.npy", buf.getvalue())
        return ["--data", p]
    c.append(("npz-lying-header", big_header))
    # --- csv ---
    text_cases = {
        "csv-empty": "",
        "csv-header-only": "a,b,label\n",
        "csv-ragged-short": "a,b,label\n1,2,0\n3,1\n4,5,1\n",
        "csv-ragged-long": "a,b,label\n1,2,0\n3,1,1,9\n",
        "csv-non-numeric": "a,b,label\n1,2,0\n3,x,1\n",
        "csv-nan": "a,b,label\n1,2,0\nnan,1,1\n",
        "csv-inf": "a,b,label\n1,2,0\ninf,1,1\n",
        "csv-only-label": "label\n0\n1\n",
        "csv-one-class": "a,b,label\n1,2,0\n3,4,0\n",
        "csv-empty-feature": "a,b,label\n1,,0\n3,4,1\n",
        "csv-quote-mess": 'a,b,label\n1,"2,0\n3,4,1\n',
        "csv-negative-label": "a,b,label\n1,2,-1\n3,4,1\n",
        "csv-blank-label": "a,b,label\n1,2,\n3,4,1\n",
    }
    for name, text in text_cases.items():
        c.append((name, lambda t, name=name, text=text: _bytes(t, name + ".csv", text.encode())))
    c += [
        ("csv-binary", lambda t: _bytes(t, "bin.csv", bytes(range(256)) * 4)),
        ("csv-missing", lambda t: ["--data", os.path.join(t, "none.csv")]),
        ("csv-wrong-label", lambda t: _bytes(t, "wl.csv", b"a,b,label\n1,2,0\n3,4,1\n") + ["--label", "lable"]),
        ("csv-latin1", lambda t: _bytes(t, "l1.csv", "a,b,label\n1,2,caf\xe9\n3,4,b\n".encode("latin-1"))),
    ]
    # --- idx (fashion-mnist layout) ---
    c += [
        ("idx-bad-magic", lambda t: _idx_dir(t, "m", b"\x01\x02\x03\x04" + good_img[4:], None)),
        ("idx-bad-dtype", lambda t: _idx_dir(t, "dt", bytes([0, 0, 0x42, 3]) + good_img[4:], None)),
        ("idx-zero-dims", lambda t: _idx_dir(t, "zd", bytes([0, 0, 8, 0]) + good_img[4:], None)),
        ("idx-truncated-header", lambda t: _idx_dir(t, "th", good_img[:9], None)),
        ("idx-truncated-body", lambda t: _idx_dir(t, "tb", good_img[:-100], None)),
        ("idx-extra-bytes", lambda t: _idx_dir(t, "eb", good_img + b"\0" * 7, None)),
        ("idx-huge-claim", lambda t: _idx_dir(t, "hc", bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 28, 28), None)),
        ("idx-empty", lambda t: _idx_dir(t, "em", b"", None)),
        ("idx-label-count", lambda t: _idx_dir(t, "lc", None, bytes([0, 0, 8, 1]) + struct.pack(">I", 19) + bytes(19))),
        ("idx-label-range", lambda t: _idx_dir(t, "lr", None, good_lbl[:-1] + bytes([12]))),
        ("idx-labels-2d", lambda t: _idx_dir(t, "l2", None, bytes([0, 0, 8, 2]) + struct.pack(">2I", 20, 1) + bytes(20))),
        ("idx-gz-truncated-body", lambda t: _idx_dir(t, "gtb", good_img[:-100], None, gz=True)),
        ("idx-gz-huge-claim", lambda t: _idx_dir(t, "ghc", bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 28, 28),
                                                 None, gz=True)),
        ("idx-missing-dir", lambda t: ["--data", "fashion-mnist", "--data-dir", os.path.join(t, "no-such")]),
    ]

    def idx_missing_file(t):
        args = _idx_dir(t, "mf", None, None)
        os.unlink(os.path.join(args[-1], "t10k-labels-idx1-ubyte"))
        return args
    c.append(("idx-missing-file", idx_missing_file))

    def gz_corrupt(t, cut):
        args = _idx_dir(t, f"gz{cut}", None, None, gz=True)
        p = os.path.join(args[-1], "train-images-idx3-ubyte.gz")
        data = open(p, "rb").read()
        open(p, "wb").write(data[:cut])
        return args
    for cut in (5, 20, 60, 200):
        c.append((f"idx-gz-cut-{cut}", lambda t, cut=cut: gz_corrupt(t, cut)))

    def gz_garbage(t, pos):
        args = _idx_dir(t, f"gg{pos}", None, None, gz=True)
        p = os.path.join(args[-1], "train-images-idx3-ubyte.gz")
        b = bytearray(open(p, "rb").read())
        for i in range(pos, min(pos + 8, len(b))):
            b[i] ^= 0x5A
        open(p, "wb").write(bytes(b))
        return args
    for pos in (30, 60, 100):
        c.append((f"idx-gz-garbage-{pos}", lambda t, pos=pos: gz_garbage(t, pos)))
    # --- image folders ---
    png = _png(6, 6)
    c += [
        ("img-one-class", lambda t: _folder(t, "one", {"a": {"1.png": png, "2.png": png}})),
        ("img-empty-class", lambda t: _folder(t, "ec", {"a": {"1.png": png}, "b": {}})),
        ("img-text-file", lambda t: _folder(t, "tf", {"a": {"1.png": png}, "b": {"notes.txt": b"hi"}})),
        ("img-fake-png", lambda t: _folder(t, "fp", {"a": {"1.png": png}, "b": {"2.png": b"not an image"}})),
        ("img-truncated-png", lambda t: _folder(t, "tp", {"a": {"1.png": png}, "b": {"2.png": png[:40]}})),
        ("img-empty-png", lambda t: _folder(t, "ep", {"a": {"1.png": png}, "b": {"2.png": b""}})),
        ("img-huge-png", lambda t: _folder(t, "hp", {"a": {"1.png": png}, "b": {"2.png": _huge_png_header()}})),
        ("img-huge-first", lambda t: _folder(t, "hf", {"a": {"0.png": _huge_png_header()}, "b": {"2.png": png}})),
        ("img-gif-as-png", lambda t: _folder(t, "gif", {"a": {"1.png": png}, "b": {"2.png": _gif()}})),
        ("img-no-classes", lambda t: _folder(t, "nc", {})),
        ("img-bad-jpeg", lambda t: _folder(t, "bj", {"a": {"1.png": png}, "b": {"2.jpg": b"\xff\xd8\xff\xe0garbage"}})),
    ]
    for cut in (8, 16, 33, 50):
        c.append((f"img-cut-{cut}", lambda t, cut=cut: _folder(t, f"cut{cut}", {"a": {"1.png": png},
                                                                               "b": {"2.png": png[:cut]}})))
    # --- names and flags ---
    c += [
        ("unsupported-suffix", lambda t: _bytes(t, "data.parquet", b"PAR1")),
        ("missing-path", lambda t: ["--data", os.path.join(t, "nowhere")]),
        ("builtin-typo", lambda t: ["--data", "fashon-mnist"]),
    ]
    return c


def _gif():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(buf, format="GIF")
    return buf.getvalue()
