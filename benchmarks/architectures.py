"""Each architecture on Fashion-MNIST under one wall-time budget, beside the published benchmark entries.

The budget is the training + validation time of today's default run (`trainwell train`: the conv net at
width 16, 18 epochs on mirror images), measured first in the same invocation; every other model then runs
`trainwell train --model NAME --time-budget B`, so its epochs are the ones that fit B on this machine
(measured over a few steps; the learning-rate schedule is fitted to them) and it stops once B is spent.

    python benchmarks/architectures.py                 # budget = the default run's time (~1 h in all on 2 cores)
    python benchmarks/architectures.py --budget 120    # a fixed budget in seconds

Published: the Fashion-MNIST benchmark (github.com/zalandoresearch/fashion-mnist, its README's table),
trained without a time limit.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODELS = [  # (label, trainwell train arguments, published entry)
    ("mlp 256-128-100", ["--model", "mlp", "--hidden", "256,128,100"], "MLP 256-128-100: 88.3%"),
    ("convnet (width 32)", ["--model", "convnet"], "2 conv layers: 91.6 - 93.4%"),
    ("alexnet", ["--model", "alexnet"], "AlexNet: 89.9%"),
    ("inception", ["--model", "inception"], "GoogLeNet: 93.7%"),
    ("resnet 20 (CIFAR family)", ["--model", "resnet", "depth=20"], ""),
    ("resnet 18 (ImageNet family)", ["--model", "resnet", "depth=18"], "ResNet18: 94.9%"),
]


def train(name: str, args: list[str], out: str) -> dict:
    cmd = [sys.executable, "-m", "trainwell", "train", "--quiet", "--out", out, "--name", name, *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    wall = time.perf_counter() - t
    run = os.path.join(out, name)
    with open(os.path.join(run, "summary.json")) as f:
        s = json.load(f)
    with open(os.path.join(run, "history.jsonl")) as f:
        history = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(run, "env.json")) as f:
        env = json.load(f)
    seen = sum(r["samples_per_s"] * r["time_s"] for r in history if r.get("samples_per_s"))
    train_s = sum(r["time_s"] for r in history)
    return {"params": s["params"], "flops": s["flops_per_example"], "samples_per_s": seen / train_s,
            "epochs": s["epochs_run"], "acc": s["test_accuracy"], "fit_s": s["fit_wall_s"], "wall_s": wall,
            "stop": s["stop_reason"], "auto_epochs": env["auto"].get("epochs", "")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=None, help="seconds (default: the default run's fit time)")
    ap.add_argument("--models", default=None, help="comma-separated labels' first words, e.g. mlp,alexnet")
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="arch-")
    rows = []
    budget = a.budget
    if budget is None:
        base = train("default", [], out)
        print("default:", json.dumps(base), flush=True)
        budget = base["fit_s"]
        rows.append(("trainwell train (defaults: convnet width 16, flip, 18 epochs)", base, "2 conv layers: 91.6 - 93.4%"))
    wanted = a.models.split(",") if a.models else None
    for label, args, published in MODELS:
        if wanted and label.split()[0] not in wanted:
            continue
        r = train(label.split()[0] + "-" + str(len(rows)), [*args, "--time-budget", f"{budget:.0f}"], out)
        print(f"{label}:", json.dumps(r), flush=True)
        rows.append((label, r, published))
    print(f"\nMeasured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores; budget {budget:.0f} s of "
          "training + validation per model (`--time-budget`)\n")
    print("| model | params | forward MFLOPs | train samples/s | epochs in budget | fit s | Fashion-MNIST test accuracy "
          "| published (no time limit) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, r, published in rows:
        if "error" in r:
            print(f"| {label} | failed: {r['error']} | | | | | | {published} |")
            continue
        print(f"| {label} | {r['params']:,} | {r['flops'] / 1e6:.1f} | {r['samples_per_s']:,.0f} | {r['epochs']} "
              f"| {r['fit_s']:.0f} | {r['acc']:.2%} | {published} |")


if __name__ == "__main__":
    main()
