"""The default `trainwell train` against scikit-learn's MLPClassifier on small data sets built offline.

    python benchmarks/small_data.py                          # every set, seed 0 (~2 min, 1 thread each)
    python benchmarks/small_data.py --sets iris,shapes --no-write
    python benchmarks/small_data.py --extra "epochs=40 batch_size=64" --no-write
    python benchmarks/small_data.py --seeds 0,1,2            # mean over seeds (split + init)

Every set is generated without a download (scikit-learn's bundled sets, its generators, the `mnist1d`
package's template generator, and a synthetic "shapes on random colours" image folder), written to
--work (default /tmp/tw_small_data) as CSV, flat .npz or a PNG folder, exactly as a user would hand them
to trainwell.

Per set and seed:
  sklearn    make_pipeline(StandardScaler(), MLPClassifier(early_stopping=True, random_state=seed)),
             everything else at scikit-learn's defaults; images are given as flattened pixels in [0, 1].
  trainwell  `trainwell train --data PATH [--label label] --quiet --out WORK/runs --name NAME
             --threads T [seed=S] [--extra ...]` as a subprocess; test accuracy, epochs_run, best_epoch
             and fit_wall_s are read from RUN/summary.json.
Both see the same test set: sets without their own test split use trainwell's seeded stratified 20% split
(trainwell.data.splits.stratified_split(y, 0.2, seed), the call trainwell itself makes, on the rows in the
order trainwell reads them); MLPClassifier then holds out its own 10% for early stopping, as trainwell
holds out 10% for validation. mnist1d keeps its package's own 4,000 / 1,000 train/test split (x_test in
the .npz). Both run on --threads threads (default 1) so their wall times compare.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from throughput import write_section  # noqa: E402

SETS = ("breast_cancer", "wine", "iris", "moons", "classification", "digits", "mnist1d", "shapes")


# --- data set builders: each writes its files under `work` and returns the path trainwell is given -------

def _write_csv(path: str, x: np.ndarray, y: np.ndarray, names: list[str]) -> str:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([n.replace(" ", "_") for n in names] + ["label"])
        for row, label in zip(x, y):
            w.writerow([repr(float(v)) for v in row] + [int(label)])
    return path


def build_breast_cancer(work: str) -> str:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _write_csv(os.path.join(work, "breast_cancer.csv"), d.data, d.target, list(d.feature_names))


def build_wine(work: str) -> str:
    from sklearn.datasets import load_wine

    d = load_wine()
    return _write_csv(os.path.join(work, "wine.csv"), d.data, d.target, list(d.feature_names))


def build_iris(work: str) -> str:
    from sklearn.datasets import load_iris

    d = load_iris()
    names = [n.replace(" (cm)", "_cm") for n in d.feature_names]
    return _write_csv(os.path.join(work, "iris.csv"), d.data, d.target, names)


def build_moons(work: str) -> str:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1000, noise=0.3, random_state=0)
    path = os.path.join(work, "moons.npz")
    np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64))
    return path


def build_classification(work: str) -> str:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=1000, n_features=20, n_informative=6, n_redundant=4, n_classes=3,
                               n_clusters_per_class=2, random_state=0)
    path = os.path.join(work, "classification.npz")
    np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64))
    return path


def build_digits(work: str) -> str:
    """scikit-learn's 8x8 digits (values 0..16) as grey PNGs scaled to 0..255, one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    root = os.path.join(work, "digits_png")
    pixels = np.clip(np.round(d.images * 255.0 / 16.0), 0, 255).astype(np.uint8)
    for i, (img, label) in enumerate(zip(pixels, d.target)):
        folder = os.path.join(root, str(label))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img, mode="L").save(os.path.join(folder, f"{i:05d}.png"))
    return root


