"""The course's triage of a run ("When it does not work"), from the run directory alone: pure, no training.

Rules read the per-epoch history (training and validation loss and error, learning rate, gradient norm,
recovery events) and the summary. What keeps them quiet on healthy runs, where the published tools raise
false alarms on a third to all of them: progress is judged over a recent window, not one epoch; a run
is at chance level only when its loss sits near ln(C); and an expected pattern (the last epoch best under
an annealed schedule) is not a finding.
"""
from __future__ import annotations

import math
from typing import Any

from trainwell import rundir
from trainwell.errors import UserError
from trainwell.augment import OVERFITTING_PRESET
from trainwell.doctor.findings import Finding, Report, train_command, verdict_of
from trainwell.optim import DEFAULT_LR



def diagnose_run(run_dir: str, failure: dict[str, Any] | None = None) -> Report:
    run = rundir.read_run(run_dir)
    h = [r for r in run.history]
    if failure is None and not run.finished:  # a failed run's reason, kept in its diagnosis
        failure = rundir.read_diagnosis(run_dir).get("failure")
    if not h and failure is None:
        raise UserError(f"{run_dir}: no epoch has finished yet, so there is nothing to diagnose; wait for one, "
                        "or run trainwell doctor with the same options")
    classes = int(run.env.get("classes") or (run.spec or {}).get("model", {}).get("num_classes") or 10)
    base = ["--config", f"{run_dir.rstrip('/')}/config.yaml"]
    ctx = _Ctx(run, h, classes, base, failure)
    findings: list[Finding] = []
    for rule in (_diverged, _recovered, _chance, _oscillating, _overfitting, _underfitting, _lr_too_low,
                 _still_improving):
        f = rule(ctx)
        if f is not None:
            findings.append(f)
    if not findings:
        findings.append(Finding("healthy", "pass", _healthy_summary(ctx), ctx.evidence()))
    meta = {"run": run_dir, "epochs": len(h), "finished": run.finished, **({"failure": failure} if failure else {})}
    return Report(verdict_of(findings), findings, meta)


class _Ctx:
    def __init__(self, run: Any, h: list[dict[str, Any]], classes: int, base: list[str],
                 failure: dict[str, Any] | None) -> None:
        self.run, self.h, self.classes, self.base, self.failure = run, h, classes, base, failure
        self.chance = math.log(max(2, classes))
        self.cfg = run.config
        self.events = (failure or {}).get("events") or [e for r in h for e in r.get("events", [])]

    def col(self, key: str) -> list[float]:
        return [r[key] for r in self.h if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]

    def command(self, **changes: Any) -> str:
        name = f"{self.run.dir.rstrip('/').rsplit('/', 1)[-1]}-fix"
        return train_command(self.base + ["--name", name], changes)

    def evidence(self, **more: Any) -> dict[str, Any]:
        last = self.h[-1] if self.h else {}
        ev = {k: _round(last.get(k)) for k in ("train_loss", "train_error", "valid_loss", "valid_error")
              if last.get(k) is not None}
        ev.update(epochs=len(self.h), ln_classes=round(self.chance, 4), recoveries=len(self.events))
        ev.update(more)
        return ev

    @property
    def lr(self) -> float:
        return self.cfg.resolved_lr()

    @property
    def default_lr(self) -> float:
        return DEFAULT_LR[self.cfg.optimizer]


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


def _diverged(c: _Ctx) -> Finding | None:
    if c.failure is None:
        return None
    lr = min([e["peak_lr"] for e in c.events if "peak_lr" in e], default=c.lr) / 10
    tried = f" and {len(c.events)} recoveries at lower rates did not save it" if c.events else ""
    return Finding("diverged", "fail", f"training failed: {c.failure['reason'].split(';')[0]}{tried}",
                   c.evidence(reason=c.failure["reason"]), "start at a learning rate 10x lower than the last one tried",
                   c.command(lr=lr))


