"""Data-parallel training on PyTorch's own engine: `torchrun ... -m trainwell train` (or `--nproc N`).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous; `World` wraps what the trainer needs from
torch.distributed, and is a no-op object in a single process, so the loop reads the same either way:

- every rank takes its slice of each global batch (the same permutation everywhere), and
  DistributedDataParallel averages the gradients: a step means what one process's step on the whole
  batch means (same global batch size, learning rate and schedule);
- the loss the divergence guard reads, and an interrupt flag, are averaged / or-ed over ranks every step,
  so every rank takes every decision (roll back, stop) at the same step and none waits in a collective;
- rank 0 alone writes the run directory, progress and report; the run's name is rank 0's, broadcast.
gloo on CPU, NCCL on CUDA (one device per local rank).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch

TIMEOUT_S = 120  # a collective that waits longer than this fails instead of hanging


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place, and returned; a no-op in one process."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
        return t

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch's indices (all of them in one process)."""
        return idx.tensor_split(self.size)[self.rank] if self.distributed else idx

    def agree(self, loss: torch.Tensor, interrupted: int) -> tuple[torch.Tensor, bool]:
        """The loss averaged over ranks, and whether any rank was interrupted: every rank judges the same
        loss and stops at the same step. In one process: the loss itself, and this process's flag."""
        if not self.distributed:
            return loss, interrupted > 0
        agreed = torch.stack([loss.float(), torch.tensor(float(interrupted), device=loss.device)])
        self.all_reduce(agreed)
        return agreed[0] / self.size, bool(agreed[1] > 0)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (a JSON-like value: a name, a record)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


SINGLE = World()


def launched() -> bool:
    """Started by torchrun (or another launcher setting WORLD_SIZE) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world() -> World:
    """This process's place in the group, joining it on first use (gloo on CPU, NCCL on CUDA)."""
    if not launched():
        return SINGLE
    import torch.distributed as dist

    w = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:  # gloo for CPU tensors, NCCL for CUDA ones: --device cpu on a GPU machine works too
            torch.cuda.set_device(w.local_rank)
        # loopback unless the user named an interface: gloo otherwise binds to what the host name resolves to
        if os.environ.get("MASTER_ADDR", "127.0.0.1") in ("127.0.0.1", "localhost"):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        timeout = datetime.timedelta(seconds=TIMEOUT_S)
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", store=_store(w, timeout), rank=w.rank,
                                world_size=w.size, timeout=timeout)
    return w


def _store(w: World, timeout: datetime.timedelta) -> Any:
    """The rendezvous store, under a prefix of its own per torchrun restart: torchrun's agent keeps its store
    across restarts, and the restarted group would otherwise read the dead group's addresses (a flaky
    'connection refused' on restart)."""
    import torch.distributed as dist

    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # the agent hosts it; every rank is a client
    store = dist.TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500")),
                          w.size, is_master=not agent and w.main, timeout=timeout, multi_tenant=not agent)
    return dist.PrefixStore(f"trainwell/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def device_for(w: World, device: str) -> str:
    """Each local rank on its own GPU; CPU ranks share the CPU."""
    if w.distributed and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{w.local_rank}"
    return device


def run_id() -> str | None:
    """torchrun's id of this launch, the same across its restarts (None for a static rendezvous: 'none')."""
    rid = os.environ.get("TORCHELASTIC_RUN_ID")
    return rid if rid and rid != "none" else None


def restarted() -> bool:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def shutdown() -> None:
    """Leave the group. The trainer, its DDP wrapper and the reducer's pending gloo work sit in reference
    cycles; left to interpreter exit, their C++ threads are destroyed while still joinable and the process
    aborts ('terminate called without an active exception', SIGABRT) after a run that succeeded. Collect
    them first, while the group and the interpreter are alive. (No barrier here: shutdown also runs after an
    error on one rank, and a barrier the others never reach would hang until the timeout.)"""
    if launched():
        import gc

        import torch.distributed as dist

        gc.collect()
        if dist.is_initialized():
            dist.destroy_process_group()
        gc.collect()


def wrap(model: torch.nn.Module, w: World, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around the model (which rank 0's weights overwrite on every rank)."""
    if not w.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def launch(nproc: int, argv: list[str], max_restarts: int = 0) -> int:
    """`trainwell train --nproc N ...`: the same command under torchrun on this machine, on loopback."""
    import socket
    import subprocess
    import sys
    import uuid

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", uuid.uuid4().hex,
           "--local-addr", "127.0.0.1", "--max-restarts", str(max_restarts), "-m", "trainwell", *argv]
    threads = str(max(1, (os.cpu_count() or 1) // nproc))  # the cores shared out (torchrun would say 1, loudly)
    env = {**os.environ, "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads)}
    import signal

    child = subprocess.Popen(cmd, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))  # pass it on
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # torchrun and the workers got the same Ctrl-C: let them save and exit
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
