"""The run directory: the one owner of its file names, its writers and its reader.

    runs/NAME/  config.yaml  env.json  history.jsonl  model.safetensors  model.json  summary.json  checkpoints/
                selected.json  diagnosis.json  monitors.jsonl  filters.safetensors  units.safetensors
                test_outputs.safetensors  augment_samples.safetensors  report.html

`trainwell train` writes it through the functions here; evaluate, predict (and the report, diagnose and
search) read it through `read_run`. No other module spells one of these file names.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainwell.checkpoint import atomic_write, save_tensors_bytes, sha256
from trainwell.config import Config, build_config, load_yaml
from trainwell.data.splits import Preprocess
from trainwell.errors import UserError
from trainwell.history import History
from trainwell.precision import Precision

CONFIG = "config.yaml"
ENV = "env.json"
HISTORY = "history.jsonl"
WEIGHTS = "model.safetensors"
MODEL = "model.json"
SUMMARY = "summary.json"
SELECTED = "selected.json"   # what selection on validation found; summary.json adds the test
DIAGNOSIS = "diagnosis.json"
MONITORS = "monitors.jsonl"
FILTERS = "filters.safetensors"
UNITS = "units.safetensors"                  # activation snapshots of the layer monitors
TEST_OUTPUTS = "test_outputs.safetensors"    # per test example: label, prediction, confidence (+ worst images)
AUGMENT_SAMPLES = "augment_samples.safetensors"
REPORT = "report.html"
CHECKPOINTS = "checkpoints"


@dataclass
class Run:
    """A run, finished or not: what `trainwell.train` returns and what `trainwell.load_run` reads back."""

    dir: str
    config: Config
    history: History
    summary: dict[str, Any] | None = None      # None until the run has finished
    env: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] | None = None          # model.json: architecture, preprocessing, precision
    model: nn.Module | None = None              # the selected model, when loaded
    preprocess: Preprocess | None = None
    precision: Precision | None = None

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def test_accuracy(self) -> float:
        if self.summary is None:
            raise ValueError(f"{self.dir}: the run has not finished; it has no test accuracy yet")
        return 1 - self.summary["test"]["error"]

    @property
    def classes(self) -> list[str]:
        return self.preprocess.classes if self.preprocess is not None else []


def path(run_dir: str, name: str) -> str:
    return os.path.join(run_dir, name)


# --- where a run lives -----------------------------------------------------------------------------------

def default_name(data: str, model: str) -> str:
    """time-data-model, e.g. 20261127-141028-wine.csv-mlp."""
    parts = [time.strftime("%Y%m%d-%H%M%S"), os.path.basename(os.path.normpath(data)), os.path.basename(model)]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))


def locate(out: str, name: str | None, resume: str | None) -> tuple[str, bool]:
    """The run directory to use (`resume`, or `out/name`) and whether it resumes an interrupted run.
    Creates nothing."""
    if resume == "auto":
        found = latest_unfinished(out)
        if found is None:
            raise UserError(f"--resume auto: no interrupted run under {out}/; start one with trainwell train")
        return found, True
    if resume:
        if not os.path.isdir(resume):
            raise UserError(f"--resume {resume}: no such run directory")
        if is_finished(resume):
            raise UserError(f"--resume {resume}: that run already finished; start a new run instead")
        return resume, True
    if name is None:
        raise ValueError("locate: give a name (rundir.default_name) or a run to resume")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name in (".", ".."):
        raise UserError(f"--name {name}: use letters, digits, '.', '_' and '-' only")
    run_dir = os.path.join(out, name)
    if is_finished(run_dir):
        raise UserError(f"--name {name}: {run_dir} already holds a finished run; choose another name")
    if os.path.isdir(path(run_dir, CHECKPOINTS)):
        return run_dir, True  # an interrupted run of that name: carry on where it stopped
    return run_dir, False


def is_finished(run_dir: str) -> bool:
    return os.path.exists(path(run_dir, SUMMARY))


def latest_unfinished(out: str) -> str | None:
    """The newest run under `out` that started (its config is written) and did not finish, checkpoint or not:
    a run killed before its first checkpoint is found too, and started over in its folder."""
    if not os.path.isdir(out):
        return None
    runs = [os.path.join(out, d) for d in os.listdir(out)]
    runs = [d for d in runs if (os.path.isdir(path(d, CHECKPOINTS)) or os.path.isfile(path(d, CONFIG)))
            and not is_finished(d)]
    return max(runs, key=os.path.getmtime) if runs else None


def run_of_launch(out: str, run_id: str) -> str | None:
    """The unfinished run that torchrun launch `run_id` started (env.json records it), after a restart."""
    if not os.path.isdir(out):
        return None
    for d in sorted(os.listdir(out)):
        run_dir = os.path.join(out, d)
        try:
            with open(path(run_dir, ENV), encoding="utf-8") as f:
                env = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(env, dict) and env.get("torchrun_run_id") == run_id and not is_finished(run_dir):
            return run_dir
    return None


def checkpoints(run_dir: str) -> str:
    return path(run_dir, CHECKPOINTS)


# --- writers (every file atomically: a reader never sees half of one) ---------------------------------------

def create(run_dir: str, config: Config, env: dict[str, Any]) -> None:
    import yaml

    os.makedirs(run_dir, exist_ok=True)
    atomic_write(path(run_dir, CONFIG), yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
    _write_json(path(run_dir, ENV), env)


def write_history(run_dir: str, history: History) -> None:
    """Every epoch; not fsynced: the checkpoint holds the history too and rewrites it on resume."""
    atomic_write(path(run_dir, HISTORY), history.to_jsonl().encode(), durable=False)


def write_summary(run_dir: str, summary: dict[str, Any]) -> None:
    _write_json(path(run_dir, SUMMARY), summary)


def write_selected(run_dir: str, selected: dict[str, Any]) -> None:
    _write_json(path(run_dir, SELECTED), selected)


def read_selected(run_dir: str) -> dict[str, Any]:
    return _read_json(run_dir, SELECTED) if os.path.exists(path(run_dir, SELECTED)) else {}


def write_diagnosis(run_dir: str, diagnosis: dict[str, Any]) -> None:
    _write_json(path(run_dir, DIAGNOSIS), diagnosis)


def write_monitors(run_dir: str, records: list[dict[str, Any]], filters: dict[str, torch.Tensor],
                   units: dict[str, torch.Tensor] | None = None) -> None:
    """The layer monitors' records (rewritten whole, atomically), the first layer's weights and the
    activation snapshots."""
    atomic_write(path(run_dir, MONITORS), "".join(json.dumps(r) + "\n" for r in records).encode(), durable=False)
    if filters:
        write_tensors(run_dir, FILTERS, filters, durable=False)
    if units:
        write_tensors(run_dir, UNITS, units, durable=False)


def write_tensors(run_dir: str, name: str, tensors: dict[str, torch.Tensor], durable: bool = True) -> None:
    from safetensors.torch import save

    atomic_write(path(run_dir, name), save({k: v.contiguous() for k, v in tensors.items()}), durable=durable)


def read_tensors(run_dir: str, name: str) -> dict[str, torch.Tensor]:
    """One of the run's safetensors files (never a pickle), {} when absent or unreadable: the files read
    this way are evidence for the report, not something a run needs."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        with open(path(run_dir, name), "rb") as f:
            return load(f.read())
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        if os.path.exists(path(run_dir, name)):
            print(f"trainwell: note: {path(run_dir, name)} is unreadable ({type(e).__name__}); left out", file=sys.stderr)
        return {}


