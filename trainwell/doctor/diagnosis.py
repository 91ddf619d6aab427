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

from trainwell import auto, rundir
from trainwell.errors import UserError
from trainwell.augment import OVERFITTING_PRESET
from trainwell.doctor.checks import SUSPECTS, shallower, wider
from trainwell.doctor.findings import Finding, Report, model_of, train_command, verdict_of
from trainwell.optim import DEFAULT_LR


def diagnose(run_dir: str, failure: dict[str, Any] | None = None) -> Report:
    """The triage of a run directory. `failure`: how training failed (the run writes it; read back after)."""
    run = rundir.read_run(run_dir)
    h = [r for r in run.history]
    if failure is None and not run.finished:  # a failed run's reason, kept in its diagnosis
        failure = rundir.read_diagnosis(run_dir).get("failure")
    if not h and failure is None:
        raise UserError(f"{run_dir}: no epoch has finished yet, so there is nothing to diagnose; wait for one, "
                        "or run trainwell doctor with the same options")
    classes = int(run.env.get("classes") or (run.spec or {}).get("model", {}).get("num_classes") or 10)
    base = ["--config", rundir.path(run_dir.rstrip("/"), rundir.CONFIG)]
    ctx = _Ctx(run, h, classes, base, failure)
    findings: list[Finding] = []
    for rule in (_diverged, _recovered, _suspect_config, _chance, _unlearned, _collapsed, _oscillating, _overfitting,
                 _underfitting, _lr_too_low, _still_improving, _structure, _saturated):
        f = rule(ctx)
        findings += f if isinstance(f, list) else [f] if f is not None else []
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
        return train_command(self.base + ["--name", name], changes,
                             model_of((self.run.spec or {}).get("model"), self.cfg.model))

    def evidence(self, **more: Any) -> dict[str, Any]:
        last = self.h[-1] if self.h else {}
        ev = {k: _round(last.get(k)) for k in ("train_loss", "train_error", "valid_loss", "valid_error")
              if last.get(k) is not None}
        ev.update(epochs=len(self.h), ln_classes=round(self.chance, 4), recoveries=len(self.events))
        ev.update(more)
        return ev

    @property
    def chance_noise(self) -> float:
        """The standard error of a guessing model's validation error: the lowest of 25 epochs' errors on 143
        shuffled-label digits fell to 81.8%, 3.3 of them below chance's 90%."""
        n = ((self.run.summary or {}).get("sizes") or {}).get("valid") or 0
        p = 1 / self.classes
        return math.sqrt(p * (1 - p) / n) if n else 0.0

    @property
    def rate_too_high(self) -> bool:
        """Evidence that the steps were too large: a recovery from divergence, or a training loss that rose
        by more than 5% from one epoch to the next. Without it a lower rate is not prescribed: a run that
        crawls off a plateau near chance gets slower still at a lower rate (issue 23's colour digits: dead
        units, a falling loss, and 10x lower was the wrong way)."""
        loss = self.col("train_loss")
        return bool(self.events) or any(b > 1.05 * a for a, b in zip(loss, loss[1:]))

    def without_lowering(self) -> dict[str, Any]:
        """The structural change to try instead of a lower rate: batch norm where the model takes it and has
        it off, He initialisation otherwise; nothing when both are already so (then no command is printed)."""
        kwargs = (self.run.spec or {}).get("model", {}).get("kwargs", {})
        if kwargs.get("batch_norm") is False:
            return {"batch_norm": True}
        return {"init": "kaiming"} if self.cfg.init != "kaiming" else {}

    def others(self, command: str, *variants: dict[str, Any]) -> list[str]:
        """The commands of other fixes for the same problem, for the trial to weigh against `command` (it keeps
        the one that helps most); variants the model cannot take, or that come to the same command, dropped."""
        out: list[str] = []
        for v in variants:
            cmd = self.command(**v)
            if cmd and cmd != command and cmd not in out:
                out.append(cmd)
        return out

    def command_if(self, changes: dict[str, Any]) -> str:
        """The fixed run's command, or none when there is no change to make (a command that changes nothing
        would only repeat the run)."""
        return self.command(**changes) if changes else ""

    @property
    def bottleneck(self) -> tuple[str, int] | None:
        """`_bottleneck`, computed once: three rules ask, and it rebuilds the model."""
        if not hasattr(self, "_narrow"):
            self._narrow = _bottleneck(self)
        return self._narrow

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
    tried = f" and {len(c.events)} recoveries at lower rates did not save it" if c.events else ""
    if c.events or "lr" in c.run.env.get("auto", {}):  # the rates that failed are known: go 10x below them
        lr: Any = min([e["peak_lr"] for e in c.events if "peak_lr" in e], default=c.lr) / 10
        why = "start at a learning rate 10x lower than the last one tried"
    else:  # one rate failed at once: let the course's protocol find the largest that does not
        lr = "auto"
        why = "let trainwell pick the rate on a subset (start large, halve until the loss no longer diverges)"
    return Finding("diverged", "fail", f"training failed: {c.failure['reason'].split(';')[0]}{tried}",
                   c.evidence(reason=c.failure["reason"]), why, c.command(lr=lr))


