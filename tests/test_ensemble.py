"""Ensembles: averaged probabilities, members checked for the same classes and test rows."""
import numpy as np
import pytest
import torch

import trainwell
from trainwell.cli import main
from trainwell.ensemble import _metrics


def test_ensemble_of_runs_with_a_shared_test_set(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    x = rng.normal(0, 1, (300, 4)) + y[:, None]
    xt_y = np.arange(90) % 3
    np.savez(tmp_path / "d.npz", x=x.astype(np.float32), y=y, x_test=(rng.normal(0, 1, (90, 4)) + xt_y[:, None])
             .astype(np.float32), y_test=xt_y)
    dirs = [trainwell.train(data=str(tmp_path / "d.npz"), hidden=[8], epochs=3, seed=s, quiet=True,
                            out=str(tmp_path / "runs"), name=f"r{s}", precision="fp32").dir for s in range(3)]
    r = trainwell.evaluate_ensemble(dirs)
    assert r["examples"] == 90 and len(r["members"]) == 3
    for m, d in zip(r["members"], dirs):  # each member scores what `evaluate` says of it
        assert m["error"] == pytest.approx(trainwell.evaluate_run(d)["error"])
    assert r["ensemble"]["error"] <= max(m["error"] for m in r["members"])
    g = trainwell.evaluate_ensemble(dirs, geometric=True)
    assert g["mean"] == "geometric" and 0 <= g["ensemble"]["error"] <= 1
    assert main(["ensemble", *dirs]) == 0
    out = capsys.readouterr().out
    assert "ensemble (arithmetic)" in out and "members (mean)" in out


def test_averaging_is_the_mean_of_probabilities():
    p1 = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    p2 = torch.tensor([[0.3, 0.7], [0.2, 0.8]])
    mean = torch.logsumexp(torch.stack([p1.log(), p2.log()]), 0) - np.log(2)
    assert torch.allclose(mean.exp(), (p1 + p2) / 2)
    assert _metrics(mean, torch.tensor([0, 1]))["error"] == 0.0


def test_members_with_different_test_splits_or_classes_are_refused(tmp_path, blobs_npz, capsys):
    base = dict(hidden=[8], epochs=1, quiet=True, out=str(tmp_path / "runs"), precision="fp32")
    a = trainwell.train(data=blobs_npz, seed=0, name="a", **base).dir
    b = trainwell.train(data=blobs_npz, split_seed=1, name="b", **base).dir
    assert main(["ensemble", a, b]) == 2
    assert "different test splits" in capsys.readouterr().err
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "two.npz", x=rng.normal(size=(60, 6)).astype(np.float32), y=np.arange(60) % 2)
    c = trainwell.train(data=str(tmp_path / "two.npz"), seed=0, name="c", **base).dir
    assert main(["ensemble", a, c]) == 2
    assert "class list" in capsys.readouterr().err
    assert main(["ensemble", a]) == 2


def test_runs_that_differ_only_in_seed_share_their_test_rows_and_ensemble(tmp_path, blobs_npz, capsys):
    """The course's recipe: several seeds of one configuration, averaged. The splits have a seed of their own,
    so the members hold out the same test rows on a source without a test set of its own (an npz here)."""
    base = dict(data=blobs_npz, hidden=[8], epochs=2, quiet=True, out=str(tmp_path / "runs"), precision="fp32")
    runs = [trainwell.train(seed=s, name=f"s{s}", **base) for s in (0, 1, 2)]
    assert len({tuple(r.summary["sizes"].values()) for r in runs}) == 1
    assert not all(r.summary["test"] == runs[0].summary["test"] for r in runs[1:])  # the seeds did differ
    assert main(["ensemble", *[r.dir for r in runs]]) == 0
    assert "ensemble (" in capsys.readouterr().out
