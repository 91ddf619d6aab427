"""Extraction: a pure function from a run directory to what the report shows, checked against the run's
own files."""
import json
import os
import shutil

import numpy as np
import pytest

from trainwell import rundir
from trainwell.report.data import differences, run_data
from tests.report.conftest import NASTY


def test_curves_and_summary_come_from_the_run(mlp_run):
    d = run_data(mlp_run)
    run = rundir.read_run(mlp_run)
    assert d["curves"]["epoch"] == [1, 2, 3, 4]
    assert d["curves"]["series"]["valid_error"] == run.history.column("valid_error")
    assert d["curves"]["best_epoch"] == run.summary["best_epoch"]
    assert d["summary"]["test"]["error"] == run.summary["test"]["error"]
    assert d["diagnosis"]["verdict"]


def test_confusion_matrix_agrees_with_the_tested_error(mlp_run):
    t = run_data(mlp_run)["test"]
    summary = rundir.read_run(mlp_run).summary
    m = np.array(t["confusion"])
    assert m.sum() == t["count"] == summary["sizes"]["test"]
    assert 1 - np.trace(m) / m.sum() == pytest.approx(summary["test"]["error"], abs=1e-9)
    per_class = [1 - m[i, i] / m[i].sum() for i in range(len(m))]
    assert t["per_class_error"] == pytest.approx(per_class)
    assert len(t["worst"]) == min(24, int(m.sum() - np.trace(m)))
    confidences = [w["confidence"] for w in t["worst"]]
    assert confidences == sorted(confidences, reverse=True)  # the most confident mistakes first
    assert all(w["label"] != w["predicted"] for w in t["worst"])


def test_monitor_series_and_unit_snapshots(mlp_run):
    d = run_data(mlp_run)
    records = rundir.read_monitors(mlp_run)
    m = d["monitors"]
    assert m["step"] == [r["step"] for r in records]
    assert list(m["layers"]) == list(records[0]["layers"])
    assert m["layers"]["1 Linear"]["grad_norm"] == [r["layers"]["1 Linear"]["grad_norm"] for r in records]
    snap = d["units"]["2 ReLU"]["latest"]                      # the first ReLU: 32 units on a 256-example probe
    probe = min(256, rundir.read_run(mlp_run).summary["sizes"]["valid"])
    assert sum(snap["hist"]) == pytest.approx(probe * 32)
    assert len(snap["edges"]) == len(snap["hist"]) + 1
    assert len(snap["unit_off"]) == 32 and all(0 <= v <= 1 for v in snap["unit_off"])
    corr = np.array(snap["corr"])
    assert corr.shape == (32, 32) and np.allclose(corr, corr.T, atol=1e-5)
    live = np.abs(np.diag(corr)) > 0
    assert np.allclose(np.diag(corr)[live], 1, atol=1e-4)
    assert "init" in d["units"]["2 ReLU"]


def test_mlp_input_weights_are_drawn_as_images(mlp_run):
    f = run_data(mlp_run)["filters"]
    assert f["count"] == 32 and len(f["images"]["latest"]) == 32
    assert f["images"]["latest"][0].shape == (8, 8) and f["images"]["latest"][0].dtype == np.uint8


def test_conv_run_has_filters_augmentation_and_wrong_images_with_its_class_names(conv_run):
    d = run_data(conv_run)
    assert d["filters"]["what"] == "conv filters" and d["filters"]["images"]["latest"][0].shape == (3, 3)
    assert d["augment"]["spec"] == "flip" and d["augment"]["images"].shape[1:] == (6, 12, 12)
    assert set(d["augment"]["labels"]) <= set(NASTY)
    assert d["test"]["classes"] == d["classes"] and set(d["classes"]) == set(NASTY)


def test_tabular_run_has_no_pictures(tabular_run):
    d = run_data(tabular_run)
    assert d["filters"] is None and d["augment"] is None
    assert d["test"]["worst"] == [] and d["test"]["classes"] == ["cat", "dog", "emu"]


def test_missing_or_damaged_evidence_leaves_the_section_out(mlp_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(mlp_run, copy)
    os.remove(copy / rundir.TEST_OUTPUTS)
    (copy / rundir.UNITS).write_bytes(b"not a safetensors file")
    (copy / rundir.MONITORS).unlink()
    d = run_data(str(copy))
    assert d["test"] is None and d["units"] is None and d["monitors"] is None
    assert "units.safetensors is unreadable" in capsys.readouterr().err
    assert d["curves"] is not None


def test_unfinished_run_reports_what_it_has(mlp_run, tmp_path):
    copy = tmp_path / "running"
    shutil.copytree(mlp_run, copy)
    os.remove(copy / rundir.SUMMARY)
    os.remove(copy / rundir.TEST_OUTPUTS)
    d = run_data(str(copy))
    assert d["finished"] is False and d["summary"] is None and d["test"] is None
    assert d["selected"]["best_epoch"] == json.loads((copy / rundir.SELECTED).read_text())["best_epoch"]


def test_differences():
    assert differences([{"lr": 0.1, "epochs": 5, "x": None}, {"lr": 0.2, "epochs": 5}]) == ["lr"]
    assert differences([{"a": [1, 2]}, {"a": [1, 2]}]) == []