def _recovered(c: _Ctx) -> Finding | None:
    if not c.events or not c.run.finished:
        return None
    peak = c.events[-1]["peak_lr"]
    return Finding("lr-too-high", "warn", f"the loss diverged {len(c.events)} times; the run went on each time at a "
                   f"lower rate, ending at a peak of {peak:.3g} (started at {c.lr:.3g})",
                   c.evidence(events=c.events), "start at the rate that held: no time lost to rollbacks",
                   c.command(lr=peak))


def _suspect_config(c: _Ctx) -> Finding | None:
    """The run's own settings first: a weight decay, dropout or label smoothing far outside the usual range
    (checks.SUSPECTS) in a run whose training error stays high is the root cause to rule out before the
    symptoms (dropout 0.95 on digits' MLP: 96% dead units and a loss at chance, which read as a rate too high).
    `trainwell diagnose` tries the usual value before printing it."""
    te = c.col("train_error")
    if not te or te[-1] < POOR_TRAIN_ERROR:
        return None
    kwargs = (c.run.spec or {}).get("model", {}).get("kwargs", {})
    for name, limit, usual in SUSPECTS:
        value = getattr(c.cfg, name, None)
        if value is None or value < limit or (name == "dropout" and "dropout" not in kwargs):
            continue
        label = name.replace("_", " ")
        return Finding("config-suspect", "fail", f"{label} {value:g} is far outside the usual range, and the training "
                       f"error stays at {te[-1]:.1%}", c.evidence(**{name: value, "usual": usual}),
                       f"the run's own {label} keeps the model from fitting: use a value in the usual range",
                       c.command(**{name: usual}))
    return None


def _chance(c: _Ctx) -> Finding | None:
    """Validation (or, without one, training) no better than guessing: loss near ln C, error near 1 - 1/C."""
    split = "valid" if c.col("valid_error") else "train"
    err, loss = c.col(f"{split}_error"), c.col(f"{split}_loss")
    if not err or not loss:
        return None
    near = 1 - 1.5 / c.classes
    if split == "valid":  # a guessing model's errors on a small split dip below chance by several standard errors
        near = min(near, 1 - 1 / c.classes - 4 * c.chance_noise)
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
    if rose or c.rate_too_high:  # a recovery, or a training loss that rose > 5% from one epoch to the next
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


def _unlearned(c: _Ctx) -> Finding | None:
    """Learned, then lost it: the training error fell well below chance, then climbed back to chance while the
    loss rose from one epoch to the next. The steps grew too large for the net (one-cycle raises the rate over
    its first 30%); what follows (saturated or dead units, gradients that vanish) is the symptom. Measured on a
    30-layer tanh net on digits (a model file, weights N(0, 1.3^2 / fan-in)): error 39% at epoch 2, 90% from
    epoch 7 on, 60.4% test; at a 5x lower rate 93.9%, where the structural prescriptions did worse (Glorot
    init 42.6%, He 53.2%)."""
    te, tl = c.col("train_error"), c.col("train_loss")
    if len(te) < 3 or len(tl) != len(te) or c.events:  # a recovery from divergence: _recovered speaks
        return None
    near = 1 - 1.5 / c.classes
    best = min(te)
    if best > 0.5 * near or min(te[-2:]) < near or tl[-1] < 0.9 * c.chance or not c.rate_too_high:
        return None
    epoch = te.index(best) + 1
    return Finding("lr-too-high", "fail", f"training error fell to {best:.1%} by epoch {epoch}, then climbed back to "
                   f"{te[-1]:.1%} (chance) as the loss rose: the steps grew too large for this net",
                   c.evidence(best_train_error=round(best, 4), best_epoch=epoch),
                   "lower the learning rate 5x (the net could learn at the start, before the rate peaked)",
                   c.command(lr=c.lr / 5))


