"""The default `trainwell train --data ROOT` against a hand-written PyTorch baseline on 10 image folders.

    python benchmarks/image_zoo.py                         # all 10 sets, seeds 1,2,3 (long: see RESULTS.md)
    python benchmarks/image_zoo.py --half tune --seeds 1   # the tuning half, one seed
    python benchmarks/image_zoo.py --sets colour_digits --only trainwell --extra "lr=0.1" --no-write

Every set is built offline (scikit-learn's bundled digits and sample photos, Debian's Fashion-MNIST, and
drawn shapes and textures) as ROOT/train/CLASS/*.png and ROOT/test/CLASS/*, so both sides see the same test
images; trainwell gets `--data ROOT` and nothing else but `--quiet --out --name --threads seed=S`.

The baseline is what a practitioner writes by hand for a small image set (the peer of issue 23): five 3x3
convolutions with batch norm and ReLU (16-32-32-64-64, 2x2 max-pools after the 2nd and 4th), global
average pooling, one linear layer; SGD with Nesterov momentum 0.9, weight decay 5e-4, one-cycle to 0.1,
30 epochs at batch 64; random shifts of +-1/10 of the side (zero padding) and, where the set's classes
survive a mirror image (the person knows their data: `FLIP_SAFE`), left-right flips. Images of varied
sizes are resized on the shorter side to 32 and centre-cropped; grey stays grey unless any image has colour.
It trains on all of ROOT/train; trainwell holds out 10% of it for validation.

Sets: half of them tune trainwell's image defaults (`TUNE`), the other half are reported apart (`HELD_OUT`)
and were not looked at while choosing them.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from small_data import _shape_mask, trainwell_exe  # noqa: E402
from throughput import write_section  # noqa: E402

TUNE = ("digits8", "shapes_clutter", "textures", "fashion6k", "tiny_binary")
HELD_OUT = ("colour_digits", "photo_patches", "fashion_colour", "two_digit50", "large128")
FLIP_SAFE = {"textures", "fashion6k", "fashion_colour", "tiny_binary", "large128", "photo_patches"}
FASHION = "/usr/share/datasets/fashion-mnist"


# --- writing a folder ---------------------------------------------------------------------------------

def _save(root: str, split: str, label: str, i: int, img, ext: str = "png") -> None:
    folder = os.path.join(root, split, label)
    os.makedirs(folder, exist_ok=True)
    img.save(os.path.join(folder, f"{i:05d}.{ext}"))


def _split_of(n: int, test_share: float, rng: np.random.Generator) -> list[str]:
    """train or test for each of n images, test with probability test_share."""
    return ["test" if u < test_share else "train" for u in rng.random(n)]


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target


def _fashion(n_train: int, n_test: int, seed: int = 0):
    def read(name, offset, shape):
        with gzip.open(os.path.join(FASHION, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset).reshape(shape)
    xtr = read("train-images-idx3-ubyte.gz", 16, (-1, 28, 28))
    ytr = read("train-labels-idx1-ubyte.gz", 8, (-1,))
    xte = read("t10k-images-idx3-ubyte.gz", 16, (-1, 28, 28))
    yte = read("t10k-labels-idx1-ubyte.gz", 8, (-1,))
    rng = np.random.default_rng(seed)
    a, b = rng.permutation(len(ytr))[:n_train], rng.permutation(len(yte))[:n_test]
    return xtr[a], ytr[a], xte[b], yte[b]


# --- the sets -----------------------------------------------------------------------------------------

def build_digits8(root: str) -> None:
    """scikit-learn's 8x8 digits, grey, 1,797 images, 10 classes (20% test)."""
    from PIL import Image

    x, y = _digits()
    rng = np.random.default_rng(0)
    for i, (img, label, split) in enumerate(zip(x, y, _split_of(len(y), 0.2, rng))):
        _save(root, split, str(label), i, Image.fromarray(np.uint8(np.round(img * 255)), "L"))


