"""Shared fixtures: tiny data sets written to files, and a guard that nothing is ever unpickled."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

UNPICKLED: list[str] = []


def _audit(event: str, args: tuple) -> None:
    # pickle.find_class is raised whenever an unpickler resolves a global: the mark of loading a pickle.
    if event == "pickle.find_class":
        UNPICKLED.append(f"{args[0]}.{args[1]}")


sys.addaudithook(_audit)


def pytest_sessionfinish(session, exitstatus):
    if UNPICKLED and exitstatus == 0:
        print(f"\nunpickling happened during the tests: {UNPICKLED[:5]}", file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture(autouse=True, scope="session")
def _image_cache(tmp_path_factory):
    """Decoded image folders go to a cache of the test session's own, never the user's ~/.cache."""
    os.environ["TRAINWELL_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")


@pytest.fixture
def blobs_npz(tmp_path) -> str:
    """Three well-separated Gaussian classes in 6 dimensions: easy to learn in a few epochs."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 6))
    y = np.repeat(np.arange(3), 60)
    x = (centres[y] + rng.normal(0, 1, size=(len(y), 6))).astype(np.float32)
    path = os.path.join(tmp_path, "blobs.npz")
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def images_npz(tmp_path) -> str:
    """Tiny 8x8 grey 'images' of 7 classes (bright square at a class-dependent place)."""
    rng = np.random.default_rng(1)
    n = 280
    y = np.arange(n) % 7
    x = rng.integers(0, 60, size=(n, 8, 8)).astype(np.uint8)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 3)
        x[i, r * 2:r * 2 + 3, col * 2:col * 2 + 3] = 250
    path = os.path.join(tmp_path, "images.npz")
    np.savez(path, x=x, y=y)
    return path
