"""Ensembles of K networks (the course): average the members' class probabilities on one test set.

Each member applies its own preprocessing (normalisation fitted on its own training split) to the same raw
inputs. The arithmetic mean of probabilities is the default; `geometric` averages log-probabilities and
renormalises (a product of experts). Members must agree on the class list, and, scored on their own test
split, on the data and the test split itself.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from trainwell.errors import UserError
from trainwell.inference import load_run, scoring_set
from trainwell.metrics import predict_logits, rank_counts
from trainwell.rundir import Run
from trainwell.tta import with_tta


def evaluate_ensemble(run_dirs: list[str], data: str | None = None, data_dir: str | None = None, label: str | None = None,
             geometric: bool = False) -> dict[str, Any]:
    """Test metrics of each member and of their average.

    >>> r = trainwell.evaluate_ensemble(["runs/a", "runs/b", "runs/c"])    # doctest: +SKIP
    >>> r["ensemble"]["error"], [m["error"] for m in r["members"]]        # doctest: +SKIP
    """
    if len(run_dirs) < 2:
        raise UserError("ensemble: give at least two run directories")
    runs = [load_run(d) for d in run_dirs]
    _check_compatible(runs, own_test_split=data is None)
    raw, y, where = scoring_set(runs[0], data, data_dir, label)
    y = torch.as_tensor(y)
    members, log_probs = [], []
    for run in runs:
        if run is not runs[0] and run.preprocess.table is not None:  # a table is encoded with each member's own
            raw, y_run, _ = scoring_set(run, data, data_dir, label)   # columns (they may differ: --ignore)
            if not torch.equal(torch.as_tensor(y_run), y):
                raise UserError(f"ensemble: {run.dir} scores other rows than {runs[0].dir}; train the members on "
                                "one data set with one --split-seed, or give one --data for all")
        lp = torch.log_softmax(predict_logits(with_tta(run.model, run.config.tta), raw, run.precision, run.preprocess), dim=1)
        log_probs.append(lp)
        members.append({"run": run.dir, **_metrics(lp, y)})
    stacked = torch.stack(log_probs)
    if geometric:
        combined = torch.log_softmax(stacked.mean(dim=0), dim=1)
    else:
        combined = torch.logsumexp(stacked, dim=0) - math.log(len(runs))  # log of the mean probability
    mean_error = sum(m["error"] for m in members) / len(members)
    return {"data": where, "examples": len(y), "mean": "geometric" if geometric else "arithmetic",
            "members": members, "ensemble": _metrics(combined, y), "members_mean_error": mean_error}


def _metrics(log_probs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    counts = rank_counts(log_probs, y).tolist()
    n = len(y)
    out = {"loss": float(torch.nn.functional.nll_loss(log_probs, y)), "error": 1 - counts[0] / n}
    if log_probs.shape[1] > 5:
        out["top5_error"] = 1 - sum(counts[:5]) / n
    return out


def _check_compatible(runs: list[Run], own_test_split: bool) -> None:
    first = runs[0]
    own_test_set = None  # whether the data brings its own test set: loaded once, only if it matters
    for run in runs[1:]:
        if run.classes != first.classes:
            raise UserError(f"ensemble: {run.dir} was trained on classes {run.classes[:5]}..., {first.dir} on "
                            f"{first.classes[:5]}...; members must share one class list")
        if run.preprocess.shape != first.preprocess.shape and run.preprocess.table is None:
            raise UserError(f"ensemble: {run.dir} takes inputs of shape {run.preprocess.shape}, {first.dir} "
                            f"{first.preprocess.shape}; members must take the same inputs")
        if own_test_split:
            a, b = first.config, run.config
            if a.data != b.data:
                raise UserError(f"ensemble: {run.dir} was trained on {b.data}, {first.dir} on {a.data}; "
                                "ensemble runs of one data set, or score them all on one set with --data")
            if a.test_data and a.test_data == b.test_data:
                continue  # one given test file for all
            if (a.test_fraction, a.split_seed) != (b.test_fraction, b.split_seed):
                if own_test_set is None:
                    own_test_set = _has_own_test_set(first)
                if own_test_set:
                    continue
                raise UserError(f"ensemble: {run.dir} and {first.dir} hold out different test splits of {a.data} "
                                "(other split_seed or test_fraction), so one member's test rows are another's training "
                                "rows; train the members with one --split-seed, or score them all on one set with --data")


def _has_own_test_set(run: Run) -> bool:
    """Whether the run's data came with its own test set (then every split seed shares it)."""
    from trainwell.data.sources import load_source

    cfg = run.config
    return load_source(cfg.data, cfg.data_dir, cfg.label, cfg.image_size).x_test is not None
