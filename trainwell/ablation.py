"""`trainwell ablate RUN --remove LAYER[,LAYER]`: retrain a finished run's configuration without some
layers, and set parameters, FLOPs and test accuracy side by side with the original (the course's AlexNet
experiment: what does removing a layer cost?)."""
from __future__ import annotations

import os
from typing import Any

from trainwell.errors import UserError
from trainwell.pipeline import train
from trainwell.rundir import read_run


def ablate(run_dir: str, remove: list[str], out: str | None = None, name: str | None = None,
           quiet: bool = False, **options: Any) -> dict[str, Any]:
    """Train the run's resolved config again with `remove` layers taken out; returns both runs' numbers.

    >>> r = trainwell.ablate("runs/alex", ["conv3", "conv4"])          # doctest: +SKIP
    >>> r["original"]["test_accuracy"], r["ablated"]["test_accuracy"]  # doctest: +SKIP
    """
    base = read_run(run_dir)
    if not base.finished:
        raise UserError(f"{run_dir}: the run has not finished; ablate a finished run")
    if base.spec and base.spec["model"]["name"] == "custom":
        raise UserError(f"{run_dir}: trained with a Python nn.Module; ablate needs a model trainwell can rebuild")
    if base.config.data.startswith("python:"):
        raise UserError(f"{run_dir}: trained on in-memory data; ablate needs data trainwell can load again")
    if not remove:
        raise UserError("--remove: name at least one layer, e.g. --remove conv3")
    values = {**base.config.to_dict(), **options, "remove": [*(base.config.remove or []), *remove]}
    parent = out or os.path.dirname(os.path.normpath(run_dir)) or "."
    label = name or f"{os.path.basename(os.path.normpath(run_dir))}-minus-{'-'.join(remove)}"
    new = train(values, out=parent, name=label, quiet=quiet)

    def numbers(summary: dict[str, Any], directory: str) -> dict[str, Any]:
        return {"run": directory, "params": summary["params"], "flops_per_example": summary["flops_per_example"],
                "test_accuracy": summary["test_accuracy"], "test_top5_error": summary["test"].get("top5_error"),
                "epochs_run": summary["epochs_run"], "fit_wall_s": summary["fit_wall_s"]}

    return {"removed": remove, "original": numbers(base.summary, base.dir), "ablated": numbers(new.summary, new.dir)}
