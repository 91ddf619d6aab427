"""trainwell: train neural networks well — the course's method as working software.

>>> import trainwell
>>> run = trainwell.train(data="digits", model="mlp", hidden=[64], epochs=5, quiet=True)  # doctest: +SKIP
>>> print(f"{run.test_accuracy:.1%}")                                                   # doctest: +SKIP

Public names are imported lazily so that `trainwell --help` does not pay for importing torch.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Callback", "ablate", "Config", "diagnose", "EarlyStopping", "History", "Run", "Trainer", "TrainingFailed", "UserError",
           "evaluate_ensemble", "evaluate_run", "finish", "fit", "load_run", "model_summary", "predict", "prepare", "read_run", "search", "train"]

_WHERE = {"Callback": "trainwell.callbacks", "EarlyStopping": "trainwell.callbacks", "Config": "trainwell.config",
          "History": "trainwell.history", "Run": "trainwell.rundir", "read_run": "trainwell.rundir",
          "train": "trainwell.run", "prepare": "trainwell.run", "fit": "trainwell.run", "finish": "trainwell.run",
          "Trainer": "trainwell.trainer", "TrainingFailed": "trainwell.errors", "UserError": "trainwell.errors",
          "ablate": "trainwell.ablation", "evaluate_run": "trainwell.inference", "evaluate_ensemble": "trainwell.ensemble", "model_summary": "trainwell.capacity", "load_run": "trainwell.inference", "predict": "trainwell.inference",
          "diagnose": "trainwell.doctor", "search": "trainwell.tune"}  # doctor itself: `from trainwell.doctor import doctor` (the package's name)


# public name -> the function's name in its module
_RENAMED = {"model_summary": "summarize", "evaluate_ensemble": "ensemble"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'trainwell' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
