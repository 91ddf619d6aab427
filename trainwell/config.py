"""One flat, typed Config: fed by CLI flags, a YAML file, key=value overrides or Python kwargs.

Every problem is reported at once (unknown keys with "did you mean", values of the wrong type, values out of
range or not among the choices), in one error. YAML goes through safe_load only.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from trainwell.errors import UserError

from trainwell import augment, models, optim

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
TTA_CHOICES = ("auto", "none", "flip")  # trainwell/tta.py; auto: flip when training augments with flip


@dataclass
class Config:
    """Everything that decides a run's result. `trainwell train --help` documents each field.

    >>> Config(model="mlp", hidden=[64], epochs=2).hidden
    [64]
    """

    # data
    data: str = "fashion-mnist"
    data_dir: str | None = None
    label: str | None = None           # a table's label column (default: 'label', else the last column)
    test_data: str | None = None       # a file or folder like `data` holding the test set (no test split then)
    skip_bad_images: bool = False      # image folders: leave unreadable images out (default: refuse, naming them)
    categorical: list[str] | None = None  # a table's columns to take as categories / as numbers / to leave out,
    numeric: list[str] | None = None      # whatever their values look like (default: decided from the values)
    ignore: list[str] | None = None
    image_size: int | None = None      # image folders: resize to this square size (default: first image's)
    valid_fraction: float = 0.1
    test_fraction: float = 0.2         # only for sources without their own test set
    limit_train: int | None = None     # use only the first N training examples (after the splits)
    # model
    model: str = "auto"                # auto: a conv net for images, an MLP for feature vectors
    # None below: the model's own default (models/<name>.py says which), written out in config.yaml's
    # model.json spec once the model is built.
    hidden: list[int] | None = None    # mlp hidden sizes / convnet and alexnet fully connected sizes
    width: int | None = None           # channels of the first stage (convnet 32, resnet 16/64, ...)
    depth: int | None = None           # convnet stages, resnet layers (20, 18, ...), inception stages
    activation: str | None = None      # None: the model's own (relu)
    batch_norm: bool | None = None     # convnet and inception: on; alexnet: off
    head: str | None = None            # convnet: fc (the course's fully connected layers) | pool (global average)
    dropout: float | None = None       # mlp, convnet, resnet: 0; alexnet 0.5; inception 0.4
    preact: bool = False               # resnet: pre-activation blocks
    zero_init_residual: bool = False   # resnet: each block's last batch-norm scale starts at 0
    remove: list[str] | None = None    # layers to take out of the model (an ablation), e.g. conv3,fc7
    outputs: str = "logits"            # what the model returns: logits, or probabilities (it ends in a softmax)
    unfreeze: bool = False             # train every parameter, also those the model froze (requires_grad=False)
    init: str = "auto"                 # auto: each trainwell model's own design; your nn.Module is left as given
    augment: str = "auto"              # training-batch augmentation, e.g. "flip,translate=2", or none; see auto.py
    # optimisation
    optimizer: str = "momentum"
    lr: float | str | None = None      # None: the optimizer's default (optim.DEFAULT_LR), see auto.py; "auto": the
    #                                    course's protocol on a subset picks it (lr_protocol.py), run.prepare
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup: float = 0.15               # fraction of training spent warming up (onecycle, and others if > 0)
    final_lr_fraction: float = 0.01    # the lecture: decay the learning rate ~100x by the end
    epochs: int | None = None          # None (auto): from the data's size, or fitted to time_budget, see auto.py
    time_budget: float | None = None   # seconds of training + validation: auto epochs fit it; stops once spent
    batch_size: int | None = None      # None (auto): from the data's size, see auto.py
    class_weights: str = "none"        # balanced: each class weighs n / (C n_c) in the training loss
    label_smoothing: float = 0.1       # +0.1 point on Fashion-MNIST in 10 epochs (benchmarks/RESULTS.md)
    tta: str = "auto"                  # test-time augmentation: none | flip (mean of an image's and its mirror's)
    patience: int = 0                  # early stopping look-ahead in epochs; 0 = off
    monitor: str = "auto"              # auto: valid_error, or train_loss when there is no validation split
    recoveries: int = 3                # divergence: roll back, cut the learning rate, go on, this many times
    monitor_every: int | None = None   # layer monitors: steps between records (auto: ~4 an epoch); 0 = off
    # reproducibility and speed
    seed: int = 0                      # initialisation, data order, dropout, augmentation
    split_seed: int = 0                # the validation and test splits' own: runs that differ in seed share them
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    threads: int = 0                   # 0: torch's default (one per core)
    checkpoint_every: int = 200        # steps between mid-epoch checkpoints; 0 = epoch ends only

    def __post_init__(self) -> None:
        validate(self)

    def resolved_lr(self) -> float:
        """The peak rate; "auto" is resolved by run.prepare before anything trains, so it is never seen here."""
        if self.lr == "auto":
            raise ValueError("lr=auto is resolved by trainwell.run.prepare (the learning-rate protocol)")
        return float(self.lr) if self.lr is not None else optim.DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Settings that may differ on resume without changing what the run computes up to the stop. Not the
# monitor: the epochs already run were selected under the old one, and their weights are gone.
RESUME_SAFE = {"epochs", "time_budget", "patience", "checkpoint_every", "threads", "compile"}
# (monitor_every is not: the monitors' records are part of what the interrupted run computed)

_NAMES = [f.name for f in fields(Config)]


def _hint(key: str) -> str:
    close = difflib.get_close_matches(key, _NAMES, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Turn strings from the CLI or overrides into the field's type; raise ValueError if impossible."""
    text = str(hint)
    if name == "lr" and isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"  # the learning-rate protocol (unlike other fields, where auto means the default)
    if value is None:
        if "None" in text:
            return None
        raise ValueError("may not be empty")
    if isinstance(value, str) and value.lower() in ("auto", "none", "null", "") and "None" in text:
        return None
    if "list[" in text:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]  # a column name may hold spaces
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_as_int(v) for v in value] if "list[int]" in text else [str(v) for v in value]
    if text.startswith("bool") or hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if "int" in text and "float" not in text:
        try:
            return _as_int(value)
        except ValueError:
            raise ValueError("expected an integer" + (" or auto" if "None" in text else "")) from None
    if "float" in text:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            return float(value)
        except ValueError:
            raise ValueError("expected a number" + (" or auto" if name == "lr" else "")) from None
    return str(value)


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("expected an integer")
    if isinstance(v, float) and not v.is_integer():
        raise ValueError("expected an integer")
    return int(v)


