"""The one orchestration behind `trainwell train` and `trainwell.train()`, in three steps that can be called apart:

    prepare  config, data, model, precision; everything that can be checked is checked, nothing is written
    fit      creates the run directory, trains and selects on validation; never reads the test set
    finish   keep (save the selected model and what selection found) + test (evaluate it on the test set
             once, write the summary)

`train` is the three in a row; search runs prepare + fit + keep per trial and test only for the chosen one.
The trainer never imports this module; this module imports it.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from trainwell import auto, distributed, optim, rundir
from trainwell.callbacks.base import Callback
from trainwell.callbacks.early_stopping import EarlyStopping
from trainwell.callbacks.layers import LayerMonitor
from trainwell.callbacks.progress import Progress
from trainwell.config import RESUME_SAFE, Config, build_config, load_yaml
from trainwell.data.sources import Source, check_source, load_source
from trainwell.data.splits import Splits, make_splits
from trainwell.errors import TrainingFailed, UserError
from trainwell.metrics import evaluate
from trainwell.models import build_model, initialise, model_spec, with_outputs
from trainwell.precision import Precision, choose
from trainwell.rundir import Run
from trainwell.trainer import Trainer
from trainwell.tta import with_tta

__all__ = ["Prepared", "Run", "finish", "fit", "keep", "prepare", "test", "train", "write_diagnosis", "write_report"]


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
    lr_range: dict[str, Any] | None = None  # lr=auto: the protocol's evidence (doctor/lr.py)


def train(config: Config | dict | None = None, *, model: str | nn.Module | None = None, data: Any = None,
          test_data: Any = None, callbacks: Iterable[Any] = (), out: str = "runs", name: str | None = None,
          resume: str | None = None, quiet: bool = False, config_file: str | None = None,
          overrides: list[str] | None = None, tensorboard: str | None = None, **options: Any) -> Run:
    """Train, select on validation, test once, and keep the evidence in `out/name/`.

    >>> run = trainwell.train(data="digits", hidden=[64], epochs=5)   # doctest: +SKIP
    >>> run.test_accuracy, run.dir                                    # doctest: +SKIP

    `model` may be your own nn.Module (its weights are kept unless you pass init="glorot" or "kaiming")
    and `data`/`test_data` torch Datasets of (x, y) pairs; any Config field can be passed as a keyword
    (lr=0.01, optimizer="adam", ...). With `tensorboard`, the run also writes TensorBoard event files to
    TENSORBOARD/NAME.
    """
    callbacks = list(callbacks)
    if tensorboard:
        from trainwell.callbacks.tensorboard import require

        require()  # before anything is written
    prep = prepare(config, model=model, data=data, test_data=test_data, out=out, name=name, resume=resume,
                   config_file=config_file, overrides=overrides, **options)
    if tensorboard and distributed.world().main:
        from trainwell.callbacks.tensorboard import TensorBoard

        callbacks.append(TensorBoard(os.path.join(tensorboard, os.path.basename(os.path.normpath(prep.dir)))))
    try:
        trainer = fit(prep, callbacks=callbacks, quiet=quiet)
    except TrainingFailed as e:  # why it failed, beside the last good checkpoint
        if distributed.world().main:
            write_diagnosis(prep.dir, quiet=True, failure={"reason": str(e), "events": getattr(e, "events", [])})
            write_report(prep.dir, quiet=True)
        raise
    if not distributed.world().main:  # under torchrun rank 0 alone tests and writes (no collective follows:
        return rundir.read_run(prep.dir)  # a long test on rank 0 must not time the others out)
    run = finish(prep, trainer, quiet=quiet)
    write_diagnosis(prep.dir, quiet=quiet)
    write_report(prep.dir, quiet=quiet)
    return run


def write_report(run_dir: str, quiet: bool = True) -> None:
    """report.html: the run's evidence on one page. A failure to draw it never fails the run: say so."""
    from trainwell.report import write_run_report

    try:
        path = write_run_report(run_dir)
    except Exception as e:  # noqa: BLE001 -- the trained, tested run is on disk; a drawing bug must not lose it
        print(f"trainwell: note: no report.html written ({type(e).__name__}: {e}); the run itself is saved",
              file=sys.stderr)
        return
    if not quiet:
        print(f"report: {path}", flush=True)


def write_diagnosis(run_dir: str, quiet: bool, failure: dict[str, Any] | None = None) -> None:
    """diagnosis.json: the triage of the run (trainwell diagnose RUN prints the same)."""
    from trainwell.doctor import diagnose

    try:
        report = diagnose(run_dir, failure=failure)
        rundir.write_diagnosis(run_dir, report.to_dict())
    except (OSError, UserError) as e:  # the run itself is saved; say so rather than fail it here
        print(f"trainwell: note: no diagnosis.json written ({e})", file=sys.stderr)
        return
    if not quiet and report.problems():
        p = report.problems()[0]
        print(f"diagnosis: {report.verdict}: {p.summary}" + (f"\n  try: {p.command}" if p.command else ""), flush=True)


