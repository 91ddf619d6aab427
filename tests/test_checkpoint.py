"""Checkpoints: atomic under a kill at any phase, corruption detected, resume bit-identical."""
import json
import os
import random

import pytest
import torch

import trainwell
from trainwell import checkpoint as ckpt
from trainwell.callbacks import Callback
from trainwell.errors import Interrupted
from trainwell.trainer import TIMING_KEYS


def _tensors(seed):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(50, 20, generator=g), "b": torch.zeros(20), "n": torch.tensor(3)}


def test_round_trip_and_retention(tmp_path):
    for step in (10, 20, 30):
        ckpt.save_checkpoint(str(tmp_path), step, _tensors(step), {"step": step}, keep=2, protect={10})
    names = sorted(os.listdir(tmp_path))
    assert names == [f"ckpt-{s:09d}.{e}" for s in (10, 20, 30) for e in ("json", "safetensors")]  # 10 protected
    step, tensors, meta = ckpt.latest_checkpoint(str(tmp_path))
    assert step == 30 and meta == {"step": 30} and torch.equal(tensors["w"], _tensors(30)["w"])


def test_refuses_to_save_non_finite(tmp_path):
    bad = _tensors(1)
    bad["w"][3, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        ckpt.save_checkpoint(str(tmp_path), 1, bad, {})
    assert not os.listdir(tmp_path)


def test_100_corrupted_checkpoints_are_all_detected(tmp_path):
    ckpt.save_checkpoint(str(tmp_path), 5, _tensors(5), {"epoch": 1, "history": [{"loss": 0.5}]})
    stem = os.path.join(tmp_path, "ckpt-000000005")
    originals = {ext: open(stem + ext, "rb").read() for ext in (".safetensors", ".json")}
    rng = random.Random(0)
    detected = 0
    for trial in range(100):
        ext = ".safetensors" if trial % 3 else ".json"
        data = bytearray(originals[ext])
        if trial % 4 == 0:
            data = data[:rng.randrange(len(data))]                   # truncated
        else:
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)                        # one flipped bit
        with open(stem + ext, "wb") as f:
            f.write(bytes(data))
        with pytest.raises(ValueError):
            ckpt.load_checkpoint(str(tmp_path), 5)
        detected += 1
        with open(stem + ext, "wb") as f:
            f.write(originals[ext])
    assert detected == 100
    ckpt.load_checkpoint(str(tmp_path), 5)  # the restored files load again


class _Crash(Exception):
    pass


@pytest.mark.parametrize("fail_at", range(1, 16))
def test_a_crash_at_any_phase_of_a_save_leaves_a_loadable_checkpoint(tmp_path, monkeypatch, fail_at):
    """Fail the N-th file-system call of a save (write, fsync, rename, unlink): the old or new one loads."""
    folder = str(tmp_path)
    ckpt.save_checkpoint(folder, 1, _tensors(1), {"v": 1})
    ckpt.save_checkpoint(folder, 2, _tensors(2), {"v": 2})
    calls = {"n": 0}

    def tripwire(real):
        def wrapped(*a, **k):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise _Crash()
            return real(*a, **k)
        return wrapped

    for name in ("replace", "fsync", "unlink"):
        monkeypatch.setattr(os, name, tripwire(getattr(os, name)))
    try:
        ckpt.save_checkpoint(folder, 3, _tensors(3), {"v": 3})
    except _Crash:
        pass
    monkeypatch.undo()
    step, tensors, meta = ckpt.latest_checkpoint(folder)
    assert step in (2, 3) and meta == {"v": step} and torch.equal(tensors["w"], _tensors(step)["w"])
    ckpt.save_checkpoint(folder, 4, _tensors(4), {"v": 4})  # the next good save tidies up what the crash left
    names = os.listdir(folder)
    assert not [n for n in names if n.startswith(".tmp-")]
    assert all(n.replace(".safetensors", ".json") in names for n in names if n.endswith(".safetensors"))


class InterruptAt(Callback):
    """Behaves like SIGINT arriving during step `at`: the handler's flag, nothing more."""

    def __init__(self, at):
        self.at = at

    def on_batch_end(self, trainer):
        if trainer.state.step == self.at:
            trainer.interrupt()


def _opts(path, tmp_path, **kw):
    o = dict(data=path, model="mlp", hidden=[32], dropout=0.2, epochs=3, batch_size=16, precision="fp32",
             device="cpu", quiet=True, out=str(tmp_path / "runs"), checkpoint_every=4, seed=3)
    o.update(kw)
    return o


def _strip(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


@pytest.mark.parametrize("at", [3, 9, 12, 20])
def test_resume_after_interrupt_is_bit_identical(blobs_npz, tmp_path, at):
    ref = trainwell.train(**_opts(blobs_npz, tmp_path, name="ref"))
    with pytest.raises(Interrupted):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="cut", callbacks=[InterruptAt(at)]))
    assert not os.path.exists(tmp_path / "runs" / "cut" / "summary.json")
    resumed = trainwell.train(**_opts(blobs_npz, tmp_path, resume=str(tmp_path / "runs" / "cut")))
    assert _strip(resumed.history) == _strip(ref.history)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    a = open(tmp_path / "runs" / "ref" / "model.safetensors", "rb").read()
    b = open(tmp_path / "runs" / "cut" / "model.safetensors", "rb").read()
    assert a == b


