"""The symptoms of the doctor battery's broken model files, checked in plain PyTorch (no trainwell in the loop):
each broken model and a healthy control of the same kind train with the same hand-written loop on the same
data, and the test accuracies are printed side by side. Where the bug does not cost accuracy (a model that
centres by its batch's mean), the symptom it has is printed instead: the change of one example's output when
the rest of its batch changes, in evaluation mode.

    python benchmarks/broken_symptoms.py              # every model file of benchmarks/doctor.py, seeds 1, 2
    python benchmarks/broken_symptoms.py --seeds 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broken_heldout  # noqa: E402
import broken_models  # noqa: E402
import broken_round3  # noqa: E402
import doctor  # noqa: E402  (the battery: its cases name the model files and the data)


def arrays(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) or (N, D) float32 and y of the battery's data, as its cases name them."""
    from sklearn import datasets

    if name == "digits":
        d = datasets.load_digits()
        return d.data.reshape(-1, 1, 8, 8).astype(np.float32), d.target
    if name == "fashion-mnist":
        from trainwell.data import load_source  # reading the Debian package's files: no training in it

        src = load_source("fashion-mnist")
        keep = np.random.default_rng(0).permutation(len(src.y))[:2500]  # 2,000 to train, as the cases limit it
        return src.x[keep].astype(np.float32), src.y[keep]
    d = getattr(datasets, f"load_{name.strip('{}')}")()
    return d.data.astype(np.float32), d.target


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 15) -> tuple[float, float]:
    """SGD with momentum 0.9, lr 0.05, batch 32, standardised inputs, 80/20 split: test accuracy, and how much
    example 0's output moves when its batch companions change (evaluation mode)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    mean, std = x[order[:cut]].mean(0), x[order[:cut]].std(0) + 1e-6
    xt = torch.tensor((x - mean) / std)
    yt = torch.tensor(y, dtype=torch.long)
    tr, te = torch.tensor(order[:cut]), torch.tensor(order[cut:])
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9) if params else None
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in tr[torch.randperm(len(tr), generator=g)].split(32):
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            if opt is None or not torch.isfinite(loss):
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float(sum((net(xt[b]).argmax(1) == yt[b]).sum() for b in te.split(256)) / len(te))
        a = net(xt[te[:16]])[0]
        b = net(torch.cat([xt[te[:1]], xt[te[16:31]]]))[0]
    return acc, float((a - b).abs().max() / (a.abs().max() + 1e-6))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--cases", default="", help="names, comma-separated, or a prefix ending in '*' (default: all)")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    cases = {**doctor.BROKEN, **doctor.HELDOUT}
    if a.cases:
        wanted = a.cases.split(",")
        cases = {k: v for k, v in cases.items()
                 if k in wanted or any(w.endswith("*") and k.startswith(w[:-1]) for w in wanted)}
    rows = []
    for name, (args, _) in cases.items():
        model = args[args.index("--model") + 1] if "--model" in args else ""
        if ":" not in model:
            continue
        path, function = model.rsplit(":", 1)
        module, healthy = {"broken_heldout.py": (broken_heldout, broken_heldout.healthy_net),
                           "broken_round3.py": (broken_round3, broken_round3._Net)}.get(
            os.path.basename(path), (broken_models, broken_models._mlp))
        data = args[args.index("--data") + 1]
        accs, controls, mixing = [], [], []
        for seed in seeds:
            x, y = arrays(data, seed)
            shape, classes = list(x.shape[1:]), int(y.max()) + 1
            torch.manual_seed(seed)
            acc, mix = train(getattr(module, function)(shape, classes), x, y, seed)
            torch.manual_seed(seed)
            control, _ = train(healthy(shape, classes), x, y, seed)
            accs.append(acc), controls.append(control), mixing.append(mix)
        rows.append((name, data, np.mean(accs), min(accs), np.mean(controls), max(mixing)))
        print(f"{name}: {np.mean(accs):.1%} vs control {np.mean(controls):.1%}", flush=True)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, seeds {a.seeds}, plain PyTorch (SGD momentum, 15 epochs)")
    print("| case | data | broken: test acc (min) | control | output change with the batch (eval) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, data, acc, low, control, mix in rows:
        print(f"| {name} | {data.strip('{}')} | {acc:.1%} ({low:.1%}) | {control:.1%} | {mix:.2g} |")


if __name__ == "__main__":
    main()
