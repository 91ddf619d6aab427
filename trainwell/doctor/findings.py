"""What the doctor and diagnosis say: findings with evidence and a prescription, and one verdict.

The codes are fixed (scripts read them from `--json`); README lists them. A finding's `check` is the code of
the problem it looks for (`dead-units`), or of the check that ran (`gradient-check`), pass or not.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from trainwell.errors import UserError

# verdict and finding codes -> what each means
CODES: dict[str, str] = {
    "healthy": "nothing to fix: training and validation behave as the course says they should",
    "still-improving": "validation was still getting better when training stopped: train longer",
    "underfitting": "training error stays high: the model is too small or trained too little",
    "overfitting": "training error far below validation error, validation getting worse: regularise",
    "diverged": "the loss became non-finite or exploded and recovery did not save the run",
    "lr-too-high": "the loss jumps around or rose: the learning rate is too high",
    "lr-too-low": "the loss falls, but far too slowly: the learning rate is too low",
    "chance-level": "predictions are no better than guessing (loss near ln C)",
    "collapsed": "the loss falls but the predictions degenerate to a few classes",
    "vanishing-gradients": "gradients shrink from the last layer to the first: early layers barely learn",
    "exploding-gradients": "gradients grow from the last layer to the first",
    "dead-units": "ReLU units that output 0 for every example (they no longer learn)",
    "saturated-units": "tanh/sigmoid units stuck near their limits (their gradient is ~0)",
    "symmetric-init": "all-zero or identical weights: units that start equal stay equal",
    "output-activation": "the model applies softmax/sigmoid itself; trainwell's cross-entropy expects raw logits",
    "gradient-check": "autograd's gradients disagree with finite differences (a wrong backward)",
    "ignores-input": "the model's output does not depend on its input",
    "oscillating": "the training loss swings from epoch to epoch instead of settling",
    "initial-loss": "the loss at initialisation is far from ln(number of classes)",
    "overfit-subset": "the model could not fit one or two batches: model, loss or pipeline is broken",
    "lr-range": "the largest learning rate that does not diverge, by the course's halving protocol",
    "cost": "parameters, FLOPs, measured speed and the time an epoch takes",
    "data-balance": "some classes are much rarer than others, or missing from the training split",
    "data-values": "non-finite values, value ranges and normalisation of the inputs",
    "data-duplicates": "identical examples in the training and test splits, or one input with two labels",
    "data-classes": "classes in validation or test that training never sees",
    "config-suspect": "the run's own weight decay, dropout or label smoothing keeps it from fitting (tried on a subset)",
    "batch-dependence": "an example's output changes with the other examples of its batch: the model mixes them",
    "frozen-parameters": "weight layers that never learn: requires_grad off, or cut off from the loss (a .detach())",
    "data-leak": "one column predicts the label almost alone: computed from the label, or a row order that follows it",
    "data-columns": "a table's columns: their roles, columns mostly empty, identifier-like columns left out",
}
STATUSES = ("pass", "warn", "fail")


@dataclass
class Finding:
    check: str                    # a key of CODES
    status: str                   # pass | warn | fail
    summary: str                  # one line a person reads
    evidence: dict[str, Any] = field(default_factory=dict)
    prescription: str = ""        # what to do, in words
    command: str = ""             # the same run with the fix, ready to paste
    alternatives: list[str] = field(default_factory=list)  # other fixes for it: the trial keeps the one that helps most

    def __post_init__(self) -> None:
        assert self.check in CODES, self.check
        assert self.status in STATUSES, self.status


@dataclass
class Report:
    verdict: str
    findings: list[Finding]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # the verdict's meaning travels with it, so that the report reads the run directory alone
        return {"verdict": self.verdict, "meaning": CODES.get(self.verdict, ""),
                "findings": [asdict(f) for f in self.findings], **self.meta}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_plain)

    def problems(self) -> list[Finding]:
        """The warnings and failures, the verdict's first, then failures before warnings, root causes first."""
        rank = {"fail": 0, "warn": 1}
        found = [f for f in self.findings if f.status != "pass"]
        return sorted(found, key=lambda f: (f.check != self.verdict, rank[f.status],
                                            PRIORITY.index(f.check) if f.check in PRIORITY else len(PRIORITY)))

    def render(self) -> str:
        """Plain text for a terminal: one line per check, then what to do about each problem."""
        mark = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}
        width = max((len(f.check) for f in self.findings), default=0)
        lines = [f"{mark[f.status]}  {f.check.ljust(width)}  {f.summary}" for f in self.findings]
        for f in self.problems():
            if f.prescription or f.command:
                lines.append("")
                lines.append(f"{f.check}: {f.prescription}")
                if f.command:
                    lines.append(f"  {f.command}")
                lines += [f"  or: {a}" for a in f.alternatives]
        lines.append("")
        lines.append(f"verdict: {self.verdict} ({CODES[self.verdict]})")
        return "\n".join(lines)


# Root causes before their symptoms: a learning rate too high kills ReLUs, a model that ignores its input
# has no gradient to pass back, a wrong backward makes any curve meaningless.
PRIORITY = ["data-classes", "data-leak", "batch-dependence", "frozen-parameters", "config-suspect", "gradient-check", "output-activation", "symmetric-init", "ignores-input",
            "diverged", "lr-too-high", "lr-too-low", "vanishing-gradients", "exploding-gradients", "dead-units",
            "saturated-units", "initial-loss", "underfitting", "overfit-subset", "chance-level", "collapsed",
            "oscillating", "overfitting", "still-improving", "data-balance", "data-duplicates", "data-columns", "data-values",
            "lr-range", "cost", "healthy"]


def verdict_of(findings: list[Finding], default: str = "healthy") -> str:
    """The most basic failing finding's code (PRIORITY order), else the most basic warning's, else `default`."""
    for status in ("fail", "warn"):
        codes = [f.check for f in findings if f.status == status]
        if codes:
            return min(codes, key=lambda c: PRIORITY.index(c) if c in PRIORITY else len(PRIORITY))
    return default


def train_command(base: list[str], changes: dict[str, Any] | None = None, model: str | None = None) -> str:
    """`trainwell train` with the user's own arguments and key=value changes (overrides win over flags). With
    the run's `model`, the changes it would not use are left out, and where nothing is left there is no
    command ("")."""
    kept = applicable(changes or {}, model)
    if changes and not kept:
        return ""
    extra = [f"{k}={_value(v)}" for k, v in kept.items()]
    return "trainwell train " + " ".join(shlex.quote(a) for a in [*base, *extra])


def model_of(spec: Any, model: str) -> str:
    """The model name prescriptions are checked against: "custom" for a model passed as a module object (its
    spec says so; the config's name is then not what ran), else the config's."""
    return "custom" if isinstance(spec, dict) and spec.get("name") == "custom" else model


def applicable(changes: dict[str, Any], model: str | None) -> dict[str, Any]:
    """The changes a run of `model` would use: architecture options (hidden, width, activation, batch_norm...)
    that the model does not take are dropped. trainwell refuses them for a user's FILE.py:FUNCTION that does
    not take them, and a model given as a module object has been built already, so a prescription of them
    would fail or change nothing."""
    from trainwell.models import ARCH_FIELDS, REGISTRY, is_user_file, options_taken

    if model is None or model == "auto":
        return dict(changes)
    try:
        taken = options_taken(model) if model in REGISTRY or is_user_file(model) else set()
    except (UserError, OSError, ImportError, AttributeError, SyntaxError):  # the file cannot be read now
        taken = set()
    return {k: v for k, v in changes.items() if k not in ARCH_FIELDS or k in taken}


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
