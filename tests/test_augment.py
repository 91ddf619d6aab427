import pytest
import torch

from trainwell.augment import Augment, parse, translate


def test_parse_and_errors():
    assert parse("flip, translate=2") == {"flip": None, "translate": 2}
    assert parse("") == {}
    for bad, msg in (("flop", "unknown augmentation"), ("translate=x", "integer"), ("translate=0", "1..16"),
                     ("flip=1", "no value")):
        with pytest.raises(ValueError, match=msg):
            parse(bad)


def test_translate_shifts_each_image_within_k():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = translate(x, 2)
    pos = out.flatten(1).argmax(1)
    r, c = pos // 9, pos % 9
    assert (r - 4).abs().max() <= 2 and (c - 4).abs().max() <= 2
    assert len(set(zip(r.tolist(), c.tolist()))) > 10        # per-sample offsets, not one for the batch
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(64))  # the dot is moved, never lost


def test_flip_is_per_sample_and_exact():
    torch.manual_seed(1)
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float).reshape(2, 3, 4, 5).repeat(50, 1, 1, 1)
    out = Augment("flip")(x)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert torch.all(flipped | same) and 20 < flipped.sum() < 80


def test_features_pass_through():
    x = torch.randn(4, 7)
    assert torch.equal(Augment("flip,translate=1")(x), x)