def prepare(config: Config | dict | None = None, *, model: str | nn.Module | None = None, data: Any = None,
            test_data: Any = None, out: str = "runs", name: str | None = None, resume: str | None = None,
            config_file: str | None = None, overrides: list[str] | None = None, **options: Any) -> Prepared:
    """Validate everything that can be validated and build data and model; writes nothing."""
    user_model = model if isinstance(model, nn.Module) else None
    if isinstance(model, str):
        options["model"] = model
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
    if resuming:
        cfg = _resume_config(run_dir, values, config_file, overrides)
    else:
        cfg = build_config(values, config_file=config_file, overrides=overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    src = _source(cfg, data, test_data)
    splits = make_splits(src, cfg.valid_fraction, cfg.test_fraction, cfg.seed, cfg.limit_train)
    epochs_given = cfg.epochs is not None
    cfg, choices = auto.resolve(cfg, splits, user_model)
    if cfg.tta != "none" and splits.preprocess.kind != "image":
        raise UserError(f"tta={cfg.tta}: mirrors images, but {cfg.data} holds feature vectors; use tta=none")
    if not run_dir:
        label = type(user_model).__name__ if user_model is not None else cfg.model
        run_dir, resuming = _locate(w, out, None, None, default=rundir.default_name(cfg.data, label))
    torch.manual_seed(cfg.seed)
    if user_model is None:
        spec = model_spec(cfg, list(splits.preprocess.shape), splits.num_classes)
        net = build_model(spec)
    else:
        spec = {"name": "custom", "class": type(user_model).__name__, "input_shape": splits.preprocess.shape,
                "num_classes": splits.num_classes}
        net = with_outputs(user_model, cfg.outputs)
        if cfg.outputs != "logits":
            spec["outputs"] = cfg.outputs
    net = initialise(net, cfg.init)
    _check_forward(net, splits, spec)
    precision = choose(distributed.device_for(w, cfg.device), cfg.precision,
                       any(isinstance(m, nn.Conv2d) for m in net.modules()))
    lr_found = None
    if cfg.lr == "auto":  # the course's protocol on a subset, on copies of the model; config.yaml keeps the pick
        from trainwell.doctor.lr import describe, lr_range

        lr_found = lr_range(Prepared(run_dir, resuming, cfg, splits, net, spec, precision, choices))
        cfg = dataclasses.replace(cfg, lr=lr_found["recommended"] or optim.DEFAULT_LR[cfg.optimizer])
        choices["lr"] = describe(lr_found) + ("" if lr_found["recommended"] else f"; using the default {cfg.lr:g}")
    if cfg.time_budget and not epochs_given and not resuming:
        from trainwell.capacity import epochs_within

        epochs, epoch_s = epochs_within(cfg.time_budget, net, splits, cfg, precision)
        cfg = dataclasses.replace(cfg, epochs=epochs)
        choices["epochs"] = (f"{epochs}: what fits the {cfg.time_budget:g} s time budget at ~{epoch_s:.1f} s per "
                             "epoch (training + validation, measured over a few steps on this device)")
    if w.distributed:  # what rank 0 resolved (a measured lr or epoch count could differ by a hair) rules all
        cfg = dataclasses.replace(cfg, **w.broadcast(cfg.to_dict()))
        if cfg.batch_size < w.size:
            raise UserError(f"batch_size {cfg.batch_size}: the global batch of {w.size} processes needs at least "
                            f"{w.size} examples (one per process); give --batch-size {w.size} or more")
    prep = Prepared(run_dir, resuming, cfg, splits, net, spec, precision, choices, lr_found)
    Trainer.check(prep.config, prep.splits)  # the monitor names a metric this run will really record
    return prep


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
                from trainwell.checkpoint import has_checkpoint

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


def fit(prep: Prepared, callbacks: Iterable[Any] = (), quiet: bool = False) -> Trainer:
    """Create (or reopen) the run directory, train, and select the best epoch on validation."""
    cfg = prep.config
    w = distributed.world()
    quiet = quiet or not w.main  # one progress bar, rank 0's
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
    trainer.fit()
    trainer.wall_s = time.perf_counter() - t0
    return trainer


def _backend(prep: Prepared) -> str:
    return "nccl" if prep.precision.device.type == "cuda" else "gloo"


def _write_augment_samples(prep: Prepared) -> None:
    """What the augmentation does to a few training images, for the report (forked RNG: changes nothing)."""
    from trainwell.augment import Augment
    from trainwell.preview import augment_samples

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
    rundir.write_selected(prep.dir, _summary(trainer, splits, precision))


def test(run_dir: str, quiet: bool = False, model: nn.Module | None = None, splits: Splits | None = None,
         precision: Precision | None = None) -> Run:
    """The one look at the test set: score the kept model of `run_dir` and write summary.json. With no model
    given, the model and the test split are rebuilt from the run directory alone (a search's best trial)."""
    if model is None or splits is None or precision is None:
        from trainwell.inference import load_run, scoring_set

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
            out = net.eval()(splits.preprocess.apply(splits.x_train[:2]))
    except RuntimeError as e:
        raise UserError(f"model {spec['name']}: does not accept inputs of shape {list(splits.x_train.shape[1:])} "
                        f"({str(e).splitlines()[0]})") from None
    if out.ndim != 2 or out.shape[1] != splits.num_classes:
        raise UserError(f"model {spec['name']}: outputs shape {list(out.shape)}, expected (batch, "
                        f"{splits.num_classes}) logits, one per class")


def _forward_flops(net: nn.Module, shape: list[int]) -> int | None:
    """Forward FLOPs of one example (None for a model the counter cannot run, e.g. one off the device)."""
    from trainwell.capacity import forward_flops

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
        "params": sum(p.numel() for p in trainer.model.parameters()),
        "flops_per_example": _forward_flops(trainer.model, list(splits.preprocess.shape)),
        "fit_wall_s": round(trainer.wall_s, 2),
        "train_time_s": round(sum(r.get("time_s") or 0 for r in trainer.history), 2),
        "sizes": splits.sizes(),
        "precision": precision.to_dict(),
    }


def environment(cfg: Config, precision: Precision, choices: dict[str, str] | None = None) -> dict[str, Any]:
    from trainwell import __version__

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
