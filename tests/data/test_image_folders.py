"""Image folders as people have them: every format ImageFolder takes, mixed modes decoded as a person sees them
(golden pixels), stray files skipped, unreadable images named, ROOT/train|val|test as the given splits, and a
geometry decided from the whole folder."""
import numpy as np
import pytest
from PIL import Image

import trainwell
from trainwell.cli import main
from trainwell.data import load_source
from trainwell.data.images import BACKGROUND, read_image
from trainwell.errors import UserError

QUICK = dict(model="convnet", epochs=1, batch_size=8, precision="fp32", device="cpu", quiet=True, monitor_every=0)


def _pattern(h=6, w=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", ["png", "bmp", "tif", "tiff", "webp", "ppm"])
def test_every_lossless_format_decodes_to_the_same_pixels(tmp_path, ext):
    rgb = _pattern()
    path = tmp_path / f"x.{ext}"
    kwargs = {"lossless": True} if ext == "webp" else {}
    Image.fromarray(rgb).save(path, **kwargs)
    assert np.array_equal(read_image(str(path), None, None), rgb.transpose(2, 0, 1))


def test_modes_are_decoded_as_a_person_sees_them(tmp_path):
    # transparent pixels on a neutral grey, opaque ones as they are
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)
    rgba[0, 1] = (200, 10, 10, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    got = read_image(str(tmp_path / "a.png"), None, 3)
    assert got[:, 0, 0].tolist() == [200, 10, 10] and got[:, 0, 1].tolist() == [BACKGROUND] * 3
    # a palette image: its colours, not its indices
    pal = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_image(str(tmp_path / "p.png"), None, 3)[:, 0].T.tolist() == [[255, 0, 0], [0, 0, 255]]
    # 16-bit grey scaled to 8 bits (not clipped at 255)
    Image.fromarray(np.array([[65535, 32896, 0]], np.uint16)).save(tmp_path / "g16.png")
    assert read_image(str(tmp_path / "g16.png"), None, 1)[0, 0].tolist() == [255, 128, 0]
    # grey in a colour folder: replicated
    Image.fromarray(np.full((2, 2), 77, np.uint8)).save(tmp_path / "g.png")
    assert read_image(str(tmp_path / "g.png"), None, 3).reshape(3, -1).tolist() == [[77] * 4] * 3


def _folder(root, sizes, mode="RGB", per_class=4):
    rng = np.random.default_rng(1)
    for k, cls in enumerate(("ant", "bee")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            a = np.clip(rng.normal(60 + 120 * k, 20, size=(h, w, 3)), 0, 255).astype(np.uint8)
            img = Image.fromarray(a)
            Image.Image.convert(img, mode if i else "L").save(root / cls / f"{i}.png")  # the first one grey
    return str(root)


def test_the_geometry_comes_from_the_whole_folder_not_its_first_file(tmp_path):
    root = _folder(tmp_path / "f", [(20, 20)])
    src = load_source(root)
    assert src.x.shape[1:] == (3, 20, 20)  # colour: most images have it, though the first one is grey
    assert "every image has that size" in src.choices["image_size"]
    mixed = _folder(tmp_path / "m", [(24, 40), (30, 30), (40, 28), (96, 96)])
    src = load_source(mixed)
    assert src.x.shape[1:] == (3, 29, 29) and src.image_fit == "crop"
    assert "median 29" in src.choices["image_size"] and "centre cropped" in src.choices["image_size"]
    assert load_source(mixed, image_size=16).x.shape[1:] == (3, 16, 16)  # --image-size wins


def test_files_that_are_not_images_are_skipped_and_unreadable_images_named(tmp_path, capsys):
    root = _folder(tmp_path / "f", [(12, 12)])
    (tmp_path / "f" / "ant" / "notes.txt").write_text("collected in June")
    src = load_source(root)
    assert len(src.y) == 8 and "skipped 1 file that is not an image (ant/notes.txt)" in capsys.readouterr().err
    for i in range(3):
        (tmp_path / "f" / "bee" / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"broken0.jpg: is not a readable image .*; 2 more like it .* "
                                        r"--skip-bad-images"):
        load_source(root)
    src = load_source(root, skip_bad_images=True)
    assert len(src.y) == 8 and "skipped 3 unreadable images" in capsys.readouterr().err
    code = main(["train", "--data", root, "--out", str(tmp_path / "runs"), "--name", "bad", "--epochs", "1"])
    assert code == 2 and not (tmp_path / "runs" / "bad").exists()


def test_train_val_test_folders_are_the_given_splits(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        _folder(tmp_path / "photos" / split, [(16, 16)], per_class=n)
    run = trainwell.train(data=str(tmp_path / "photos"), out=str(tmp_path / "runs"), name="s", **QUICK)
    assert run.summary["sizes"] == {"train": 12, "valid": 4, "test": 6}
    assert "given by the folders: test, train, valid" in run.env["auto"]["splits"]
    assert trainwell.evaluate_run(run.dir)["examples"] == 6


def test_a_test_folder_elsewhere_is_the_test_set(tmp_path):
    train = _folder(tmp_path / "train", [(16, 16), (20, 18)], per_class=6)
    test = _folder(tmp_path / "test", [(32, 32)], per_class=3)
    run = trainwell.train(data=train, test_data=test, out=str(tmp_path / "runs"), name="t", **QUICK)
    assert run.summary["sizes"]["test"] == 6 and run.preprocess.fit == "crop"
    again = trainwell.evaluate_run(run.dir)
    assert again["examples"] == 6 and again["loss"] == run.summary["test"]["loss"]
