"""The one orchestration behind `trainwell train` and `trainwell.train()`:
data -> model -> Trainer.fit -> best model saved -> test set evaluated once -> summary.

Everything that can be checked is checked before the run directory is created, so bad input leaves
nothing behind. The trainer never imports this module; this module imports it.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from trainwell import checkpoint as ckpt
from trainwell.callbacks.base import Callback
from trainwell.callbacks.early_stopping import EarlyStopping
from trainwell.callbacks.progress import Progress
from trainwell.config import RESUME_SAFE, Config, build_config, load_yaml
from trainwell.data.sources import Source, check_source, load_source
from trainwell.data.splits import Preprocess, Splits, make_splits
from trainwell.errors import UserError
from trainwell.history import History
from trainwell.metrics import evaluate
from trainwell.models import build_model, initialise, model_spec
from trainwell.precision import Precision, choose
from trainwell.trainer import Trainer


@dataclass
class Run:
    """What a finished run hands back: its folder, config, history, test summary and the selected model."""

    dir: str
    config: Config
    history: History
    summary: dict[str, Any]
    model: nn.Module
    preprocess: Preprocess

    @property
    def test_accuracy(self) -> float:
        return 1 - self.summary["test"]["error"]


def train(config: Config | dict | None = None, *, model: str | nn.Module | None = None, data: Any = None,
          test_data: Any = None, callbacks: Iterable[Any] = (), out: str = "runs", name: str | None = None,
          resume: str | None = None, quiet: bool = False, config_file: str | None = None,
          overrides: list[str] | None = None, **options: Any) -> Run:
    """Train, select on validation, test once, and keep the evidence in `out/name/`.

    >>> run = trainwell.train(data="digits", model="mlp", hidden=[64], epochs=5)   # doctest: +SKIP
    >>> run.test_accuracy, run.dir                                                   # doctest: +SKIP

    `model` may be your own nn.Module and `data`/`test_data` torch Datasets of (x, y) pairs;
    any Config field can be passed as a keyword (lr=0.01, optimizer="adam", ...).
    """
    if isinstance(model, str):
        options["model"], model = model, None
    if isinstance(data, str):
        options["data"] = data
    elif data is not None:
        options["data"] = f"python:{type(data).__name__}"  # recorded in config.yaml; the data came in memory
    values = config.to_dict() if isinstance(config, Config) else dict(config or {})
    values.update(options)
    label = type(model).__name__ if model is not None else str(values.get("model") or "convnet")
    run_dir, resuming = _run_dir(out, name, resume, str(values.get("data") or "fashion-mnist"), label)
    if resuming:
        cfg = _resume_config(run_dir, values, config_file, overrides)
    else:
        cfg = build_config(values, config_file=config_file, overrides=overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    src = _source(cfg, data, test_data)
    splits = make_splits(src, cfg.valid_fraction, cfg.test_fraction, cfg.seed, cfg.limit_train)
    torch.manual_seed(cfg.seed)
    if model is None:
        spec = model_spec(cfg, list(splits.preprocess.shape), splits.num_classes)
        net = initialise(build_model(spec), cfg.init)
    else:
        spec = {"name": "custom", "class": type(model).__name__, "input_shape": splits.preprocess.shape,
                "num_classes": splits.num_classes}
        net = initialise(model, cfg.init) if cfg.init != "default" else model
    _check_forward(net, splits, spec)
    precision = choose(cfg.device, cfg.precision, any(isinstance(m, nn.Conv2d) for m in net.modules()))

    # Input is valid: from here on the run directory exists.
    os.makedirs(run_dir, exist_ok=True)
    _write_yaml(os.path.join(run_dir, "config.yaml"), cfg.to_dict())
    _write_json(os.path.join(run_dir, "env.json"), environment(cfg, precision))
    cbs: list[Any] = [] if quiet else [Progress()]
    if cfg.patience:
        cbs.append(EarlyStopping(cfg.monitor if len(splits.y_valid) else "train_loss", cfg.patience))
    cbs += [_HistoryWriter(run_dir), *callbacks]
    trainer = Trainer(net, splits, cfg, precision, cbs, checkpoint_dir=os.path.join(run_dir, "checkpoints"))
    if resuming:
        found = ckpt.latest_checkpoint(trainer.checkpoint_dir)
        if found is None:
            raise UserError(f"{run_dir}: no valid checkpoint to resume from; start a new run instead")
        trainer.restore(*found)

    t0 = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - t0
    ckpt.save_model(run_dir, trainer.model.state_dict(),
                    {"model": spec, "preprocess": splits.preprocess.to_dict(), "precision": precision.to_dict()})
    test = evaluate(trainer.model, splits.x_test, splits.y_test, precision)  # the one look at the test set
    summary = _summary(cfg, trainer, splits, precision, test, wall)
    _write_json(os.path.join(run_dir, "summary.json"), summary)
    if not quiet:
        print(f"test accuracy {1 - test['error']:.2%} (error {test['error']:.2%}"
              + (f", top-5 error {test['top5_error']:.2%}" if "top5_error" in test else "")
              + f") on {len(splits.y_test)} examples; run saved to {run_dir}", flush=True)
    return Run(run_dir, cfg, history, summary, trainer.model, splits.preprocess)


class _HistoryWriter(Callback):
    """history.jsonl is rewritten atomically after every epoch: a reader never sees half a line."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, "history.jsonl")

    def on_epoch_end(self, trainer: Any) -> None:
        ckpt.atomic_write(self.path, trainer.history.to_jsonl().encode())

    on_fit_start = on_epoch_end  # a resumed run's file matches its checkpoint from the start


