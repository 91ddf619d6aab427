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

_NAME = re.compile(r"^ckpt-(\d{9})\.json$")
_TENSORS = re.compile(r"^ckpt-(\d{9})\.safetensors$")
FORMAT = 1


def atomic_write(path: str, data: bytes, durable: bool = True) -> None:
    """Readers see the old file or the new one, never half of one. `durable=False` skips the fsyncs:
    for files that a checkpoint can rebuild (the history), where a power cut may lose the last write."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256(data: bytes) -> str:
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
    body = {"format": FORMAT, "step": step, "tensors_sha256": sha256(blob), "meta": meta}
    record = {"body": body, "sha256": sha256(_canonical(body))}
    atomic_write(stem + ".json", json.dumps(record).encode())
    _prune(folder, keep, (protect or set()) | {step})
    return stem


def discard_after(folder: str, step: int) -> None:
    """Delete the checkpoints newer than `step` (a run that started over abandoned them)."""
    for s in _steps(folder):
        if s > step:
            for ext in (".json", ".safetensors"):  # the JSON first: without it the pair is already invalid
                p = os.path.join(folder, f"ckpt-{s:09d}{ext}")
                if os.path.exists(p):
                    os.unlink(p)


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
        m = _TENSORS.match(n)  # files that are not ours (a user's own *.safetensors) are left alone
        orphan = m is not None and not os.path.exists(os.path.join(folder, n[:-12] + ".json"))
        if n.startswith(".tmp-") or orphan and int(m.group(1)) < newest:
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
        ok = isinstance(record, dict) and record.get("sha256") == sha256(_canonical(body))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise ValueError(f"{stem}.json: hash mismatch or unreadable")
    with open(stem + ".safetensors", "rb") as f:
        blob = f.read()
    if sha256(blob) != body["tensors_sha256"]:
        raise ValueError(f"{stem}.safetensors: content hash mismatch")
    return load(blob), body["meta"]


def has_checkpoint(folder: str) -> bool:
    """A complete checkpoint by its name (leftover temp files of a killed save do not count)."""
    return os.path.isdir(folder) and bool(_steps(folder))


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


# --- any nested state (a trainer's) <-> tensors + JSON ---------------------------------------------------

def flatten(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state of dicts, lists, tensors and JSON scalars into (tensors by path, JSON skeleton).

    Dicts with non-string keys (an optimizer's parameter ids) keep their key types; list order is kept
    (CUDA RNG states are a list indexed by device). `unflatten` inverts it exactly.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[path] = obj
            return {"$tensor": path}
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj):
                return {k: walk(v, f"{path}.{k}" if path else k) for k, v in obj.items()}
            return {"$items": [[k, walk(v, f"{path}.{k}")] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"checkpoint state at '{path}': {type(obj).__name__} is neither a tensor nor JSON")

    return tensors, walk(state, prefix)


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {"$tensor"}:
            return tensors[skeleton["$tensor"]]
        if set(skeleton) == {"$items"}:
            return {k: unflatten(v, tensors) for k, v in skeleton["$items"]}
        return {k: unflatten(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    return skeleton


def save_state(folder: str, step: int, state: dict[str, Any], protect: set[int] | None = None) -> str:
    """Checkpoint a nested state (e.g. `Trainer.state_dict()`) as checkpoint `step`."""
    tensors, skeleton = flatten(state)
    return save_checkpoint(folder, step, tensors, {"state": skeleton}, protect=protect)


def load_latest_state(folder: str) -> tuple[int, dict[str, Any]] | None:
    """The newest checkpoint that verifies, as (step, nested state); None when there is none."""
    found = latest_checkpoint(folder)
    if found is None:
        return None
    step, tensors, meta = found
    if "state" not in meta:
        return None  # a checkpoint of an older trainwell: not resumable by this one
    return step, unflatten(meta["state"], tensors)


def rng_state() -> dict[str, Any]:
    """The global generators that dropout and augmentation draw from; CUDA devices as a list, in order."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])  # a list indexed by device: device 10 after device 2
