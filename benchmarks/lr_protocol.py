"""The learning-rate protocol (`--lr auto`) against a grid of rates over the same schedule.

For each set-up: `trainwell.prepare(lr="auto")` runs the course's protocol (start large, halve until
the loss no longer diverges on a subset; recommend half of that) and times it; then the same run is
trained at each rate of a grid (factors of 2 around the optimizer's default) and at the pick. The grid's
best rate is the one with the lowest validation error (as a search would select it); the test accuracy is
printed beside it. Pass: the pick is within a factor of 4 of the grid's best rate.

    python benchmarks/lr_protocol.py                      # Fashion-MNIST: default conv net; MLP with adam
    python benchmarks/lr_protocol.py --epochs 2 --setups mlp-adam
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETUPS = {
    "convnet-momentum": {"data": "fashion-mnist"},                       # the default recipe (conv net, momentum)
    "mlp-adam": {"data": "fashion-mnist", "model": "mlp", "hidden": [256, 128], "optimizer": "adam"},
    "mlp-momentum": {"data": "fashion-mnist", "model": "mlp", "hidden": [256, 128]},
    "mlp-adam-digits": {"data": "digits", "model": "mlp", "optimizer": "adam"},
}
FACTORS = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16]


def main() -> None:
    import trainwell
    from trainwell.optim import DEFAULT_LR
    from trainwell.prepared import prepare

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setups", default=",".join(SETUPS))
    ap.add_argument("--epochs", type=int, default=4, help="epochs of every run (grid and pick)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="append the rows to this file")
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="lr-bench-")
    lines = []
    for name in a.setups.split(","):
        opts = {**SETUPS[name], "epochs": a.epochs, "seed": a.seed}
        t = time.perf_counter()
        prep = prepare(lr="auto", out=out, name=f"{name}-probe", **opts)
        protocol_s = time.perf_counter() - t
        pick, r = prep.config.lr, prep.lr_range
        base = DEFAULT_LR[prep.config.optimizer]
        rows = []
        for lr in sorted({base * f for f in FACTORS} | {pick}):
            run = trainwell.train(lr=lr, out=out, name=f"{name}-{lr:.6g}", quiet=True, **opts)
            valid = run.summary["best_valid"]["valid_error"]
            rows.append({"setup": name, "lr": lr, "pick": lr == pick, "valid_error": valid,
                         "test_accuracy": run.test_accuracy, "train_s": run.summary["train_time_s"]})
            print(json.dumps(rows[-1]), flush=True)
        grid = [x for x in rows if not x["pick"] or any(abs(x["lr"] - base * f) < 1e-12 for f in FACTORS)]
        best = min(grid, key=lambda x: x["valid_error"])
        at_pick = next(x for x in rows if x["pick"])
        ratio = max(pick, best["lr"]) / min(pick, best["lr"])
        lines.append((name, prep.config.optimizer, r, protocol_s, best, at_pick, ratio, rows))
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps({"setup": name, "pick": pick, "best": best, "ratio": ratio, "rows": rows}) + "\n")
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, {a.epochs} epochs per run, seed {a.seed}")
    for name, opt, r, protocol_s, best, at_pick, ratio, rows in lines:
        print(f"\n{name} ({opt}): grid of {len(rows)} rates")
        print("| lr | valid error | test accuracy | train s |")
        print("| ---: | ---: | ---: | ---: |")
        for x in rows:
            tag = " (protocol's pick)" if x["pick"] else ""
            tag += " (grid best)" if x is best else ""
            print(f"| {x['lr']:.4g}{tag} | {x['valid_error']:.2%} | {x['test_accuracy']:.2%} | {x['train_s']:.0f} |")
        print(f"protocol: largest stable {r['largest_stable']:.4g}, pick {at_pick['lr']:.4g} in {protocol_s:.1f} s "
              f"({len(r['tried'])} rates x {r['steps_per_rate']} steps); grid best {best['lr']:.4g}: "
              f"factor {ratio:.2f} ({'within' if ratio <= 4 + 1e-9 else 'NOT within'} 4); test accuracy at the pick "
              f"{at_pick['test_accuracy']:.2%} vs {best['test_accuracy']:.2%} at the grid's best "
              f"({math.log2(ratio):.1f} halvings apart)")


if __name__ == "__main__":
    main()