def build_mnist1d(work: str) -> str:
    """The mnist1d package's generator (templates in code, no download): 4,000 train + 1,000 test, 40 values.

    Only `make_dataset` is called; `get_dataset` (which can download) is not."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        sys.exit("mnist1d: the benchmark-only package is missing; `.venv/bin/pip install mnist1d`, "
                 "or leave mnist1d out of --sets")

    d = make_dataset(get_dataset_args())  # seed 42, the package's default arguments
    path = os.path.join(work, "mnist1d.npz")
    np.savez(path, x=d["x"].astype(np.float32), y=d["y"].astype(np.int64),
             x_test=d["x_test"].astype(np.float32), y_test=d["y_test"].astype(np.int64))
    return path


SHAPES = ("circle", "square", "triangle", "cross", "ring", "hbar", "vbar", "diamond", "plus", "ellipse")


def _shape_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of one shape on a size x size canvas: random scale and position, drawn at 4x
    resolution and averaged down (soft edges)."""
    from PIL import Image, ImageDraw

    s = 4 * size
    r = rng.uniform(0.22, 0.42) * s                      # half-extent of the shape
    cx, cy = rng.uniform(r + 2, s - r - 2, size=2)
    im = Image.new("L", (s, s), 0)
    dr = ImageDraw.Draw(im)
    t = max(4.0, r * rng.uniform(0.28, 0.4))             # bar / stroke half-thickness
    if kind == "circle":
        dr.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif kind == "ring":
        dr.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ri = r * 0.55
        dr.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    elif kind == "ellipse":
        ry = r * rng.uniform(0.4, 0.55)
        if rng.random() < 0.5:
            dr.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=255)
        else:
            dr.ellipse([cx - ry, cy - r, cx + ry, cy + r], fill=255)
    elif kind == "square":
        q = r * 0.85
        dr.rectangle([cx - q, cy - q, cx + q, cy + q], fill=255)
    elif kind == "diamond":
        dr.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=255)
    elif kind == "triangle":
        dr.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=255)
    elif kind == "hbar":
        dr.rectangle([cx - r, cy - t, cx + r, cy + t], fill=255)
    elif kind == "vbar":
        dr.rectangle([cx - t, cy - r, cx + t, cy + r], fill=255)
    elif kind == "plus":
        dr.rectangle([cx - r, cy - t, cx + r, cy + t], fill=255)
        dr.rectangle([cx - t, cy - r, cx + t, cy + r], fill=255)
    elif kind == "cross":
        d = r * 0.8
        w = int(2 * t)
        dr.line([(cx - d, cy - d), (cx + d, cy + d)], fill=255, width=w)
        dr.line([(cx - d, cy + d), (cx + d, cy - d)], fill=255, width=w)
    small = im.resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def build_shapes(work: str, per_class: int = 180, size: int = 32, seed: int = 0) -> str:
    """10 shapes x `per_class` 32x32 RGB PNGs: random size, position, shape and background colours (at
    least ~100 apart in RGB so the shape stays visible), plus Gaussian pixel noise (sigma 8/255)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = os.path.join(work, "shapes_png")
    for k, kind in enumerate(SHAPES):
        folder = os.path.join(root, f"{k}_{kind}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            mask = _shape_mask(kind, size, rng)[:, :, None]
            while True:
                fg, bg = rng.uniform(0, 255, size=(2, 3))
                if np.linalg.norm(fg - bg) > 100:
                    break
            img = mask * fg + (1 - mask) * bg + rng.normal(0, 8, size=(size, size, 3))
            Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), mode="RGB").save(
                os.path.join(folder, f"{i:04d}.png"))
    return root


BUILDERS = {"breast_cancer": build_breast_cancer, "wine": build_wine, "iris": build_iris, "moons": build_moons,
            "classification": build_classification, "digits": build_digits, "mnist1d": build_mnist1d,
            "shapes": build_shapes}


# --- reading a built set back, in the order trainwell reads it -------------------------------------------

def load_arrays(path: str) -> dict[str, np.ndarray]:
    """x as float64 features (images: flattened pixels / 255), y as class indices; x_test/y_test if present."""
    if path.endswith(".csv"):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        data = np.array(rows[1:], dtype=np.float64)
        return {"x": data[:, :-1], "y": data[:, -1].astype(np.int64), "shape": [data.shape[1] - 1]}
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        out["shape"] = list(out["x"].shape[1:])
        return out
    from PIL import Image

    xs, ys = [], []
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    for label, name in enumerate(classes):
        for e in sorted(os.listdir(os.path.join(path, name))):
            with Image.open(os.path.join(path, name, e)) as im:
                a = np.asarray(im, dtype=np.uint8)
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(label)
    x = np.stack(xs)
    return {"x": x.reshape(len(x), -1) / 255.0, "y": np.array(ys, dtype=np.int64), "shape": list(x.shape[1:])}


def test_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """trainwell's own stratified 20% test split (same indices); scikit-learn's if trainwell lacks it."""
    try:
        from trainwell.data.splits import stratified_split

        return stratified_split(y, 0.2, seed)
    except ImportError:
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(y))
        return tuple(np.sort(a) for a in train_test_split(idx, test_size=0.2, stratify=y, random_state=seed))


# --- the two contenders -------------------------------------------------------------------------------

def run_sklearn(arrays: dict[str, np.ndarray], seed: int, threads: int,
                split: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
    import warnings

    x, y = arrays["x"].reshape(len(arrays["x"]), -1), arrays["y"]
    if "x_test" in arrays:
        xtr, ytr, xte, yte = x, y, arrays["x_test"].reshape(len(arrays["x_test"]), -1), arrays["y_test"]
    else:
        keep, test = split if split is not None else test_split(y, seed)
        xtr, ytr, xte, yte = x[keep], y[keep], x[test], y[test]
    clf = make_pipeline(StandardScaler(), MLPClassifier(early_stopping=True, random_state=seed))
    with threadpool_limits(limits=threads or None), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        clf.fit(xtr, ytr)
        acc = float((clf.predict(xte) == yte).mean())
        wall = time.perf_counter() - t
    return {"acc": acc, "wall": wall, "epochs": clf[-1].n_iter_, "n_test": len(yte)}


def run_sklearn_process(path: str, seed: int, threads: int) -> dict[str, float]:
    """run_sklearn in a fresh Python process (imports + data loading + fit + predict), timed from outside,
    as trainwell's whole process is: what a user waits for either way."""
    # The split is computed here (trainwell's function imports torch) and handed over as a file.
    split_file = os.path.join(os.path.dirname(path), f".split-{os.path.basename(path)}-{seed}.npz")
    arrays = load_arrays(path)
    if "x_test" not in arrays:
        keep, test = test_split(arrays["y"], seed)
        np.savez(split_file, keep=keep, test=test)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--sklearn-one", path, str(seed), str(threads),
                        split_file], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    return dict(json.loads(p.stdout.strip().splitlines()[-1]), process=wall)


