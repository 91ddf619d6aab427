"""Data-parallel training with 2 CPU processes (gloo, loopback) against one process."""
import os
import subprocess
import sys
import time

import pytest
import torch

from trainwell import rundir
from trainwell.cli import main

WORKER = os.path.join(os.path.dirname(__file__), "worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def torchrun(*args, restarts=0, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "--rdzv-id", f"t{time.time_ns()}",
           "--local-addr", "127.0.0.1", "--max-restarts", str(restarts), WORKER, *args]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_first_step_equals_one_process_with_the_same_global_batch(tmp_path):
    from safetensors.torch import load_file

    done = torchrun("step", str(tmp_path))
    assert done.returncode == 0, "\n".join(line for line in done.stderr.splitlines() if "rank" in line)[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    single = subprocess.run([sys.executable, WORKER, "step", str(tmp_path / "one")], env=env, capture_output=True,
                            text=True, timeout=120)
    assert single.returncode == 0, single.stderr[-2000:]
    two, one = load_file(tmp_path / "step-2.safetensors"), load_file(tmp_path / "one" / "step-1.safetensors")
    assert two.keys() == one.keys()
    assert two.pop("local_batch").tolist() == [32, 32] and one.pop("local_batch").tolist() == [64]
    for k in one:  # the same start, and the same step: 2 x 32 examples averaged = 64 in one process
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6)
    moved = [k for k in one if k.startswith("after/") and not torch.equal(one[k], one[k.replace("after/", "init/")])]
    assert moved  # the step did change the weights


@pytest.mark.slow
def test_two_epochs_match_one_process_and_rank_0_alone_writes(tmp_path, capsys):
    args = ["--data", "digits", "--model", "mlp", "--epochs", "2", "--precision", "fp32", "--augment", "none",
            "--out", str(tmp_path), "--quiet"]
    assert main(["train", *args, "--name", "one"]) == 0
    assert main(["train", *args, "--name", "two", "--nproc", "2"]) == 0
    one, two = rundir.read_run(str(tmp_path / "one")), rundir.read_run(str(tmp_path / "two"))
    for a, b in zip(one.history, two.history):
        assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=0.02)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.02)
    assert abs(one.test_accuracy - two.test_accuracy) <= 0.01
    assert two.env["world_size"] == 2 and two.env["backend"] == "gloo"
    assert sorted(os.listdir(tmp_path)) == ["one", "two"]  # one run directory, not one per rank


def _only_run(folder):
    (run,) = os.listdir(folder)
    return rundir.read_run(str(folder / run))


def _strip(history):
    from trainwell.trainer import TIMING_KEYS

    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


@pytest.mark.slow
def test_a_killed_rank_is_restarted_and_the_run_resumes_bit_exactly(tmp_path):
    done = torchrun("kill", str(tmp_path / "killed"), "1", "25", restarts=1)
    assert done.returncode == 0, done.stderr[-3000:]
    whole = torchrun("whole", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    r, w = _only_run(tmp_path / "killed"), _only_run(tmp_path / "whole")
    assert r.finished and [h["epoch"] for h in r.history] == [1, 2, 3]
    assert "resumed" in r.env  # the restarted group carried on the same run from its checkpoint
    assert _strip(r.history) == _strip(w.history)  # every metric, to the bit
    assert r.summary["test"] == w.summary["test"]


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_is_recovered_by_all(tmp_path):
    done = torchrun("poison", str(tmp_path), "1", "30", timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    r = _only_run(tmp_path)
    events = [e for h in r.history for e in h.get("events", [])]
    assert len(events) == 1 and events[0]["event"] == "recovery" and r.finished


def test_a_killed_rank_without_restarts_exits_non_zero_quickly(tmp_path):
    t0 = time.time()
    done = torchrun("kill", str(tmp_path), "1", "5", restarts=0, timeout=120)
    assert done.returncode != 0
    assert time.time() - t0 < 60


def test_a_global_batch_smaller_than_the_processes_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "trainwell", "train", "--nproc", "2", "--data", "digits", "--model",
                           "mlp", "--batch-size", "1", "--epochs", "1", "--out", str(tmp_path), "--quiet"],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "one per process" in done.stderr
    assert not any(os.scandir(tmp_path))  # no run directory left behind


def test_nproc_flag_checks_its_values(capsys, tmp_path):
    assert main(["train", "--nproc", "0", "--data", "digits"]) == 2
    assert "--nproc 0" in capsys.readouterr().err
    # checked before torchrun starts: one line, not a traceback from every process
    assert main(["train", "--nproc", "2", "--data", "digits", "--epochs", "-1", "--out", str(tmp_path)]) == 2
    assert main(["train", "--nproc", "2", "--data", str(tmp_path / "no.csv"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "epochs" in err[0] and "not found" in err[1]
    assert not any(os.scandir(tmp_path))
