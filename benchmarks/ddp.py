"""Data-parallel training: 1 process against `--nproc 2` (torchrun, gloo on loopback), same global batch.

    python benchmarks/ddp.py                 # Fashion-MNIST, default conv net, 20,000 images, 2 epochs, 2 rounds
    python benchmarks/ddp.py --nproc 2,4 --rounds 1

Each configuration is a whole `trainwell train` process (for N > 1: `--nproc N`, one thread per process on
2 cores; 1 process uses both cores), interleaved over rounds. Reported: training samples/s of the last
epoch (global: every rank's examples), test accuracy, and whole-process wall time. On this 2-core machine
the point is correctness, not speed: two processes split the same two cores and add an all-reduce per
step. On a GPU machine (NCCL) the same script measures scaling across GPUs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from throughput import write_section  # noqa: E402


def one(nproc: int, out: str, name: str, args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "trainwell", "train", *args, "--out", out, "--name", name, "--quiet"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    run = os.path.join(out, name)
    history = [json.loads(line) for line in open(os.path.join(run, "history.jsonl"))]
    summary = json.load(open(os.path.join(run, "summary.json")))
    return {"samples_per_s": history[-1]["samples_per_s"], "accuracy": summary["test_accuracy"], "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", default="2", help="process counts to compare with 1, e.g. 2,4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit-train", type=int, default=20000)
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    counts = [1] + [int(n) for n in a.nproc.split(",")]
    args = ["--data", "fashion-mnist", "--epochs", str(a.epochs), "--limit-train", str(a.limit_train),
            "--batch-size", "128"]
    out = tempfile.mkdtemp(prefix="tw-ddp-")
    found: dict[int, list[dict]] = {n: [] for n in counts}
    for r in range(a.rounds):
        for n in counts:
            found[n].append(one(n, out, f"n{n}-r{r}", args))
            print(f"round {r + 1}: {n} process(es): {found[n][-1]}", flush=True)
    base = statistics.median(x["samples_per_s"] for x in found[1])
    rows = ["| processes | train samples/s (median) | vs 1 process | test accuracy | whole process s (median) |",
            "| --- | --- | --- | --- | --- |"]
    for n in counts:
        sps = statistics.median(x["samples_per_s"] for x in found[n])
        acc = ", ".join(f"{x['accuracy']:.2%}" for x in found[n])
        wall = statistics.median(x["wall"] for x in found[n])
        rows.append(f"| {n} | {sps:,.0f} | {sps / base:.2f}x | {acc} | {wall:.0f} |")
    table = "\n".join(rows)
    print(table)
    if not a.no_write:
        import torch

        text = (f"## Data-parallel training: 1 process vs torchrun (issue 13)\n\n"
                f"`python benchmarks/ddp.py --nproc {a.nproc} --rounds {a.rounds}` on {time.strftime('%Y-%m-%d')}, "
                f"{os.cpu_count()} CPU cores, torch {torch.__version__}: `trainwell train {' '.join(args)}` "
                "(default conv net), global batch 128 in every configuration; N > 1 is `--nproc N` (gloo on "
                "loopback, one thread per process), interleaved over rounds.\n\n" + table)
        write_section(a.results, "ddp", text)


if __name__ == "__main__":
    main()