def trainwell_exe() -> list[str]:
    exe = os.path.join(ROOT, ".venv", "bin", "trainwell")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "trainwell"]


def run_trainwell(path: str, name: str, work: str, seed: int | None, threads: int, extra: list[str]) -> dict:
    base = trainwell_exe() + ["train", "--data", path, "--quiet", "--out", os.path.join(work, "runs")]
    if path.endswith(".csv"):
        base += ["--label", "label"]
    if threads:
        base += ["--threads", str(threads)]
    overrides = ([f"seed={seed}"] if seed is not None else []) + extra
    run_name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    t = time.perf_counter()
    p = subprocess.run(base + ["--name", run_name] + overrides, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"trainwell failed on {path} (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-800:]}")
    with open(os.path.join(work, "runs", run_name, "summary.json")) as f:
        s = json.load(f)
    with open(os.path.join(work, "runs", run_name, "config.yaml")) as f:
        cfg = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in f) if v.strip()}
    try:  # the model actually built (config.yaml may say `auto`)
        with open(os.path.join(work, "runs", run_name, "model.json")) as f:
            cfg["model"] = os.path.basename(str(json.load(f)["model"]["name"]))
    except (OSError, KeyError, TypeError, ValueError):
        pass
    return {"acc": s["test_accuracy"], "wall": wall, "fit": s["fit_wall_s"], "epochs": s["epochs_run"],
            "best": s["best_epoch"], "model": cfg.get("model", "?"),
            "batch": cfg.get("batch_size", "?"), "lr": cfg.get("lr", "?"), "augment": cfg.get("augment", "").strip("'\""),
            "n_train": s["sizes"]["train"], "n_test": s["sizes"]["test"]}


# --- the table ----------------------------------------------------------------------------------------

def _mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in rows)


def _acc(rows: list[dict]) -> str:
    accs = [r["acc"] for r in rows]
    if len(accs) == 1:
        return f"{accs[0]:.2%}"
    return f"{statistics.fmean(accs):.2%} ± {statistics.stdev(accs):.1%}"


