"""Capacity: FLOP counts against hand counts, the per-layer table, and `trainwell summary`."""
import pytest
from torch import nn

import trainwell
from trainwell.capacity import forward_flops, layer_table, training_flops
from trainwell.cli import main


def test_mlp_flops_match_the_hand_count():
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    forward = 2 * (784 * 256 + 256 * 128 + 128 * 10)          # a multiply-add is 2 FLOPs
    assert forward_flops(net, [1, 28, 28]) == forward == 469_504
    # backward: the weight gradients cost the forward again; input gradients all but the first layer's
    assert training_flops(net, [1, 28, 28], 10) == 2 * forward + 2 * (256 * 128 + 128 * 10)


def test_small_conv_net_flops_and_table_match_the_hand_count():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    conv = 2 * (1 * 3 * 3) * 4 * 8 * 8                        # per output value: k*k*c_in multiply-adds
    fc = 2 * 64 * 10
    assert forward_flops(net, [1, 8, 8]) == conv + fc == 5888
    rows = layer_table(net, [1, 8, 8])
    assert [r["type"] for r in rows] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert [r["output"] for r in rows] == [[4, 8, 8], [4, 8, 8], [4, 4, 4], [64], [10]]
    assert [r["flops"] for r in rows] == [conv, 0, 0, 0, fc]
    assert [r["params"] for r in rows] == [40, 0, 0, 0, 650]
    assert net.training  # left as it was


def test_model_summary_api_and_cli(tmp_path, capsys):
    s = trainwell.model_summary(data="digits", model="resnet", depth=8, width=4, steps=2, out=str(tmp_path))
    assert s["params"] == sum(r["params"] for r in s["layers"]) and s["forward_flops"] == sum(
        r["flops"] for r in s["layers"])
    assert s["train_flops_per_epoch"] == s["train_flops_per_example"] * s["train_examples"] > 0
    assert s["step_s"] > 0 and s["epoch_s"] == pytest.approx(s["step_s"] * s["steps_per_epoch"])
    assert not list(tmp_path.iterdir())  # nothing written
    assert main(["summary", "--data", "digits", "--model", "convnet", "--width", "4", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "Conv2d" in out and "MFLOPs forward per example" in out and "ms per step" in out
    assert main(["summary", "--model", "resnet", "--depth", "21", "--data", "digits"]) == 2
    assert "6n+2" in capsys.readouterr().err


def test_run_summary_records_params_and_flops(blobs_npz, tmp_path):
    run = trainwell.train(data=blobs_npz, hidden=[8], epochs=1, quiet=True, out=str(tmp_path), precision="fp32")
    assert run.summary["params"] == 6 * 8 + 8 + 8 * 3 + 3
    assert run.summary["flops_per_example"] == 2 * (6 * 8 + 8 * 3)
