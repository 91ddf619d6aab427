"""Grid vs random vs Bayesian search with pruning on Fashion-MNIST: best validation and test accuracy against
the compute spent (epochs trained, summed over trials).

The space (an MLP, so that a full grid fits in half an hour on 2 cores): learning rate (log), hidden size,
dropout and epochs. The grid takes explicit values; random draws from the same values for epochs and from
the ranges for the rest; bayes is TPE with Hyperband pruning (trainwell search's default). Each search tests
its own chosen configuration once. Pass: bayes + pruning within 0.3 points of the grid's best validation
accuracy with <= 25% of the grid's epochs.

A search is SAMPLER[+PRUNER]: grid and random run without pruning unless a pruner is named (random+median is
`trainwell search --sampler random`'s default), bayes with its default (Hyperband).

    python benchmarks/search.py                               # grid (108 trials), random (27), bayes (40)
    python benchmarks/search.py --samplers random+median,bayes --bayes-trials 60
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BASE = {"data": "fashion-mnist", "model": "mlp", "precision": "fp32", "monitor_every": 0, "tta": "none"}
GRID = {"lr": {"low": 0.025, "high": 0.2, "log": True, "grid": [0.025, 0.05, 0.1, 0.2]},
        "hidden": ["128", "256", "512"],
        "dropout": {"low": 0.0, "high": 0.4, "grid": [0.0, 0.2, 0.4]},
        "epochs": [4, 8, 16]}


def main() -> None:
    import trainwell

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samplers", default="grid,random,bayes")
    ap.add_argument("--random-trials", type=int, default=27, help="a quarter of the grid's 108 trials")
    ap.add_argument("--bayes-trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the studies here (default: a temporary folder)")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="search-bench-")
    rows = []
    for variant in a.samplers.split(","):
        sampler, _, pruner = variant.partition("+")
        pruner = pruner or ("auto" if sampler == "bayes" else "none")
        trials = {"grid": None, "random": a.random_trials, "bayes": a.bayes_trials}[sampler]
        t0 = time.perf_counter()
        r = trainwell.search(GRID, sampler=sampler, pruner=pruner, trials=trials, out=out, quiet=True, seed=a.seed,
                             study=f"bench-{sampler}-{pruner}-{trials}-{a.seed}", **BASE)
        wall = time.perf_counter() - t0
        epochs = sum(t["epochs"] or 0 for t in r.trials if t["params"])
        states = [t["state"] for t in r.trials if t["params"]]
        rows.append({"sampler": variant, "trials": len(states), "pruned": states.count("pruned"),
                     "epochs": epochs, "best_valid": 1 - r.best_value, "test": r.test_accuracy,
                     "params": r.best_params, "wall": wall, "importances": r.importances})
        print(f"{variant}: {len(states)} trials, {epochs} epochs, best valid {1 - r.best_value:.2%}, "
              f"test {r.test_accuracy:.2%}, {wall:.0f} s, {r.best_params}", flush=True)
    grid = next((r for r in rows if r["sampler"] == "grid"), None)
    print("\n| search | trials (pruned) | epochs trained | vs grid | best validation accuracy | vs grid "
          "| its test accuracy | chosen | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        share = f"{r['epochs'] / grid['epochs']:.0%}" if grid else "-"
        diff = f"{(r['best_valid'] - grid['best_valid']) * 100:+.2f} pt" if grid else "-"
        chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        print(f"| {r['sampler']} | {r['trials']} ({r['pruned']}) | {r['epochs']} | {share} | {r['best_valid']:.2%} | "
              f"{diff} | {r['test']:.2%} | {chosen} | {r['wall']:.0f} |")
    for r in rows:
        if r["importances"]:
            print(f"importances ({r['sampler']}): " + ", ".join(f"{k} {v:.2f}" for k, v in r["importances"].items()))
    print(f"\nstudies kept in {out}")


if __name__ == "__main__":
    main()