def row(name: str, arrays: dict, sk: list[dict], tw: list[dict]) -> str:
    n = len(arrays["y"]) + (len(arrays["y_test"]) if "y_test" in arrays else 0)
    shape = "x".join(str(s) for s in arrays["shape"])
    diff = _mean(tw, "acc") - _mean(sk, "acc")
    epochs = "/".join(sorted({f"{r['epochs']}" for r in tw}))
    best = "/".join(str(r["best"]) for r in tw)
    return (f"| {name} | {n:,} | {shape} | {_acc(sk)} | {_mean(sk, 'process'):.1f} / {_mean(sk, 'wall'):.2f} | "
            f"{_acc(tw)} | "
            f"{_mean(tw, 'wall'):.1f} / {_mean(tw, 'fit'):.1f} | {diff * 100:+.2f} | {epochs} | {best} | "
            f"{tw[0]['model']}, batch {tw[0]['batch']}, lr {tw[0]['lr']}, augment {tw[0]['augment'] or '-'} |")


HEADER = ("| set | n | shape | MLPClassifier acc | MLPC s (process / fit) | trainwell acc | trainwell s (process / fit) | "
          "tw - sk (points) | tw epochs run | tw best epoch | what auto chose |\n"
          "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, from {', '.join(SETS)}")
    ap.add_argument("--extra", default="", help='key=value overrides for trainwell, e.g. "epochs=40 lr=0.1"')
    ap.add_argument("--seeds", default="", help="comma-separated seeds (split + init of both); default: seed 0 "
                                                "without a seed= override")
    ap.add_argument("--threads", type=int, default=1, help="threads for both contenders (0: library default)")
    ap.add_argument("--work", default="/tmp/tw_small_data")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the data sets even if present")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--sklearn-one", nargs=4, metavar=("PATH", "SEED", "THREADS", "SPLIT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sklearn_one:  # the child process of run_sklearn_process
        path, seed, threads, split_file = a.sklearn_one
        split = None
        if os.path.exists(split_file):
            with np.load(split_file) as z:
                split = (z["keep"], z["test"])
        print(json.dumps(run_sklearn(load_arrays(path), int(seed), int(threads), split)))
        return
    names = [s for s in a.sets.split(",") if s]
    unknown = [s for s in names if s not in BUILDERS]
    if unknown:
        ap.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    seeds = [int(s) for s in a.seeds.split(",") if s] or [None]
    extra = a.extra.split()
    os.makedirs(a.work, exist_ok=True)

    lines = [f"Command: `python benchmarks/small_data.py {' '.join(sys.argv[1:])}`  ",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, {a.threads or 'default'} "
             f"thread(s) each; seeds {a.seeds or '0'}. Same test rows for both (trainwell's stratified 20% split; "
             "mnist1d: its own 1,000-example test set). MLPClassifier: StandardScaler + MLPClassifier(early_stopping="
             "True), defaults otherwise. trainwell: `trainwell train --data PATH [--label label]` "
             f"{('+ `' + a.extra + '`') if a.extra else 'with no other flag'}. Seconds: each side's whole process "
             "(Python start, imports, data, fit, test), then its fit alone (MLPClassifier: fit + predict; "
             "trainwell: fit_wall_s, the training loop with validation and checkpoints).", "", HEADER]
    print("\n".join(lines), flush=True)
    for name in names:
        marker = os.path.join(a.work, f".{name}.built")
        if a.rebuild or not os.path.exists(marker):
            for p in (os.path.join(a.work, f"{name}_png"),):
                shutil.rmtree(p, ignore_errors=True)
            path = BUILDERS[name](a.work)
            with open(marker, "w") as f:
                f.write(path)
        with open(marker) as f:
            path = f.read()
        arrays = load_arrays(path)
        sk = [run_sklearn_process(path, s or 0, a.threads) for s in seeds]
        tw = [run_trainwell(path, name, a.work, s, a.threads, extra) for s in seeds]
        lines.append(row(name, arrays, sk, tw))
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if not a.no_write:
        write_section(a.results, "small_data", text)
        print(f"written to {a.results}")


if __name__ == "__main__":
    main()