def _recovered(c: _Ctx) -> Finding | None:
    if not c.events or not c.run.finished:
        return None
    peak = c.events[-1]["peak_lr"]
    return Finding("lr-too-high", "warn", f"the loss diverged {len(c.events)} times; the run went on each time at a "
                   f"lower rate, ending at a peak of {peak:.3g} (started at {c.lr:.3g})",
                   c.evidence(events=c.events), "start at the rate that held: no time lost to rollbacks",
                   c.command(lr=peak))


def _chance(c: _Ctx) -> Finding | None:
    """Validation (or, without one, training) no better than guessing: loss near ln C, error near 1 - 1/C."""
    split = "valid" if c.col("valid_error") else "train"
    err, loss = c.col(f"{split}_error"), c.col(f"{split}_loss")
    if not err or not loss:
        return None
    near = 1 - 1.5 / c.classes
    if min(err) < near or loss[-1] < 0.9 * c.chance:
        return None
    train_err, train_loss = c.col("train_error"), c.col("train_loss")
    learned = train_err and train_err[-1] < 0.5 * near
    rose = len(train_loss) > 1 and (max(train_loss[1:]) > 1.2 * c.chance or train_loss[0] > 1.5 * c.chance)
    if learned:
        return Finding("chance-level", "fail", f"training error fell to {train_err[-1]:.1%} but {split} error stays at "
                       f"{min(err):.1%}, chance level: what the model learns does not carry over",
                       c.evidence(), "the labels do not follow the inputs: check that labels and examples are "
                       "paired in the same order (shuffled labels), and that validation data is the same kind of data")
    if rose or c.events:
        return Finding("lr-too-high", "fail", f"the loss stayed at or above chance level ({loss[-1]:.3g} vs "
                       f"ln({c.classes}) = {c.chance:.3g}) after rising: the learning rate is too high",
                       c.evidence(), "lower the learning rate 10x", c.command(lr=c.lr / 10))
    if c.lr < c.default_lr / 20:
        return Finding("lr-too-low", "fail", f"the loss never left chance level ({loss[-1]:.3g}) at learning rate "
                       f"{c.lr:.3g}", c.evidence(), f"raise the learning rate to the {c.cfg.optimizer} default",
                       c.command(lr=c.default_lr))
    return Finding("chance-level", "fail", f"{split} loss {loss[-1]:.3g} ~ ln({c.classes}) = {c.chance:.3g}: the model "
                   "learned nothing", c.evidence(), "run the pre-flight checks on the same options to find why",
                   "trainwell doctor " + " ".join(c.base))


def _oscillating(c: _Ctx) -> Finding | None:
    loss = c.col("train_loss")
    if len(loss) < 4:
        return None
    diffs = [b - a for a, b in zip(loss, loss[1:])]
    ups = [d / a for d, a in zip(diffs, loss) if d > 0]
    if len(ups) >= 0.4 * len(diffs) and sum(ups) / len(ups) > 0.05 and min(loss) > 0.2 * loss[0]:
        return Finding("oscillating", "warn", f"the training loss rose in {len(ups)} of {len(diffs)} epochs, by "
                       f"{sum(ups) / len(ups):.0%} on average: steps too large or too noisy", c.evidence(),
                       "lower the learning rate 4x (or use larger batches, which average out the noise)",
                       c.command(lr=c.lr / 4))
    return None


