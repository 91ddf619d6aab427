"""Models by name, rebuilt from a plain JSON spec (no pickle): {"name", "kwargs", "input_shape", "num_classes"}."""
from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

from torch import nn

from trainwell.errors import UserError
from trainwell.models.convnet import convnet
from trainwell.models.init import glorot_bound, initialise
from trainwell.models.mlp import mlp

REGISTRY: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "convnet": convnet}

__all__ = ["REGISTRY", "build_model", "glorot_bound", "initialise", "model_spec"]


def model_spec(cfg: Any, input_shape: list[int], num_classes: int) -> dict[str, Any]:
    kwargs = {"hidden": cfg.hidden, "activation": cfg.activation, "dropout": cfg.dropout}
    if cfg.model == "convnet":
        kwargs.update(width=cfg.width, depth=cfg.depth, batch_norm=cfg.batch_norm)
    return {"name": cfg.model, "kwargs": kwargs, "input_shape": list(input_shape), "num_classes": num_classes}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Build the architecture in `spec` (weights are not initialised here: see models.init)."""
    name = spec["name"]
    if name in REGISTRY:
        factory = REGISTRY[name]
    else:
        factory = _user_factory(name)
    try:
        model = factory(input_shape=spec["input_shape"], num_classes=spec["num_classes"], **spec["kwargs"])
    except ValueError as e:
        raise UserError(f"--model {name}: {e}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"--model {name}: returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _user_factory(ref: str) -> Callable[..., nn.Module]:
    """FILE.py:FUNCTION, the user's own code: FUNCTION(input_shape=..., num_classes=..., **kwargs)."""
    path, _, func = ref.rpartition(":")
    if not path.endswith(".py") or not os.path.isfile(path):
        raise UserError(f"--model {ref}: expected FILE.py:FUNCTION with an existing file, or one of "
                        f"{', '.join(REGISTRY)}")
    spec = importlib.util.spec_from_file_location("trainwell_user_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the user's own model file, named explicitly by them
    fn = getattr(module, func, None)
    if not callable(fn):
        raise UserError(f"--model {ref}: {path} has no function '{func}'")

    def factory(input_shape: list[int], num_classes: int, **_: Any) -> nn.Module:
        return fn(input_shape=input_shape, num_classes=num_classes)

    return factory
