"""Runs to report on: trained once per session (module scope would retrain them per file)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import trainwell

# class names a report must show as text, never as markup
# (folder names: no '/', so no closing tags)
NASTY = ["<script>alert(1)", "<img src=x onerror=alert(2)> O'Brien \"quoted\" & co", "Ünïcødé 雪 ✓"]


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory) -> str:
    """digits (8x8 images), an MLP, monitors every few steps: every section but augmentation and conv filters."""
    out = tmp_path_factory.mktemp("mlp")
    return trainwell.train(data="digits", model="mlp", hidden=[32, 16], epochs=4, monitor_every=5, device="cpu",
                           precision="fp32", out=str(out), name="mlp", quiet=True).dir


@pytest.fixture(scope="session")
def conv_run(tmp_path_factory) -> str:
    """A conv net on a small image folder whose class names are hostile markup, with augmentation on."""
    from PIL import Image

    root = tmp_path_factory.mktemp("conv")
    data = root / "images"
    rng = np.random.default_rng(0)
    for c, name in enumerate(NASTY):
        os.makedirs(data / name)
        for i in range(40):
            x = rng.integers(0, 80, size=(12, 12), dtype=np.uint8)
            x[c * 4:c * 4 + 4, :] = 230  # a bright band whose height tells the class
            Image.fromarray(x).save(data / name / f"{i}.png")
    return trainwell.train(data=str(data), model="convnet", width=8, epochs=3, augment="flip", device="cpu",
                           precision="fp32", out=str(root / "runs"), name="conv", quiet=True).dir


@pytest.fixture(scope="session")
def tabular_run(tmp_path_factory) -> str:
    """Feature vectors with string labels in a CSV: no pictures of any kind."""
    root = tmp_path_factory.mktemp("tab")
    rng = np.random.default_rng(2)
    rows = ["a,b,c,label"]
    for i in range(150):
        k = i % 3
        v = rng.normal(k * 2, 1, size=3)
        rows.append(",".join(f"{x:.3f}" for x in v) + f",{['cat', 'dog', 'emu'][k]}")
    (root / "t.csv").write_text("\n".join(rows) + "\n")
    return trainwell.train(data=str(root / "t.csv"), label="label", epochs=3, device="cpu", out=str(root / "runs"),
                           name="tab", quiet=True).dir
