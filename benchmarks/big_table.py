"""A 1,000,000-row x 20-column CSV (16 numeric columns with 5% empty cells, 4 text columns of 3 - 200 values, a
3-class label): how long loading takes (read + roles + encoding) and the peak memory of loading, and of a whole
`trainwell train --epochs 1` process, against the file's own size and pandas' read_csv of the same file.

    python benchmarks/big_table.py [--rows 1000000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_csv(path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    cols = {}
    signal = np.zeros(rows)
    for j in range(16):
        v = rng.normal(size=rows) * (10 ** (j % 4))
        signal += v / (10 ** (j % 4)) * (1 if j < 4 else 0)
        cols[f"x{j}"] = pa.array(np.where(rng.random(rows) < 0.05, np.nan, v), from_pandas=True)
    for j, k in enumerate((3, 12, 50, 200)):
        codes = rng.integers(0, k, rows)
        signal += (codes % 3 == 0) * 0.5
        cols[f"c{j}"] = pa.array(np.array([f"v{i}" for i in range(k)])[codes])
    cut = np.quantile(signal, [1 / 3, 2 / 3])
    cols["label"] = pa.array(np.array(["low", "mid", "high"])[np.searchsorted(cut, signal)])
    pacsv.write_csv(pa.table(cols), path)


WRAP = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mb_of(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MB) of one process (run under a wrapper of its own, so that no other child's
    peak is counted)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], check=True, capture_output=True, text=True)
    return time.perf_counter() - t, int(out.stdout.split()[-1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.csv")
        t = time.perf_counter()
        write_csv(path, a.rows)
        print(f"wrote {a.rows:,} rows x 20 columns: {os.path.getsize(path) / 2**20:,.0f} MB in {time.perf_counter() - t:.1f} s")
        load = ("from trainwell.data import load_source; import time; t = time.perf_counter(); "
                f"s = load_source({path!r}, label='label'); print(time.perf_counter() - t)")
        out = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=True)
        wall, peak = peak_mb_of([sys.executable, "-c", load])
        print(f"trainwell load_source (read + roles + encode): {float(out.stdout.split()[-1]):.1f} s; "
              f"the whole process peaks at {peak:,.0f} MB")
        pandas = f"import pandas as pd, time; t = time.perf_counter(); pd.read_csv({path!r}); print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", pandas], capture_output=True, text=True, check=True)
        print(f"pandas read_csv alone (its default engine): {float(out.stdout.split()[-1]):.1f} s")
        wall, peak = peak_mb_of([sys.executable, "-m", "trainwell", "train", "--data", path, "--label", "label",
                                 "--epochs", "1", "--out", os.path.join(tmp, "runs"), "--name", "big", "--quiet"])
        print(f"trainwell train --epochs 1 (load, 720,000 training rows, validate, test 200,000): {wall:.0f} s, "
              f"peak {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