# --- the run directory ---------------------------------------------------------------------------------

def _run_dir(out: str, name: str | None, resume: str | None, data: str, model: str) -> tuple[str, bool]:
    if resume == "auto":
        found = _latest_unfinished(out)
        if found is None:
            raise UserError(f"--resume auto: no interrupted run under {out}/; start one with trainwell train")
        return found, True
    if resume:
        if not os.path.isdir(resume):
            raise UserError(f"--resume {resume}: no such run directory")
        if os.path.exists(os.path.join(resume, "summary.json")):
            raise UserError(f"--resume {resume}: that run already finished; start a new run instead")
        return resume, True
    if name is None:
        parts = [time.strftime("%Y%m%d-%H%M%S"), os.path.basename(os.path.normpath(data)), os.path.basename(model)]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name in (".", ".."):
        raise UserError(f"--name {name}: use letters, digits, '.', '_' and '-' only")
    path = os.path.join(out, name)
    if os.path.exists(os.path.join(path, "summary.json")):
        raise UserError(f"--name {name}: {path} already holds a finished run; choose another name")
    if os.path.isdir(os.path.join(path, "checkpoints")):
        return path, True  # an interrupted run of that name: carry on where it stopped
    return path, False


def _latest_unfinished(out: str) -> str | None:
    if not os.path.isdir(out):
        return None
    runs = [os.path.join(out, d) for d in os.listdir(out)]
    runs = [d for d in runs if os.path.isdir(os.path.join(d, "checkpoints"))
            and not os.path.exists(os.path.join(d, "summary.json"))]
    return max(runs, key=os.path.getmtime) if runs else None


def _resume_config(run_dir: str, values: dict[str, Any], config_file: str | None,
                   overrides: list[str] | None) -> Config:
    """The saved config, with changes allowed only where they cannot change what was computed."""
    saved = build_config(load_yaml(os.path.join(run_dir, "config.yaml")))
    given = {k: v for k, v in values.items() if v is not None}
    merged = build_config({**saved.to_dict(), **(load_yaml(config_file) if config_file else {}), **given},
                          overrides=overrides)
    changed = [f"{k}: {getattr(saved, k)!r} -> {getattr(merged, k)!r}" for k in saved.to_dict()
               if getattr(saved, k) != getattr(merged, k) and k not in RESUME_SAFE]
    if changed:
        raise UserError(f"--resume {run_dir}: these settings differ from the interrupted run and would change "
                        f"its result: {'; '.join(changed)}. Drop them, or start a new run with --name")
    return merged


