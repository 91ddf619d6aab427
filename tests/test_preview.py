"""trainwell augment-preview: the grid a user looks at before training on an augmentation."""
import numpy as np
from PIL import Image

from trainwell.cli import main


def test_preview_draws_originals_and_augmented_copies(tmp_path, capsys):
    out = tmp_path / "sub" / "aug.png"
    assert main(["augment-preview", "--data", "digits", "--augment", "rotate=20,erase=0.5", "--examples", "10",
                 "--copies", "3", "--out", str(out)]) == 0
    assert "10 digits training images, each with 3 copies" in capsys.readouterr().out
    img = np.asarray(Image.open(out).convert("L"))
    cell = 80  # 8x8 digits drawn 10x
    assert img.shape == (18 + 10 * (cell + 4), 110 + 4 * (cell + 4))
    # the first column holds originals, the others differ from them (they are augmented)
    first = img[18:, 110:110 + cell].astype(int)
    copies = [img[18:, 110 + j * (cell + 4):110 + j * (cell + 4) + cell].astype(int) for j in (1, 2, 3)]
    assert first.std() > 10 and all(np.abs(first - c).mean() > 1 for c in copies)
    assert not [p for p in out.parent.iterdir() if p.name != "aug.png"]  # no temporary file left


def test_preview_refuses_what_it_cannot_draw(tmp_path, blobs_npz, capsys):
    assert main(["augment-preview", "--data", blobs_npz, "--augment", "flip", "--out", str(tmp_path / "a.png")]) == 2
    assert "feature vectors" in capsys.readouterr().err
    assert main(["augment-preview", "--data", "digits", "--out", str(tmp_path / "a.jpg")]) == 2
    assert "PNG" in capsys.readouterr().err
    assert main(["augment-preview", "--data", "digits", "--augment", "rotate=400"]) == 2
    assert "rotate=400' must be a number in [0, 180]" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
