"""`prepare`: the first step of every run (train, search trials, doctor, summary, augment-preview).

Config, data, splits, model, initialisation, precision, and what `auto` resolves to (the learning-rate
protocol and a time budget's epochs included): everything that can be checked is checked here, and
nothing is written. `run.fit` creates the run directory from what this returns.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwell import auto, distributed, optim, rundir
from trainwell.capacity import epochs_within, forward_flops
from trainwell.checkpoint import has_checkpoint
from trainwell.config import RESUME_SAFE, Config, build_config, load_yaml
from trainwell.data.sources import Source, check_source, load_source
from trainwell.data.splits import Splits, make_splits
from trainwell.data.tables import heavy_note
from trainwell.errors import UserError
from trainwell.lr_protocol import describe, lr_range
from trainwell.models import ARCH_FIELDS, build_model, initialise, model_spec, options_taken, with_outputs
from trainwell.precision import Precision, choose_precision
from trainwell.trainer import Trainer

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """A run ready to fit: resolved config, data splits, built model and precision. Nothing is on disk yet."""

    dir: str
    resuming: bool
    config: Config
    splits: Splits
    model: nn.Module
    spec: dict[str, Any]
    precision: Precision
    choices: dict[str, str]      # what `auto` resolved to, and why
    lr_range: dict[str, Any] | None = None  # lr=auto: the protocol's evidence (lr_protocol.py)
    restart: bool = False        # --resume of a run stopped before its first checkpoint: start it over there


def prepare(config: Config | dict | None = None, *, model: str | nn.Module | None = None, data: Any = None,
            test_data: Any = None, out: str = "runs", name: str | None = None, resume: str | None = None,
            config_file: str | None = None, overrides: list[str] | None = None, **options: Any) -> Prepared:
    """Validate everything that can be validated and build data and model; writes nothing."""
    user_model = model if isinstance(model, nn.Module) else None
    if isinstance(model, str):
        options["model"] = model
    if isinstance(test_data, str):  # a file or folder: the config says where the test set came from
        options["test_data"], test_data = test_data, None
    if isinstance(data, str):
        options["data"] = data
    elif data is not None:
        options["data"] = f"python:{type(data).__name__}"  # recorded in config.yaml; the data came in memory
    values = config.to_dict() if isinstance(config, Config) else dict(config or {})
    values.update(options)
    w = distributed.world()  # joins the process group when started by torchrun
    run_dir, resuming = "", False
    if name is not None or resume is not None:  # else the name waits for `auto` to name the model
        run_dir, resuming = _locate(w, out, name, resume)
    restart = resuming and not has_checkpoint(rundir.checkpoints(run_dir))
    if resuming:  # its own config; a run stopped before its first checkpoint starts over with it
        cfg = _resume_config(run_dir, values, config_file, overrides)
        resuming = not restart
    else:
        cfg = build_config(values, config_file=config_file, overrides=overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    src = _source(cfg, data, test_data)
    splits = make_splits(src, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed, cfg.limit_train)
    epochs_given = cfg.epochs is not None
    asked = {k: getattr(cfg, k) for k in ARCH_FIELDS if getattr(cfg, k) not in (None, False)}  # before auto adds any
    model_was_auto = cfg.model == "auto"
    cfg, choices = auto.resolve(cfg, splits, user_model)
    _refuse_unused(asked, cfg.model, user_model, model_was_auto)
    given = [f"--{k}" for k in ("categorical", "numeric", "ignore") if getattr(cfg, k)]
    if given and src.columns is None:
        raise UserError(f"{', '.join(given)}: name columns of a table (CSV, TSV, Parquet); {cfg.data} is not one")
    if cfg.skip_bad_images and src.kind != "image":
        raise UserError(f"--skip-bad-images: applies to image folders; {cfg.data} is not one")
    choices = {**src.choices, **choices}  # what loading decided from the data (a table's columns, an image size)
    if "columns" in choices and splits.preprocess.table is not None:  # and what fitting on the training rows did
        choices["columns"] += heavy_note(splits.preprocess.table)
    if cfg.tta != "none" and splits.preprocess.kind != "image":
        raise UserError(f"tta={cfg.tta}: mirrors images, but {cfg.data} holds feature vectors; use tta=none")
    if not run_dir:
        label = type(user_model).__name__ if user_model is not None else cfg.model
        run_dir, resuming = _locate(w, out, None, None, default=rundir.default_name(cfg.data, label))
    torch.manual_seed(cfg.seed)
    if user_model is None:
        spec = model_spec(cfg, list(splits.preprocess.shape), splits.num_classes)
        if spec["name"] == "tabular" and splits.preprocess.table is not None:  # embed the numbers, which come first
            spec["kwargs"]["embed"] = len(splits.preprocess.table["numeric"])
        net = build_model(spec)
    else:
        spec = {"name": "custom", "class": type(user_model).__name__, "input_shape": splits.preprocess.shape,
                "num_classes": splits.num_classes}
        net = with_outputs(user_model, cfg.outputs)
        if cfg.outputs != "logits":
            spec["outputs"] = cfg.outputs
    net = initialise(net, cfg.init)
    _check_forward(net, splits, spec)
    is_conv = any(isinstance(m, nn.Conv2d) for m in net.modules())
    precision = choose_precision(distributed.device_for(w, cfg.device), cfg.precision, is_conv,
                                 None if is_conv or cfg.precision != "auto" else _step_flops(net, splits, cfg))
    lr_found = None
    if cfg.lr == "auto":  # the course's protocol on a subset, on copies of the model; config.yaml keeps the pick
        lr_found = lr_range(Prepared(run_dir, resuming, cfg, splits, net, spec, precision, choices))
        cfg = dataclasses.replace(cfg, lr=lr_found["recommended"] or optim.DEFAULT_LR[cfg.optimizer])
        choices["lr"] = describe(lr_found) + ("" if lr_found["recommended"] else f"; using the default {cfg.lr:g}")
    if cfg.time_budget and not epochs_given and not resuming:
        epochs, epoch_s = epochs_within(cfg.time_budget, net, splits, cfg, precision)
        cfg = dataclasses.replace(cfg, epochs=epochs)
        choices["epochs"] = (f"{epochs}: what fits the {cfg.time_budget:g} s time budget at ~{epoch_s:.1f} s per "
                             "epoch (training + validation, measured over a few steps on this device)")
    if w.distributed:  # what rank 0 resolved (a measured lr or epoch count could differ by a hair) rules all
        cfg = dataclasses.replace(cfg, **w.broadcast(cfg.to_dict()))
        if cfg.batch_size < w.size:
            raise UserError(f"batch_size {cfg.batch_size}: the global batch of {w.size} processes needs at least "
                            f"{w.size} examples (one per process); give --batch-size {w.size} or more")
    prep = Prepared(run_dir, resuming, cfg, splits, net, spec, precision, choices, lr_found, restart)
    Trainer.selection_metric(prep.config, prep.splits)  # the monitor names a metric this run will really record
    return prep


def _step_flops(net: nn.Module, splits: Splits, cfg: Config) -> float | None:
    """Forward FLOPs of one training batch (None where a model cannot be counted: the precision stays bf16)."""
    try:
        return float(forward_flops(net, list(splits.preprocess.shape))) * cfg.batch_size
    except Exception:  # a user's model the counter cannot trace is not an error here
        return None


def _locate(w: distributed.World, out: str, name: str | None, resume: str | None,
            default: str | None = None) -> tuple[str, bool]:
    """rundir.locate, decided by rank 0 alone under torchrun (a rank that looked a moment later could see
    the folder rank 0 just made) and broadcast; an error there is raised on every rank. After torchrun
    restarted the group, a run without --name carries on the run this launch started."""
    found: tuple[str, bool] | str = ("", False)
    if w.main:
        try:
            if name is None and resume is None and distributed.restarted() and distributed.run_id():
                earlier = rundir.run_of_launch(out, distributed.run_id())
                saved = earlier is not None and has_checkpoint(rundir.checkpoints(earlier))
                found = (earlier, saved) if earlier else rundir.locate(out, default, None)
            else:
                found = rundir.locate(out, name or default, resume)
        except UserError as e:
            found = str(e)
    found = w.broadcast(found)
    if isinstance(found, str):
        raise UserError(found)
    return found[0], found[1]


def _resume_config(run_dir: str, values: dict[str, Any], config_file: str | None,
                   overrides: list[str] | None) -> Config:
    """The saved config, with changes allowed only where they cannot change what was computed."""
    saved = rundir.read_run(run_dir).config
    given = {k: v for k, v in values.items() if v is not None}
    merged = build_config({**saved.to_dict(), **(load_yaml(config_file) if config_file else {}), **given},
                          overrides=overrides)
    # `auto` was resolved when the run started: the saved value is what auto meant for this data.
    merged = dataclasses.replace(merged, **{k: getattr(saved, k) for k, v in merged.to_dict().items() if v == "auto"})
    changed = [f"{k}: {getattr(saved, k)!r} -> {getattr(merged, k)!r}" for k in saved.to_dict()
               if getattr(saved, k) != getattr(merged, k) and k not in RESUME_SAFE]
    if changed:
        raise UserError(f"--resume {run_dir}: these settings differ from the interrupted run and would change "
                        f"its result: {'; '.join(changed)}. Drop them, or start a new run with --name")
    return merged


def _source(cfg: Config, data: Any, test_data: Any) -> Source:
    if data is None or isinstance(data, str):
        gpu = cfg.device in ("auto", "cuda") and torch.cuda.is_available()  # the compute an image size implies
        return load_source(cfg.data, cfg.data_dir, cfg.label, cfg.image_size, test_data=cfg.test_data,
                           roles={"categorical": cfg.categorical, "numeric": cfg.numeric, "ignore": cfg.ignore},
                           skip_bad_images=cfg.skip_bad_images, device="cuda" if gpu else "cpu")
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


def _refuse_unused(asked: dict[str, Any], model: str, user_model: Any, was_auto: bool) -> None:
    """No option that silently does nothing: model-building options the model will not use are refused."""
    if not asked:
        return
    flags = ", ".join(f"--{k.replace('_', '-')}" for k in asked)
    if user_model is not None:
        raise UserError(f"{flags}: your {type(user_model).__name__} is built already and would ignore "
                        f"{'them' if len(asked) > 1 else 'it'}; set {'them' if len(asked) > 1 else 'it'} in the model, "
                        "or drop the flag")
    taken = options_taken(model)
    unused = [k for k in asked if k not in taken]
    if unused:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in unused)
        takes = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(taken)) or "none of them"
        who = f"model {model}" + (" (what auto chose for this data)" if was_auto else "")
        raise UserError(f"{flags}: {who} does not take {'them' if len(unused) > 1 else 'it'} (it takes {takes}); "
                        "drop the flag, or name a model that takes it with --model")


def _check_forward(net: nn.Module, splits: Splits, spec: dict[str, Any]) -> None:
    try:
        with torch.no_grad():
            out = net.eval()(splits.preprocess.apply(splits.x_train[:2]))
    except RuntimeError as e:
        raise UserError(f"model {spec['name']}: does not accept inputs of shape {list(splits.x_train.shape[1:])} "
                        f"({str(e).splitlines()[0]})") from None
    if out.ndim != 2 or out.shape[1] != splits.num_classes:
        raise UserError(f"model {spec['name']}: outputs shape {list(out.shape)}, expected (batch, "
                        f"{splits.num_classes}) logits, one per class")
