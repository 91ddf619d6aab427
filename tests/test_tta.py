"""Test-time flip averaging: the numbers, the invariance it buys, and one use across train/evaluate/predict."""
import pytest
import torch
from torch import nn

from trainwell.tta import FlipAverage, with_tta


class LeftRight(nn.Module):
    """Scores class 0 by the left half of the image, class 1 by the right half: mirroring swaps them."""

    def forward(self, x):
        w = x.shape[-1] // 2
        return torch.stack([x[..., :w].mean((1, 2, 3)), x[..., w:].mean((1, 2, 3)), torch.zeros(len(x))], 1) * 4


def test_flip_average_is_the_mean_of_the_two_probabilities():
    torch.manual_seed(0)
    x = torch.rand(5, 1, 4, 6)
    net = LeftRight()
    out = FlipAverage(net).eval()(x)
    want = (net(x).softmax(1) + net(x.flip(3)).softmax(1)) / 2
    torch.testing.assert_close(out.exp(), want)
    torch.testing.assert_close(out.logsumexp(1), torch.zeros(5), atol=1e-6, rtol=0)   # log-probabilities
    # mirrored inputs get the same prediction: the averaged model is invariant to the flip
    torch.testing.assert_close(FlipAverage(net).eval()(x.flip(3)), out)
    # a left/right-biased image scores the two swapped classes equally under averaging
    assert torch.allclose(out[:, 0], out[:, 1])


def test_training_mode_runs_the_network_alone():
    net = LeftRight()
    x = torch.rand(3, 1, 4, 6)
    torch.testing.assert_close(FlipAverage(net).train()(x), net(x))
    assert with_tta(net, "none") is net
    with pytest.raises(ValueError, match="flip"):
        with_tta(net, "rotate")


def test_a_flip_averaged_run_is_scored_the_same_everywhere(tmp_path):
    import numpy as np

    import trainwell

    run = trainwell.train(data="digits", model="convnet", width=8, epochs=2, augment="flip", tta="flip",
                          out=str(tmp_path), name="t", quiet=True)
    assert run.config.tta == "flip"
    again = trainwell.evaluate_run(run.dir)
    assert again["accuracy"] == pytest.approx(run.summary["test_accuracy"], abs=1e-12)
    # without the averaging the same weights score differently: the setting is really applied
    import dataclasses

    plain = dataclasses.replace(trainwell.load_run(run.dir), config=dataclasses.replace(run.config, tta="none"))
    from trainwell.inference import scoring_set
    from trainwell.metrics import evaluate

    raw, y, _ = scoring_set(plain)
    base = evaluate(plain.model, raw, torch.as_tensor(y), plain.precision, plain.preprocess)
    averaged = evaluate(FlipAverage(plain.model), raw, torch.as_tensor(y), plain.precision, plain.preprocess)
    assert averaged["loss"] == pytest.approx(run.summary["test"]["loss"], rel=1e-9)
    assert base["loss"] != pytest.approx(averaged["loss"], rel=1e-6)
    assert run.summary["test_without_tta"]["loss"] == pytest.approx(base["loss"], rel=1e-9)  # reported apart
    # predictions are averaged too: probabilities of an image and of its mirror image are the same
    img = tmp_path / "one.png"
    from PIL import Image
    from sklearn.datasets import load_digits

    Image.fromarray(np.round(load_digits().images[0] * 255 / 16).astype(np.uint8)).save(img)
    Image.fromarray(np.round(load_digits().images[0][:, ::-1] * 255 / 16).astype(np.uint8)).save(tmp_path / "m.png")
    p, q = trainwell.predict(run.dir, str(img), top=3), trainwell.predict(run.dir, str(tmp_path / "m.png"), top=3)
    assert [c for c, _ in p[0]] == [c for c, _ in q[0]]
    assert [v for _, v in p[0]] == pytest.approx([v for _, v in q[0]], abs=1e-5)


def test_flip_averaging_of_feature_vectors_is_refused(blobs_npz, tmp_path, capsys):
    from trainwell.cli import main

    out = tmp_path / "runs"
    assert main(["train", "--data", blobs_npz, "--tta", "flip", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tta=flip" in err and "feature vectors" in err and not out.exists()
    assert main(["train", "--tta", "rotate", "--out", str(tmp_path)]) == 2
    assert "tta: unknown 'rotate'" in capsys.readouterr().err
