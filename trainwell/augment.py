"""Training-batch augmentation on the batch's own device, with independent random parameters per image.

Spec strings, comma-separated: "translate=2,rotate=10,scale=0.1,elastic=34:4,erase=0.25". The ops, what
their values mean and their allowed ranges are the table OPS; each op parses its own value. Applied in
one order, whatever the order written:

    flip -> translate, rotate, scale, shear and elastic as ONE resampling (affine_grid + the elastic
    displacement field, then grid_sample) -> erase -> noise

An integer `translate` on its own (with or without flip) is an exact whole-pixel shift, not a resampling.
A value of 0 turns an op off (it is dropped when parsed, so zero strength is exactly the identity).
Random draws come from torch's global generator on the batch's device, which checkpoints save and
restore, so resumed runs stay bit-identical. Applied to training batches only (after normalisation:
erased pixels take the value 0, the training mean). torch is imported only when a batch is augmented,
so that `trainwell --help` can list the ops instantly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch


def _number(name: str, text: str, lo: float, hi: float, example: str, integer: bool = False) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"'{name}={text}' needs a number, e.g. {example}") from None
    if not lo <= v <= hi or (integer and v != int(v)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"'{name}={text}' must be {kind} in [{lo:g}, {hi:g}], e.g. {example}")
    return v


def _flip(text: str) -> str | None:
    axes = text or "h"
    if axes not in ("h", "v", "hv", "vh"):
        raise ValueError(f"'flip={text}' must be h (left-right, the default), v (upside down) or hv")
    return "".join(sorted(axes, reverse=True))  # "hv"


def _translate(text: str) -> float | None:
    """Whole pixels (translate=2) or a fraction of the image size (translate=0.1)."""
    v = _number("translate", text, 0, 64, "translate=2 (pixels) or translate=0.1 (of the size)")
    if v != int(v) and v >= 1:
        raise ValueError(f"'translate={text}' must be whole pixels (1-64) or a fraction of the size below 1")
    return v or None


def _scale(text: str) -> tuple[float, float] | None:
    """scale=0.1 -> factors in [0.9, 1.1]; scale=0.8:1.2 -> that range."""
    if ":" in text:
        lo, hi = (_number("scale", t, 0.05, 4, "scale=0.8:1.2") for t in text.split(":", 1))
        if lo > hi:
            raise ValueError(f"'scale={text}': the smaller factor comes first, e.g. scale=0.8:1.2")
        return None if lo == hi == 1 else (lo, hi)
    v = _number("scale", text, 0, 0.95, "scale=0.1 (factors 0.9 - 1.1)")
    return (1 - v, 1 + v) if v else None


def _elastic(text: str) -> tuple[float, float] | None:
    """elastic=ALPHA:SIGMA in pixels (Simard et al. 2003 used 34:4 on 28x28 digits); elastic alone = 34:4."""
    parts = (text or "34:4").split(":")
    if len(parts) != 2:
        raise ValueError(f"'elastic={text}' needs alpha:sigma, e.g. elastic=34:4")
    alpha = _number("elastic alpha", parts[0], 0, 1000, "elastic=34:4")
    sigma = _number("elastic sigma", parts[1], 0.5, 32, "elastic=34:4")
    return (alpha, sigma) if alpha else None


@dataclass(frozen=True)
class Op:
    parse: Callable[[str], Any]  # the value after '=' ('' when none) -> the op's parameters, None = off
    help: str


OPS: dict[str, Op] = {
    "flip": Op(_flip, "flip: mirror half the images left-right; flip=v upside down; flip=hv either"),
    "translate": Op(_translate, "translate=K: shift by up to K pixels, or by up to a fraction (0.1) of the size"),
    "rotate": Op(lambda t: _number("rotate", t, 0, 180, "rotate=10") or None, "rotate=DEG: up to +-DEG degrees"),
    "scale": Op(_scale, "scale=S: zoom by a factor in [1-S, 1+S]; scale=LO:HI a range"),
    "shear": Op(lambda t: _number("shear", t, 0, 45, "shear=10") or None, "shear=DEG: shear by up to +-DEG degrees"),
    "elastic": Op(_elastic, "elastic=ALPHA:SIGMA: Simard's elastic distortion (34:4 for 28x28 digits)"),
    "erase": Op(lambda t: _number("erase", t or "0.5", 0, 1, "erase=0.25") or None,
                "erase=P: with probability P blank a random rectangle (2-33% of the image)"),
    "noise": Op(lambda t: _number("noise", t, 0, 5, "noise=0.1") or None,
                "noise=STD: add Gaussian noise (in units of the normalised inputs)"),
}
NEEDS_VALUE = ("translate", "rotate", "scale", "shear", "noise")
# What `diagnose` prescribes for an overfitting image model: the preset that won the accuracy benchmark
# (benchmarks/RESULTS.md, "Augmentation and accuracy": 5,000 Fashion-MNIST images, 54 epochs, 89.84% vs
# 88.17% without augmentation, ahead of flip, flip + erase and flip + elastic).
OVERFITTING_PRESET = "flip,translate=2,rotate=10,scale=0.1"
GEOMETRIC = ("translate", "rotate", "scale", "shear", "elastic")


def parse(spec: str) -> dict[str, Any]:
    """'flip,translate=2' -> {'flip': 'h', 'translate': 2.0}; ops at zero strength are left out.
    Raises ValueError with the op, its allowed range and an example."""
    out: dict[str, Any] = {}
    if spec.strip() in ("none", ""):
        return out
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, eq, value = (s.strip() for s in part.partition("="))
        if name not in OPS:
            import difflib

            close = difflib.get_close_matches(name, OPS, n=1)
            tip = f"did you mean '{close[0]}'? " if close else ""
            raise ValueError(f"unknown augmentation '{name}'; {tip}use {', '.join(OPS)} "
                             "(e.g. translate=2,rotate=10,elastic=34:4) or none")
        if name in out:
            raise ValueError(f"'{name}' is given twice")
        if name in NEEDS_VALUE and not value:
            raise ValueError(f"'{name}' needs a value: {OPS[name].help}")
        params = OPS[name].parse(value)
        if params is not None:
            out[name] = params
    return out


class Augment:
    """The parsed spec as a callable on a batch (N, C, H, W) of normalised images; feature vectors pass."""

    def __init__(self, spec: str) -> None:
        self.ops = parse(spec)

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or not self.ops:
            return x  # feature vectors: nothing geometric to do
        ops = self.ops
        if "flip" in ops:
            x = flip(x, ops["flip"])
        shift = ops.get("translate")
        if shift is not None and shift == int(shift) and not any(k in ops for k in GEOMETRIC if k != "translate"):
            x = translate(x, int(shift))  # exact: whole pixels, no resampling
        elif any(k in ops for k in GEOMETRIC):
            x = warp(x, ops)
        if "erase" in ops:
            x = erase(x, ops["erase"])
        if "noise" in ops:
            x = x + ops["noise"] * _randn_like(x)
        return x


def _randn_like(x: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.randn(x.shape, device=x.device, dtype=x.dtype)


def _keep_layout(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    import torch

    layout = torch.channels_last if like.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return out.contiguous(memory_format=layout)


def flip(x: torch.Tensor, axes: str = "h") -> torch.Tensor:
    """Mirror each image with probability 1/2, independently per image and per axis (h: left-right)."""
    import torch

    for axis, dim in (("h", 3), ("v", 2)):
        if axis in axes:
            mask = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(mask[:, None, None, None], x.flip(dim), x)
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
    return _keep_layout(out.permute(0, 3, 1, 2), x)


def affine_matrices(b: int, h: int, w: int, ops: dict[str, Any], device: Any) -> torch.Tensor:
    """(b, 2, 3) sampling matrices for F.affine_grid (align_corners=False), one random draw per image.

    The image content is scaled by s, sheared by phi, rotated by theta and shifted by t pixels (all
    about the centre); the sampling grid is the inverse of that, built in pixel units and then put in
    grid_sample's normalised coordinates, so non-square images are not distorted.
    """
    import torch

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, device=device)

    one, zero = torch.ones(b, device=device), torch.zeros(b, device=device)
    theta = uniform(-ops["rotate"], ops["rotate"]) * (math.pi / 180) if "rotate" in ops else zero
    phi = uniform(-ops["shear"], ops["shear"]) * (math.pi / 180) if "shear" in ops else zero
    s = uniform(*ops["scale"]) if "scale" in ops else one
    t = ops.get("translate")
    if t is not None:
        tx, ty = (t * w, t * h) if t < 1 else (t, t)  # a fraction of the size, or pixels
        shift = torch.stack([uniform(-tx, tx), uniform(-ty, ty)], 1)
    else:
        shift = torch.zeros(b, 2, device=device)
    cos, sin = torch.cos(theta), torch.sin(theta)
    rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    shear = torch.stack([torch.stack([one, torch.tan(phi)], 1), torch.stack([zero, one], 1)], 1)
    forward = rotation @ shear * s[:, None, None]                     # content: pixels -> pixels
    inverse = torch.linalg.inv(forward)
    to_norm = torch.tensor([2 / w, 2 / h], device=device)              # pixel offsets -> [-1, 1] units
    a = inverse * to_norm[None, :, None] / to_norm[None, None, :]
    offset = -(inverse @ shift[:, :, None])[:, :, 0] * to_norm
    return torch.cat([a, offset[:, :, None]], 2)


def elastic_field(b: int, h: int, w: int, alpha: float, sigma: float, device: Any) -> torch.Tensor:
    """Simard et al.'s displacement field, (b, h, w, 2) in pixels (dx, dy): uniform noise in [-1, 1] per
    pixel and direction, smoothed by a Gaussian of std `sigma` pixels, times `alpha`. The smoothing is
    scipy's gaussian_filter (truncated at 4 sigma, edges reflected: mode "reflect") written as two small
    matrices, one per axis, so a whole batch is two matrix products instead of a convolution per image."""
    import torch

    noise = torch.rand(b, 2, h, w, device=device) * 2 - 1
    smooth = blur_matrix(h, sigma, device) @ noise @ blur_matrix(w, sigma, device).T
    return alpha * smooth.permute(0, 2, 3, 1)


def blur_matrix(n: int, sigma: float, device: Any = "cpu") -> torch.Tensor:
    """(n, n) matrix M with M @ v = scipy.ndimage.gaussian_filter1d(v, sigma, mode="reflect"): the taps
    falling off an edge fold back onto the samples they mirror (d c b a | a b c d | d c b a)."""
    import torch

    radius = int(4 * sigma + 0.5)                                   # scipy's truncate=4.0
    taps = torch.arange(-radius, radius + 1, device=device)
    weights = torch.exp(-0.5 * (taps.float() / sigma) ** 2)
    weights = weights / weights.sum()
    rows = torch.arange(n, device=device)[:, None].expand(n, len(taps))
    cols = (rows + taps) % (2 * n)                                  # the reflection repeats every 2n samples
    cols = torch.where(cols >= n, 2 * n - 1 - cols, cols)
    m = torch.zeros(n, n, device=device)
    return m.index_put_((rows, cols), weights.expand(n, -1), accumulate=True)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """F.affine_grid(theta, (b, c, h, w), align_corners=False), the same numbers written as broadcast
    multiply-adds: 3x faster on this CPU for 512 28x28 images (1.2 ms against 4.2 ms)."""
    import torch

    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1   # pixel centres in [-1, 1]
    ys = ((torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1)[:, None]
    t = theta[:, :, :, None, None]                                                # (b, 2, 3, 1, 1)
    return torch.stack([t[:, i, 0] * xs + t[:, i, 1] * ys + t[:, i, 2] for i in (0, 1)], -1)


def warp(x: torch.Tensor, ops: dict[str, Any]) -> torch.Tensor:
    """Every geometric op of `ops` in one bilinear resampling of each image (edges replicated)."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    grid = affine_grid(affine_matrices(b, h, w, ops, x.device), h, w)
    if "elastic" in ops:
        field = elastic_field(b, h, w, *ops["elastic"], x.device)
        grid = grid + field * torch.tensor([2 / w, 2 / h], device=x.device)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return _keep_layout(out.to(x.dtype), x)


def erase(x: torch.Tensor, p: float) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017): with probability p per image, a rectangle of 2-33% of its area
    and aspect ratio 0.3-3.3 is set to 0 (the training mean, as inputs are normalised)."""
    import torch

    b, _, h, w = x.shape
    dev = x.device
    area = (0.02 + 0.31 * torch.rand(b, device=dev)) * h * w
    aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(b, device=dev))
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    y0 = (torch.rand(b, device=dev) * (h - eh + 1)).floor()
    x0 = (torch.rand(b, device=dev) * (w - ew + 1)).floor()
    apply = torch.rand(b, device=dev) < p
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    inside = ((rows >= y0[:, None, None]) & (rows < (y0 + eh)[:, None, None])
              & (cols >= x0[:, None, None]) & (cols < (x0 + ew)[:, None, None]) & apply[:, None, None])
    return x.masked_fill(inside[:, None], 0.0)