def read_monitors(run_dir: str) -> list[dict[str, Any]]:
    """The layer monitors' records, [] when the run has none."""
    try:
        with open(path(run_dir, MONITORS), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def read_diagnosis(run_dir: str) -> dict[str, Any]:
    """The saved diagnosis, or {} when there is none (or it is unreadable: diagnosis is rewritten anyway)."""
    try:
        with open(path(run_dir, DIAGNOSIS), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_model(run_dir: str, state_dict: dict[str, torch.Tensor], spec: dict[str, Any]) -> None:
    """The selected weights (safetensors) and what rebuilds model and preprocessing (JSON, with their hash)."""
    blob = save_tensors_bytes(state_dict)
    atomic_write(path(run_dir, WEIGHTS), blob)
    _write_json(path(run_dir, MODEL), dict(spec, weights_sha256=sha256(blob)))


def _write_json(file: str, obj: Any) -> None:
    atomic_write(file, (json.dumps(obj, indent=2) + "\n").encode())


# --- the reader ------------------------------------------------------------------------------------------

def read_run(run_dir: str) -> Run:
    """Config, environment, history, summary and model spec of a run directory; weights are not loaded."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: no such run directory")
    if not os.path.isfile(path(run_dir, CONFIG)):
        raise UserError(f"{run_dir}: not a trainwell run directory (no {CONFIG}); pass a folder made by "
                        "trainwell train")
    saved = load_yaml(path(run_dir, CONFIG))
    saved.setdefault("tta", "none")  # runs from before test-time augmentation existed
    saved.setdefault("split_seed", saved.get("seed", 0))  # ... and before splits had a seed of their own
    config = build_config(saved)
    history = History()
    if os.path.isfile(path(run_dir, HISTORY)):
        try:
            history = History.from_jsonl(_read_text(run_dir, HISTORY))
        except ValueError as e:
            raise UserError(f"{path(run_dir, HISTORY)}: not valid JSON lines ({e}); the run directory is "
                            "damaged") from None
    env = _read_json(run_dir, ENV) if os.path.isfile(path(run_dir, ENV)) else {}
    summary = _read_json(run_dir, SUMMARY) if is_finished(run_dir) else None
    spec = _read_json(run_dir, MODEL) if os.path.isfile(path(run_dir, MODEL)) else None
    pre = Preprocess(**spec["preprocess"]) if spec and "preprocess" in spec else None
    return Run(run_dir, config, history, summary, env, spec, preprocess=pre)


def load_weights(run_dir: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The selected model's weights, checked against the hash in model.json, and the spec."""
    from safetensors.torch import load

    for name in (MODEL, WEIGHTS):
        if not os.path.isfile(path(run_dir, name)):
            raise UserError(f"{path(run_dir, name)}: not found; is {run_dir} a finished trainwell run directory?")
    spec = _read_json(run_dir, MODEL)
    with open(path(run_dir, WEIGHTS), "rb") as f:
        blob = f.read()
    if not isinstance(spec, dict) or sha256(blob) != spec.get("weights_sha256"):
        raise UserError(f"{path(run_dir, WEIGHTS)}: content hash does not match {MODEL}; the file is damaged")
    return load(blob), spec


def _read_text(run_dir: str, name: str) -> str:
    try:
        with open(path(run_dir, name), encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path(run_dir, name)}: unreadable ({type(e).__name__}); the run directory is damaged") \
            from None


def _read_json(run_dir: str, name: str) -> Any:
    try:
        return json.loads(_read_text(run_dir, name))
    except ValueError as e:
        raise UserError(f"{path(run_dir, name)}: not valid JSON ({e}); the run directory is damaged") from None