def build_colour_digits(root: str) -> None:
    """Issue 23's first folder: the digits drawn 18-26 pixels tall at random places on 32x32 RGB in random
    colours (foreground and background at least ~100 apart), with pixel noise; 1,797 images."""
    from PIL import Image

    x, y = _digits()
    rng = np.random.default_rng(1)
    for i, (img, label, split) in enumerate(zip(x, y, _split_of(len(y), 0.2, rng))):
        s = int(rng.integers(18, 27))
        glyph = np.asarray(Image.fromarray(np.uint8(img * 255), "L").resize((s, s), Image.BILINEAR)) / 255.0
        mask = np.zeros((32, 32))
        r, c = rng.integers(0, 33 - s, size=2)
        mask[r:r + s, c:c + s] = glyph
        while True:
            fg, bg = rng.uniform(0, 255, size=(2, 3))
            if np.linalg.norm(fg - bg) > 100:
                break
        out = mask[:, :, None] * fg + (1 - mask[:, :, None]) * bg + rng.normal(0, 10, (32, 32, 3))
        _save(root, split, str(label), i, Image.fromarray(np.uint8(np.clip(out, 0, 255)), "RGB"))


def _clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered RGB background: a few random rectangles and blobs of random colours, blurred noise."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    dr = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = rng.integers(-size // 4, size, size=2)
        w, h = rng.integers(size // 8, size // 2, size=2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (dr.ellipse if rng.random() < 0.5 else dr.rectangle)(box, fill=colour)
    return np.asarray(im, dtype=np.float64)


def build_shapes_clutter(root: str, n_per_class: int = 150, size: int = 32) -> None:
    """10 shapes in a random colour on cluttered backgrounds, 32x32 RGB, 1,500 images."""
    from PIL import Image

    from small_data import SHAPES

    rng = np.random.default_rng(2)
    i = 0
    for k, kind in enumerate(SHAPES):
        for split in _split_of(n_per_class, 0.2, rng):
            mask = _shape_mask(kind, size, rng)[:, :, None]
            fg = rng.uniform(0, 255, 3)
            out = mask * fg + (1 - mask) * _clutter(size, rng) + rng.normal(0, 6, (size, size, 3))
            _save(root, split, f"{k}_{kind}", i, Image.fromarray(np.uint8(np.clip(out, 0, 255)), "RGB"))
            i += 1


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    f = rng.uniform(0.25, 0.6)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "stripes_h":
        v = np.sin(f * yy + phase)
    elif kind == "stripes_d":
        v = np.sin(f * (xx + yy) / 1.414 + phase)
    elif kind == "checker":
        v = np.sign(np.sin(f * xx + phase)) * np.sign(np.sin(f * yy + phase))
    elif kind == "dots":
        v = np.cos(f * xx + phase) * np.cos(f * yy + phase)
        v = (v > 0.6).astype(np.float64) * 2 - 1
    elif kind == "noise_fine":
        v = rng.normal(0, 1, (size, size))
    else:  # blobs: low-pass noise
        from scipy.ndimage import gaussian_filter

        v = gaussian_filter(rng.normal(0, 1, (size, size)), 2.5)
        v = v / (np.abs(v).max() + 1e-9)
    contrast = rng.uniform(0.3, 1.0)
    return np.clip(0.5 + 0.5 * contrast * v + rng.normal(0, 0.08, (size, size)), 0, 1)


def build_textures(root: str, n_per_class: int = 200, size: int = 32) -> None:
    """6 textures (horizontal and diagonal stripes, checkerboard, dots, fine noise, blobs) at random
    frequency, phase and contrast, grey 32x32, 1,200 images."""
    from PIL import Image

    rng = np.random.default_rng(3)
    i = 0
    for kind in ("stripes_h", "stripes_d", "checker", "dots", "noise_fine", "blobs"):
        for split in _split_of(n_per_class, 0.2, rng):
            _save(root, split, kind, i, Image.fromarray(np.uint8(_texture(kind, size, rng) * 255), "L"))
            i += 1


def build_fashion6k(root: str) -> None:
    """Fashion-MNIST, 6,000 training and 2,000 test images, grey 28x28."""
    from PIL import Image

    xtr, ytr, xte, yte = _fashion(6000, 2000)
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        for i, (img, label) in enumerate(zip(x, y)):
            _save(root, split, str(label), i, Image.fromarray(img, "L"))


def build_fashion_colour(root: str) -> None:
    """Fashion-MNIST items in a random colour pasted at random places on 40x40 clutter, 3,000 images."""
    from PIL import Image

    xtr, ytr, xte, yte = _fashion(2400, 600, seed=1)
    rng = np.random.default_rng(4)
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        for i, (img, label) in enumerate(zip(x, y)):
            mask = np.zeros((40, 40, 1))
            r, c = rng.integers(0, 13, size=2)
            mask[r:r + 28, c:c + 28, 0] = img / 255.0
            out = mask * rng.uniform(0, 255, 3) + (1 - mask) * _clutter(40, rng)
            _save(root, split, str(label), i, Image.fromarray(np.uint8(np.clip(out, 0, 255)), "RGB"))


def build_two_digit50(root: str) -> None:
    """50 classes: the numbers 00-49 as two of scikit-learn's digits side by side (8x16 grey), 40 each."""
    from PIL import Image

    x, y = _digits()
    by = [np.flatnonzero(y == d) for d in range(10)]
    rng = np.random.default_rng(5)
    i = 0
    for number in range(50):
        for split in _split_of(40, 0.25, rng):
            a, b = rng.choice(by[number // 10]), rng.choice(by[number % 10])
            img = np.concatenate([x[a], x[b]], axis=1)
            _save(root, split, f"{number:02d}", i, Image.fromarray(np.uint8(np.round(img * 255)), "L"))
            i += 1


def build_tiny_binary(root: str, n: int = 500) -> None:
    """2 classes, 500 images of 12x12: a ring or a filled disc, random colours, size and place, noise."""
    from PIL import Image

    rng = np.random.default_rng(6)
    for i, split in enumerate(_split_of(n, 0.3, rng)):
        kind = ("circle", "ring")[i % 2]
        mask = _shape_mask(kind, 12, rng)[:, :, None]
        fg, bg = rng.uniform(0, 255, (2, 3))
        out = mask * fg + (1 - mask) * bg + rng.normal(0, 12, (12, 12, 3))
        _save(root, split, kind, i, Image.fromarray(np.uint8(np.clip(out, 0, 255)), "RGB"))


def build_photo_patches(root: str, n: int = 2000) -> None:
    """Issue 23's photo layout: patches of scikit-learn's two sample photos (china, flower), 10 classes (the
    photo and which fifth of it, left to right, the patch comes from), sides 24 to 96 pixels, saved as grey,
    RGB, RGBA and palette images, PNG and JPEG, under ROOT/train/CLASS and ROOT/test/CLASS."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # two 427x640 RGB arrays
    rng = np.random.default_rng(7)
    for i, split in enumerate(_split_of(n, 0.2, rng)):
        p = int(rng.integers(0, 2))
        band = int(rng.integers(0, 5))
        side = int(rng.integers(24, 97))
        h, w = rng.integers(side, int(side * 1.4) + 1), side
        if rng.random() < 0.5:
            h, w = w, h
        x0 = int(rng.integers(band * 128, (band + 1) * 128 - min(w, 128) + 1)) if w <= 128 else band * 128
        y0 = int(rng.integers(0, 427 - h + 1))
        patch = Image.fromarray(photos[p][y0:y0 + h, x0:x0 + min(w, 640 - x0)])
        mode = ["L", "RGB", "RGBA", "P"][i % 4]
        img = patch.convert(mode) if mode != "P" else patch.convert("P", palette=Image.ADAPTIVE, colors=64)
        ext = "jpg" if mode in ("L", "RGB") and i % 3 == 0 else "png"
        _save(root, split, f"{('china', 'flower')[p]}_{band}", i, img, ext)


def build_large128(root: str, n_per_class: int = 150) -> None:
    """4 shapes on clutter at 96 to 128 pixels (varied sizes in one folder), RGB, 600 images."""
    from PIL import Image

    rng = np.random.default_rng(8)
    i = 0
    for kind in ("circle", "triangle", "cross", "ring"):
        for split in _split_of(n_per_class, 0.25, rng):
            size = int(rng.integers(96, 129))
            mask = _shape_mask(kind, size, rng)[:, :, None]
            out = mask * rng.uniform(0, 255, 3) + (1 - mask) * _clutter(size, rng) + rng.normal(0, 6, (size, size, 3))
            _save(root, split, kind, i, Image.fromarray(np.uint8(np.clip(out, 0, 255)), "RGB"))
            i += 1


BUILDERS = {name: globals()[f"build_{name}"] for name in TUNE + HELD_OUT}


def build(name: str, work: str) -> str:
    root = os.path.join(work, "sets", name)
    if not os.path.exists(os.path.join(root, ".done")):
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        BUILDERS[name](root)
        open(os.path.join(root, ".done"), "w").close()
    return root


# --- the hand-written baseline ------------------------------------------------------------------------

def _read_folder(folder: str, colour: bool, side: int | None):
    from PIL import Image

    classes = sorted(c for c in os.listdir(folder) if os.path.isdir(os.path.join(folder, c)))
    xs, ys = [], []
    for k, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(folder, c))):
            im = Image.open(os.path.join(folder, c, f))
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                back = Image.new("RGBA", im.size, (128, 128, 128, 255))
                im = Image.alpha_composite(back, im)
            im = im.convert("RGB" if colour else "L")
            if side is not None:  # the shorter side to `side`, aspect kept, centre crop
                scale = side / min(im.size)
                im = im.resize((max(side, round(im.size[0] * scale)), max(side, round(im.size[1] * scale))),
                               Image.BILINEAR)
                left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
                im = im.crop((left, top, left + side, top + side))
            a = np.asarray(im, dtype=np.uint8)
            xs.append(a[:, :, None] if a.ndim == 2 else a)
            ys.append(k)
    return np.stack(xs).transpose(0, 3, 1, 2), np.array(ys)


def _folder_facts(root: str) -> tuple[bool, set]:
    from PIL import Image

    colour, sizes = False, set()
    for d, _, files in os.walk(os.path.join(root, "train")):
        for f in files:
            with Image.open(os.path.join(d, f)) as im:
                colour |= im.mode not in ("L", "1", "I", "I;16", "LA")
                sizes.add(im.size)
    return colour, sizes


def baseline_one(root: str, seed: int, threads: int, flip: bool) -> dict:
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    colour, sizes = _folder_facts(root)
    side = None if len(sizes) == 1 else 32
    xtr, ytr = _read_folder(os.path.join(root, "train"), colour, side)
    xte, yte = _read_folder(os.path.join(root, "test"), colour, side)
    xtr = torch.tensor(xtr, dtype=torch.float32) / 255
    xte = torch.tensor(xte, dtype=torch.float32) / 255
    mean, std = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True) + 1e-6
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    ytr, yte = torch.tensor(ytr), torch.tensor(yte)
    c, h, w = xtr.shape[1:]
    k = int(ytr.max()) + 1

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
    widths = [16, 32, 32, 64, 64]
    layers, i = [], c
    for j, o in enumerate(widths):
        layers += block(i, o)
        i = o
        if j in (1, 3) and min(h, w) >= 4:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(i, k))
    epochs, batch = 30, 64
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * ((len(ytr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    pad = max(1, round(min(xtr.shape[2:]) / 10))
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(ytr), generator=g)
        for s in range(0, len(ytr), batch):
            idx = order[s:s + batch]
            if len(idx) < 2:
                continue
            xb = nn.functional.pad(xtr[idx], (pad,) * 4)
            dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=g).tolist()
            xb = xb[:, :, dy:dy + xtr.shape[2], dx:dx + xtr.shape[3]]
            if flip and torch.rand(1, generator=g).item() < 0.5:
                xb = xb.flip(3)
            loss = nn.functional.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xte[s:s + 256]).argmax(1) for s in range(0, len(yte), 256)])
    return {"acc": float((pred == yte).float().mean()), "wall": time.perf_counter() - t0,
            "n_train": len(ytr), "n_test": len(yte), "shape": [c, *xtr.shape[2:]]}


def run_baseline(root: str, seed: int, threads: int, flip: bool) -> dict:
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--baseline-one", root, str(seed), str(threads),
                        "1" if flip else "0"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-1500:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_trainwell(root: str, name: str, work: str, seed: int, threads: int, extra: list[str]) -> dict:
    run_name = f"{name}-s{seed}-{time.strftime('%H%M%S')}-{os.getpid()}"
    cmd = trainwell_exe() + ["train", "--data", root, "--quiet", "--out", os.path.join(work, "runs"),
                             "--name", run_name, "--threads", str(threads), f"seed={seed}", *extra]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"trainwell failed on {root}: {(p.stderr or p.stdout)[-800:]}")
    run = os.path.join(work, "runs", run_name)
    with open(os.path.join(run, "summary.json")) as f:
        s = json.load(f)
    with open(os.path.join(run, "env.json")) as f:
        env = json.load(f)
    return {"acc": s["test_accuracy"], "wall": wall, "epochs": s["epochs_run"], "n_test": s["sizes"]["test"],
            "n_train": s["sizes"]["train"], "auto": env.get("auto", {})}


# --- the table ----------------------------------------------------------------------------------------

def table(results: dict, sets: list[str]) -> list[str]:
    lines = ["| set | half | images (train/test) | baseline mean / min | trainwell mean / **min** | min >= baseline mean "
             "| wall s baseline / trainwell |", "|---|---|---|---|---|---|---|"]
    for name in sets:
        r = results.get(name, {})
        b, t = r.get("baseline", []), r.get("trainwell", [])
        if not b and not t:
            continue
        ba = [x["acc"] for x in b]
        ta = [x["acc"] for x in t]
        n = (t or b)[0]
        cell = lambda a: f"{100 * statistics.fmean(a):.2f} / {100 * min(a):.2f}" if a else "-"  # noqa: E731
        ok = "yes" if ba and ta and min(ta) >= statistics.fmean(ba) - 1e-6 else ("no" if ba and ta else "-")
        walls = "/".join(f"{statistics.fmean(x['wall'] for x in v):.0f}" if v else "-" for v in (b, t))
        lines.append(f"| {name} | {'tune' if name in TUNE else 'held-out'} | {n['n_train']}/{n['n_test']} | "
                     f"{cell(ba)} | {cell(ta)} | {ok} | {walls} |")
    for half, names in (("tune", TUNE), ("held-out", HELD_OUT)):
        got = [n for n in names if n in sets and results.get(n, {}).get("baseline") and results[n].get("trainwell")]
        if got:
            bm = statistics.fmean(statistics.fmean(x["acc"] for x in results[n]["baseline"]) for n in got)
            tm = statistics.fmean(statistics.fmean(x["acc"] for x in results[n]["trainwell"]) for n in got)
            tmin = statistics.fmean(min(x["acc"] for x in results[n]["trainwell"]) for n in got)
            lines.append(f"| **{half} mean** ({len(got)} sets) | | | {100 * bm:.2f} | {100 * tm:.2f} / {100 * tmin:.2f} | | |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default=None, help="comma-separated (default: all)")
    ap.add_argument("--half", choices=("tune", "held-out"), default=None)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", type=int, default=1, help="per run (two streams can share 2 cores)")
    ap.add_argument("--only", choices=("baseline", "trainwell"), default=None)
    ap.add_argument("--extra", default="", help="key=value overrides for trainwell")
    ap.add_argument("--work", default="/tmp/tw_image_zoo")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--fresh-baseline", action="store_true", help="rerun the baseline even where WORK has its result")
    ap.add_argument("--from-log", action="store_true",
                    help="no runs: the table from WORK/results.jsonl (the latest run of each set, seed and side)")
    ap.add_argument("--baseline-one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_one:
        root, seed, threads, flip = args.baseline_one
        print(json.dumps(baseline_one(root, int(seed), int(threads), flip == "1")))
        return
    sets = args.sets.split(",") if args.sets else list({"tune": TUNE, "held-out": HELD_OUT}.get(args.half, TUNE + HELD_OUT))
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {}
    log = os.path.join(args.work, "results.jsonl")
    os.makedirs(args.work, exist_ok=True)
    done = []  # the baseline does not change with trainwell: its runs are read back, not repeated
    if os.path.exists(log) and not args.fresh_baseline:
        with open(log) as f:
            done = [json.loads(line) for line in f if line.strip()]
    for name in sets:
        root = build(name, args.work)
        for seed in seeds:
            for who in ("baseline", "trainwell"):
                if args.only and who != args.only:
                    continue
                old = [d for d in done if (who == "baseline" or args.from_log) and d["who"] == who and d["set"] == name
                       and d["seed"] == seed and d.get("threads") == args.threads
                       and (who == "baseline" or d.get("extra", "") == args.extra)]
                if args.from_log and not old:
                    continue
                if old:
                    r = old[-1]
                else:
                    r = (run_baseline(root, seed, args.threads, name in FLIP_SAFE) if who == "baseline"
                         else run_trainwell(root, name, args.work, seed, args.threads, args.extra.split()))
                    with open(log, "a") as f:
                        f.write(json.dumps({"set": name, "who": who, "seed": seed, "extra": args.extra,
                                            "threads": args.threads, **r}) + "\n")
                results.setdefault(name, {}).setdefault(who, []).append(r)
                print(f"{name:15s} seed {seed} {who:9s} {100 * r['acc']:6.2f}%  {r['wall']:6.1f} s"
                      f"{'  (earlier run)' if old else ''}", flush=True)
    lines = table(results, sets)  # (the baseline scores in float32: ties within 1e-6 count as equal)
    print("\n".join(lines))
    if not args.no_write:
        import platform

        import torch
        text = (f"Command: `python benchmarks/image_zoo.py --seeds {args.seeds}` "
                f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                f"{args.threads} per run, trainwell's automatic precision)\n\n" + "\n".join(lines))
        write_section(os.path.join(HERE, "RESULTS.md"), "image_zoo", text)


if __name__ == "__main__":
    main()