def _collapsed(c: _Ctx) -> Finding | None:
    """The course's "parameters collapse / loss is minimized but accuracy is low": the loss is below chance,
    yet the selected model's predictions fall into far fewer classes than the labels spread over."""
    best = (c.run.summary or {}).get("best_epoch") or (c.h[-1]["epoch"] if c.h else None)
    r = next((r for r in c.h if r.get("epoch") == best), c.h[-1] if c.h else {})
    pc, lc, loss = r.get("valid_pred_classes"), r.get("valid_label_classes"), r.get("valid_loss")
    if pc is None or lc is None or loss is None or lc < 1.5 or pc >= 0.6 * lc or loss >= 0.9 * c.chance:
        return None
    imbalanced = lc < 0.7 * c.classes
    if not imbalanced and c.bottleneck:  # a layer narrower than the classes explains it: underfitting says so
        return None
    ev = c.evidence(pred_classes=pc, label_classes=lc, epoch=best)
    weigh = imbalanced and c.cfg.class_weights == "none"
    why = (f"the labels are imbalanced (spread like {lc:.1f} of {c.classes} equal classes) and the model learned "
           "to predict the frequent ones: weigh the classes in the loss (or resample the rare ones), and check "
           "that the features carry the classes") if imbalanced else \
          ("check the loss function: is it right for the task, has it a degenerate solution? "
           "a lower learning rate keeps units from dying into a constant output")
    command = c.command(class_weights="balanced") if weigh else "" if imbalanced else c.command(lr=c.lr / 10)
    return Finding("collapsed", "fail", f"the loss fell to {loss:.3g} (chance: {c.chance:.3g}) but the predictions "
                   f"spread over {pc:.1f} classes where the labels spread over {lc:.1f} (validation error "
                   f"{r.get('valid_error', 0):.1%})", ev, why, command)


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
        changes: dict[str, Any] = {}
        if _is_image(c):  # more (distorted) data is the course's first cure, whatever the model
            changes["augment"] = _augment_for(c)
        else:
            changes.update(dropout=0.5, weight_decay=max(c.cfg.weight_decay * 10, 5e-3))
        trend = (f"validation loss rose {vl[-1] / min(vl) - 1:.0%} after epoch {best + 1}" if rising
                 else "the training set is learned by heart")
        # Which cure is best depends on the data and the model (300 digits: augmentation, or dropout?): the
        # trial weighs the other regularisers against the first.
        regularise = {"dropout": 0.5, "weight_decay": max(c.cfg.weight_decay * 10, 5e-3)}
        other = [regularise, {"dropout": 0.2, "weight_decay": max(c.cfg.weight_decay * 10, 5e-4)}]
        if "augment" in changes:
            other = [regularise, {**changes, **regularise}]
        return Finding("overfitting", "warn", f"training error {te[-1]:.1%} vs best validation error {min(ve):.1%}; "
                       + trend, c.evidence(),
                       ("more data: augment the training images" if "augment" in changes else
                        "regularise: dropout, weight decay") + " (or collect more data); selection already keeps "
                       "the best epoch", c.command(**changes), c.others(c.command(**changes), *other))
    return None


def _is_image(c: _Ctx) -> bool:
    return len(_shape(c)) == 3


def _shape(c: _Ctx) -> list[int]:
    return (c.run.spec or {}).get("model", {}).get("input_shape") or c.run.env.get("input_shape") or []


def _augment_for(c: _Ctx) -> str:
    """augment.OVERFITTING_PRESET, fitted to the run: mirror images only where the run already trusted them
    (a mirrored digit or letter is another class), and shifts only on images of 16+ pixels a side (on 8x8
    digits a one-pixel shift cost 3-4 points of accuracy, where small rotations and zooms gained 1-2)."""
    ops = [op for op in OVERFITTING_PRESET.split(",")
           if not (op.startswith("flip") and "flip" not in c.cfg.augment)
           and not (op.startswith("translate") and min(_shape(c)[1:]) < 16)]
    return ",".join(ops)