@pytest.mark.parametrize("at", [5, 14])
def test_resume_with_every_augmentation_on_is_bit_identical(images_npz, tmp_path, at):
    """Each op draws per image from the checkpointed generator: a resumed run augments the same way."""
    spec = "flip=hv,translate=1,rotate=15,scale=0.1,shear=5,elastic=8:2,erase=0.5,noise=0.05"
    o = dict(data=images_npz, model="convnet", width=4, epochs=2, batch_size=32, precision="fp32", device="cpu",
             quiet=True, out=str(tmp_path / "runs"), checkpoint_every=3, seed=5, augment=spec)
    ref = trainwell.train(**o, name="ref")
    with pytest.raises(Interrupted):
        trainwell.train(**o, name="cut", callbacks=[InterruptAt(at)])
    resumed = trainwell.train(**o, resume=str(tmp_path / "runs" / "cut"))
    assert _strip(resumed.history) == _strip(ref.history)
    assert ref.config.tta == "flip"  # flip=hv includes left-right mirror images
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_resume_refuses_changed_settings(blobs_npz, tmp_path):
    with pytest.raises(Interrupted):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="cut", callbacks=[InterruptAt(5)]))
    with pytest.raises(trainwell.UserError, match=r"batch_size: 16 -> 8.*seed: 3 -> 4"):
        trainwell.train(**_opts(blobs_npz, tmp_path, resume=str(tmp_path / "runs" / "cut"), batch_size=8, seed=4))
    run = trainwell.train(**_opts(blobs_npz, tmp_path, resume=str(tmp_path / "runs" / "cut"), epochs=4))
    assert len(run.history) == 4  # epochs is safe to change


def test_named_interrupted_run_resumes_by_itself(blobs_npz, tmp_path):
    with pytest.raises(Interrupted):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="x", callbacks=[InterruptAt(7)]))
    run = trainwell.train(**_opts(blobs_npz, tmp_path, name="x"))
    assert len(run.history) == 3
    with pytest.raises(trainwell.UserError, match="already holds a finished run"):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="x"))


def test_no_checkpoint_holds_a_non_finite_tensor_after_poisoning(blobs_npz, tmp_path):
    class PoisonWeights(Callback):
        def on_batch_end(self, trainer):
            if trainer.state.step == 8:  # a checkpoint step: the save itself must refuse
                with torch.no_grad():
                    next(trainer.model.parameters())[0, 0] = float("inf")

    with pytest.raises(trainwell.TrainingFailed):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="p", callbacks=[PoisonWeights()]))
    folder = tmp_path / "runs" / "p" / "checkpoints"
    step, tensors, _ = ckpt.latest_checkpoint(str(folder))
    assert step == 4 and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    from safetensors.torch import load_file

    for name in os.listdir(folder):
        if name.endswith(".safetensors"):
            assert all(torch.isfinite(t).all() for t in load_file(str(folder / name)).values() if t.is_floating_point())


def test_resume_auto_finds_the_interrupted_run_and_keeps_its_checkpoint(blobs_npz, tmp_path):
    with pytest.raises(Interrupted):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="auto", callbacks=[InterruptAt(6)]))
    folder = tmp_path / "runs" / "auto" / "checkpoints"
    resumed_step = ckpt.latest_checkpoint(str(folder))[0]
    run = trainwell.train(**_opts(blobs_npz, tmp_path, resume="auto"))
    assert run.dir == str(tmp_path / "runs" / "auto") and len(run.history) == 3
    # retention keeps 2 checkpoints, but never the one the run resumed from
    assert (folder / f"ckpt-{resumed_step:09d}.json").exists()
    with pytest.raises(trainwell.UserError, match="no interrupted run"):
        trainwell.train(**_opts(blobs_npz, tmp_path, resume="auto"))


def test_resuming_with_another_monitor_is_refused(blobs_npz, tmp_path):
    """Defect 1: the old metric's best value used to be loaded into the new monitor."""
    with pytest.raises(Interrupted):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="cut", callbacks=[InterruptAt(13)]))
    with pytest.raises(trainwell.UserError, match=r"monitor: 'valid_error' -> 'valid_loss'"):
        trainwell.train(**_opts(blobs_npz, tmp_path, resume=str(tmp_path / "runs" / "cut"), monitor="valid_loss"))
    run = trainwell.train(**_opts(blobs_npz, tmp_path, resume=str(tmp_path / "runs" / "cut"), monitor="auto"))
    assert len(run.history) == 3


def test_a_monitor_never_takes_another_metrics_best():
    from trainwell.callbacks import Monitor

    saved = Monitor("valid_error")
    saved.improved({"epoch": 1, "valid_error": 0.1})
    with pytest.raises(trainwell.UserError, match="tracked 'valid_error'"):
        Monitor("valid_loss").load_state_dict(saved.state_dict())


