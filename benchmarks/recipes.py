"""Fashion-MNIST recipes side by side: test accuracy, with and without flip averaging at test time, and wall time.

Each recipe is a list of `trainwell train` arguments; every run is a whole `trainwell train` process.
Test-time flip averaging is scored on the same trained model (the mean of the softmax of the test images
and of their mirror images), so one run gives both numbers.

    python benchmarks/recipes.py --recipes previous-default@10,default      # side by side, one at a time
    python benchmarks/recipes.py --recipes all --device cuda --parallel 6   # a sweep on a GPU machine

On a GPU the wall times say nothing about this CPU: there the sweep is for accuracy per epoch, and
`trainwell summary` measures what an epoch of each architecture costs here.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the annotations only: torch is imported where a run is scored
    import torch

AUG = ["--augment", "flip,translate=2"]
RECIPES: dict[str, list[str]] = {
    "default": [],  # what `trainwell train` does today
    # the default until 2026-11-27: the model named, so auto keeps its own defaults (width 32, lr 0.05, 10
    # epochs, no augmentation, no flip averaging)
    "previous-default": ["--model", "convnet"],
    "flip": ["--augment", "flip"],
    "translate": ["--augment", "translate=2"],
    "flip-translate": AUG,
    "flip-translate-ls0": [*AUG, "label_smoothing=0"],
    "flip-translate-ls0.2": [*AUG, "label_smoothing=0.2"],
    "flip-translate-bs256": [*AUG, "--batch-size", "256"],
    "flip-translate-bs64": [*AUG, "--batch-size", "64"],
    "flip-translate-wd1e-3": [*AUG, "weight_decay=0.001"],
    "flip-translate-drop0.3": [*AUG, "dropout=0.3"],
    "flip-translate-cosine": [*AUG, "schedule=cosine", "warmup=0.05"],
    "flip-translate-h256": [*AUG, "hidden=256"],
    "w48-flip-translate": [*AUG, "width=48"],
    "w64-flip-translate": [*AUG, "width=64"],
    "d3-flip-translate": [*AUG, "depth=3"],
    "w48-d3-flip-translate": [*AUG, "width=48", "depth=3"],
    "resnet8-flip-translate": [*AUG, "--model", "resnet", "depth=8"],
    "resnet14-flip-translate": [*AUG, "--model", "resnet", "depth=14"],
    "resnet20-flip-translate": [*AUG, "--model", "resnet", "depth=20"],
    "resnet8-w32-flip-translate": [*AUG, "--model", "resnet", "depth=8", "width=32"],
    # cheaper per epoch on the CPU (trainwell summary: width 16 ~0.5x, width 24 ~0.7x of width 32's epoch)
    "w16-flip": ["--augment", "flip", "width=16"],
    "w16-flip-translate": [*AUG, "width=16"],
    "w16-flip-lr0.1": ["--augment", "flip", "width=16", "--lr", "0.1"],
    "w16-flip-ls0": ["--augment", "flip", "width=16", "label_smoothing=0"],
    "w16-flip-bs64": ["--augment", "flip", "width=16", "--batch-size", "64"],
    "w16-flip-lr0.1-bs64": ["--augment", "flip", "width=16", "--lr", "0.1", "--batch-size", "64"],
    "w24-flip": ["--augment", "flip", "width=24"],
    "w24-flip-translate": [*AUG, "width=24"],
    "w32-flip-bs64": ["--augment", "flip", "--batch-size", "64"],
    "w16-d3-flip": ["--augment", "flip", "width=16", "depth=3"],
}
# Augmentation presets on one net (the default's: width 16, batch 64, 18 epochs), without flip averaging,
# so that only the training augmentation differs. With limit_train=5000: the reduced training set.
AUG_NET = ["--model", "convnet", "width=16", "--batch-size", "64", "--epochs", "18", "--tta", "none"]
AUG_PRESETS = {
    "none": "none",
    "flip": "flip",
    "shift": "translate=2",
    "flip-shift": "flip,translate=2",
    "affine": "flip,translate=2,rotate=10,scale=0.1",
    "elastic": "flip,elastic=34:4",
    "erase": "flip,erase=0.25",
    "affine-erase": "flip,translate=2,rotate=10,scale=0.1,erase=0.25",
}
RECIPES.update({f"aug-{k}": [*AUG_NET, "--augment", v] for k, v in AUG_PRESETS.items()})


def run(name: str, epochs: str, out: str, device: str, extra: list[str]) -> dict:
    args = RECIPES[name] + extra + ([] if epochs == "auto" else ["--epochs", epochs])
    cmd = [sys.executable, "-m", "trainwell", "train", "--quiet", "--out", out, "--name", f"{name}-e{epochs}",
           "--device", device, *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        return {"recipe": name, "epochs": epochs, "error": proc.stderr.strip().splitlines()[-1:]}
    run_dir = os.path.join(out, f"{name}-e{epochs}")
    with open(os.path.join(run_dir, "summary.json")) as f:
        s = json.load(f)
    with open(os.path.join(run_dir, "config.yaml")) as f:
        tta = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("tta:")), "none")
    return {"recipe": name, "args": " ".join(args) or "(defaults)", "epochs": s["epochs_run"], "tta": tta, "wall_s": round(wall, 1),
            "train_s": round(s["train_time_s"], 1), "acc": s["test_accuracy"], **flip_accuracy(run_dir, device),
            "params": s.get("params"), "flops": s.get("flops_per_example")}


def flip_accuracy(run_dir: str, device: str) -> dict[str, float]:
    """Test accuracy of the run's network alone, and of the mean softmax over each test image and its mirror."""
    import torch

    from trainwell.inference import load_run, scoring_set
    from trainwell.metrics import predict_logits

    r = load_run(run_dir, device)
    raw, y, _ = scoring_set(r)
    x = r.preprocess.apply(torch.as_tensor(raw))
    y = torch.as_tensor(y)
    plain = predict_logits(r.model, x, r.precision).softmax(1)  # load_run hands back the network alone
    both = plain + predict_logits(r.model, x.flip(3), r.precision).softmax(1)
    return {"acc_plain": _accuracy(plain, y), "acc_flip": _accuracy(both, y)}


