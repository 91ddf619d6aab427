"""What the layer monitors cost: the same training with them at their default interval and without, interleaved.

Each trial trains the default Fashion-MNIST recipe (or --args) for --epochs epochs in this process, once
with `monitor_every` auto and once with 0, alternating which goes first; the table shows the training
seconds (history time_s, validation excluded) and the ratio.

    python benchmarks/monitors.py                       # default recipe, 1 epoch, 3 trials
    python benchmarks/monitors.py --args data=digits model=mlp epochs=25
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import trainwell


def train_s(monitor_every: int | None, out: str, name: str, options: dict) -> float:
    run = trainwell.train(quiet=True, out=out, name=name, monitor_every=monitor_every, **options)
    return sum(r["time_s"] for r in run.history)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--args", nargs="*", default=[], metavar="key=value")
    a = ap.parse_args()
    options = {"epochs": a.epochs, **dict(x.split("=", 1) for x in a.args)}
    out = tempfile.mkdtemp(prefix="monitors-")
    on, off = [], []
    for t in range(a.trials):
        order = [(None, on), (0, off)] if t % 2 == 0 else [(0, off), (None, on)]
        for every, times in order:
            times.append(train_s(every, out, f"t{t}-{'on' if every is None else 'off'}", options))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, options {options}")
    print("| layer monitors | training s per trial | median | ratio |")
    print("| --- | --- | ---: | ---: |")
    for label, times in (("off", off), ("on (default interval)", on)):
        print(f"| {label} | {', '.join(f'{x:.1f}' for x in times)} | {statistics.median(times):.1f} | "
              f"{statistics.median(times) / statistics.median(off):.3f}x |")


if __name__ == "__main__":
    main()
