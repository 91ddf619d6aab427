"""Which input columns a trained model leans on: permutation importance on the validation split (Breiman 2001;
scikit-learn's `permutation_importance`): how much the validation error and loss rise when one column's values
are shuffled across the rows, the model and every other column unchanged. For tables, where a column is a
thing a person can name; the report lists them, most important first."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainwell.metrics import evaluate

REPEATS = 3        # shuffles per column, averaged
MAX_ROWS = 4096    # validation rows used (the first ones)
MAX_COLUMNS = 200  # columns scored at most (the first ones)


def permutation_importance(model: nn.Module, splits: Any, precision: Any, seed: int = 0) -> list[dict[str, Any]]:
    """[{column, error_rise, loss_rise}] most important first; [] without a validation split. Draws its
    shuffles from its own generator: the run's random state is not touched."""
    names = splits.preprocess.feature_names
    n = min(MAX_ROWS, len(splits.y_valid))
    if n < 2 or not names:
        return []
    x, y, pre = splits.x_valid[:n], splits.y_valid[:n], splits.preprocess
    base = evaluate(model, x, y, precision, pre)
    g = torch.Generator().manual_seed(seed)
    out = []
    for j, name in enumerate(names[:MAX_COLUMNS]):
        rises = []
        for _ in range(REPEATS):
            shuffled = x.clone()
            shuffled[:, j] = x[torch.randperm(n, generator=g), j]
            m = evaluate(model, shuffled, y, precision, pre)
            rises.append((m["error"] - base["error"], m["loss"] - base["loss"]))
        out.append({"column": name, "error_rise": round(sum(r[0] for r in rises) / REPEATS, 5),
                    "loss_rise": round(sum(r[1] for r in rises) / REPEATS, 5)})
    return sorted(out, key=lambda r: (-r["loss_rise"], r["column"]))
