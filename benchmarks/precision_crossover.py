"""bf16 autocast against plain fp32 on this CPU, by the size of the model's training step: where the precision
policy's CPU_BF16_MIN_FLOPS comes from (trainwell/precision.py).

    python benchmarks/precision_crossover.py

Dense models (an MLP of two hidden layers, the shape trainwell's `mlp` has) at batch sizes and widths from a table's
MLP to a wide one, and trainwell's small conv nets; each timed over 150 steps (SGD + momentum) after 20 warm-up
steps, fp32 and bf16 side by side in one process. Prints forward FLOPs per batch and the bf16 / fp32 step-time
ratio (below 1: bf16 is faster). Meaningful only on a CPU with bf16 units (AMX or AVX512-BF16).
"""
from __future__ import annotations

import platform
import time

import torch
from torch import nn

from trainwell.capacity import forward_flops
from trainwell.config import Config
from trainwell.models import build_model, model_spec
from trainwell.precision import CPU_BF16_MIN_FLOPS, cpu_has_bf16_units


def step_ms(net: nn.Module, shape: list[int], batch: int, bf16: bool, steps: int = 150) -> float:
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, *shape), torch.randint(0, 2, (batch,))
    if bf16 and len(shape) == 3:  # trainwell's conv nets run channels_last under bf16
        x, net = x.contiguous(memory_format=torch.channels_last), net.to(memory_format=torch.channels_last)
    for i in range(steps + 20):
        if i == 20:
            t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t) / steps * 1e3


def dense(d: int, w: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, w), nn.ReLU(), nn.Linear(w, w // 2), nn.ReLU(), nn.Linear(w // 2, 10))


def main() -> None:
    torch.manual_seed(0)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, bf16 units: "
          f"{cpu_has_bf16_units()}; policy threshold {CPU_BF16_MIN_FLOPS / 1e6:.0f} MFLOPs (dense models only)\n")
    print("| model | input | batch | MFLOPs forward per batch | fp32 ms/step | bf16 ms/step | bf16 / fp32 |")
    print("|---|---|---|---|---|---|---|")
    cases = [(d, w, b) for d, w, b in [(8, 256, 32), (8, 256, 128), (30, 256, 256), (100, 256, 128), (784, 256, 32),
                                       (784, 256, 128), (100, 512, 256), (784, 512, 128), (784, 1024, 256)]]
    for d, w, b in cases:
        flops = forward_flops(dense(d, w), [d]) * b
        f, h = step_ms(dense(d, w), [d], b, False), step_ms(dense(d, w), [d], b, True)
        print(f"| mlp {w},{w // 2} | {d} | {b} | {flops / 1e6:.1f} | {f:.3f} | {h:.3f} | {h / f:.2f} |")
    for shape, depth in [([1, 8, 8], 2), ([1, 12, 12], 2), ([3, 32, 32], 3)]:
        spec = model_spec(Config(model="convnet", width=16, head="pool", depth=depth, batch_norm=True), shape, 2)
        flops = forward_flops(build_model(spec), shape) * 64
        f, h = step_ms(build_model(spec), shape, 64, False), step_ms(build_model(spec), shape, 64, True)
        print(f"| convnet 16 x {depth} | {'x'.join(map(str, shape))} | 64 | {flops / 1e6:.1f} | {f:.3f} | {h:.3f} | "
              f"{h / f:.2f} |")


if __name__ == "__main__":
    main()
