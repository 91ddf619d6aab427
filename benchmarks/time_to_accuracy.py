"""Wall time of a whole `trainwell train` process to 92%, 93%, 94% Fashion-MNIST test accuracy.

    python benchmarks/time_to_accuracy.py                  # default recipe at 4, 6, 8 and 10 epochs (~9 min)
    python benchmarks/time_to_accuracy.py --epochs 10      # only the default run (~2.5 min)

The test set is looked at once per run, at the end, so "time to X%" is the wall time of the shortest run
(fewer epochs, same recipe: the schedule is fitted to the epoch budget) whose test accuracy reaches X.
Wall time is the whole process, from `trainwell train` starting to it exiting (Python start-up, imports,
data loading, training, test evaluation, writing the run directory); installing packages is excluded.
A plain fp32 run of the same recipe is measured in the same invocation as the baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from throughput import write_section  # noqa: E402

THRESHOLDS = (0.92, 0.93, 0.94)


def run(epochs: int, out: str, extra: list[str]) -> dict:
    name = f"e{epochs}-{'-'.join(extra).replace('-', '') or 'default'}"
    cmd = [sys.executable, "-m", "trainwell", "train", "--epochs", str(epochs), "--quiet", "--out", out,
           "--name", name, *extra]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    with open(os.path.join(out, name, "summary.json")) as f:
        s = json.load(f)
    return {"epochs": epochs, "args": " ".join(extra) or "(defaults)", "wall_s": wall, "acc": s["test_accuracy"],
            "train_s": s["train_time_s"], "precision": s["precision"]["precision"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", default="4,6,8,10")
    ap.add_argument("--baseline", default="--precision fp32", help="extra flags of the baseline run ('' for none)")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="tta-")
    rows = []
    for e in [int(x) for x in a.epochs.split(",")]:
        rows.append(run(e, out, []))
        print(rows[-1], flush=True)
    base = None
    if a.baseline:
        base = run(max(int(x) for x in a.epochs.split(",")), out, a.baseline.split())
        print(base, flush=True)
    lines = [f"Command: `python benchmarks/time_to_accuracy.py --epochs {a.epochs}`  ",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores. Whole-process wall time.", "",
             "| run | epochs | precision | test accuracy | training s | whole process s |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for r in rows + ([base] if base else []):
        lines.append(f"| trainwell train {r['args']} | {r['epochs']} | {r['precision']} | {r['acc']:.2%} | "
                     f"{r['train_s']:.0f} | {r['wall_s']:.0f} |")
    lines += ["", "| target | wall time of the shortest default run that reaches it |", "| --- | ---: |"]
    for th in THRESHOLDS:
        hit = [r for r in rows if r["acc"] >= th]
        lines.append(f"| {th:.0%} | " + (f"{min(r['wall_s'] for r in hit):.0f} s ({min(hit, key=lambda r: r['wall_s'])['epochs']} "
                                          "epochs)" if hit else "not reached") + " |")
    if base:
        best = max(rows, key=lambda r: r["epochs"])
        lines += ["", f"bf16 vs fp32 at {best['epochs']} epochs: accuracy {best['acc']:.2%} vs {base['acc']:.2%} "
                  f"({(best['acc'] - base['acc']) * 100:+.2f} points), wall {best['wall_s']:.0f} s vs "
                  f"{base['wall_s']:.0f} s ({base['wall_s'] / best['wall_s']:.2f}x faster)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        write_section(a.results, "time_to_accuracy", text)


if __name__ == "__main__":
    main()
