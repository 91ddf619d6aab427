"""Atomic, hashed, pickle-free checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint is two files, `ckpt-STEP.safetensors` and `ckpt-STEP.json`. The JSON is written last and
holds the SHA-256 of the tensor file and of its own body: a checkpoint without a valid JSON does not
exist. Every file goes through `atomic_write` (temp file in the same folder, fsync, rename, fsync of the
folder), so a kill at any moment leaves either the old file or the new one, never a partial one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from typing import Any

import torch

from trainwell.errors import UserError

_NAME = re.compile(r"^ckpt-(\d{9})\.json$")
FORMAT = 1


def atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def save_tensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        # Never persist a poisoned state: the caller keeps the previous good checkpoint instead.
        raise ValueError(f"refusing to save non-finite tensors: {', '.join(bad[:5])}")
    return save({k: t.detach().cpu().contiguous() for k, t in tensors.items()})


def save_checkpoint(folder: str, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    keep: int = 2, protect: set[int] | None = None) -> str:
    """Write checkpoint `step` atomically, then prune older ones (never those in `protect`)."""
    os.makedirs(folder, exist_ok=True)
    blob = save_tensors_bytes(tensors)
    stem = os.path.join(folder, f"ckpt-{step:09d}")
    atomic_write(stem + ".safetensors", blob)
    body = {"format": FORMAT, "step": step, "tensors_sha256": _sha(blob), "meta": meta}
    record = {"body": body, "sha256": _sha(_canonical(body))}
    atomic_write(stem + ".json", json.dumps(record).encode())
    _prune(folder, keep, (protect or set()) | {step})
    return stem


def _steps(folder: str) -> list[int]:
    if not os.path.isdir(folder):
        return []
    return sorted(int(m.group(1)) for n in os.listdir(folder) if (m := _NAME.match(n)))


def _prune(folder: str, keep: int, protect: set[int]) -> None:
    steps = _steps(folder)
    for s in steps[:-keep] if keep > 0 else steps:
        if s in protect:
            continue
        for ext in (".json", ".safetensors"):  # the JSON first: without it the pair is already invalid
            p = os.path.join(folder, f"ckpt-{s:09d}{ext}")
            if os.path.exists(p):
                os.unlink(p)
    newest = max(steps, default=-1)
    for n in os.listdir(folder):  # leftovers of a save that was killed: temp files, tensors without JSON
        orphan = n.endswith(".safetensors") and not os.path.exists(os.path.join(folder, n[:-12] + ".json"))
        if n.startswith(".tmp-") or orphan and int(n[5:14]) < newest:
            os.unlink(os.path.join(folder, n))


def load_checkpoint(folder: str, step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load and verify one checkpoint; raises ValueError if any byte is off."""
    from safetensors.torch import load

    stem = os.path.join(folder, f"ckpt-{step:09d}")
    with open(stem + ".json", "rb") as f:
        raw = f.read()
    try:
        record = json.loads(raw)
        body = record["body"]
        ok = isinstance(record, dict) and record.get("sha256") == _sha(_canonical(body))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise ValueError(f"{stem}.json: hash mismatch or unreadable")
    with open(stem + ".safetensors", "rb") as f:
        blob = f.read()
    if _sha(blob) != body["tensors_sha256"]:
        raise ValueError(f"{stem}.safetensors: content hash mismatch")
    return load(blob), body["meta"]


def latest_checkpoint(folder: str) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest checkpoint that verifies; corrupt or partial ones are skipped (and reported)."""
    import warnings

    for step in reversed(_steps(folder)):
        try:
            tensors, meta = load_checkpoint(folder, step)
            return step, tensors, meta
        except (ValueError, OSError) as e:
            warnings.warn(f"skipping corrupt checkpoint: {e}", stacklevel=2)
    return None


# --- the final model: model.safetensors + model.json --------------------------------------------------

def save_model(run_dir: str, state_dict: dict[str, torch.Tensor], spec: dict[str, Any]) -> None:
    blob = save_tensors_bytes(state_dict)
    atomic_write(os.path.join(run_dir, "model.safetensors"), blob)
    spec = dict(spec, weights_sha256=_sha(blob))
    atomic_write(os.path.join(run_dir, "model.json"), json.dumps(spec, indent=2).encode())


def load_model_files(run_dir: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load

    spec_path = os.path.join(run_dir, "model.json")
    weights_path = os.path.join(run_dir, "model.safetensors")
    for p in (spec_path, weights_path):
        if not os.path.isfile(p):
            raise UserError(f"{p}: not found; is {run_dir} a finished trainwell run directory?")
    try:
        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
        with open(weights_path, "rb") as f:
            blob = f.read()
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{spec_path}: unreadable ({e}); the run directory is damaged") from None
    if not isinstance(spec, dict) or _sha(blob) != spec.get("weights_sha256"):
        raise UserError(f"{weights_path}: content hash does not match model.json; the file is damaged")
    return load(blob), spec