def _underfitting(c: _Ctx) -> Finding | None:
    te, ve, tl = c.col("train_error"), c.col("valid_error"), c.col("train_loss")
    if len(te) < 3 or te[-1] < 0.1 or te[-1] > 1 - 1.5 / c.classes:
        return None
    gap = (min(ve) - te[-1]) if ve else 0.0
    k = max(1, len(tl) // 4)
    flat = tl[-k - 1] - tl[-1] < 0.02 * tl[-k - 1]
    narrow = c.bottleneck
    if narrow and gap < 0.25 * te[-1]:  # the root cause a person would check first: a layer narrower than the classes
        layer, units = narrow
        return Finding("underfitting", "warn", f"training error stays at {te[-1]:.1%}: layer {layer} has {units} units "
                       f"for {c.classes} classes, a bottleneck every example is squeezed through",
                       c.evidence(bottleneck=layer, units=units),
                       "widen the narrow layer (at least as many units as classes, usually several times more)",
                       c.command(**_wider(c)))
    if te[-1] >= 0.15 and gap < 0.25 * te[-1] and flat:
        changes = _wider(c)
        return Finding("underfitting", "warn", f"training error stays at {te[-1]:.1%} (validation {min(ve) if ve else 0:.1%})"
                       " and has stopped falling: the model is too small for the task", c.evidence(),
                       "a larger model (or longer training at a good rate)", c.command(**changes))
    return None


def _bottleneck(c: _Ctx) -> tuple[str, int] | None:
    """The narrowest hidden fully connected layer, if it has fewer units than there are classes (the model
    rebuilt from the run's spec: its architecture, not its weights)."""
    spec = (c.run.spec or {}).get("model")
    if not spec:
        return None
    try:
        from torch import nn

        from trainwell.models import build_model

        net = build_model(spec)
    except Exception:  # a model that cannot be rebuilt here (its file moved) has no architecture to read
        return None
    from trainwell.callbacks.layers import label

    linear = [(label(n, m), m.out_features) for n, m in net.named_modules() if isinstance(m, nn.Linear)][:-1]
    narrow = min(linear, key=lambda nm: nm[1], default=None)
    return narrow if narrow and narrow[1] < c.classes else None


def _wider(c: _Ctx) -> dict[str, Any]:

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
    """Only for a rate that was not annealed: under a decaying schedule the last epoch is best by design;
    unless the whole run was a few dozen updates that stopped mid-descent (`_few_steps`)."""
    few = _few_steps(c)
    if few is not None:
        return few
    vl, lrs = c.col("valid_loss"), c.col("lr")
    if len(vl) < 4 or not lrs or lrs[-1] < 0.3 * max(lrs):
        return None
    k = max(2, len(vl) // 4)
    if vl[-1] == min(vl) and vl[-k] - vl[-1] > 0.05 * vl[-k]:
        return Finding("still-improving", "warn", f"validation loss fell {1 - vl[-1] / vl[-k]:.0%} over the last {k} "
                       "epochs and was still falling when training stopped", c.evidence(),
                       "train longer", c.command(epochs=2 * len(vl)))
    return None


FEW_STEPS = auto.MIN_STEPS // 10  # updates in all below which a run that is still falling stopped too soon


def _few_steps(c: _Ctx) -> Finding | None:
    """Too few optimizer steps: trainwell gives small data >= auto.MIN_STEPS of them; a run of a tenth of that
    whose training error is still high and whose loss was still falling had no time to fit (batch 1,024 for 3
    epochs on 1,300 digits: 6 updates, 45% training error). The fix is more updates: a smaller batch where an
    epoch is a handful of steps, and the epochs for auto.MIN_STEPS."""
    tl, te = c.col("train_loss"), c.col("train_error")
    steps = c.h[-1].get("step") if c.h else None
    n = ((c.run.summary or {}).get("sizes") or {}).get("train") or 0
    if not steps or not n or len(tl) < 2 or steps >= FEW_STEPS or te[-1] < 0.15 or tl[-1] > 0.97 * tl[-2]:
        return None
    batch = c.cfg.batch_size or auto.BATCH
    usual = auto.BATCH if n >= auto.SMALL_DATA else min(auto.SMALL_BATCH, n)
    changes: dict[str, Any] = {}
    per_epoch = math.ceil(n / batch)
    if per_epoch < 10 and batch > usual:
        changes["batch_size"], per_epoch = usual, math.ceil(n / usual)
    changes["epochs"] = min(auto.MAX_EPOCHS, max(len(tl), math.ceil(auto.MIN_STEPS / per_epoch)))
    return Finding("still-improving", "warn", f"the run made {steps} optimizer steps in all ({math.ceil(n / batch)} "
                   f"per epoch of batch {batch}) and stopped with the training loss still falling and the training "
                   f"error at {te[-1]:.1%}: too few updates to fit", c.evidence(steps=steps, batch_size=batch),
                   f"more updates: trainwell gives small data at least {auto.MIN_STEPS:,}"
                   + (f" (batch {changes['batch_size']}, {per_epoch} steps per epoch)" if "batch_size" in changes else ""),
                   c.command(**changes))


# Structural findings from the layer monitors count only for a run that is not fitting its training data:
# a few dead units or a small first-layer gradient in a run that learns are not a problem (the published
# tools' false alarms come from reporting them regardless). Poor: the training loss still above 0.7 of
# chance level's ln C, and training error above 15%. (A healthy conv net on 2,000 Fashion-MNIST images,
# 5 epochs, ended at 0.38 ln C and 16.6% training error with 64% of its fully connected ReLUs inactive on
# the probe: the first version of this rule, on training error alone, called that dead-units.)
POOR_TRAIN_ERROR = 0.15
POOR_TRAIN_LOSS = 0.7  # of ln C


def _structure(c: _Ctx) -> list[Finding]:
    """Dead units and gradients that vanish or explode through depth, read from monitors.jsonl (the last
    third of its records), when training error stays high."""
    te, tl = c.col("train_error"), c.col("train_loss")
    if not te or not tl or te[-1] < POOR_TRAIN_ERROR or tl[-1] < POOR_TRAIN_LOSS * c.chance:
        return []
    recs = rundir.read_monitors(c.run.dir)
    recent = recs[-max(1, len(recs) // 3):]
    if not recent:
        return []
    out = []
    dead = {name: _median([r["units"][name]["dead"] for r in recent if name in r.get("units", {})])
            for name in recent[-1].get("units", {})}
    if dead and not c.bottleneck:  # behind a layer narrower than the classes, dead units are its symptom
        layer, share = max(dead.items(), key=lambda kv: kv[1])
        if share >= 0.5:
            high = c.rate_too_high and not _dead_from_start(recs, layer)
            out.append(Finding("dead-units", "fail" if share >= 0.9 else "warn",
                               f"{share:.0%} of the units after layer {layer} output 0 for every probe example, and the "
                               f"training error stays at {te[-1]:.1%}", c.evidence(dead=_rounded(dead)),
                               "dead ReLUs: the loss rose or diverged on the way, so the rate is too high (units die in "
                               "training): lower it, and use He (kaiming) init or batch norm" if high else
                               "dead ReLUs with no sign of a rate too high (the loss never rose): a bad initialisation "
                               "or no normalisation; use batch norm or He (kaiming) init, and keep the rate (a lower "
                               "one only slows a run that crawls)",
                               c.command(lr=c.lr / 10, init="kaiming") if high else c.command_if(c.without_lowering())))
    frozen = sorted({n for r in recent for n, v in r.get("layers", {}).items() if v.get("frozen")})
    cut = sorted({n for r in recent for n, v in r.get("layers", {}).items() if v.get("cut_off")})
    if frozen or cut:  # requires_grad off, or out of the loss' graph: zero by design, not a vanishing gradient
        total = len(recent[-1].get("layers", {}))
        what = []
        if frozen:
            what.append(f"{len(frozen)} of {total} weight layers are frozen (requires_grad=False): "
                        f"{', '.join(frozen[:6])}")
        if cut:
            what.append(f"{len(cut)} of {total} get no gradient at all (cut off from the loss): {', '.join(cut[:6])}")
        out.append(Finding("frozen-parameters", "fail" if cut else "warn",
                           "; ".join(what) + f", and the training error stays at {te[-1]:.1%}",
                           c.evidence(frozen=frozen, cut_off=cut),
                           ("look in forward for a .detach(), .data, or a torch.no_grad() block before these layers' "
                            "output reaches the loss; " if cut else "") +
                           "only the other layers learn: unfreeze the frozen ones (p.requires_grad_(True)) if the "
                           "model should fit this data; fine-tuning a pretrained net on little data keeps them frozen",
                           c.command(unfreeze=True) if frozen and not cut else ""))
    ratios = []
    for r in recent:  # the first weight layer's relative gradient over the last one's (of the layers that train)
        layers = [v for v in r.get("layers", {}).values()
                  if v.get("weight_norm") and not v.get("frozen") and not v.get("cut_off")]
        if len(layers) >= 3 and layers[-1]["grad_norm"] > 0:
            first, last = (v["grad_norm"] / v["weight_norm"] for v in (layers[0], layers[-1]))
            ratios.append(first / last)
    if ratios:
        ratio = _median(ratios)
        ev = c.evidence(first_over_last_relative_gradient=float(f"{ratio:.3g}"))
        if ratio < 1e-3:
            fix = {"activation": "relu", "init": "kaiming"}
            out.append(Finding("vanishing-gradients", "fail" if ratio < 1e-5 else "warn",
                               f"the first layer's relative gradient is {ratio:.1e} of the last layer's, and the "
                               f"training error stays at {te[-1]:.1%}", ev,
                               "gradients vanish through depth: ReLU instead of sigmoid/tanh, batch norm, residual "
                               "connections, or fewer layers", c.command(**fix),
                               c.others(c.command(**fix), {**fix, "batch_norm": True}, *shallower((c.run.spec or {}).get("model"), fix))))
        elif ratio > 1e3:
            out.append(Finding("exploding-gradients", "warn",
                               f"the first layer's relative gradient is {ratio:.1e} times the last layer's, and the "
                               f"training error stays at {te[-1]:.1%}", ev,
                               "gradients explode through depth: a lower rate, batch norm, or a smaller initialisation",
                               c.command(lr=c.lr / 10, init="glorot") if c.rate_too_high else
                               c.command(**({"batch_norm": True} if "batch_norm" in c.without_lowering()
                                            else {"init": "glorot"}))))
    return out


SATURATED = 0.5  # of a tanh/sigmoid layer's outputs at |a| > 0.99 (sigmoid: < 0.01 or > 0.99)


def _saturated(c: _Ctx) -> list[Finding]:
    """tanh/sigmoid layers whose outputs sit at their limits for most probe examples (the monitors'
    `saturated` share, the median over the last third of the records): their gradient is ~0, so the layers
    before them barely learn. A large initialisation (N(0, 1) weights) or inputs far from unit scale. Read
    whatever the training error: a saturated tanh net on digits fits its training set (0% error) and
    overfits (86 - 89% test against 97% for the same net at Glorot scale, whose layers are 0 - 3% saturated
    where these are 86 - 92%)."""
    recs = rundir.read_monitors(c.run.dir)
    recent = recs[-max(1, len(recs) // 3):]
    if not recent:
        return []
    sat = {name: _median([r["units"][name]["saturated"] for r in recent
                          if "saturated" in r.get("units", {}).get(name, {})])
           for name in recent[-1].get("units", {}) if "saturated" in recent[-1]["units"][name]}
    if not sat:
        return []
    layer, share = max(sat.items(), key=lambda kv: kv[1])
    if share < SATURATED:
        return []
    takes_norm = (c.run.spec or {}).get("model", {}).get("kwargs", {}).get("batch_norm") is False  # and has it off
    fix = {"init": "glorot"} if c.cfg.init != "glorot" else {"batch_norm": True} if takes_norm else {}
    return [Finding("saturated-units", "fail" if share >= 0.8 else "warn",
                    f"{share:.0%} of the outputs of layer {layer} sit at the limits of the activation (the "
                    "gradient through them is ~0)", c.evidence(saturated=_rounded(sat)),
                    "saturated units pass no gradient: Glorot initialisation (weights scaled to the fan-in and "
                    "fan-out), inputs at unit scale, batch norm, or ReLU", c.command_if(fix))]


def _dead_from_start(recs: list[dict[str, Any]], layer: str) -> bool:
    """Dead at the first record (the first step): the initialisation killed them, not the learning rate."""
    return recs[0].get("units", {}).get(layer, {}).get("dead", 0.0) >= 0.5


def _median(v: list[float]) -> float:
    v = sorted(v)
    return v[len(v) // 2] if v else 0.0


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in d.items()}


def _healthy_summary(c: _Ctx) -> str:
    ve = c.col("valid_error")
    return (f"{len(c.h)} epochs; validation error {min(ve):.1%}" if ve else f"{len(c.h)} epochs") + \
        "; training and validation behave as expected"
