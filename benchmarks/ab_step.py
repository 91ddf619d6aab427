"""Interleaved A/B of trainwell's training step against a hand-tuned loop, in one process.

    python benchmarks/ab_step.py                          # convnet and mlp, batches 128 and 512 (~3 min)
    python benchmarks/ab_step.py --models mlp --batch-sizes 128 --reps 100

throughput.py measures every loop in its own fresh process, which is fair on peak memory but lets
machine noise and process state land on one loop and not the other. Here the two loops alternate in
short blocks inside one process (same data, same threads, same precision: bf16 autocast, channels_last
for the conv net, plain cross-entropy, SGD with momentum), and the median of the blocks is reported.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from throughput import load_data, mlp_net, reference_net, write_section  # noqa: E402


def measure(model: str, bs: int, reps: int, block_steps: int) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    from trainwell.config import Config
    from trainwell.precision import choose_precision
    from trainwell.auto import resolve
    from trainwell.trainer import Trainer

    splits = load_data(54000)
    is_conv = model == "convnet"
    policy = choose_precision("auto", "auto", is_conv)
    make = reference_net if is_conv else mlp_net
    torch.manual_seed(0)
    cfg = Config(model=model, batch_size=bs, epochs=1, weight_decay=0.0, label_smoothing=0.0, checkpoint_every=0,
                 schedule="constant", warmup=0.0)
    net = make()
    cfg, _ = resolve(cfg, splits, net)  # the Trainer takes a resolved config
    trainer = Trainer(net, splits, cfg, policy)
    batches = (b for epoch in range(10**6) for b in trainer.batches(epoch))

    net = make()
    x, y = splits.preprocess.apply(splits.x_train), splits.y_train  # plain torch: normalised floats in memory
    if policy.channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

    def plain() -> None:
        idx = torch.randint(0, len(y), (bs,))
        with policy.autocast():
            loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def trainwell_step() -> None:
        trainer.train_step(*next(batches))

    for _ in range(5):  # warm both up before anything is timed
        plain()
        trainwell_step()
    rates: dict[str, list[float]] = {"plain": [], "trainwell": []}
    ratios = []
    for r in range(reps):
        order = (("plain", plain), ("trainwell", trainwell_step))
        for name, step in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
            t = time.perf_counter()
            for _ in range(block_steps):
                step()
            rates[name].append(bs * block_steps / (time.perf_counter() - t))
        ratios.append(rates["trainwell"][-1] / rates["plain"][-1])  # a pair shares the machine's state
    return statistics.median(rates["plain"]), statistics.median(rates["trainwell"]), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="convnet,mlp")
    ap.add_argument("--batch-sizes", default="128,512")
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    lines = [f"Command: `python benchmarks/ab_step.py {' '.join(sys.argv[1:])}`  ",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores; {a.reps} pairs of short "
             "blocks (the two loops back to back, alternating which goes first); median samples/s of each, and "
             "the median of the per-pair ratios (the machine's speed drifts by up to 2x over seconds; a pair "
             "shares it).", "",
             "| model | batch | hand-tuned loop | trainwell | trainwell / tuned (median of pairs) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for model in a.models.split(","):
        for bs in [int(b) for b in a.batch_sizes.split(",")]:
            steps = max(2, 1024 // bs) if model == "convnet" else 20
            plain, tw, ratio = measure(model, bs, a.reps, steps)
            lines.append(f"| {model} | {bs} | {plain:,.0f} | {tw:,.0f} | {ratio:.2f}x |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        write_section(a.results, "ab_step", text)


if __name__ == "__main__":
    main()