def _overfitting(c: _Ctx) -> Finding | None:
    te, ve, vl = c.col("train_error"), c.col("valid_error"), c.col("valid_loss")
    if len(ve) < 3 or not te:
        return None
    gap = min(ve) - te[-1]
    best = vl.index(min(vl))
    rising = vl[-1] > 1.1 * min(vl) and best < len(vl) - 1
    memorised = te[-1] < 0.005  # the training set is learned by heart: nothing left to learn from it
    n_valid = ((c.run.summary or {}).get("sizes") or {}).get("valid") or 0
    noise = 3 * math.sqrt(min(ve) * (1 - min(ve)) / n_valid) if n_valid else 0.0  # a small split's error is noisy
    if gap > max(0.03, 2 * te[-1], noise) and (rising or memorised):
        changes: dict[str, Any] = {"dropout": 0.5}
        if _is_image(c) and (c.run.spec or {}).get("model", {}).get("name") != "mlp":  # a conv net on images
            # mirror images only where the run already trusted them (they are wrong for digits and text)
            changes["augment"] = OVERFITTING_PRESET if "flip" in c.cfg.augment else \
                OVERFITTING_PRESET.replace("flip,", "")
        else:
            changes["weight_decay"] = max(c.cfg.weight_decay * 10, 5e-3)
        trend = (f"validation loss rose {vl[-1] / min(vl) - 1:.0%} after epoch {best + 1}" if rising
                 else "the training set is learned by heart")
        return Finding("overfitting", "warn", f"training error {te[-1]:.1%} vs best validation error {min(ve):.1%}; "
                       + trend, c.evidence(),
                       "regularise: dropout" + (", data augmentation" if "augment" in changes else ", weight decay")
                       + " (or more data); selection already keeps the best epoch", c.command(**changes))
    return None


def _is_image(c: _Ctx) -> bool:
    shape = (c.run.spec or {}).get("model", {}).get("input_shape") or c.run.env.get("input_shape") or []
    return len(shape) == 3


def _underfitting(c: _Ctx) -> Finding | None:
    te, ve, tl = c.col("train_error"), c.col("valid_error"), c.col("train_loss")
    if len(te) < 3 or te[-1] < 0.15 or te[-1] > 1 - 1.5 / c.classes:
        return None
    gap = (min(ve) - te[-1]) if ve else 0.0
    k = max(1, len(tl) // 4)
    flat = tl[-k - 1] - tl[-1] < 0.02 * tl[-k - 1]
    if gap < 0.25 * te[-1] and flat:
        changes = _wider(c)
        return Finding("underfitting", "warn", f"training error stays at {te[-1]:.1%} (validation {min(ve) if ve else 0:.1%})"
                       " and has stopped falling: the model is too small for the task", c.evidence(),
                       "a larger model (or longer training at a good rate)", c.command(**changes))
    return None


def _wider(c: _Ctx) -> dict[str, Any]:
    from trainwell.doctor.checks import wider

    return wider(c.cfg, (c.run.spec or {}).get("model", {}))


def _lr_too_low(c: _Ctx) -> Finding | None:
    """A rate far below the optimizer's usual one, and a curve that never got near fitting the training set."""
    tl, te, ve = c.col("train_loss"), c.col("train_error"), c.col("valid_error")
    if len(tl) < 3 or c.lr > c.default_lr / 20:
        return None
    slow = tl[-1] > 0.7 * tl[0] and te[-1] > 0.2
    unfitted = bool(ve) and te[-1] > 0.5 * min(ve) and te[-1] > 0.01
    if slow or unfitted:
        return Finding("lr-too-low", "warn", f"at learning rate {c.lr:.3g} ({c.default_lr / c.lr:.0f}x below the "
                       f"{c.cfg.optimizer} default) the training error ends at {te[-1]:.1%}, no lower than validation's: "
                       "training crawled", c.evidence(), "raise the learning rate", c.command(lr=c.default_lr))
    return None


def _still_improving(c: _Ctx) -> Finding | None:
    """Only for a rate that was not annealed: under a decaying schedule the last epoch is best by design."""
    vl, lrs = c.col("valid_loss"), c.col("lr")
    if len(vl) < 4 or not lrs or lrs[-1] < 0.3 * max(lrs):
        return None
    k = max(2, len(vl) // 4)
    if vl[-1] == min(vl) and vl[-k] - vl[-1] > 0.05 * vl[-k]:
        return Finding("still-improving", "warn", f"validation loss fell {1 - vl[-1] / vl[-k]:.0%} over the last {k} "
                       "epochs and was still falling when training stopped", c.evidence(),
                       "train longer", c.command(epochs=2 * len(vl)))
    return None


def _healthy_summary(c: _Ctx) -> str:
    ve = c.col("valid_error")
    return (f"{len(c.h)} epochs; validation error {min(ve):.1%}" if ve else f"{len(c.h)} epochs") + \
        "; training and validation behave as expected"
