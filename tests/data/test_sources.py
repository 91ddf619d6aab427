import gzip
import os
import struct

import numpy as np
import torch
import pytest

from trainwell.data import load_source, make_splits
from trainwell.data.idx import read_idx
from trainwell.data.sources import DEBIAN_FASHION_DIR
from trainwell.errors import UserError

HAVE_FMNIST = os.path.isdir(DEBIAN_FASHION_DIR)


def write_idx(path, arr, gz=False):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    head = bytes([0, 0, codes[arr.dtype.type], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(body)


@pytest.mark.skipif(not HAVE_FMNIST, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian():
    src = load_source("fashion-mnist")
    assert src.x.shape == (60000, 1, 28, 28) and src.x_test.shape == (10000, 1, 28, 28)
    assert src.classes[0] == "T-shirt/top" and np.bincount(src.y).tolist() == [6000] * 10


def test_fashion_mnist_from_a_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8), gz=True)
    src = load_source("fashion-mnist", data_dir=str(tmp_path))
    assert src.x.shape == (50, 1, 28, 28) and len(src.y_test) == 20


def test_digits():
    src = load_source("digits")
    assert src.x.shape == (1797, 1, 8, 8) and len(src.classes) == 10 and src.x_test is None


def test_npz_with_string_labels_and_test_set(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, x=np.random.rand(20, 3).astype(np.float32), y=np.array(["cat", "dog"] * 10),
             x_test=np.random.rand(4, 3), y_test=np.array(["dog", "cat"] * 2))
    src = load_source(str(p))
    assert src.classes == ["cat", "dog"] and src.y[:2].tolist() == [0, 1] and src.y_test[:2].tolist() == [1, 0]


def test_npz_channels_last_images(tmp_path):
    p = tmp_path / "rgb.npz"
    np.savez(p, x=np.zeros((6, 5, 5, 3), np.uint8), y=np.array([0, 1] * 3))
    assert load_source(str(p)).x.shape == (6, 3, 5, 5)


def test_csv_with_named_label_and_class_names(tmp_path):
    p = tmp_path / "iris.csv"
    p.write_text("a,b,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n")
    src = load_source(str(p), label="species")
    assert src.classes == ["setosa", "virginica"] and src.x.shape == (3, 2) and src.feature_names == ["a", "b"]


def test_csv_label_defaults_to_last_column(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text("f1,f2,target\n1,2,0\n3,4,1\n")
    assert load_source(str(p)).label_column == "target"


def test_image_folder(tmp_path):
    from PIL import Image

    for cls, value in (("cats", 30), ("dogs", 200)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10 + i, 12, 3), value, np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(np.full((9, 9), 90, np.uint8)).save(tmp_path / "dogs" / "grey.jpg")
    src = load_source(str(tmp_path))
    # sizes vary: the median shorter side (11), aspect kept, centre-cropped; colour, since some images have it
    assert src.classes == ["cats", "dogs"] and src.x.shape == (7, 3, 11, 11) and src.x.dtype == np.uint8
    assert "sizes vary (9 to 12 pixels on the shorter side, median 11)" in src.choices["image_size"]
    assert load_source(str(tmp_path), image_size=6).x.shape == (7, 3, 6, 6)


def test_splits_protocol_is_stratified_seeded_and_train_normalised(tmp_path):
    src = load_source("digits")
    s = make_splits(src, valid_fraction=0.1, test_fraction=0.2, seed=3)
    sizes = s.sizes()
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=10) and sizes["valid"] == pytest.approx(0.1 * 0.8 * 1797, abs=10)
    counts = np.bincount(s.y_test.numpy())
    assert counts.max() - counts.min() <= 2            # stratified
    assert s.x_train.dtype == torch.uint8               # raw pixels are kept; batches are normalised
    assert abs(s.preprocess.apply(s.x_train).mean().item()) < 1e-4   # with train statistics ...
    assert abs(s.preprocess.apply(s.x_test).mean().item()) > 1e-4    # ... which are not the test set's
    s2 = make_splits(src, 0.1, 0.2, seed=3)
    assert np.array_equal(s.y_test.numpy(), s2.y_test.numpy())


def test_idx_big_header_refused_before_allocating(tmp_path):
    p = tmp_path / "big-idx"
    p.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 100000, 10000, 10000) + b"\0" * 10)
    with pytest.raises(UserError, match="GiB"):
        read_idx(str(p))
