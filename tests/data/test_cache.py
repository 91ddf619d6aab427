"""The on-disk image cache: decoded once, re-decoded when the folder changes, read a batch at a time."""
import os

import numpy as np
import pytest
import torch

from trainwell.data import cache, load_source, make_splits
from trainwell.data.cache import Rows, cached_image_folder, take
from trainwell.data.splits import fit_preprocess
from trainwell.errors import UserError


def _folder(root, n=6, size=(10, 12), rgb=True):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        os.makedirs(root / cls, exist_ok=True)
        for i in range(n):
            shape = (*size, 3) if rgb else size
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / cls / f"{i}.png")
    return str(root)


@pytest.fixture
def decodes(monkeypatch):
    """Counts images decoded into the cache."""
    calls = []
    real = cache.read_image

    def counting(path, size, channels, fit="resize"):
        calls.append(path)
        return real(path, size, channels, fit)

    monkeypatch.setattr(cache, "read_image", counting)
    return calls


def test_a_folder_is_decoded_once_and_then_mapped(tmp_path, decodes, monkeypatch):
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "c"))
    root = _folder(tmp_path / "imgs")
    x, y, classes, _ = cached_image_folder(root, None)
    assert isinstance(x, np.memmap) and x.shape == (12, 3, 10, 12) and x.dtype == np.uint8
    assert classes == ["cats", "dogs"] and y.tolist() == [0] * 6 + [1] * 6 and len(decodes) == 12
    x2, _, _, _ = cached_image_folder(root, None)
    assert len(decodes) == 12 and np.array_equal(x, x2)                    # mapped, not decoded again
    from trainwell.data.images import read_image_folder

    assert np.array_equal(np.asarray(x), read_image_folder(root, None)[0])   # the same pixels as in memory


def test_a_changed_folder_is_decoded_again(tmp_path, decodes, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "c"))
    root = _folder(tmp_path / "imgs")
    cached_image_folder(root, None)
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "imgs" / "cats" / "0.png")
    os.utime(tmp_path / "imgs" / "cats" / "0.png", ns=(1, 1))  # a new mtime even on a coarse clock
    x, _, _, _ = cached_image_folder(root, None)
    assert len(decodes) == 24 and x[0].max() == 0                         # the new pixels
    Image.fromarray(np.full((10, 12, 3), 9, np.uint8)).save(tmp_path / "imgs" / "dogs" / "new.png")
    x, y, _, _ = cached_image_folder(root, None)
    assert len(x) == 13 and y.tolist().count(1) == 7
    assert cached_image_folder(root, 8)[0].shape == (13, 3, 8, 8)         # another size is its own entry


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, decodes, monkeypatch):
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "c"))
    root = _folder(tmp_path / "imgs")
    x, _, _, _ = cached_image_folder(root, None)
    entry = os.path.dirname(x.filename)
    with open(os.path.join(entry, "pixels.u8"), "r+b") as f:
        f.truncate(100)
    x2, _, _, _ = cached_image_folder(root, None)
    assert len(decodes) == 24 and x2.shape == (12, 3, 10, 12)
    with open(os.path.join(entry, "manifest.json"), "w") as f:
        f.write("{not json")
    cached_image_folder(root, None)
    assert len(decodes) == 36


def test_a_broken_image_leaves_no_half_written_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "c"))
    root = _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "dogs" / "9.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="9.png"):
        cached_image_folder(root, None)
    left = [f for _, _, files in os.walk(tmp_path / "c") for f in files]
    assert left == []


def test_an_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "file" / "cache"))  # under a file: cannot be made
    root = _folder(tmp_path / "imgs")
    x, y, _, _ = cached_image_folder(root, None)
    assert not isinstance(x, np.memmap) and x.shape == (12, 3, 10, 12)
    assert "TRAINWELL_CACHE" in capsys.readouterr().err


