"""`trainwell doctor`: the course's checks before a long run ("When it does not work", "Test on a small
subset", "Check gradients", "Pick the learning rate on a subset", "Initialization"), each with evidence
and a prescription.

    >>> from trainwell.doctor import doctor                           # doctest: +SKIP
    >>> report = doctor(data="digits", model="mlp")                   # doctest: +SKIP
    >>> report.verdict, [f.check for f in report.problems()]        # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Any

from trainwell.capacity import measure
from trainwell.divergence import Diverged
from trainwell.doctor import checks
from trainwell.doctor.findings import Finding, Report, verdict_of
from trainwell.doctor.trial import try_before_run
from trainwell.lr_protocol import lr_range
from trainwell.prepared import prepare

__all__ = ["doctor"]


def doctor(config: Any = None, *, base: list[str] | None = None, lr: bool = True, try_fixes: bool = True,
           **options: Any) -> Report:
    """Run every pre-flight check on the run `trainwell.train(config, **options)` would start. Writes nothing.

    `base`: the user's own `trainwell train` arguments, repeated in the prescribed commands (default: the
    options as key=value). `lr=False` skips the learning-rate protocol (the slowest check). `try_fixes=False`
    prints the prescriptions without running each briefly first (trial.py).
    """
    if base is None:  # the options as key=value; a model or data passed as a Python object cannot be
        base = [f"{k}={v}" for k, v in options.items() if isinstance(v, (str, int, float, list))]  # repeated
    t0 = time.perf_counter()
    prep = prepare(config, **options)  # bad options or unreadable data: the one-line UserError of train (exit 2)
    ctx = checks.Context(prep, base)
    findings: list[Finding] = []
    steps: list[tuple[str, Any]] = [
        ("data-balance", checks.data_balance), ("data-values", checks.data_values),
        ("data-duplicates", checks.data_duplicates), ("data-classes", checks.data_classes),
        ("data-columns", checks.data_columns), ("frozen-parameters", checks.frozen_parameters),
        ("initial-loss", checks.initial_loss), ("symmetric-init", checks.symmetric_init),
        ("output-activation", checks.output_activation), ("batch-dependence", checks.batch_independence),
        ("gradient-check", checks.gradient_check),
        ("depth", checks.depth), ("overfit-subset", checks.overfit_subset), ("config-suspect", checks.configuration),
    ]
    timings = {}
    for name, check in steps:
        t = time.perf_counter()
        out = check(ctx)
        findings += out if isinstance(out, list) else [out]
        timings[name] = round(time.perf_counter() - t, 2)
    _frozen_as_cause(findings, ctx)
    if lr:
        t = time.perf_counter()
        findings.append(_lr_finding(ctx))
        timings["lr-range"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    findings.append(_cost(ctx))
    timings["cost"] = round(time.perf_counter() - t, 2)
    report = Report(verdict_of(findings), findings, {"model": prep.spec.get("name"), "data": prep.config.data})
    if try_fixes:
        t = time.perf_counter()
        report = try_before_run(prep, report)
        timings["tried"] = round(time.perf_counter() - t, 2)
    report.meta.update(seconds=round(time.perf_counter() - t0, 2), check_seconds=timings)
    return report


def _frozen_as_cause(findings: list[Finding], ctx: Any) -> None:
    """Frozen layers are a warning alone (fine-tuning freezes a pretrained net's early layers on purpose), and
    the root cause when the model then cannot fit 64 examples: the subset's failure is their symptom, and the
    run with every parameter training (`unfreeze`, fastai's word) is the fix."""
    frozen = next((f for f in findings if f.check == "frozen-parameters" and f.status == "warn"), None)
    stuck = [f for f in findings if f.check in ("underfitting", "overfit-subset") and f.status == "fail"]
    if frozen and stuck:
        frozen.status = "fail"
        frozen.summary += f", and the model cannot fit a few examples ({stuck[0].check})"
        frozen.prescription = "train the frozen layers too (the model file froze them): unfreeze"
        frozen.command = ctx.command(unfreeze=True)


# A rate this many times below the recommended one is too low. The grid's best was within 4x of the
# recommendation on every set-up measured; adam's default on wine was 32x below it and trained well.
LOW_FACTOR = 64


def _lr_finding(ctx: Any) -> Finding:
    r = ctx.prep.lr_range or lr_range(ctx.prep)  # lr=auto: prepare ran the protocol already
    cfg = ctx.prep.config
    current = cfg.resolved_lr()
    ev = {**r, "current": current}
    if r["largest_stable"] is None:
        return Finding("lr-range", "fail", f"every rate tried down to {r['tried'][-1]['lr']:.2g} diverged or made no "
                       "progress on a subset", ev,
                       "the loss does not fall at any rate: run the other checks' prescriptions first")
    rec, edge = r["recommended"], r["largest_stable"]
    summary = f"largest stable rate {edge:.3g} ({cfg.optimizer}); recommended peak {rec:.3g}; this run: {current:.3g}"
    # The edge is found at a constant rate without warm-up, so it is conservative: the grid's best rate was
    # 1 - 2x the edge for a batch-norm conv net (benchmarks/lr_protocol.py). Below 2x is not a finding.
    if current >= 2 * edge:
        return Finding("lr-too-high", "fail", summary, ev, "the run's rate diverges on a subset: lower it",
                       ctx.command(lr=rec))
    if current < rec / LOW_FACTOR:
        return Finding("lr-too-low", "warn", summary, ev, "the run's rate is far below what the loss tolerates",
                       ctx.command(lr=rec))
    return Finding("lr-range", "pass", summary, ev)


def _cost(ctx: Any) -> Finding:
    prep, epochs = ctx.prep, ctx.prep.config.epochs
    try:
        m = measure(prep.model, prep.splits, prep.config, prep.precision, steps=3)
    except Diverged as e:  # the timing steps train too: a model that diverges at once cannot be timed
        params = sum(p.numel() for p in prep.model.parameters())
        return Finding("cost", "warn", f"{params:,} parameters; not timed: the loss diverged in the 3 timing "
                       f"steps ({e})", {"params": params, "diverged": str(e)})
    run_s = m["epoch_s"] * epochs
    ev = {"params": m["params"], "forward_flops": m["forward_flops"], "step_s": round(m["step_s"], 5),
          "samples_per_s": round(m["samples_per_s"], 1), "epoch_s": round(m["epoch_s"], 2), "epochs": epochs,
          "run_s": round(run_s, 1)}
    return Finding("cost", "pass", f"{m['params']:,} parameters, {m['forward_flops'] / 1e6:,.2f} MFLOPs/example, "
                   f"{ev['samples_per_s']:,.0f} samples/s: ~{m['epoch_s']:,.0f} s per epoch, ~{run_s / 60:,.1f} min "
                   f"for {epochs} epochs (training only)", ev)