def _source(cfg: Config, data: Any, test_data: Any) -> Source:
    if data is None or isinstance(data, str):
        return load_source(cfg.data, cfg.data_dir, cfg.label, cfg.image_size)
    x, y = _materialise(data, "data")
    xt, yt = _materialise(test_data, "test_data") if test_data is not None else (None, None)
    classes = [str(c) for c in getattr(data, "classes", [])] or [str(i) for i in range(int(y.max()) + 1)]
    src = Source(type(data).__name__, x, y, classes, xt, yt)
    check_source(src, f"{type(data).__name__}")
    return src


def _materialise(dataset: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A torch Dataset of (x, y) pairs -> in-memory arrays (batched by index from then on)."""
    try:
        pairs = [dataset[i] for i in range(len(dataset))]
        x = np.stack([np.asarray(p[0], dtype=np.float32) for p in pairs])
        y = np.array([int(p[1]) for p in pairs], dtype=np.int64)
    except (TypeError, ValueError, IndexError) as e:
        raise UserError(f"{what}: expected a Dataset of (x, y) pairs with equal-shaped x and integer y ({e})") \
            from None
    if x.ndim == 3:
        x = x[:, None]
    return x, y


def _check_forward(net: nn.Module, splits: Splits, spec: dict[str, Any]) -> None:
    try:
        with torch.no_grad():
            out = net.eval()(splits.x_train[:2])
    except RuntimeError as e:
        raise UserError(f"model {spec['name']}: does not accept inputs of shape {list(splits.x_train.shape[1:])} "
                        f"({str(e).splitlines()[0]})") from None
    if out.ndim != 2 or out.shape[1] != splits.num_classes:
        raise UserError(f"model {spec['name']}: outputs shape {list(out.shape)}, expected (batch, "
                        f"{splits.num_classes}) logits, one per class")


def count_flops(net: nn.Module, shape: list[int]) -> int | None:
    """Forward FLOPs for one example, counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        was = net.training
        net.eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net(torch.zeros([1, *shape], device=next(net.parameters()).device))
        net.train(was)
        return int(counter.get_total_flops())
    except (RuntimeError, StopIteration):
        return None


def _summary(cfg: Config, trainer: Trainer, splits: Splits, precision: Precision, test: dict[str, float],
             wall: float) -> dict[str, Any]:
    best = trainer.state.best_epoch
    best_record = next((r for r in trainer.history if r["epoch"] == best), {})
    return {
        "test": test,
        "test_accuracy": 1 - test["error"],
        "best_epoch": best,
        "best_valid": {k: v for k, v in best_record.items() if k.startswith("valid_")},
        "epochs_run": len(trainer.history),
        "stop_reason": trainer.state.stop_reason,
        "params": sum(p.numel() for p in trainer.model.parameters()),
        "flops_per_example": count_flops(trainer.model, list(splits.preprocess.shape)),
        "fit_wall_s": round(wall, 2),
        "train_time_s": round(sum(r.get("time_s") or 0 for r in trainer.history), 2),
        "sizes": splits.sizes(),
        "precision": precision.to_dict(),
    }


def environment(cfg: Config, precision: Precision) -> dict[str, Any]:
    from trainwell import __version__

    return {"trainwell": __version__, "git_revision": _git_revision(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "platform": platform.platform(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            **precision.to_dict(), "seed": cfg.seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _git_revision() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _write_json(path: str, obj: Any) -> None:
    ckpt.atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def _write_yaml(path: str, obj: Any) -> None:
    import yaml

    ckpt.atomic_write(path, yaml.safe_dump(obj, sort_keys=False).encode())
