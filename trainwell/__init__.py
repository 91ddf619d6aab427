"""trainwell: train neural networks well — the course's method as working software.

>>> import trainwell
>>> run = trainwell.train(data="digits", model="mlp", hidden=[64], epochs=5, quiet=True)  # doctest: +SKIP
>>> print(f"{run.test_accuracy:.1%}")                                                   # doctest: +SKIP

This module only re-exports. Public names are imported lazily, on first use, so that `trainwell --help`
does not pay for importing torch; `_WHERE` says which module defines each.
"""
from __future__ import annotations

from typing import Any

from trainwell.version import __version__  # noqa: F401 -- trainwell.__version__

__all__ = ["Callback", "Config", "EarlyStopping", "History", "Interrupted", "Precision", "Run", "Splits", "Trainer",
           "TrainingFailed", "UserError", "ablate", "choose_precision", "diagnose", "doctor",
           "evaluate_ensemble", "evaluate_run", "finish", "fit", "load_run", "make_splits", "model_summary", "predict",
           "prepare", "read_run", "search", "train"]

_WHERE = {"Callback": "trainwell.callbacks", "EarlyStopping": "trainwell.callbacks", "Config": "trainwell.config",
          "History": "trainwell.history", "Run": "trainwell.rundir", "read_run": "trainwell.rundir",
          "train": "trainwell.pipeline", "prepare": "trainwell.prepared", "fit": "trainwell.run", "finish": "trainwell.run",
          "Trainer": "trainwell.trainer", "Splits": "trainwell.data", "make_splits": "trainwell.data",
          "Precision": "trainwell.precision", "choose_precision": "trainwell.precision",
          "TrainingFailed": "trainwell.errors", "UserError": "trainwell.errors", "Interrupted": "trainwell.errors",
          "ablate": "trainwell.ablation", "evaluate_run": "trainwell.inference", "load_run": "trainwell.inference",
          "predict": "trainwell.inference", "evaluate_ensemble": "trainwell.ensemble",
          "model_summary": "trainwell.summary", "diagnose": "trainwell.doctor", "doctor": "trainwell.doctor",
          "search": "trainwell.tune"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'trainwell' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
