"""Settings left at `auto`, resolved from the data: what `trainwell train --data FILE` does with no other flag.

Each choice comes with its reason; run.py records both in env.json and prints them, and config.yaml
holds the resolved values (so a resumed or repeated run does exactly the same).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from trainwell.config import Config
from trainwell.data.splits import Splits
from trainwell.models import INIT_OF, is_user_file
from trainwell.trainer import default_monitor


def resolve(cfg: Config, splits: Splits, user_model: Any = None) -> tuple[Config, dict[str, str]]:
    """The config with every `auto` replaced by a concrete value, and why each was chosen."""
    changes: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    shape = list(splits.preprocess.shape)
    if user_model is None and cfg.model == "auto":
        if _is_image(shape):
            changes["model"] = "convnet"
            reasons["model"] = f"convnet: the inputs are {'x'.join(map(str, shape))} images (channels x height x width)"
        else:
            changes["model"] = "mlp"
            reasons["model"] = f"mlp: the inputs are vectors of {_size(shape)} features, not images"
    if cfg.init == "auto":
        name = changes.get("model", cfg.model)
        if user_model is not None or is_user_file(name):
            changes["init"] = "default"
            reasons["init"] = "default: your model keeps the weights it was built with"
        else:
            changes["init"] = INIT_OF[name]
            reasons["init"] = f"{INIT_OF[name]}: the initialisation {name} is designed for"
    if cfg.monitor == "auto":
        has_valid = len(splits.y_valid) > 0
        changes["monitor"] = default_monitor(has_valid)
        if not has_valid:
            reasons["monitor"] = "train_loss: there is no validation split (valid_fraction 0) to select on"
    return dataclasses.replace(cfg, **changes), reasons


def _is_image(shape: list[int]) -> bool:
    """(C, H, W) with room for a 3x3 convolution; (D,) feature vectors are not images."""
    return len(shape) == 3 and shape[1] >= 3 and shape[2] >= 3


def _size(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
