"""Augmentation speed: trainwell's batch transforms vs kornia's vs a per-image SciPy elastic distortion.

One run, the same Fashion-MNIST batches of 512 28x28 images (normalised, on the CPU) for every method;
each method is timed over repeated batches, the methods interleaved round by round (the machine's speed
drifts), and the median per method is reported as images/s. Settings are matched:
  elastic:  Simard's alpha 34 px, sigma 4 px. trainwell: elastic=34:4 (Gaussian truncated at 4 sigma:
            33 taps). kornia RandomElasticTransform: kernel_size 33, sigma 4, alpha 34 * 2/28 (kornia's
            displacement is in [-1, 1] grid units, so 2/28 of a pixel per unit). SciPy: per image,
            gaussian_filter(uniform(-1, 1), 4) * 34 for each direction, then map_coordinates (order 1),
            the textbook implementation of the paper.
  affine:   rotate 10 deg, translate 0.1, scale 0.9 - 1.1, shear 5 deg; kornia RandomAffine with the same.
The share of a training step: all of trainwell's transforms together (flip, affine, elastic, erase,
noise) against one training step of the reference conv net (width 32, bf16 + channels_last on this CPU)
at the same batch size.

    pip install kornia scipy     # benchmark-only extras (make bench installs them)
    python benchmarks/augment.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ALL = "flip,translate=0.1,rotate=10,scale=0.1,shear=5,elastic=34:4,erase=0.25,noise=0.05"


def batches(n: int, size: int) -> list[torch.Tensor]:
    from trainwell.data import load_source, make_splits

    s = make_splits(load_source("fashion-mnist"), 0.1, 0.0, 0)
    x = s.preprocess.apply(s.x_train[: n * size])
    return list(x.split(size))


def scipy_elastic(x: torch.Tensor, alpha: float, sigma: float, rng: np.random.Generator) -> torch.Tensor:
    from scipy.ndimage import gaussian_filter, map_coordinates

    out = np.empty_like(x.numpy())
    h, w = x.shape[-2:]
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for i, img in enumerate(x.numpy()):
        dx = gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect") * alpha
        dy = gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect") * alpha
        for c in range(img.shape[0]):
            out[i, c] = map_coordinates(img[c], [yy + dy, xx + dx], order=1, mode="nearest")
    return torch.from_numpy(out)


def reference_step(size: int):
    """One training step of the reference conv net at this batch size, as trainwell runs it."""
    from trainwell.config import Config
    from trainwell.data.splits import Preprocess, Splits
    from trainwell.models import build_model, initialise, model_spec
    from trainwell.precision import choose_precision
    from trainwell.auto import resolve
    from trainwell.trainer import Trainer

    cfg = Config(model="convnet", batch_size=size, epochs=1, augment="none", tta="none", lr=0.05)
    net = initialise(build_model(model_spec(cfg, [1, 28, 28], 10)), "glorot")
    x = torch.zeros(size * 4, 1, 28, 28, dtype=torch.uint8)
    y = torch.arange(size * 4) % 10
    pre = Preprocess("image", [1, 28, 28], 1 / 255, [0.3], [0.3], [str(i) for i in range(10)], [], None)
    splits = Splits(x, y, x[:0], y[:0], x[:0], y[:0], pre)
    cfg, _ = resolve(cfg, splits, net)  # the Trainer takes a resolved config
    trainer = Trainer(net, splits, cfg, choose_precision("cpu", "auto", True))
    xb, yb = next(trainer.batches(0))
    return lambda: trainer.train_step(xb, yb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    import kornia.augmentation as K

    from trainwell.augment import Augment

    data = batches(4, a.batch)
    rng = np.random.default_rng(0)
    alpha, sigma = 34.0, 4.0
    k_alpha = alpha * 2 / 28
    kornia_elastic = K.RandomElasticTransform(kernel_size=(33, 33), sigma=(sigma, sigma), alpha=(k_alpha, k_alpha),
                                              p=1.0, padding_mode="border")
    kornia_affine = K.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5, p=1.0,
                                   padding_mode="border")
    step = reference_step(a.batch)
    methods = {
        "trainwell elastic=34:4": Augment("elastic=34:4"),
        "kornia RandomElasticTransform": kornia_elastic,
        "SciPy per image (Simard)": lambda x: scipy_elastic(x, alpha, sigma, rng),
        "trainwell affine (one pass)": Augment("translate=0.1,rotate=10,scale=0.1,shear=5"),
        "kornia RandomAffine": kornia_affine,
        f"trainwell all: {ALL}": Augment(ALL),
        "reference conv net training step": None,
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    for m, f in methods.items():  # warm-up
        if f is None:
            step()
        else:
            with torch.no_grad():
                f(data[0])
    for r in range(a.rounds):
        for m, f in methods.items():
            x = data[r % len(data)]
            if m.startswith("SciPy") and r >= 3:
                continue  # ~0.1 s per image batch... enough samples after 3 rounds
            t = time.perf_counter()
            if f is None:
                step()
            else:
                with torch.no_grad():
                    f(x)
            times[m].append(time.perf_counter() - t)
    med = {m: statistics.median(v) for m, v in times.items()}
    ips = {m: a.batch / s for m, s in med.items()}
    step_s = med["reference conv net training step"]
    print(f"\nMeasured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; batches of {a.batch} Fashion-MNIST images (1x28x28), median of "
          f"{a.rounds} interleaved rounds (SciPy: 3)\n")
    print("| method | ms per batch | images/s | share of a reference training step |")
    print("| --- | ---: | ---: | ---: |")
    for m in methods:
        share = "" if m.startswith("reference") else f"{med[m] / step_s:.1%}"
        print(f"| {m} | {med[m] * 1e3:.1f} | {ips[m]:,.0f} | {share} |")
    e = ips["trainwell elastic=34:4"]
    print(f"\ntrainwell elastic vs kornia: {e / ips['kornia RandomElasticTransform']:.2f}x; vs SciPy per image: "
          f"{e / ips['SciPy per image (Simard)']:.1f}x; affine vs kornia: "
          f"{ips['trainwell affine (one pass)'] / ips['kornia RandomAffine']:.2f}x; all transforms together: "
          f"{med[f'trainwell all: {ALL}'] / step_s:.1%} of a training step")


if __name__ == "__main__":
    main()
