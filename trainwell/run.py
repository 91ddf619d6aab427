"""A prepared run's life after `prepare`, in steps that can be called apart:

    fit      creates the run directory, trains and selects on validation; never reads the test set
    keep     saves the selected model and what selection found (selected.json)
    test     evaluates the kept model on the test set, once, and writes the summary
    finish   keep + test

`pipeline.train` is prepare + fit + finish + diagnosis + report; a search runs prepare + fit + keep per
trial and test only for the chosen one.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import time
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from trainwell import distributed, rundir
from trainwell.augment import Augment
from trainwell.callbacks.base import Callback
from trainwell.callbacks.early_stopping import EarlyStopping
from trainwell.callbacks.layers import LayerMonitor
from trainwell.callbacks.progress import Progress
from trainwell.capacity import forward_flops
from trainwell.config import Config
from trainwell.data.splits import Splits
from trainwell.errors import Interrupted, UserError
from trainwell.importance import permutation_importance
from trainwell.inference import load_run, scoring_set
from trainwell.metrics import evaluate
from trainwell.models import count_params
from trainwell.prepared import Prepared
from trainwell.precision import Precision
from trainwell.rundir import Run
from trainwell.samples import augment_samples
from trainwell.trainer import Trainer, check_callbacks
from trainwell.tta import with_tta
from trainwell.version import __version__

__all__ = ["finish", "fit", "keep", "test"]


def fit(prep: Prepared, callbacks: Iterable[Any] = (), quiet: bool = False) -> Trainer:
    """Create (or reopen) the run directory, train, and select the best epoch on validation."""
    cfg = prep.config
    w = distributed.world()
    quiet = quiet or not w.main  # one progress bar, rank 0's
    callbacks = check_callbacks(callbacks, cfg, prep.splits)  # a bad one is refused before anything is written
    if w.main:  # under torchrun rank 0 alone writes the run directory
        env = environment(cfg, prep.precision, prep.choices)
        if prep.resuming:  # what `auto` chose, and when, was decided when the run started
            first = rundir.read_run(prep.dir).env
            env.update(auto=first.get("auto", {}), started=first.get("started"), resumed=env["started"])
        env.update(classes=prep.splits.num_classes, input_shape=list(prep.splits.preprocess.shape))
        if w.distributed:
            env.update(world_size=w.size, backend=_backend(prep), torchrun_run_id=distributed.run_id())
        rundir.create(prep.dir, cfg, env)
        _write_augment_samples(prep)
    w.barrier()
    if not quiet:
        if prep.restart:
            print(f"resume: {prep.dir} stopped before its first checkpoint; starting it over in the same folder",
                  flush=True)
        for key, why in prep.choices.items():
            print(f"auto {key} -> {why}", flush=True)
        if w.distributed:
            print(f"distributed: {w.size} processes ({_backend(prep)}), global batch {cfg.batch_size} = "
                  f"{w.size} x {cfg.batch_size // w.size}" + ("" if cfg.batch_size % w.size == 0 else " + 1"),
                  flush=True)
    builtin: list[Any] = [EarlyStopping(cfg.patience)] if cfg.patience else []
    if w.main:
        builtin.append(_HistoryWriter(prep.dir))
        if cfg.monitor_every != 0:
            builtin.append(LayerMonitor(prep.dir, cfg.monitor_every))
    if not quiet:
        builtin.append(Progress())
    if w.distributed:  # the same weights everywhere (built before), but each rank its own dropout and augmentation
        torch.manual_seed(cfg.seed * 1_000_003 + w.rank)
    trainer = Trainer(prep.model, prep.splits.without_test(), cfg, prep.precision, [*builtin, *callbacks],
                      checkpoint_dir=rundir.checkpoints(prep.dir), world=w)
    if prep.resuming and not trainer.resume_latest():
        raise UserError(f"{prep.dir}: no valid checkpoint to resume from; start a new run instead")
    t0 = time.perf_counter()
    try:
        trainer.fit()
    except Interrupted as e:
        raise Interrupted(f"{e}. Resume with: trainwell train --resume {prep.dir} (or trainwell.train(..., "
                          f"resume={prep.dir!r}))") from None
    trainer.wall_s = time.perf_counter() - t0
    return trainer


def _backend(prep: Prepared) -> str:
    return "nccl" if prep.precision.device.type == "cuda" else "gloo"


def _write_augment_samples(prep: Prepared) -> None:
    """What the augmentation does to a few training images, for the report (forked RNG: changes nothing)."""
    cfg, splits = prep.config, prep.splits
    if splits.preprocess.kind != "image" or not Augment(cfg.augment) or len(splits.y_train) == 0:
        return
    if not os.path.exists(rundir.path(prep.dir, rundir.AUGMENT_SAMPLES)):
        rundir.write_tensors(prep.dir, rundir.AUGMENT_SAMPLES,
                             augment_samples(splits, cfg.augment, cfg.seed, examples=8, copies=5))


def finish(prep: Prepared, trainer: Trainer, quiet: bool = False) -> Run:
    """Save the selected model, evaluate it on the test set (the one look at it), write the summary."""
    keep(prep, trainer)
    run = test(prep.dir, quiet=quiet, model=trainer.model, splits=prep.splits, precision=prep.precision)
    return dataclasses.replace(run, model=trainer.model, preprocess=prep.splits.preprocess, precision=prep.precision)


def keep(prep: Prepared, trainer: Trainer) -> None:
    """Save the selected model and what selection found (selected.json); the test set is not touched.
    A search keeps every completed trial this way and tests only the chosen one."""
    splits, precision = prep.splits, prep.precision
    rundir.save_model(prep.dir, trainer.model.state_dict(),
                      {"model": prep.spec, "preprocess": splits.preprocess.to_dict(), "precision": precision.to_dict()})
    selected = _summary(trainer, splits, precision)
    if splits.preprocess.table is not None:  # a table's columns, most important first (for the report)
        selected["importance"] = permutation_importance(trainer.model, splits, precision, seed=prep.config.seed)
    rundir.write_selected(prep.dir, selected)


def test(run_dir: str, quiet: bool = False, model: nn.Module | None = None, splits: Splits | None = None,
         precision: Precision | None = None) -> Run:
    """The one look at the test set: score the kept model of `run_dir` and write summary.json. With no model
    given, the model and the test split are rebuilt from the run directory alone (a search's best trial)."""
    if model is None or splits is None or precision is None:
        saved = load_run(run_dir)
        x_test, y_test, _ = scoring_set(saved)
        model, precision, preprocess = saved.model, saved.precision, saved.preprocess
        tta = saved.config.tta
    else:
        x_test, y_test, preprocess, tta = splits.x_test, splits.y_test, splits.preprocess, rundir.read_run(run_dir).config.tta
    y_test = torch.as_tensor(y_test)
    # the test set is scored as validation was: with the run's test-time augmentation
    outputs: dict[str, torch.Tensor] = {}
    scored = _score_test(with_tta(model, tta), x_test, y_test, precision, preprocess, outputs)
    _write_test_outputs(run_dir, x_test, y_test, outputs, preprocess)
    summary = {"test": scored, "test_accuracy": 1 - scored["error"], **rundir.read_selected(run_dir)}
    if tta != "none":  # the network's own score beside it, so the averaging's share is on record
        summary["test_without_tta"] = _score_test(model, x_test, y_test, precision, preprocess)
    rundir.write_summary(run_dir, summary)
    if not quiet:
        plain = summary.get("test_without_tta")
        print(f"test accuracy {1 - scored['error']:.2%} (error {scored['error']:.2%}"
              + (f", top-5 error {scored['top5_error']:.2%}" if "top5_error" in scored else "")
              + (f"; with {tta} averaging, {1 - plain['error']:.2%} without" if plain else "")
              + f") on {len(y_test)} examples; run saved to {run_dir}", flush=True)
    return rundir.read_run(run_dir)


def _score_test(model: nn.Module, x: Any, y: torch.Tensor, precision: Precision, preprocess: Any,
                outputs: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Every look at a test set goes through here (a search's tests assert how often)."""
    return evaluate(model, x, y, precision, preprocess, outputs=outputs)


WORST_SHOWN = 24  # the most confidently wrong test images kept for the report


def _write_test_outputs(run_dir: str, x: Any, y: torch.Tensor, outputs: dict[str, torch.Tensor],
                        preprocess: Any) -> None:
    """Per test example, label / prediction / confidence (the report's confusion matrix and per-class error),
    and for images the raw pixels of the most confidently wrong ones, from the same single pass."""
    if "predicted" not in outputs:
        return
    labels = y.cpu().long()
    tensors = {"label": labels, "predicted": outputs["predicted"].long(), "confidence": outputs["confidence"].float()}
    if preprocess is not None and preprocess.kind == "image":
        wrong = torch.nonzero(tensors["predicted"] != labels).flatten()
        worst = wrong[tensors["confidence"][wrong].argsort(descending=True)[:WORST_SHOWN]]
        if len(worst):
            ordered = worst.sort().values  # read in file order (memory-mapped Rows), then back to worst-first
            rows = x[ordered.numpy()] if isinstance(x, np.ndarray) else x[ordered]
            order = worst.sort().indices.argsort()
            tensors["worst_index"] = worst
            tensors["worst_images"] = torch.as_tensor(np.asarray(rows))[order].contiguous()
    rundir.write_tensors(run_dir, rundir.TEST_OUTPUTS, tensors)


class _HistoryWriter(Callback):
    """history.jsonl is rewritten atomically after every epoch: a reader never sees half a line."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def on_epoch_end(self, trainer: Any) -> None:
        rundir.write_history(self.run_dir, trainer.history)

    on_fit_start = on_epoch_end  # a resumed run's file matches its checkpoint from the start


def _forward_flops(net: nn.Module, shape: list[int]) -> int | None:
    """Forward FLOPs of one example (None for a model the counter cannot run, e.g. one off the device)."""
    try:
        return forward_flops(net, shape)
    except (RuntimeError, StopIteration):
        return None


def _summary(trainer: Trainer, splits: Splits, precision: Precision) -> dict[str, Any]:
    best = trainer.state.best_epoch
    best_record = next((r for r in trainer.history if r["epoch"] == best), {})
    return {
        "best_epoch": best,
        "best_valid": {k: v for k, v in best_record.items() if k.startswith("valid_")},
        "epochs_run": len(trainer.history),
        "stop_reason": trainer.state.stop_reason,
        "params": count_params(trainer.model),
        "flops_per_example": _forward_flops(trainer.model, list(splits.preprocess.shape)),
        "fit_wall_s": round(trainer.wall_s, 2),
        "train_time_s": round(sum(r.get("time_s") or 0 for r in trainer.history), 2),
        "sizes": splits.sizes(),
        "precision": precision.to_dict(),
    }


def environment(cfg: Config, precision: Precision, choices: dict[str, str] | None = None) -> dict[str, Any]:
    return {"auto": choices or {}, "trainwell": __version__, "git_revision": _git_revision(), "python": platform.python_version(),
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
