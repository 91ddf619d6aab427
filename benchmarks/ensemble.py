"""An ensemble of K default `trainwell train` runs (seeds 0..K-1) against its members, on Fashion-MNIST.

    python benchmarks/ensemble.py                    # 3 members of 3 epochs each (~6 min on 2 cores)
    python benchmarks/ensemble.py --members 5 --epochs 10
    python benchmarks/ensemble.py --data /tmp/tw_image_zoo/sets/colour_digits --epochs 0    # an image folder
    python benchmarks/ensemble.py --data penguins.csv --label species --epochs 0            # a table
(--epochs 0: trainwell's own choice; each --data gets its own section of RESULTS.md.)

Each member is a whole `trainwell train --epochs E seed=S` process; the ensemble averages their class
probabilities on the 10,000 test images (`trainwell ensemble`, arithmetic mean; the geometric mean is
reported too). The course: an ensemble of K networks beats its average member.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from throughput import write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--label", default=None, help="a CSV's label column")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    import trainwell

    out = tempfile.mkdtemp(prefix="tw-ensemble-")
    exe = [sys.executable, "-m", "trainwell", "train", "--data", a.data, "--quiet", "--out", out]
    exe += ["--epochs", str(a.epochs)] if a.epochs else []
    exe += ["--label", a.label] if a.label else []
    dirs = []
    t0 = time.perf_counter()
    for seed in range(a.members):
        subprocess.run(exe + ["--name", f"s{seed}", f"seed={seed}"], check=True)
        dirs.append(os.path.join(out, f"s{seed}"))
    train_s = time.perf_counter() - t0
    arith = trainwell.evaluate_ensemble(dirs)
    geo = trainwell.evaluate_ensemble(dirs, geometric=True)
    lines = [f"Command: `python benchmarks/ensemble.py {' '.join(sys.argv[1:])}`  ",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores; {a.members} default runs of "
             f"{a.epochs or 'auto'} epochs on {a.data} (seeds 0..{a.members - 1}, {train_s:.0f} s of training processes); "
             f"test accuracy on the {arith['examples']:,} test examples.", "",
             "| model | test accuracy | top-5 error | test loss |", "| --- | ---: | ---: | ---: |"]
    for m in arith["members"]:
        lines.append(f"| member {os.path.basename(m['run'])} | {1 - m['error']:.2%} | {m.get('top5_error', 0):.2%} | "
                     f"{m['loss']:.4f} |")
    lines.append(f"| mean of the members | {1 - arith['members_mean_error']:.2%} | | |")
    for name, r in (("ensemble, arithmetic mean", arith), ("ensemble, geometric mean", geo)):
        e = r["ensemble"]
        lines.append(f"| **{name}** | **{1 - e['error']:.2%}** | {e.get('top5_error', 0):.2%} | {e['loss']:.4f} |")
    gain = arith["members_mean_error"] - arith["ensemble"]["error"]
    lines += ["", f"Ensemble vs its average member: {gain * 100:+.2f} points of test accuracy."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        key = "ensemble" if a.data == "fashion-mnist" else f"ensemble-{os.path.basename(a.data.rstrip('/'))}"
        write_section(a.results, key, text)


if __name__ == "__main__":
    main()
