"""Training throughput, side by side in one run: trainwell vs the loops a user would otherwise write.

    python benchmarks/throughput.py                      # ~6 min on 2 CPU cores; writes benchmarks/RESULTS.md
    python benchmarks/throughput.py --steps 20 --quick   # a smoke run

Every loop computes the same thing (plain cross-entropy, no weight decay, constant lr). Each measurement runs in its own fresh process (so peak memory is its own and no loop warms another's
caches), on Fashion-MNIST tensors in memory, SGD with momentum. Models: the reference 4-conv net
(32-32-64-64, 3x3, batch norm, two max-pools, FC 128; ~0.4M params) and an MLP (784-256-128-10).
Loops:
  plain-fp32     the loop most users write: fp32, default memory layout
  plain-tuned    a hand-tuned loop at the precision and layout trainwell picks (bf16 autocast, channels_last)
  trainwell      trainwell's own Trainer step (policy chosen by trainwell.precision), callbacks dispatched
  lightning-*    PyTorch Lightning's Trainer at fp32 and at the same precision
samples/s counts steps after 5 warm-up steps. Training FLOPs per step are counted with
torch.utils.flop_counter (forward + backward) and compared to a dense bf16 matmul measured in this run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
WARMUP = 5


def reference_net():
    from torch import nn

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def mlp_net():
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def load_data(n: int):
    from trainwell.data import load_source, make_splits

    src = load_source("fashion-mnist")
    s = make_splits(src, 0.1, 0.2, 0, limit_train=n)
    return s


def worker(loop: str, model_name: str, bs: int, steps: int, device: str) -> dict:
    import torch
    import torch.nn.functional as F

    from trainwell.precision import choose_precision

    torch.manual_seed(0)
    splits = load_data(min(54000, max(bs * (steps + WARMUP + 1), 4096)))
    x, y = splits.preprocess.apply(splits.x_train), splits.y_train  # plain torch: normalised floats in memory
    net = reference_net() if model_name == "convnet" else mlp_net()
    is_conv = model_name == "convnet"
    policy = choose_precision(device, "auto", is_conv)
    dev = policy.device
    flops = train_flops(net, bs, x.shape[1:])
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g)
    order = order.repeat(1 + bs * (steps + WARMUP) // len(order))  # enough indices for every step
    batches = [(x[order[i * bs:(i + 1) * bs]], y[order[i * bs:(i + 1) * bs]]) for i in range(steps + WARMUP)]

    if loop.startswith("plain"):
        tuned = loop == "plain-tuned"
        net = net.to(dev)
        if tuned and policy.channels_last:
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        xs = x.to(dev)
        if tuned and policy.channels_last:
            xs = xs.contiguous(memory_format=torch.channels_last)
        ys = y.to(dev)
        idx = [order[i * bs:(i + 1) * bs].to(dev) for i in range(steps + WARMUP)]

        def step(i):
            xb, yb = xs[idx[i]], ys[idx[i]]
            with torch.autocast(dev.type, dtype=policy.dtype, enabled=tuned and policy.dtype is not None):
                loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        for i in range(WARMUP):
            step(i)
        sync(dev)
        t = time.perf_counter()
        for i in range(WARMUP, WARMUP + steps):
            step(i)
        sync(dev)
        dt = time.perf_counter() - t
    elif loop.startswith("trainwell"):
        from trainwell.auto import resolve
        from trainwell.config import Config
        from trainwell.trainer import Trainer

        cfg = Config(model="convnet" if is_conv else "mlp", batch_size=bs, epochs=1, weight_decay=0.0, label_smoothing=0.0,
                     checkpoint_every=0, device=device, schedule="constant", warmup=0.0,
                     compile=loop == "trainwell-compile")
        cfg, _ = resolve(cfg, splits, net)  # the Trainer takes a resolved config
        trainer = Trainer(net, splits, cfg, policy)
        it = (b for epoch in range(10**6) for b in trainer.batches(epoch))
        t = time.perf_counter()
        for _ in range(WARMUP):
            trainer.train_step(*next(it))
        sync(dev)
        warmup_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(*next(it))
        sync(dev)
        dt = time.perf_counter() - t
    else:
        dt = lightning_loop(loop, net, batches, policy, steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else rss_mb()
    return {"samples_per_s": bs * steps / dt, "warmup_s": locals().get("warmup_s"), "flops_per_step": flops, "peak_mb": peak,
            "precision": policy.name, "channels_last": policy.channels_last, "device": str(dev)}


def lightning_loop(loop, net, batches, policy, steps):
    import lightning as L
    import torch
    import torch.nn.functional as F

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    marks = {}

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer, *_):
            if trainer.global_step in (WARMUP, WARMUP + steps):
                if policy.device.type == "cuda":
                    torch.cuda.synchronize()
                marks[trainer.global_step] = time.perf_counter()

    precision = "32-true" if loop == "lightning-fp32" else "bf16-mixed"
    trainer = L.Trainer(max_steps=WARMUP + steps, precision=precision, accelerator=policy.device.type, devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Clock()])
    class Batches:  # one iterable of (x, y) batches; a bare list would read as a list of data loaders
        def __iter__(self):
            return iter(batches)

        def __len__(self):
            return len(batches)

    trainer.fit(Module(), train_dataloaders=Batches())
    return marks[WARMUP + steps] - marks[WARMUP]


def train_flops(net, bs, shape):
    import copy

    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    m = copy.deepcopy(net)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(m(torch.zeros(bs, *shape)), torch.zeros(bs, dtype=torch.long)).backward()
    return counter.get_total_flops()


def matmul_peak(device: str) -> dict:
    import torch

    from trainwell.precision import choose_precision

    dev = choose_precision(device, "auto", True).device
    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a = torch.randn(2048, 2048, device=dev, dtype=dtype)
        b = torch.randn(2048, 2048, device=dev, dtype=dtype)
        for _ in range(3):
            a @ b
        sync(dev)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 2.0:
            a @ b
            n += 1
        sync(dev)
        out[name] = 2 * 2048**3 * n / (time.perf_counter() - t)
    return out


def sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(args: list[str]) -> dict:
    r = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-sizes", default="32,64,128,256,512")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", default="convnet,mlp", help="models of the batch-128 table")
    ap.add_argument("--quick", action="store_true", help="reference net at batch 128 only, no sweep")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        loop, model, bs, steps, device = a.worker
        print(json.dumps(worker(loop, model, int(bs), int(steps), device)))
        return
    import torch

    peak = matmul_peak(a.device)
    loops = ["plain-fp32", "plain-tuned", "trainwell", "trainwell-compile", "lightning-fp32", "lightning-same"]
    rows = []
    for model in (["convnet"] if a.quick else a.models.split(",")):
        for loop in loops:
            r = run_worker([loop, model, "128", str(a.steps), a.device])
            rows.append((model, 128, loop, r))
            print(model, 128, loop, r, flush=True)
    sweep = []
    if not a.quick:
        for bs in [int(b) for b in a.batch_sizes.split(",") if b]:
            for loop in ("plain-fp32", "plain-tuned", "trainwell"):
                r = run_worker([loop, "convnet", str(bs), str(a.steps), a.device])
                sweep.append((bs, loop, r))
                print("sweep", bs, loop, r, flush=True)
    text = report(rows, sweep, peak, a, torch.__version__)
    print(text)
    if not a.no_write:
        write_section(a.results, "throughput", text)


def report(rows, sweep, peak, a, torch_version) -> str:
    dev = next((r["device"] for *_, r in rows if "device" in r), "?")
    lines = [f"Command: `python benchmarks/throughput.py {' '.join(sys.argv[1:])}`  ",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {describe_device(dev)}, torch {torch_version}, "
             f"{os.cpu_count()} CPU cores. Dense 2048x2048 matmul peak measured in the same run: "
             f"bf16 {peak['bf16'] / 1e9:,.0f} GFLOP/s, fp32 {peak['fp32'] / 1e9:,.0f} GFLOP/s.", ""]
    for model in dict.fromkeys(m for m, *_ in rows):
        base = {loop: r for m, _, loop, r in rows if m == model}
        ref = base.get("plain-fp32", {}).get("samples_per_s")
        tuned = base.get("plain-tuned", {}).get("samples_per_s")
        light = base.get("lightning-same", {}).get("samples_per_s")
        lines += [f"**{model}, batch 128**", "",
                  "| loop | precision | samples/s | vs plain fp32 | vs plain tuned | vs Lightning same precision "
                  "| peak memory MB | achieved GFLOP/s | share of bf16 peak |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for loop, r in base.items():
            if "error" in r:
                lines.append(f"| {loop} | - | failed: {r['error']} | | | | | | |")
                continue
            sps = r["samples_per_s"]
            prec = "fp32" if loop in ("plain-fp32", "lightning-fp32") else r["precision"] + (
                " + channels_last" if r["channels_last"] else "")
            gflops = r["flops_per_step"] / 128 * sps / 1e9
            lines.append(f"| {loop} | {prec} | {sps:,.0f} | {ratio(sps, ref)} | {ratio(sps, tuned)} | "
                         f"{ratio(sps, light)} | {r['peak_mb']:,.0f} | {gflops:,.0f} | {gflops * 1e9 / peak['bf16']:.1%} |")
        lines.append("")
        tw, twc = base.get("trainwell", {}), base.get("trainwell-compile", {})
        if "samples_per_s" in tw and "samples_per_s" in twc:
            n = 10 * 54000  # the default Fashion-MNIST run: 10 epochs of 54,000 training examples
            plain = n / tw["samples_per_s"] + tw["warmup_s"]
            comp = n / twc["samples_per_s"] + twc["warmup_s"]
            lines += [f"torch.compile ({model}): first {WARMUP} steps take {twc['warmup_s']:.1f} s compiled vs "
                      f"{tw['warmup_s']:.1f} s eager; over a default 10-epoch run that is an estimated "
                      f"{comp:.0f} s compiled vs {plain:.0f} s eager "
                      f"({'compile pays off' if comp < plain else 'eager stays the default'}).", ""]
    if sweep:
        lines += ["**Reference net, batch-size sweep** (samples/s; training GFLOP/s of trainwell and its share of "
                  "the bf16 matmul peak)", "",
                  "| batch | plain fp32 | plain tuned | trainwell | trainwell / plain fp32 | trainwell / tuned "
                  "| trainwell GFLOP/s | share of bf16 peak | trainwell peak MB |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for bs in dict.fromkeys(b for b, *_ in sweep):
            r = {loop: res for b, loop, res in sweep if b == bs}
            if any("error" in v for v in r.values()):
                lines.append(f"| {bs} | failed | | | | | | | |")
                continue
            tw = r["trainwell"]
            g = tw["flops_per_step"] / bs * tw["samples_per_s"]
            lines.append(f"| {bs} | {r['plain-fp32']['samples_per_s']:,.0f} | {r['plain-tuned']['samples_per_s']:,.0f} | "
                         f"{tw['samples_per_s']:,.0f} | {tw['samples_per_s'] / r['plain-fp32']['samples_per_s']:.2f}x | "
                         f"{tw['samples_per_s'] / r['plain-tuned']['samples_per_s']:.2f}x | {g / 1e9:,.0f} | "
                         f"{g / peak['bf16']:.1%} | {tw['peak_mb']:,.0f} |")
        lines.append("")
    return "\n".join(lines)


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "-"


def describe_device(dev: str) -> str:
    import torch

    if dev.startswith("cuda"):
        return f"GPU {torch.cuda.get_device_name(0)}"
    import platform

    return f"CPU ({platform.processor() or platform.machine()})"


def write_section(path: str, key: str, text: str) -> None:
    """Replace the block between <!-- key:start --> and <!-- key:end --> in RESULTS.md (append if absent)."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        new = old[:old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
