"""The doctor's battery: deliberately broken runs and healthy ones, over seeds; then the prescriptions.

For each case and seed: `trainwell doctor` with the case's options, then `trainwell train` and
`trainwell diagnose`. The answer is doctor's first problem if it finds one (before the run), else the
diagnosis' verdict. Right: the answer is one of the case's codes. Then the prescription of that finding
is run as printed; fixed: the problem's code is gone from doctor and diagnosis of the new run, and its
test accuracy is higher. Healthy cases: any warning or failure is a false alarm.

    python benchmarks/doctor.py                 # 12 broken kinds + 6 healthy set-ups, 3 seeds
    python benchmarks/doctor.py --seeds 0 --cases lr-far-too-high,zero-init
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "broken_models.py")
FAST = ["--precision", "fp32", "--device", "cpu"]

# name -> (train arguments, codes that are right)
BROKEN: dict[str, tuple[list[str], set[str]]] = {
    # recoveries 0: the run fails as it would without trainwell's recovery (with it, it recovers on its own)
    "lr-far-too-high": (["--data", "digits", "--model", "mlp", "--lr", "5", "--recoveries", "0"],
                        {"lr-too-high", "diverged"}),
    "lr-far-too-low": (["--data", "digits", "--model", "mlp", "--lr", "0.0005"], {"lr-too-low"}),
    "net-far-too-small": (["--data", "digits", "--model", "mlp", "--hidden", "2"], {"underfitting"}),
    "big-net-few-samples": (["--data", "digits", "--model", "mlp", "--hidden", "512,512", "--limit-train", "300",
                             "--epochs", "60", "--weight-decay", "0", "--label-smoothing", "0", "--schedule",
                             "constant", "--lr", "0.1"], {"overfitting"}),
    "deep-sigmoid": (["--data", "digits", "--model", "mlp", "--activation", "sigmoid", "--hidden",
                      ",".join(["32"] * 12)], {"vanishing-gradients", "saturated-units"}),
    "zero-init": (["--data", "digits", "--model", f"{MODELS}:zero_init"], {"symmetric-init"}),
    "shuffled-labels": (["--data", "{shuffled}", "--model", "mlp"], {"chance-level"}),
    "softmax-inside": (["--data", "digits", "--model", f"{MODELS}:softmax_inside"], {"output-activation"}),
    "ignores-input": (["--data", "digits", "--model", f"{MODELS}:ignores_input"], {"ignores-input"}),
    "wrong-backward": (["--data", "digits", "--model", f"{MODELS}:wrong_backward"], {"gradient-check"}),
    "batch-1-high-lr": (["--data", "digits", "--model", "mlp", "--batch-size", "1", "--lr", "0.05", "--epochs", "5"],
                        {"oscillating", "lr-too-high"}),
    "dying-relu": (["--data", "digits", "--model", f"{MODELS}:dying_relu"], {"dead-units"}),
}
# Held out: other data, models written another way (benchmarks/broken_heldout.py); not tuned on.
HELD = os.path.join(HERE, "broken_heldout.py")
F2K = ["--data", "fashion-mnist", "--limit-train", "2000", "--epochs", "5"]
HELDOUT: dict[str, tuple[list[str], set[str]]] = {
    "ho-lr-far-too-high-breast": (["--data", "{breast_cancer}", "--model", "mlp", "--lr", "5", "--recoveries", "0"],
                                  {"lr-too-high", "diverged"}),
    "ho-lr-far-too-low-adam-wine": (["--data", "{wine}", "--optimizer", "adam", "--lr", "0.000001"], {"lr-too-low"}),
    "ho-net-far-too-small-fashion": ([*F2K, "--model", "mlp", "--hidden", "1"], {"underfitting"}),
    "ho-overfit-fashion-300": (["--data", "fashion-mnist", "--limit-train", "300", "--model", "mlp", "--hidden",
                                "512,512", "--epochs", "60", "--weight-decay", "0", "--label-smoothing", "0",
                                "--schedule", "constant", "--lr", "0.1"], {"overfitting"}),
    "ho-deep-sigmoid-breast": (["--data", "{breast_cancer}", "--model", "mlp", "--activation", "sigmoid", "--hidden",
                                ",".join(["32"] * 14)], {"vanishing-gradients", "saturated-units"}),
    "ho-shuffled-breast": (["--data", "{breast_shuffled}", "--model", "mlp"], {"chance-level"}),
    "ho-functional-softmax-wine": (["--data", "{wine}", "--model", f"{HELD}:functional_softmax"],
                                   {"output-activation"}),
    "ho-zero-init-conv-fashion": ([*F2K, "--model", f"{HELD}:zero_init_conv"], {"symmetric-init"}),
    "ho-dropped-features-fashion": ([*F2K, "--model", f"{HELD}:dropped_features"], {"ignores-input"}),
    "ho-wrong-tanh-backward-wine": (["--data", "{wine}", "--model", f"{HELD}:wrong_tanh_backward"], {"gradient-check"}),
}
HEALTHY_HELDOUT: dict[str, list[str]] = {
    "ho-wine-adam": ["--data", "{wine}", "--optimizer", "adam"],
    "ho-fashion-2k-mlp": [*F2K, "--model", "mlp"],
    "ho-breast-cancer-own-model": ["--data", "{breast_cancer}", "--model", f"{HELD}:healthy_net"],
    "ho-fashion-2k-own-conv": [*F2K, "--model", f"{HELD}:healthy_net"],
}
HEALTHY: dict[str, list[str]] = {
    "digits-mlp": ["--data", "digits", "--model", "mlp"],
    "digits-convnet": ["--data", "digits"],
    "breast-cancer": ["--data", "{breast_cancer}"],
    "wine": ["--data", "{wine}"],
    "iris": ["--data", "{iris}"],
    "fashion-2k": ["--data", "fashion-mnist", "--limit-train", "2000", "--epochs", "5"],
}


def data_files(folder: str, seed: int) -> dict[str, str]:
    from sklearn import datasets

    out = {}
    d = datasets.load_digits()
    y = np.random.default_rng(seed).permutation(d.target)
    out["shuffled"] = os.path.join(folder, f"digits-shuffled-{seed}.npz")
    np.savez(out["shuffled"], x=d.data.astype(np.float32), y=y)
    b = datasets.load_breast_cancer()
    out["breast_shuffled"] = os.path.join(folder, f"breast-shuffled-{seed}.npz")
    np.savez(out["breast_shuffled"], x=b.data.astype(np.float32), y=np.random.default_rng(seed).permutation(b.target))
    for name in ("breast_cancer", "wine", "iris"):
        b = getattr(datasets, f"load_{name}")()
        out[name] = os.path.join(folder, f"{name}.npz")
        np.savez(out[name], x=b.data.astype(np.float32), y=b.target)
    return out


def tw(args: list[str]) -> tuple[int, str]:
    import subprocess

    p = subprocess.run([sys.executable, "-m", "trainwell", *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def examine(args: list[str], out: str, name: str) -> dict:
    """doctor, then train + diagnose: every finding that is not a pass, and the test accuracy."""
    t = time.perf_counter()
    _, text = tw(["doctor", *args, *FAST, "--json"])
    doc = json.loads(text[text.index("{"):]) if "{" in text else {"verdict": "error", "findings": []}
    doctor_s = time.perf_counter() - t
    code, text = tw(["train", *args, *FAST, "--quiet", "--out", out, "--name", name])
    diag_path = os.path.join(out, name, "diagnosis.json")
    diag = json.load(open(diag_path)) if os.path.exists(diag_path) else {"verdict": "error", "findings": []}
    summary_path = os.path.join(out, name, "summary.json")
    acc = json.load(open(summary_path))["test_accuracy"] if os.path.exists(summary_path) else 0.0
    problems = [f for f in doc["findings"] if f["status"] != "pass"]
    source = doc if problems else diag
    answer = source["verdict"]
    finding = next((f for f in source["findings"] if f["check"] == answer), None)
    all_codes = {f["check"] for f in problems} | {f["check"] for f in diag["findings"] if f["status"] != "pass"}
    return {"answer": answer, "codes": sorted(all_codes), "command": (finding or {}).get("command", ""),
            "acc": acc, "doctor_s": round(doctor_s, 1), "train_exit": code}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cases", default="all", help="comma-separated broken or healthy case names")
    ap.add_argument("--battery", default="main", choices=("main", "heldout", "all"),
                    help="main: the 12 kinds the rules were built on; heldout: other data, models written otherwise")
    ap.add_argument("--no-fix", action="store_true", help="skip running the prescriptions")
    ap.add_argument("--json", help="append each row to this file")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    pick = None if a.cases == "all" else set(a.cases.split(","))
    out = tempfile.mkdtemp(prefix="doctor-bench-")
    rows = []
    for seed in seeds:
        files = data_files(out, seed)
        broken = {**(BROKEN if a.battery != "heldout" else {}), **(HELDOUT if a.battery != "main" else {})}
        healthy = {**(HEALTHY if a.battery != "heldout" else {}), **(HEALTHY_HELDOUT if a.battery != "main" else {})}
        for kind, cases in (("broken", broken), ("healthy", {k: (v, {"healthy"}) for k, v in healthy.items()})):
            for name, (args, right) in cases.items():
                if pick and name not in pick:
                    continue
                args = [x.format(**files) for x in args] + ["--seed", str(seed)]
                r = {"case": name, "kind": kind, "seed": seed, **examine(args, out, f"{name}-{seed}")}
                r["right"] = r["answer"] in right if kind == "broken" else not r["codes"]
                if kind == "broken" and r["right"] and not a.no_fix:
                    r["fixed"] = False
                    if r["command"].startswith("trainwell train"):
                        fix = shlex.split(r["command"])[2:] + FAST
                        if "--name" in fix:  # examine names the run itself
                            i = fix.index("--name")
                            del fix[i:i + 2]
                        after = examine(fix, out, f"{name}-{seed}-fix")
                        r["fix"] = {"codes": after["codes"], "acc": after["acc"]}
                        r["fixed"] = r["answer"] not in after["codes"] and after["acc"] > r["acc"]
                print(json.dumps(r), flush=True)
                rows.append(r)
                if a.json:
                    with open(a.json, "a") as f:
                        f.write(json.dumps(r) + "\n")
    report(rows)


def report(rows: list[dict]) -> None:
    broken = [r for r in rows if r["kind"] == "broken"]
    healthy = [r for r in rows if r["kind"] == "healthy"]
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores")
    print("| case | seeds | right code | answers | prescription fixed it | doctor s |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for name in dict.fromkeys(r["case"] for r in rows):
        rs = [r for r in rows if r["case"] == name]
        fixed = [r for r in rs if "fixed" in r]
        print(f"| {name} | {len(rs)} | {sum(r['right'] for r in rs)}/{len(rs)} | "
              f"{', '.join(sorted(set(r['answer'] for r in rs)))} | "
              f"{sum(r['fixed'] for r in fixed)}/{len(fixed) if fixed else '-'} | "
              f"{np.mean([r['doctor_s'] for r in rs]):.1f} |")
    if broken:
        fixed = [r for r in broken if "fixed" in r]
        print(f"\nbroken runs with the right code: {sum(r['right'] for r in broken)}/{len(broken)} "
              f"({np.mean([r['right'] for r in broken]):.0%})")
        if fixed:
            print(f"prescriptions that fixed the problem: {sum(r['fixed'] for r in fixed)}/{len(broken)} of all broken "
                  f"runs ({sum(r['fixed'] for r in fixed) / len(broken):.0%})")
    if healthy:
        alarms = [r for r in healthy if not r["right"]]
        print(f"healthy runs with any warning or failure: {len(alarms)}/{len(healthy)} "
              f"({len(alarms) / len(healthy):.0%})" + (f": {[(r['case'], r['codes']) for r in alarms]}" if alarms else ""))


if __name__ == "__main__":
    main()