def _choice(problems: list[str], name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        tip = f"did you mean '{close[0]}'? " if close else ""
        problems.append(f"{name}: unknown '{value}'; {tip}choose one of {', '.join(choices)}")


def validate(cfg: Config) -> None:
    """Check every field; raise one UserError listing all problems."""
    problems: list[str] = []
    hints = get_type_hints(Config)
    for f in fields(cfg):
        try:
            setattr(cfg, f.name, _coerce(f.name, getattr(cfg, f.name), hints[f.name]))
        except (TypeError, ValueError) as e:
            problems.append(f"{f.name}: '{getattr(cfg, f.name)}' is not valid ({e})")
            setattr(cfg, f.name, f.default)  # so that the checks below can still run on the other fields
    if not models.is_user_file(cfg.model):
        _choice(problems, "model", cfg.model, models.CHOICES + ("FILE.py:FUNCTION",))
    _choice(problems, "optimizer", cfg.optimizer, tuple(optim.OPTIMIZERS))
    _choice(problems, "schedule", cfg.schedule, tuple(optim.SCHEDULES))
    _choice(problems, "init", cfg.init, models.INITS)
    _choice(problems, "outputs", cfg.outputs, models.OUTPUTS)
    _choice(problems, "class_weights", cfg.class_weights, ("none", "balanced"))
    if cfg.head is not None:
        _choice(problems, "head", cfg.head, models.HEADS)
    if cfg.activation is not None:
        _choice(problems, "activation", cfg.activation, tuple(models.ACTIVATIONS))
    _choice(problems, "device", cfg.device, DEVICES)
    _choice(problems, "precision", cfg.precision, PRECISIONS)
    _choice(problems, "tta", cfg.tta, TTA_CHOICES)
    # The monitor is checked against the metrics the trainer will really record once the data is known
    # (top-5 needs more than 5 classes, valid_* a validation split): see run.prepare.
    if not cfg.monitor.strip():
        problems.append("monitor: may not be empty; use auto, valid_error or valid_loss")
    try:
        if cfg.augment != "auto":
            augment.parse(cfg.augment)
    except ValueError as e:
        problems.append(f"augment: {e}")
    if cfg.lr is not None and cfg.lr != "auto" and not cfg.lr > 0:
        problems.append(f"lr: {cfg.lr} must be > 0 (e.g. 0.05 for momentum, 0.001 for adam)")
    for name, lo, hi in (("valid_fraction", 0.0, 0.9), ("test_fraction", 0.0, 0.9), ("dropout", 0.0, 0.95),
                         ("momentum", 0.0, 0.9999), ("warmup", 0.0, 0.9), ("final_lr_fraction", 0.0, 1.0),
                         ("label_smoothing", 0.0, 0.9)):
        v = getattr(cfg, name)
        if v is not None and not lo <= v <= hi:
            problems.append(f"{name}: {v} is out of range; use a value in [{lo}, {hi}]")
    for name in ("epochs", "batch_size", "width", "depth"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            problems.append(f"{name}: {getattr(cfg, name)} must be >= 1")
    for name in ("patience", "seed", "split_seed", "threads", "checkpoint_every", "recoveries"):
        if getattr(cfg, name) < 0:
            problems.append(f"{name}: {getattr(cfg, name)} must be >= 0")
    if cfg.monitor_every is not None and cfg.monitor_every < 0:
        problems.append(f"monitor_every: {cfg.monitor_every} must be >= 0 (0 = off)")
    if cfg.weight_decay < 0:
        problems.append(f"weight_decay: {cfg.weight_decay} must be >= 0")
    if cfg.hidden is not None and any(h < 1 for h in cfg.hidden):
        problems.append(f"hidden: {cfg.hidden} sizes must be >= 1, e.g. hidden=256,128")
    if cfg.time_budget is not None and not cfg.time_budget > 0:
        problems.append(f"time_budget: {cfg.time_budget} must be > 0 seconds, e.g. 600")
    if cfg.limit_train is not None and cfg.limit_train < 1:
        problems.append(f"limit_train: {cfg.limit_train} must be >= 1")
    if cfg.image_size is not None and not 4 <= cfg.image_size <= 1024:
        problems.append(f"image_size: {cfg.image_size} must be in [4, 1024]")
    if problems:
        raise UserError("config: " + "; ".join(problems))


def build_config(values: dict[str, Any] | None = None, *, config_file: str | None = None,
                 overrides: list[str] | None = None) -> Config:
    """Merge YAML file < explicit values < key=value overrides into one validated Config."""
    merged = merge_options(values, config_file=config_file, overrides=overrides)
    problems = [f"unknown key '{k}'{_hint(k)}" for k in merged if k not in _NAMES]
    try:
        cfg = Config(**{k: v for k, v in merged.items() if k in _NAMES})
    except UserError as e:  # the known keys' problems, beside the unknown keys: all of them in one line
        problems.append(str(e).removeprefix("config: "))
    if problems:
        raise UserError("config: " + "; ".join(problems))
    return cfg


def merge_options(values: dict[str, Any] | None = None, *, config_file: str | None = None,
                  overrides: list[str] | None = None) -> dict[str, Any]:
    """YAML file < explicit values < key=value overrides, as given (not yet validated): what a search keeps
    as its fixed base."""
    merged: dict[str, Any] = {}
    if config_file:
        merged.update(load_yaml(config_file))
    merged.update({k: v for k, v in (values or {}).items() if v is not None})
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"override '{item}': expected key=value, e.g. lr=0.01")
        key, value = item.split("=", 1)
        merged[key.strip().replace("-", "_")] = value.strip()
    return merged


def load_yaml(path: str) -> dict[str, Any]:
    import yaml  # lazy: keeps `trainwell --help` fast

    if not os.path.isfile(path):
        raise UserError(f"{path}: config file not found; pass an existing YAML file to --config")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not valid YAML ({first}); fix the file or pass options as flags") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
