"""Device and precision policy: CUDA when present; on CPUs with bf16 matrix units, bf16 autocast and
channels_last for conv nets (~2.5x a plain fp32 loop on these machines) and for dense models large enough to
gain from it; fp32 elsewhere."""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch

from trainwell.errors import UserError


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """AMX or AVX512-BF16: the CPU multiplies bf16 matrices natively."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# A dense model (no convolution) whose forward pass costs fewer FLOPs than this per training step runs faster
# in plain fp32 on a CPU: autocast's casts cost more than the bf16 units save on small matrices.
# benchmarks/precision_crossover.py (Intel Xeon AVX512-BF16/AMX, 2 cores): bf16 / fp32 step time 1.46 at 2.3
# MFLOPs (a table's MLP at batch 32), 1.40 at 21, 1.20 at 60 (Fashion-MNIST's MLP at batch 128), 0.83 at 95, 0.67
# at 682. Conv nets gained from bf16 down to the smallest measured (8x8 images at batch 64, 48 MFLOPs: 0.80).
CPU_BF16_MIN_FLOPS = 80e6


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None      # autocast dtype, None for plain fp32
    channels_last: bool
    reason: str

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "").replace("bfloat16", "bf16")

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def to_dict(self) -> dict:
        return {"device": str(self.device), "precision": self.name, "channels_last": self.channels_last,
                "reason": self.reason}


def choose_precision(device: str, precision: str, is_conv: bool, step_flops: float | None = None) -> Precision:
    """Resolve `auto` settings; every choice is recorded (env.json) with the reason. `step_flops`: the forward
    FLOPs of one training batch, where known (a small dense model stays in fp32 on a CPU)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available; use --device auto or cpu")
    dev = torch.device("cuda" if device == "cuda" or device == "auto" and torch.cuda.is_available() else "cpu")
    if precision == "fp32":
        return Precision(dev, None, False, "forced by --precision fp32")
    if dev.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        if precision == "bf16":
            why = "forced by --precision bf16" + ("" if ok else " (this GPU has no native bf16: expect it slow)")
            return Precision(dev, torch.bfloat16, is_conv, why)
        if ok:
            return Precision(dev, torch.bfloat16, is_conv, "CUDA with bf16 support")
        return Precision(dev, None, False, "CUDA without bf16 support")
    fast = cpu_has_bf16_units()
    if precision == "bf16":
        return Precision(dev, torch.bfloat16, is_conv and fast, "forced by --precision bf16")
    if fast and not is_conv and step_flops is not None and step_flops < CPU_BF16_MIN_FLOPS:
        return Precision(dev, None, False, f"a small dense model ({step_flops / 1e6:.1f} MFLOPs forward per batch, "
                                           f"< {CPU_BF16_MIN_FLOPS / 1e6:.0f}): fp32 is faster than bf16 autocast here")
    if fast:
        return Precision(dev, torch.bfloat16, is_conv, "CPU has bf16 matrix units (AMX/AVX512-BF16)")
    return Precision(dev, None, False, "CPU without bf16 matrix units")
