"""--tensorboard: the run's scalars and histograms as event files TensorBoard reads; one line without the package."""
import os
import sys

import pytest

import trainwell
from trainwell.cli import main


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_train_writes_the_history_and_histograms(tmp_path):
    run = trainwell.train(data="digits", model="mlp", hidden=[16], epochs=3, monitor_every=10, out=str(tmp_path / "runs"),
                          name="tb", quiet=True, tensorboard=str(tmp_path / "tb"))
    acc = _events(tmp_path / "tb" / "tb")
    tags = acc.Tags()
    valid = [e.value for e in acc.Scalars("epoch/valid_error")]
    assert valid == pytest.approx(run.history.column("valid_error"), abs=1e-6)
    assert [e.step for e in acc.Scalars("epoch/lr")] == [1, 2, 3]
    assert {"weights/1", "gradients/1"} <= set(tags["histograms"])
    assert any(t.startswith("layers/update_ratio/") for t in tags["scalars"])
    assert any(t.startswith("units/sparsity/") for t in tags["scalars"])


def test_search_writes_one_folder_per_trial(tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text("lr: [0.05, 0.1]\n")
    result = trainwell.search(str(space), data="digits", model="mlp", hidden=[16], epochs=2, out=str(tmp_path),
                              quiet=True, tensorboard=str(tmp_path / "tb"))
    folders = sorted(os.listdir(tmp_path / "tb" / result.study))
    assert folders == ["0000", "0001"]
    assert len(_events(tmp_path / "tb" / result.study / "0001").Scalars("epoch/valid_error")) == 2


def test_without_the_package_one_line_and_nothing_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    code = main(["train", "--data", "digits", "--model", "mlp", "--epochs", "1", "--out", str(tmp_path / "runs"),
                 "--tensorboard", str(tmp_path / "tb"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "pip install" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tb").exists()
