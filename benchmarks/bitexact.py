"""Fingerprints of three runs, to show that a refactor changed no number: the default Fashion-MNIST run
(its first epochs), the digits MLP, and a 2-process (torchrun) run. Each fingerprint is a sha256 over the
history (timing fields left out), the kept weights and the test metrics.

    python benchmarks/bitexact.py --out /tmp/fp/before.json     # on the old revision
    python benchmarks/bitexact.py --out /tmp/fp/after.json --compare /tmp/fp/before.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

RUNS = {
    "fashion-default": ["--epochs", "2", "--limit-train", "12000"],
    "digits-mlp": ["--data", "digits", "--model", "mlp", "--hidden", "64", "--epochs", "5"],
    "digits-2proc": ["--data", "digits", "--model", "mlp", "--hidden", "64", "--epochs", "3", "--nproc", "2"],
}
TIMING = ("time_s", "samples_per_s")


def fingerprint(run_dir: str) -> dict[str, str]:
    from safetensors.numpy import load_file

    history = [json.loads(line) for line in open(os.path.join(run_dir, "history.jsonl"))]
    history = [{k: v for k, v in r.items() if k not in TIMING} for r in history]
    weights = load_file(os.path.join(run_dir, "model.safetensors"))
    h = hashlib.sha256()
    for k in sorted(weights):
        h.update(k.encode() + weights[k].tobytes())
    test = json.load(open(os.path.join(run_dir, "summary.json")))["test"]
    return {"history": hashlib.sha256(json.dumps(history, sort_keys=True).encode()).hexdigest()[:16],
            "weights": h.hexdigest()[:16], "test": json.dumps(test, sort_keys=True), "epochs": str(len(history))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare")
    ap.add_argument("--only", default=",".join(RUNS))
    a = ap.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only.split(","):
            cmd = [sys.executable, "-m", "trainwell", "train", *RUNS[name], "--out", tmp, "--name", name, "--quiet",
                   "--precision", "fp32"]
            subprocess.run(cmd, check=True)
            result[name] = fingerprint(os.path.join(tmp, name))
            print(name, result[name], flush=True)
    json.dump(result, open(a.out, "w"), indent=1)
    if a.compare:
        before = json.load(open(a.compare))
        same = {n: before.get(n) == fp for n, fp in result.items()}
        for n, ok in same.items():
            print(f"{n}: {'identical to the bit' if ok else 'DIFFERENT'}")
        return 0 if all(same.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