def test_rows_read_only_what_is_asked():
    base = np.arange(40, dtype=np.uint8).reshape(10, 4)
    r = Rows(base, np.array([9, 3, 5, 1]))
    assert r.shape == (4, 4) and len(r) == 4
    assert r[torch.tensor([2, 0])].tolist() == [base[5].tolist(), base[9].tolist()]
    assert r[1:3].tolist() == base[[3, 5]].tolist()
    sub = r.take(np.array([3, 0]))
    assert isinstance(sub, Rows) and sub[:].tolist() == base[[1, 9]].tolist()
    assert take(base, np.array([1])).tolist() == [base[1].tolist()]            # in memory: a plain copy


def test_statistics_in_chunks_match_numpy(monkeypatch):
    """Golden values: chunked two-pass statistics equal numpy's over the whole array."""
    from trainwell.data.sources import Source
    from trainwell.data import splits as splits_mod

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (37, 3, 5, 4), dtype=np.uint8)
    src = Source("s", x, np.arange(37) % 2, ["a", "b"])
    monkeypatch.setattr(splits_mod, "CHUNK_VALUES", 100)                   # 1 row per chunk
    pre = fit_preprocess(src, x)
    ref = x.astype(np.float64) / 255
    np.testing.assert_allclose(pre.mean, ref.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(pre.std, ref.std(axis=(0, 2, 3)), rtol=1e-12)
    f = rng.normal(5, 2, (50, 7)).astype(np.float32)
    pre = fit_preprocess(Source("f", f, np.arange(50) % 2, ["a", "b"]), f)
    np.testing.assert_allclose(pre.mean, f.astype(np.float64).mean(0), rtol=1e-10)
    np.testing.assert_allclose(pre.std, f.astype(np.float64).std(0), rtol=1e-10)


def test_splits_of_a_folder_stay_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "c"))
    root = _folder(tmp_path / "imgs", n=20)
    s = make_splits(load_source(root), valid_fraction=0.2, test_fraction=0.2, seed=0)
    assert isinstance(s.x_train, Rows) and isinstance(s.x_valid, Rows) and isinstance(s.x_test, Rows)
    assert s.sizes() == {"train": 26, "valid": 6, "test": 8}
    assert len(s.without_test().x_test) == 0


def test_training_from_the_cache_equals_training_in_memory(tmp_path, monkeypatch):
    """The same run, read a batch at a time from the memory map or held in memory, to the bit."""
    import trainwell

    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "c"))
    root = _folder(tmp_path / "imgs", n=24, size=(12, 12))
    common = dict(data=root, model="convnet", epochs=2, batch_size=8, out=str(tmp_path / "runs"), quiet=True)
    on_disk = trainwell.train(name="disk", **common)
    from trainwell.data import images

    def in_memory_folder(root, size, geometry=None, skip_bad=False, device="cpu"):
        files, headers = images.scan(images.list_image_folder(root)[0])
        g = geometry or images.folder_geometry(headers, size, device)
        return (*images.read_image_folder(root, size, g), g)

    monkeypatch.setattr(cache, "cached_image_folder", in_memory_folder)
    in_memory = trainwell.train(name="memory", **common)
    keys = ("train_loss", "valid_loss", "valid_error")
    assert [[r[k] for k in keys] for r in on_disk.history] == [[r[k] for k in keys] for r in in_memory.history]
    assert on_disk.summary["test_accuracy"] == in_memory.summary["test_accuracy"]


def test_reading_batches_keeps_mapped_memory_at_a_batch(tmp_path):
    """Without letting go of mapped pages, random batches left ~all of a file resident (600 MB of 614)."""
    def mapped_mib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("RssFile")) / 1024

    path = tmp_path / "pixels.u8"
    np.random.default_rng(0).integers(0, 256, 96 * 2**20, dtype=np.uint8).tofile(path)  # 96 MiB
    x = np.memmap(path, dtype=np.uint8, mode="r", shape=(3072, 2, 128, 128))
    before = mapped_mib()
    rows = Rows(x, np.arange(len(x)))
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        batch = rows[torch.randint(0, len(x), (128,), generator=g)]
    assert batch.shape == (128, 2, 128, 128)
    assert mapped_mib() - before < 24  # ~4 MiB per batch, not the 96 MiB that 100 batches touched
