"""Models by name, rebuilt from a plain JSON spec (no pickle): {"name", "kwargs", "input_shape", "num_classes"}.

This module is the one registry of model names, activations and initialisations; the config validates
against it, and it imports torch only when a model is built (so `trainwell --help` stays instant).
Adding a model is one line in REGISTRY.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Callable

from trainwell.errors import UserError

# name -> "module:function"; function(input_shape=[C, H, W] or [D], num_classes=K, **kwargs) -> nn.Module
REGISTRY: dict[str, str] = {"mlp": "trainwell.models.mlp:mlp", "convnet": "trainwell.models.convnet:convnet",
                            "alexnet": "trainwell.models.alexnet:alexnet",
                            "inception": "trainwell.models.inception:inception",
                            "resnet": "trainwell.models.resnet:resnet", "tabular": "trainwell.models.tabular:tabular"}
# name -> torch.nn class name
ACTIVATIONS: dict[str, str] = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "selu": "SELU", "silu": "SiLU"}
# "auto": each trainwell model's own design (see INIT_OF); a user's model keeps the weights it was given
INITS: tuple[str, ...] = ("auto", "glorot", "kaiming", "default")
# The course's Glorot for its MLP and conv net; He (Kaiming) init for the ReLU stacks designed with it.
INIT_OF: dict[str, str] = {"mlp": "glorot", "convnet": "glorot", "alexnet": "kaiming", "inception": "kaiming",
                           "resnet": "kaiming", "tabular": "default"}
# What a model returns (`outputs`): raw scores, or probabilities that models/outputs.py turns into logits.
OUTPUTS: tuple[str, ...] = ("logits", "probabilities")
# Config fields that are architecture arguments (a factory takes those it declares).
ARCH_FIELDS = ("hidden", "width", "depth", "activation", "batch_norm", "head", "dropout", "preact",
               "zero_init_residual")
# A conv net's head: the course's flatten + fully connected layers, or global average pooling + one linear layer.
HEADS: tuple[str, ...] = ("fc", "pool")
# The config's `model` may also be "auto" (chosen from the data's shape) or FILE.py:FUNCTION.
CHOICES: tuple[str, ...] = ("auto", *REGISTRY)

__all__ = ["ACTIVATIONS", "CHOICES", "HEADS", "INITS", "OUTPUTS", "REGISTRY", "activation", "build_model", "count_params", "initialise",
           "is_user_file", "model_spec"]


def count_params(module: Any, trainable: bool = False) -> int:
    """Parameters of `module` (only those that train, with `trainable`): the one count every report uses."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def is_user_file(name: str) -> bool:
    return ":" in name and name.rpartition(":")[0].endswith(".py")


def activation(name: str):
    from torch import nn

    return getattr(nn, ACTIVATIONS[name])()


def model_spec(cfg: Any, input_shape: list[int], num_classes: int) -> dict[str, Any]:
    """The architecture as JSON: the config's values for the arguments the model takes, and the model's
    own defaults for those left unset, so the spec rebuilds the same net even if a default changes."""
    import inspect

    kwargs: dict[str, Any] = {}
    if cfg.model in REGISTRY:
        params = inspect.signature(_registered(cfg.model)).parameters
        for name in ARCH_FIELDS:
            if name in params:
                given = getattr(cfg, name)
                kwargs[name] = given if given is not None else params[name].default
    elif is_user_file(cfg.model):  # the options the user's function takes, when given
        taken = options_taken(cfg.model)
        kwargs = {k: getattr(cfg, k) for k in ARCH_FIELDS if k in taken and getattr(cfg, k) not in (None, False)}
    spec = {"name": cfg.model, "kwargs": kwargs, "input_shape": list(input_shape), "num_classes": num_classes}
    if getattr(cfg, "remove", None):
        spec["remove"] = list(cfg.remove)
    if getattr(cfg, "outputs", "logits") != "logits":
        spec["outputs"] = cfg.outputs
    if getattr(cfg, "unfreeze", False):
        spec["unfreeze"] = True
    return spec


def build_model(spec: dict[str, Any]):
    """Build the architecture in `spec` (weights are not initialised here: see `initialise`)."""
    from torch import nn

    name = spec["name"]
    factory = _registered(name) if name in REGISTRY else _user_factory(name)
    try:
        model = factory(input_shape=spec["input_shape"], num_classes=spec["num_classes"], **spec["kwargs"])
    except ValueError as e:
        raise UserError(f"--model {name}: {e}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"--model {name}: returned {type(model).__name__}, expected a torch.nn.Module")
    if spec.get("remove"):
        from trainwell.models.ablation import remove_layers

        model = remove_layers(model, spec["remove"], spec["input_shape"], spec["num_classes"])
    if spec.get("unfreeze"):  # what the model file froze trains too
        for p in model.parameters():
            p.requires_grad_(True)
    return with_outputs(model, spec.get("outputs", "logits"))


def with_outputs(model: Any, outputs: str):
    """The model as trainwell sees it: one that returns logits (models/outputs.py)."""
    if outputs == "probabilities":
        from trainwell.models.outputs import ProbabilitiesToLogits

        return ProbabilitiesToLogits(model)
    return model


def initialise(model: Any, scheme: str):
    from trainwell.models.init import initialise as init

    return init(model, scheme)


def _registered(name: str) -> Callable[..., Any]:
    module, _, func = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), func)


def options_taken(name: str) -> set[str]:
    """The architecture options (ARCH_FIELDS) model `name` takes: the registered factory's own parameters, or
    the user's function's (all of them when it takes **kwargs)."""
    import inspect

    fn = _registered(name) if name in REGISTRY else _user_function(name)
    params = inspect.signature(fn).parameters
    if name not in REGISTRY and any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return set(ARCH_FIELDS)
    return {k for k in ARCH_FIELDS if k in params}


def _user_factory(ref: str) -> Callable[..., Any]:
    """FILE.py:FUNCTION, the user's own code: FUNCTION(input_shape=..., num_classes=..., **options it takes)."""
    fn = _user_function(ref)

    def factory(input_shape: list[int], num_classes: int, **options: Any) -> Any:
        return fn(input_shape=input_shape, num_classes=num_classes, **options)

    return factory


def _user_function(ref: str) -> Callable[..., Any]:
    """FILE.py:FUNCTION, loaded from the user's file."""
    file, _, func = ref.rpartition(":")
    if not file.endswith(".py") or not os.path.isfile(file):
        raise UserError(f"--model {ref}: expected FILE.py:FUNCTION with an existing file, or one of "
                        f"{', '.join(CHOICES)}")
    spec = importlib.util.spec_from_file_location("trainwell_user_model", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the user's own model file, named explicitly by them
    fn = getattr(module, func, None)
    if not callable(fn):
        raise UserError(f"--model {ref}: {file} has no function '{func}'")
    return fn
