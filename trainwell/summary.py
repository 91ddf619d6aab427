"""`trainwell summary` and `trainwell.model_summary()`: the capacity of the model a run would build."""
from __future__ import annotations

from typing import Any

from trainwell.capacity import measure
from trainwell.prepared import prepare

__all__ = ["model_summary"]


def model_summary(steps: int = 5, **options: Any) -> dict[str, Any]:
    """The capacity of the model `trainwell train` would build from these options, as plain data.

    >>> s = trainwell.model_summary(data="digits", model="resnet", depth=20)   # doctest: +SKIP
    >>> s["params"], s["forward_flops"], s["epoch_s"]                         # doctest: +SKIP
    """
    prep = prepare(**options)
    model = prep.config.model if prep.spec["name"] != "custom" else prep.spec["class"]
    return {"model": model, **measure(prep.model, prep.splits, prep.config, prep.precision, steps),
            "auto": prep.choices}
