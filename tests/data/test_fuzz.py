"""Mutation fuzzing of every loader: any bytes give a Source or a UserError, never a crash or a hang."""
import gzip
import io
import os
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwell.data import load_source
from trainwell.errors import UserError

SETTINGS = settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture],
                    derandomize=True)


def _npz_bytes():
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(40, dtype=np.float32).reshape(10, 4), y=np.arange(10) % 2)
    return buf.getvalue()


def _png_bytes():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(36, dtype=np.uint8).reshape(6, 6)).save(buf, format="PNG")
    return buf.getvalue()


CSV = b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n"
IDX = bytes([0, 0, 8, 3]) + struct.pack(">3I", 4, 28, 28) + bytes(range(256)) * 12 + bytes(64)
mutations = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8)


def mutate(data: bytes, edits, cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:cut] if cut is not None else b)


def _expect_clean(fn):
    try:
        fn()
    except UserError as e:
        assert "\n" not in str(e)


@SETTINGS
@given(edits=mutations, cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_fuzz_npz(tmp_path, edits, cut):
    p = os.path.join(tmp_path, "f.npz")
    open(p, "wb").write(mutate(_npz_bytes(), edits, cut))
    _expect_clean(lambda: load_source(p))


@SETTINGS
@given(edits=mutations, cut=st.one_of(st.none(), st.integers(0, 60)))
def test_fuzz_csv(tmp_path, edits, cut):
    p = os.path.join(tmp_path, "f.csv")
    open(p, "wb").write(mutate(CSV, edits, cut))
    _expect_clean(lambda: load_source(p))


@SETTINGS
@given(edits=mutations, cut=st.one_of(st.none(), st.integers(0, 4000)), gz=st.booleans())
def test_fuzz_idx(tmp_path, edits, cut, gz):
    d = os.path.join(tmp_path, "idx")
    os.makedirs(d, exist_ok=True)
    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes([0, 1, 2, 3])
    body = mutate(IDX, edits, cut)
    if gz:
        body = mutate(gzip.compress(IDX), edits, cut)
    for old in os.listdir(d):  # hypothesis reuses tmp_path across examples
        os.unlink(os.path.join(d, old))
    for stem in ("train", "t10k"):
        open(os.path.join(d, f"{stem}-images-idx3-ubyte" + (".gz" if gz else "")), "wb").write(body)
        open(os.path.join(d, f"{stem}-labels-idx1-ubyte"), "wb").write(labels)
    _expect_clean(lambda: load_source("fashion-mnist", data_dir=d))


@SETTINGS
@given(edits=mutations, cut=st.one_of(st.none(), st.integers(0, 120)))
def test_fuzz_image_folder(tmp_path, edits, cut):
    root = os.path.join(tmp_path, "imgs")
    for cls in ("a", "b"):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
    open(os.path.join(root, "a", "1.png"), "wb").write(_png_bytes())
    open(os.path.join(root, "b", "2.png"), "wb").write(mutate(_png_bytes(), edits, cut))
    _expect_clean(lambda: load_source(root))
