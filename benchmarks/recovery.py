"""Recovery from divergence: a run started at 10x the right learning rate against one started at the right rate.

For each set-up, the same run twice: at the optimizer's default rate (the "right" rate: the grid's best or
next to it in benchmarks/lr_protocol.py) and at 10x it. Printed: test accuracy, the recovery events (where
the loss diverged, the rate the run went on at), and training time. Pass: the 10x run finishes, with
recovery events, within 1 point of the right-rate run.

    python benchmarks/recovery.py                          # Fashion-MNIST: MLP, then the default conv net
    python benchmarks/recovery.py --setups mlp --epochs 5 --factor 20
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETUPS = {
    "mlp": {"data": "fashion-mnist", "model": "mlp", "hidden": [256, 128]},   # no batch norm
    "convnet": {"data": "fashion-mnist"},                                      # the default recipe
}


def main() -> None:
    import trainwell
    from trainwell.optim import DEFAULT_LR

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setups", default=",".join(SETUPS))
    ap.add_argument("--epochs", type=int, default=None, help="epochs of both runs (default: trainwell's auto)")
    ap.add_argument("--factor", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="recovery-bench-")
    rows = []
    for name in a.setups.split(","):
        opts = {**SETUPS[name], "seed": a.seed, **({"epochs": a.epochs} if a.epochs else {})}
        right = DEFAULT_LR[opts.get("optimizer", "momentum")]
        for lr in (right, right * a.factor):
            try:
                run = trainwell.train(lr=lr, out=out, name=f"{name}-{lr:g}", quiet=True, **opts)
                acc, hist = run.test_accuracy, run.history
                status, wall = "finished", run.summary["fit_wall_s"]
            except trainwell.TrainingFailed as e:
                wall = None
                acc, hist, status = None, trainwell.load_run(os.path.join(out, f"{name}-{lr:g}")).history, f"failed: {e}"
            events = [e for r in hist for e in r.get("events", [])]
            row = {"setup": name, "lr": lr, "test_accuracy": acc, "status": status, "epochs": len(hist),
                   "events": events, "train_s": round(sum(r.get("time_s") or 0 for r in hist), 1), "fit_wall_s": wall}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, seed {a.seed}")
    print("| set-up | lr | test accuracy | recoveries (failed at step -> went on at step: peak rate after) | "
          "train s (epochs kept) | fit wall s (all) |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for r in rows:
        ev = ", ".join(f"{e['failed_at_step']} -> {e['step']}{' (started over)' if e.get('started_over') else ''}: "
                       f"{e.get('peak_lr', 0):.3g}" for e in r["events"]) or "none"
        acc = f"{r['test_accuracy']:.2%}" if r["test_accuracy"] is not None else r["status"]
        print(f"| {r['setup']} | {r['lr']:g} | {acc} | {ev} | {r['train_s']:.0f} | {r['fit_wall_s'] or 0:.0f} |")
    for name in dict.fromkeys(r["setup"] for r in rows):
        base, high = [r for r in rows if r["setup"] == name]
        if base["test_accuracy"] is not None and high["test_accuracy"] is not None:
            d = (high["test_accuracy"] - base["test_accuracy"]) * 100
            ok = high["events"] and d >= -1
            print(f"{name}: {a.factor:g}x rate {d:+.2f} points vs the right rate, {len(high['events'])} recoveries: "
                  f"{'PASS' if ok else 'FAIL'} (within 1 point, with recovery events)")


if __name__ == "__main__":
    main()