def _accuracy(scores: "torch.Tensor", y: "torch.Tensor") -> float:
    """Top-1 accuracy counting a tie against the example, as trainwell's own metrics do."""
    return float(((scores >= scores.gather(1, y[:, None])).sum(1) == 1).double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="previous-default@10,default", help=f"comma-separated, or all: {', '.join(RECIPES)}")
    ap.add_argument("--epochs", default="auto", help="comma-separated epoch counts, each run for every recipe "
                    "(auto: what trainwell picks)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--parallel", type=int, default=1, help="runs at once (a GPU has room for several)")
    ap.add_argument("--out", default=None, help="run directories (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="also append each row to this file, one JSON line each")
    a, extra = ap.parse_known_args()
    names = list(RECIPES) if a.recipes == "all" else a.recipes.split(",")
    out = a.out or tempfile.mkdtemp(prefix="recipes-")
    # name or name@epochs: each recipe at --epochs, or at its own epoch count
    jobs = [(n.split("@")[0], n.split("@")[1]) if "@" in n else (n, e)
            for e in a.epochs.split(",") for n in names]
    jobs = list(dict.fromkeys(jobs))
    with ThreadPoolExecutor(a.parallel) as pool:
        rows = []
        for row in pool.map(lambda j: run(j[0], j[1], out, a.device, extra), jobs):
            print(json.dumps(row), flush=True)
            rows.append(row)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
    base = next((r for r in rows if "wall_s" in r), None)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, device {a.device}, {os.cpu_count()} CPU cores, parallel {a.parallel}")
    print("| recipe | arguments | epochs | test accuracy (the run's own) | without / with flip averaging "
          "| training s | whole process s | wall vs first |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "error" in r:
            print(f"| {r['recipe']} | {r['epochs']} | failed: {r['error']} | | | | |")
            continue
        ratio = f"{r['wall_s'] / base['wall_s']:.2f}x" if base else ""
        print(f"| {r['recipe']} | `{r['args']}` | {r['epochs']} | **{r['acc']:.2%}** (tta {r['tta']}) "
              f"| {r['acc_plain']:.2%} / {r['acc_flip']:.2%} | {r['train_s']:.0f} | {r['wall_s']:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
