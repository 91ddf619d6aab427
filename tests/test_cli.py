"""The command line as a user meets it: exit codes, one-line errors, evaluate/predict round trips."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from trainwell.cli import main


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    code = main(["train", "--data", "digits", "--model", "mlp", "--hidden", "64", "--epochs", "8", "--quiet",
                 "--out", str(out), "--name", "d"])
    assert code == 0
    return str(out / "d")


def test_run_directory_has_every_file(digits_run):
    for f in ("config.yaml", "env.json", "history.jsonl", "model.safetensors", "model.json", "summary.json"):
        assert os.path.isfile(os.path.join(digits_run, f)), f
    env = json.load(open(os.path.join(digits_run, "env.json")))
    assert {"torch", "precision", "torch_threads", "git_revision", "seed"} <= set(env)
    assert len(open(os.path.join(digits_run, "history.jsonl")).readlines()) == 8


def test_evaluate_reproduces_the_test_accuracy(digits_run, capsys):
    summary = json.load(open(os.path.join(digits_run, "summary.json")))
    assert main(["evaluate", digits_run]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {summary['test_accuracy']:.2%}" in out and "359 examples" in out


def test_predict_an_image_and_an_npz(digits_run, tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    picks = [i for i in range(40) if d.target[i] in (3, 7)][:4]
    correct = 0
    for i in picks:
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.round(d.images[i] * 255 / 16).astype(np.uint8)).resize((8, 8)).save(p)
        assert main(["predict", digits_run, str(p), "--top", "2"]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith("0\t") and line.count("%") == 2
        correct += line.split("\t")[1].startswith(str(d.target[i]))
    assert correct >= 3
    np.savez(tmp_path / "x.npz", x=np.round(d.images[:10] * 255 / 16).astype(np.uint8))
    assert main(["predict", digits_run, str(tmp_path / "x.npz")]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 10 and sum(r.split("\t")[1].startswith(str(t)) for r, t in zip(rows, d.target)) >= 8


def test_csv_train_evaluate_predict_with_class_names(tmp_path, capsys):
    rng = np.random.default_rng(0)
    names = np.array(["setosa", "versicolor", "virginica"])
    y = np.repeat(np.arange(3), 80)
    x = rng.normal(0, 0.5, (240, 4)) + y[:, None] * 2
    lines = ["sepal,petal,width,length,species"] + [",".join(f"{v:.3f}" for v in row) + f",{names[c]}"
                                                   for row, c in zip(x, y)]
    (tmp_path / "flowers.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "runs"
    assert main(["train", "--data", str(tmp_path / "flowers.csv"), "--label", "species", "--model", "mlp",
                 "--optimizer", "adam", "--batch-size", "16", "--epochs", "15", "--quiet", "--out", str(out), "--name", "f"]) == 0
    run = str(out / "f")
    assert json.load(open(os.path.join(run, "summary.json")))["test_accuracy"] > 0.9
    # new data whose columns come in another order, with the label present: evaluate maps the names
    new = ["species,length,width,petal,sepal"] + [f"{names[c]},{r[3]},{r[2]},{r[1]},{r[0]}" for r, c in zip(x[:30], y[:30])]
    (tmp_path / "new.csv").write_text("\n".join(new) + "\n")
    assert main(["evaluate", run, "--data", str(tmp_path / "new.csv")]) == 0
    assert "30 examples" in capsys.readouterr().out
    assert main(["predict", run, str(tmp_path / "new.csv")]) == 0
    preds = [r.split("\t")[1].split(" ")[0] for r in capsys.readouterr().out.strip().splitlines()]
    assert sum(p == names[c] for p, c in zip(preds, y[:30])) >= 27


@pytest.mark.parametrize("argv,needle", [
    (["train", "--optimizer", "adma"], "did you mean 'adam'"),
    (["train", "--lr", "-0.1"], "lr: -0.1 must be > 0"),
    (["train", "--model", "resnet5"], "model: unknown 'resnet5'"),
    (["train", "--epochs", "x"], "epochs: 'x' is not valid (expected an integer or auto)"),
    (["train", "--bogus"], "unrecognized arguments"),
    (["train", "batchsize=3"], "did you mean 'batch_size'"),
    (["train", "--config", "/nonexistent.yaml"], "config file not found"),
    (["train", "--resume", "/nonexistent-run"], "no such run directory"),
    (["evaluate", "/nonexistent-run"], "no such run directory"),
    (["predict", "/nonexistent-run", "x.png"], "no such run directory"),
])
def test_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys):
    code = main(argv + (["--out", str(tmp_path / "runs")] if argv[0] == "train" and "--bogus" not in argv else []))
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_damaged_model_file_is_refused(digits_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    assert main(["evaluate", str(copy)]) == 2
    assert "hash does not match" in capsys.readouterr().err


def test_predict_wrong_input_kind(digits_run, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("hi")
    assert main(["predict", digits_run, str(tmp_path / "a.txt")]) == 2
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 5, 5)))
    assert main(["predict", digits_run, str(tmp_path / "bad.npz")]) == 2
    assert "expects [1, 8, 8]" in capsys.readouterr().err
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04garbage")
    (tmp_path / "latin.csv").write_bytes(b"a,b\n\xff\xfe,1\n")
    for bad in ("corrupt.npz", "latin.csv"):
        assert main(["predict", digits_run, str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and bad in err


def test_divergence_exits_3_and_keeps_no_model(tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["train", "--data", "digits", "--model", "mlp", "--optimizer", "sgd", "--lr", "1e30",
                 "--schedule", "constant", "--epochs", "2", "--quiet", "--out", str(out), "--name", "boom"])
    assert code == 3 and "non-finite" in capsys.readouterr().err
    assert not (out / "boom" / "model.safetensors").exists()


def test_help_is_fast_and_lists_commands():
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "trainwell", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "evaluate" in r.stdout and "predict" in r.stdout
    assert time.perf_counter() - t < 2.0  # ~0.05 s measured; generous for a loaded CI machine
    assert "torch" not in subprocess.run([sys.executable, "-c", "import sys, trainwell.cli; print(list(sys.modules))"],
                                         capture_output=True, text=True).stdout


def test_image_folder_end_to_end(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in (("red", (220, 40, 40)), ("blue", (40, 40, 220))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(30):
            px = np.clip(np.array(colour) + rng.normal(0, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(tmp_path / "imgs" / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    out = tmp_path / "runs"
    assert main(["train", "--data", str(tmp_path / "imgs"), "--width", "8", "--epochs", "4", "--batch-size", "8",
                 "--quiet", "--out", str(out), "--name", "img"]) == 0
    assert json.load(open(out / "img" / "summary.json"))["test_accuracy"] == 1.0
    assert main(["predict", str(out / "img"), str(tmp_path / "imgs" / "blue" / "3.png")]) == 0
    assert capsys.readouterr().out.split("\t")[1].startswith("blue")


def test_plain_progress_lines_when_not_a_terminal(tmp_path, capsys):
    assert main(["train", "--data", "digits", "--model", "mlp", "--epochs", "2", "--out", str(tmp_path),
                 "--name", "p"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("training ") and "batches/epoch x 2 epochs" in err[0]
    assert err[1].startswith("epoch 1/2  train loss") and "samples/s" in err[1] and "valid loss" in err[1]
    assert err[-1].startswith("stopped: completed 2 epochs")


def test_flat_csv_and_npz_train_with_no_model_flag(tmp_path, blobs_npz, images_npz):
    """Defaults that fit the data: no --model, no --epochs; auto picks and says why."""
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 50)
    x = rng.normal(0, 1, (150, 5)) + y[:, None] * 1.5
    rows = ["a,b,c,d,e,kind"] + [",".join(f"{v:.3f}" for v in r) + f",k{c}" for r, c in zip(x, y)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "runs"
    for name, data in (("csv", ["--data", str(tmp_path / "t.csv"), "--label", "kind"]),
                       ("npz", ["--data", blobs_npz]), ("img", ["--data", images_npz])):
        assert main(["train", *data, "--quiet", "--out", str(out), "--name", name]) == 0
        run = out / name
        model = json.load(open(run / "model.json"))["model"]["name"]
        env = json.load(open(run / "env.json"))
        assert model == ("convnet" if name == "img" else "mlp") and model in env["auto"]["model"]
        assert json.load(open(run / "summary.json"))["test_accuracy"] > 0.8
        assert "model: auto" not in (run / "config.yaml").read_text()  # resolved values are written out


@pytest.mark.parametrize("model", ["alexnet", "inception", "resnet"])
def test_each_architecture_trains_from_the_command_line(model, images_npz, tmp_path):
    out = tmp_path / "runs"
    assert main(["train", "--data", images_npz, "--model", model, "--width", "8", "--epochs", "2", "--quiet",
                 "--out", str(out), "--name", model]) == 0
    spec = json.load(open(out / model / "model.json"))["model"]
    assert spec["name"] == model and spec["kwargs"]["width"] == 8
    assert json.load(open(out / model / "env.json"))["auto"]["init"].startswith("kaiming")
    assert main(["evaluate", str(out / model)]) == 0  # rebuilt from model.json alone


@pytest.fixture(scope="module")
def rgb_folder(tmp_path_factory):
    """A 3-channel image folder: 3 classes of 32x32 RGB PNGs told apart by their dominant colour."""
    from PIL import Image

    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir()
        for i in range(16):
            img = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
            img[..., c] += 120
            Image.fromarray(img).save(root / name / f"{i}.png")
    return str(root)


@pytest.mark.parametrize("model", ["mlp", "convnet", "alexnet", "inception", "resnet"])
def test_each_architecture_trains_on_a_3_channel_image_folder(model, rgb_folder, tmp_path):
    out = tmp_path / "runs"
    width = [] if model == "mlp" else ["--width", "8"]
    assert main(["train", "--data", rgb_folder, "--model", model, *width, "--epochs", "3", "--quiet",
                 "--out", str(out), "--name", model]) == 0
    summary = json.load(open(out / model / "summary.json"))
    assert json.load(open(out / model / "model.json"))["preprocess"]["shape"] == [3, 32, 32]
    assert summary["sizes"]["test"] == 9 and summary["params"] > 0
    assert main(["evaluate", str(out / model)]) == 0


def test_ablate_retrains_without_the_layers_and_compares(images_npz, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--data", images_npz, "--model", "alexnet", "--width", "4", "--epochs", "1", "--quiet",
                 "--out", str(out), "--name", "alex"]) == 0
    assert main(["ablate", str(out / "alex"), "--remove", "conv3,conv4", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "original" in text and "ablated" in text and "alex-minus-conv3-conv4" in text
    spec = json.load(open(out / "alex-minus-conv3-conv4" / "model.json"))["model"]
    assert spec["remove"] == ["conv3", "conv4"]
    a, b = (json.load(open(out / n / "summary.json"))["params"] for n in ("alex", "alex-minus-conv3-conv4"))
    assert b < a
    assert main(["evaluate", str(out / "alex-minus-conv3-conv4")]) == 0  # rebuilt from its spec
    assert main(["ablate", str(out / "alex"), "--remove", "conv9"]) == 2
    assert "no such layer" in capsys.readouterr().err


def test_key_value_overrides_may_sit_between_flags(tmp_path):
    """`trainwell train width=16 --lr 0.1 depth=1` used to fail: argparse takes one run of positionals."""
    out = tmp_path / "runs"
    assert main(["train", "--data", "digits", "--model", "convnet", "width=8", "--epochs", "1", "depth=1",
                 "--quiet", "--out", str(out), "--name", "r", "limit_train=200"]) == 0
    import yaml

    cfg = yaml.safe_load(open(out / "r" / "config.yaml"))
    assert (cfg["width"], cfg["depth"], cfg["limit_train"], cfg["epochs"]) == (8, 1, 200, 1)
    assert main(["train", "--data", "digits", "width=8", "--nope", "1"]) == 2