class Counter(Callback):
    def __init__(self, start):
        self.count = start

    def on_batch_end(self, trainer):
        self.count += 1

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_two_callbacks_of_one_class_keep_their_own_state(blobs_npz, tmp_path):
    """Defect 5: callback state was keyed by class name, so the second overwrote the first."""
    with pytest.raises(Interrupted):
        trainwell.train(**_opts(blobs_npz, tmp_path, name="c", callbacks=[Counter(0), Counter(1000), InterruptAt(10)]))
    a, b = Counter(0), Counter(0)
    trainwell.train(**_opts(blobs_npz, tmp_path, resume=str(tmp_path / "runs" / "c"), callbacks=[a, b]))
    steps = json.load(open(tmp_path / "runs" / "c" / "summary.json"))
    total = steps["epochs_run"] * -(-steps["sizes"]["train"] // 16)
    assert (a.count, b.count) == (total, 1000 + total)


def test_foreign_files_in_the_checkpoint_folder_are_left_alone(tmp_path):
    """Defect 5: a user's own *.safetensors in checkpoints/ used to raise ValueError."""
    for name in ("mine.safetensors", "ckpt-latest.safetensors"):
        (tmp_path / name).write_bytes(b"not ours")
    for step in (1, 2, 3):
        ckpt.save_checkpoint(str(tmp_path), step, _tensors(step), {"v": step})
    assert (tmp_path / "mine.safetensors").exists() and (tmp_path / "ckpt-latest.safetensors").exists()
    assert ckpt.latest_checkpoint(str(tmp_path))[0] == 3


def test_nested_state_round_trip_keeps_list_order_and_key_types(tmp_path):
    """CUDA RNG states are a list by device: device 10 must come back after device 2, not before."""
    devices = [torch.full((3,), float(i)) for i in range(12)]
    state = {"rng": {"cuda": devices}, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(2)}, 10: {}},
                                                         "param_groups": [{"params": [0, 10], "lr": 0.1}]},
             "best": None, "history": [{"epoch": 1, "valid_error": 0.25}]}
    ckpt.save_state(str(tmp_path), 7, state)
    step, back = ckpt.load_latest_state(str(tmp_path))
    assert step == 7 and [int(t[0]) for t in back["rng"]["cuda"]] == list(range(12))
    assert set(back["optimizer"]["state"]) == {0, 10} and back["best"] is None
    assert back["history"] == state["history"]
    assert torch.equal(back["optimizer"]["state"][0]["momentum_buffer"], torch.ones(2))


class _KilledEarly(Callback):
    """A kill before the first checkpoint: the process dies mid-epoch (here: an exception past the loop)."""

    def on_batch_end(self, trainer):
        if trainer.state.step == 2:
            raise RuntimeError("killed")


def test_resume_auto_starts_over_a_run_killed_before_its_first_checkpoint(blobs_npz, tmp_path, capsys):
    from trainwell.cli import main

    out = str(tmp_path / "runs")
    o = dict(data=blobs_npz, model="mlp", hidden=[8], epochs=2, batch_size=16, precision="fp32", device="cpu",
             out=out, name="early", quiet=True)
    with pytest.raises(RuntimeError, match="killed"):
        trainwell.train(callbacks=[_KilledEarly()], **o)
    assert not ckpt.has_checkpoint(str(tmp_path / "runs" / "early" / "checkpoints"))
    code = main(["train", "--data", blobs_npz, "--model", "mlp", "--hidden", "8", "--epochs", "2", "--batch-size",
                 "16", "--precision", "fp32", "--out", out, "--resume", "auto"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "stopped before its first checkpoint; starting it over in the same folder" in printed.out
    assert os.listdir(out) == ["early"]  # the same folder, nothing left behind
    run = trainwell.read_run(os.path.join(out, "early"))
    assert run.finished and len(run.history) == 2


def test_a_checkpoint_that_cannot_be_saved_is_one_line_exit_3_and_the_last_good_one_is_kept(blobs_npz, tmp_path,
                                                                                           monkeypatch, capsys):
    """A full disk: one save path, one outcome, alone as under torchrun (trainer._write_checkpoint)."""
    from trainwell.cli import main

    real, calls = ckpt.save_state, []

    def full_disk(folder, step, state, protect=None):
        calls.append(step)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real(folder, step, state, protect=protect)

    monkeypatch.setattr(ckpt, "save_state", full_disk)
    code = main(["train", "--data", blobs_npz, "--model", "mlp", "--hidden", "8", "--epochs", "3", "--precision",
                 "fp32", "--checkpoint-every", "2", "--out", str(tmp_path), "--name", "full", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1, err
    assert "checkpoint not saved: No space left on device" in err[0] and "free disk space" in err[0]
    step, _ = ckpt.load_latest_state(str(tmp_path / "full" / "checkpoints"))
    assert step == calls[0]  # the first checkpoint, intact
