"""Training from an image folder larger than we want in memory: the on-disk uint8 cache vs the same data in memory.

Generates N 64x64 RGB PNG images of 10 classes (oriented colour gratings under noise: learnable, not
trivial), then, each in its own process so peak memory is its own:
  decode  - the first `load_source`: every image decoded once into the memory-mapped cache;
  disk    - `trainwell.train` on the folder: batches read from the memory map, normalised per batch;
  memory  - the same run with the decoded pixels copied into memory first (what trainwell did before).
Prints each one's peak resident memory (VmHWM: anonymous + mapped file pages), its peak anonymous memory
(sampled every 20 ms: what the process itself holds), training samples/s, and disk/memory ratios.

    python benchmarks/image_folder.py                          # 50,000 images, 1 epoch
    python benchmarks/image_folder.py --images 5000 --epochs 1 # a quick look
    python benchmarks/image_folder.py --varied                 # sizes 40-120, grey and RGB, PNG and JPEG
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZE = 64
CLASSES = 10


def generate(folder: str, n: int, seed: int = 0, varied: bool = False) -> None:
    """N images, class c a grating at angle 18c degrees with a random phase, frequency, tint and noise. `varied`:
    each image its own width and height (40 - 120 pixels), one in four grey, one in three a JPEG (a folder as
    people have them)."""
    from PIL import Image

    marker = os.path.join(folder, f".complete-{n}")
    if os.path.exists(marker):
        return
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        os.makedirs(os.path.join(folder, f"class{c}"), exist_ok=True)
    for i in range(n):
        c = i % CLASSES
        h, w = rng.integers(40, 121, 2) if varied else (SIZE, SIZE)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) * (SIZE / min(h, w))  # the same grating at every size
        angle = np.deg2rad(18 * c + rng.normal(0, 4))
        freq = rng.uniform(0.15, 0.35)
        wave = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
        tint = rng.uniform(0.3, 1.0, 3)
        img = Image.fromarray(np.clip(128 + 80 * wave[..., None] * tint + rng.normal(0, 40, (h, w, 3)), 0, 255)
                              .astype(np.uint8))
        if varied and i % 4 == 1:
            img = img.convert("L")
        name = os.path.join(folder, f"class{c}", f"{i:06d}")
        if varied and i % 3 == 2:
            img.save(name + ".jpg", quality=90)
        else:
            img.save(name + ".png", compress_level=1)
    open(marker, "w").close()


def memory() -> dict[str, float]:
    """Peak resident memory, and anonymous and file-backed resident memory now, in MiB (/proc/self/status)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


PEAK_ANON = [0.0]


def sample_anon() -> None:
    """Peak anonymous memory (the kernel keeps no peak of it): sampled every 20 ms in a thread."""
    while True:
        PEAK_ANON[0] = max(PEAK_ANON[0], memory()["RssAnon"])
        time.sleep(0.02)


def worker(mode: str, folder: str, epochs: int, out: str, varied: bool) -> dict:
    import threading

    import trainwell
    from trainwell.data import cache, load_source

    threading.Thread(target=sample_anon, daemon=True).start()

    if mode == "decode":
        t0 = time.perf_counter()
        src = load_source(folder)
        return {"mode": mode, "images": len(src.y), "decode_s": time.perf_counter() - t0, **memory(),
                "peak_anon": PEAK_ANON[0]}
    if mode == "memory":
        real = cache.cached_image_folder

        def in_memory(*args, **kwargs):
            x, y, classes, geometry = real(*args, **kwargs)
            return np.array(x), y, classes, geometry  # the decoded pixels, copied off the map into memory

        cache.cached_image_folder = in_memory
    t0 = time.perf_counter()
    model = {} if varied else {"model": "convnet"}  # varied sizes: the default run, geometry and all
    run = trainwell.train(data=folder, epochs=epochs, out=out, name=f"{mode}-{os.getpid()}", quiet=True, **model)
    train_s = sum(r["time_s"] for r in run.history)
    seen = sum(r["samples_per_s"] * r["time_s"] for r in run.history)
    return {"mode": mode, "samples_per_s": seen / train_s, "wall_s": time.perf_counter() - t0,
            "test_accuracy": run.summary["test_accuracy"], **memory(), "peak_anon": PEAK_ANON[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=50000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--dir", default="/tmp/trainwell-bench-folder", help="where the images are generated")
    ap.add_argument("--varied", action="store_true", help="images of varied sizes, modes and formats; the default run")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = os.path.join(args.dir, f"images-{args.images}{'-varied' if args.varied else ''}")
    runs = os.path.join(args.dir, "runs")
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, folder, args.epochs, runs, args.varied)))
        return
    t0 = time.perf_counter()
    generate(folder, args.images, varied=args.varied)
    what = "40-120 pixels a side, grey and RGB, PNG and JPEG" if args.varied else f"{SIZE}x{SIZE} RGB"
    print(f"{args.images} images of {what} in {folder} ({time.perf_counter() - t0:.0f} s)", flush=True)
    env = {**os.environ, "TRAINWELL_CACHE": os.path.join(args.dir, "cache")}
    results = {}
    for mode in ("decode", "disk", "memory"):
        out = subprocess.run([sys.executable, __file__, "--images", str(args.images), "--epochs", str(args.epochs),
                              "--dir", args.dir, "--worker", mode, *(["--varied"] if args.varied else [])],
                             capture_output=True, text=True, env=env)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or not line:
            sys.exit(f"{mode} failed:\n{out.stderr[-2000:]}")
        results[mode] = json.loads(line[0][7:])
        print(f"  {mode}: {results[mode]}", flush=True)
    d, m = results["disk"], results["memory"]
    print(f"\n| {args.images} images, {what}, {'the default' if args.varied else 'convnet'}, {args.epochs} epoch(s) "
          "| peak RSS MiB | peak anonymous MiB "
          "| train samples/s | test accuracy |")
    print("|---|---:|---:|---:|---:|")
    dec = results["decode"]
    print(f"| decode into the cache ({dec['decode_s']:.0f} s, once) | {dec['VmHWM']:.0f} | {dec['peak_anon']:.0f} | | |")
    for name, r in (("memory-mapped cache (trainwell)", d), ("same pixels in memory", m)):
        print(f"| {name} | {r['VmHWM']:.0f} | {r['peak_anon']:.0f} | {r['samples_per_s']:.0f} | {r['test_accuracy']:.2%} |")
    print(f"| **cache / in memory** | {d['VmHWM'] / m['VmHWM']:.2f}x | {d['peak_anon'] / m['peak_anon']:.2f}x "
          f"| **{d['samples_per_s'] / m['samples_per_s']:.2f}x** | |")


if __name__ == "__main__":
    main()
