"""Batch augmentation on the batch's device, with per-sample random parameters.

Spec strings: "flip" (horizontal, p = 0.5), "translate=K" (shift by up to K pixels, edges replicated),
comma-separated: "flip,translate=2". Random draws come from torch's global generator, which checkpoints
save and restore, so resumed runs stay bit-identical. Applied to training batches only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# The one registry of augmentation ops: name -> type of its value (None: takes no value). torch is
# imported only when a batch is augmented, so that `trainwell --help` can list the ops instantly.
OPS = {"flip": None, "translate": int}


def parse(spec: str) -> dict[str, int | None]:
    """'flip,translate=2' -> {'flip': None, 'translate': 2}; raises ValueError with the fix."""
    out: dict[str, int | None] = {}
    if spec.strip() == "none":
        return out
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, value = part.partition("=")
        if name not in OPS:
            raise ValueError(f"unknown augmentation '{name}'; use {', '.join(OPS)} (e.g. flip,translate=2) or none")
        if OPS[name] is None:
            if value:
                raise ValueError(f"'{name}' takes no value")
            out[name] = None
        else:
            try:
                v = int(value)
            except ValueError:
                raise ValueError(f"'{name}' needs an integer, e.g. {name}=2") from None
            if not 0 < v <= 16:
                raise ValueError(f"'{name}={v}' must be in 1..16")
            out[name] = v
    return out


class Augment:
    def __init__(self, spec: str) -> None:
        self.ops = parse(spec)

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if x.ndim != 4:
            return x  # feature vectors: nothing geometric to do
        if "flip" in self.ops:
            mask = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(mask[:, None, None, None], x.flip(3), x)
        k = self.ops.get("translate")
        if k:
            x = translate(x, k)
        return x


def translate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Shift every image by its own random (dy, dx) in [-k, k]^2, replicating the edge pixels."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    padded = F.pad(x, (k, k, k, k), mode="replicate")
    dy = torch.randint(0, 2 * k + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * k + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]    # (b, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]    # (b, 1, w)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols]                    # (b, h, w, c)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return out.permute(0, 3, 1, 2).contiguous(memory_format=layout)
