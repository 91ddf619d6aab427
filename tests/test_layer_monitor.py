"""Layer monitors: what they record, that they change nothing, and that they survive a resume."""
import json

import pytest
import torch

import trainwell
from trainwell import rundir
from trainwell.callbacks import Callback
from trainwell.callbacks.layers import LayerMonitor, default_every
from trainwell.errors import Interrupted
from trainwell.trainer import TIMING_KEYS


def _train(tmp_path, name, **kw):
    opts = dict(data="digits", model="mlp", hidden=[32, 16], epochs=3, precision="fp32", device="cpu", quiet=True,
                out=str(tmp_path), checkpoint_every=10)
    opts.update(kw)
    return trainwell.train(name=name, **opts)


def _strip(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


def test_records_per_layer_and_per_unit_and_the_filters(tmp_path):
    run = _train(tmp_path, "m", monitor_every=5)
    recs = rundir.read_monitors(run.dir)
    steps = run.history[-1]["step"]
    assert [r["step"] for r in recs] == list(range(1, steps + 1, 5))
    layer = recs[-1]["layers"]["1 Linear"]
    assert layer["weight_norm"] > 0 and layer["grad_norm"] > 0 and 0 < layer["update_ratio"] < 1
    units = recs[-1]["units"]["2 ReLU"]  # the first ReLU
    assert 0 <= units["sparsity"] <= 1 and 0 <= units["dead"] <= 1 and units["variance"] > 0
    assert 0 <= units["correlation"] <= 1
    from safetensors.torch import load_file

    filters = load_file(f"{run.dir}/filters.safetensors")
    assert filters["init"].shape == filters["latest"].shape == (32, 64)
    assert not torch.equal(filters["init"], filters["latest"])


def test_monitors_change_nothing_the_run_computes(tmp_path):
    on = _train(tmp_path, "on", monitor_every=3)
    off = _train(tmp_path, "off", monitor_every=0)
    assert _strip(on.history) == _strip(off.history)
    assert not (tmp_path / "off" / "monitors.jsonl").exists()


def test_a_dead_unit_is_counted_dead(tmp_path):
    class KillUnit(Callback):
        def on_batch_end(self, trainer):
            with torch.no_grad():  # unit 0 of the first hidden layer never fires again
                lin = trainer.model[1]
                lin.weight[0].zero_()
                lin.bias[0] = -1.0

    run = _train(tmp_path, "dead", monitor_every=4, callbacks=[KillUnit()], epochs=1)
    assert rundir.read_monitors(run.dir)[-1]["units"]["2 ReLU"]["dead"] >= 1 / 32


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer):
        if trainer.state.step == self.step:
            trainer.interrupt()


def test_resumed_run_has_the_same_monitor_records(tmp_path):
    whole = _train(tmp_path, "whole", monitor_every=4)
    with pytest.raises(Interrupted):
        _train(tmp_path, "cut", monitor_every=4, callbacks=[StopAt(23)])
    resumed = _train(tmp_path, "cut", monitor_every=4)
    a, b = rundir.read_monitors(whole.dir), rundir.read_monitors(resumed.dir)
    assert json.dumps(a) == json.dumps(b)
    units_a, units_b = rundir.read_tensors(whole.dir, rundir.UNITS), rundir.read_tensors(resumed.dir, rundir.UNITS)
    assert units_a.keys() == units_b.keys() and any(k.startswith("init/") for k in units_a)
    assert all(torch.equal(units_a[k], units_b[k]) for k in units_a)


def test_default_interval():
    assert default_every(40) == 50 and default_every(844) == 211
    assert isinstance(LayerMonitor(), Callback)


def test_renewing_the_latest_snapshot_less_often_leaves_the_final_files_the_same(tmp_path, monkeypatch):
    """The latest snapshot and the files are renewed at most every WRITE_EVERY_S seconds, and at the last epoch:
    what the run leaves is what renewing them every epoch leaves."""
    from safetensors.torch import load_file

    from trainwell.callbacks import layers

    runs = {}
    for name, every_s in (("each", 0.0), ("last", 1e9)):
        monkeypatch.setattr(layers, "WRITE_EVERY_S", every_s)
        runs[name] = _train(tmp_path, name, epochs=4, monitor_every=5)
    a, b = runs["each"].dir, runs["last"].dir
    assert rundir.read_monitors(a) == rundir.read_monitors(b)
    for f in ("filters.safetensors", "units.safetensors"):
        fa, fb = load_file(f"{a}/{f}"), load_file(f"{b}/{f}")
        assert fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa)
    assert any(k.startswith("latest/") for k in load_file(f"{b}/units.safetensors"))
