"""Monitors of the network's insides during training, as the course asks: "check weight and gradient norms",
"visualize features" (hidden units sparse and uncorrelated in good training; ignoring the input and
correlated in bad training), "visualize filters".

Every `every` steps, `LayerMonitor` records
- per weight layer: ||W||, ||grad W|| and the update ratio ||delta W|| / ||W|| of that step (the course's
  rule of thumb: around 1e-3);
- per activation layer, on a fixed probe batch (the first examples of the validation split), in eval mode:
  the mean activation variance of a unit across examples, the sparsity (share of outputs <= 0, or near
  the limits for tanh/sigmoid), the share of dead units (0 for every probe example), and the mean absolute
  correlation between units;
and the first layer's weights (conv filters, or an MLP's input weights) at the start and at the latest
epoch's end. At the same two moments, a snapshot of each activation layer on the probe batch: a histogram
of its outputs, each unit's share of probe examples on which it is off (its sparsity across samples), and
the correlation matrix of its first units -- what the report draws.

Records go to `monitors.jsonl`, the filters to `filters.safetensors` and the snapshots to
`units.safetensors` in the run directory. The probe is
a forward pass in eval mode without gradients: it draws no random numbers and changes no state, so a run
with monitors computes exactly what it computes without them.
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from trainwell import rundir
from trainwell.callbacks.base import Callback
from trainwell.metrics import prepare_batch

PROBE = 256              # examples in the probe batch
RECORDS_PER_EPOCH = 4    # the default interval: about this many records an epoch ...
MIN_EVERY = 50           # ... but never more often than every this many steps
MAX_UNITS = 256          # units whose correlation is measured, per layer
SNAPSHOT_UNITS = 32      # units whose correlation matrix a snapshot keeps, per layer
HIST_BINS = 40           # bins of a snapshot's activation histogram
# The latest snapshot and the monitors file are renewed at an epoch's end at most this often, and always at the
# last epoch: on a small image set of 6 steps an epoch, renewing them every epoch was ~1 s of a 5 s fit.
WRITE_EVERY_S = 2.0
# the module kinds the monitors (and the doctor's depth checks) look at
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardtanh)
SATURATING = (nn.Tanh, nn.Sigmoid, nn.Hardtanh)
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def default_every(steps_per_epoch: int) -> int:
    return max(MIN_EVERY, steps_per_epoch // RECORDS_PER_EPOCH)


def label(name: str, module: Any) -> str:
    """A layer as the records and the report name it: its module name, with its kind where the name is only a
    position in a Sequential ('3' -> '3 Conv2d', 'features.0' -> 'features.0 Conv2d'; 'fc1' stays 'fc1')."""
    return f"{name} {type(module).__name__}" if name.rpartition(".")[2].isdigit() else name


class LayerMonitor(Callback):
    def __init__(self, run_dir: str | None = None, every: int | None = None) -> None:
        self.run_dir, self.every = run_dir, every
        self.records: list[dict[str, Any]] = []
        self.filters: dict[str, torch.Tensor] = {}
        self.units: dict[str, torch.Tensor] = {}    # "init/<layer>/hist", "latest/<layer>/corr", ...
        self._before: list[torch.Tensor] | None = None
        self._grad_norms: torch.Tensor | None = None
        self._cut: list[bool] = []
        self._probe: torch.Tensor | None = None
        self._written_at = float("-inf")  # when the monitors were last renewed

    # --- hooks --------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any) -> None:
        self.every = self.every or default_every(trainer.state.steps_per_epoch)
        self._layers = [(label(n, m), m) for n, m in trainer.model.named_modules() if isinstance(m, WEIGHTED)]
        self._acts = [(label(n, m), m) for n, m in trainer.model.named_modules() if isinstance(m, ACTIVATIONS)]
        x = trainer.x_valid if len(trainer.y_valid) else trainer.x_train
        idx = torch.arange(min(PROBE, len(x)))
        self._probe = prepare_batch(x[idx.to(x.device) if isinstance(x, torch.Tensor) else idx],
                                    trainer.precision, trainer.splits.preprocess)
        if self._layers and "init" not in self.filters:
            self.filters["init"] = self._layers[0][1].weight.detach().float().cpu().clone()
        if not any(k.startswith("init/") for k in self.units):
            self.units.update(self._snapshot("init", self._probe_outputs(trainer)))

    def on_after_backward(self, trainer: Any) -> None:
        if trainer.state.step % self.every:
            return
        weights = [m.weight for _, m in self._layers]
        grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
        self._cut = [w.requires_grad and w.grad is None for w in weights]  # out of the loss' graph (a .detach())
        self._grad_norms = torch.stack(torch._foreach_norm(grads))
        self._before = [w.detach().clone() for w in weights]

    def on_batch_end(self, trainer: Any) -> None:
        if self._before is None:
            return
        weights = [m.weight.detach() for _, m in self._layers]
        w_norm = torch.stack(torch._foreach_norm(weights))
        d_norm = torch.stack(torch._foreach_norm(torch._foreach_sub(weights, self._before)))
        rows = torch.stack([w_norm.float(), self._grad_norms.float(), (d_norm / w_norm.clamp_min(1e-12)).float()])
        values = rows.tolist()  # one host sync per record
        record: dict[str, Any] = {"step": trainer.state.step, "epoch": trainer.state.epoch + 1, "layers": {
            name: {"weight_norm": values[0][i], "grad_norm": values[1][i], "update_ratio": values[2][i],
                   **({"frozen": True} if not m.weight.requires_grad else {}),  # a zero gradient by design
                   **({"cut_off": True} if self._cut[i] else {})}
            for i, (name, m) in enumerate(self._layers)}}
        record["units"] = self._unit_stats(trainer)
        self.records.append(record)
        self._before = None

    def on_epoch_end(self, trainer: Any) -> None:
        last = trainer.state.should_stop or trainer.state.epoch >= trainer.config.epochs
        if not last and time.monotonic() - self._written_at < WRITE_EVERY_S:
            return
        if self._layers:  # the first layer at the start and now (two tensors: checkpoints stay small)
            self.filters["latest"] = self._layers[0][1].weight.detach().float().cpu().clone()
        self.units = {k: v for k, v in self.units.items() if not k.startswith("latest/")}
        self.units.update(self._snapshot("latest", self._probe_outputs(trainer)))
        self._write()

    def on_fit_end(self, trainer: Any) -> None:
        self._write()

    # --- probe ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _probe_outputs(self, trainer: Any) -> dict[str, torch.Tensor]:
        """Each activation layer's output on the probe batch, in eval mode (float32)."""
        outputs: dict[str, torch.Tensor] = {}
        hooks = [m.register_forward_hook(self._keep(name, outputs)) for name, m in self._acts]
        model = trainer.model
        was_training = model.training
        try:
            model.eval()
            with trainer.precision.autocast():
                model(self._probe)
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
        return {name: outputs[name].float() for name, _ in self._acts if name in outputs}

    def _unit_stats(self, trainer: Any) -> dict[str, dict[str, float]]:
        outputs = self._probe_outputs(trainer)
        stats = {}
        for name, m in self._acts:
            if name not in outputs:
                continue
            a = outputs[name]
            units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.ndim > 2 else a.t()  # units x samples
            is_off = off(a, m)
            per_unit = _per_unit(a)
            sub = per_unit[:MAX_UNITS]
            var = sub.var(1)
            live = var > 1e-12
            corr = torch.corrcoef(sub[live]) if int(live.sum()) > 1 else None
            mean_abs_corr = None
            if corr is not None:
                k = corr.shape[0]
                mean_abs_corr = float((corr.abs().sum() - k) / (k * (k - 1)))
            stats[name] = {"variance": float(var.mean()), "sparsity": float(is_off.float().mean()),
                           # a saturating unit is never called dead: saturation is counted apart (the doctor)
                           "dead": float(off(units, m).all(1).float().mean()) if not isinstance(m, SATURATING)
                           else float(0.0), "correlation": mean_abs_corr}
            if isinstance(m, SATURATING):  # the share of outputs at the limits, where the gradient is ~0
                stats[name]["saturated"] = float(is_off.float().mean())
        return stats

    def _snapshot(self, when: str, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per activation layer: histogram of outputs (counts + edges), each unit's share of probe examples
        on which it is off, and the correlation matrix (across examples) of the first units."""
        kinds = dict(self._acts)
        snap = {}
        for name, a in outputs.items():
            lo, hi = float(a.min()), float(a.max())
            hi = hi if hi > lo else lo + 1e-6
            key = f"{when}/{name}"
            snap[f"{key}/hist"] = torch.histc(a.flatten(), HIST_BINS, lo, hi)
            snap[f"{key}/edges"] = torch.linspace(lo, hi, HIST_BINS + 1)
            is_off = off(a, kinds[name])
            # a conv unit is off on an example when it is off at most of its positions
            off_per_example = is_off.float().transpose(0, 1).reshape(a.shape[1], a.shape[0], -1).mean(2) \
                if a.ndim > 2 else is_off.float().t()
            snap[f"{key}/unit_off"] = (off_per_example > 0.5).float().mean(1)
            sub = _per_unit(a)[:SNAPSHOT_UNITS]
            corr = torch.corrcoef(sub) if sub.shape[0] > 1 else torch.ones(1, 1)
            snap[f"{key}/corr"] = torch.nan_to_num(corr, nan=0.0)  # a constant unit correlates with nothing
        return {k: v.float().cpu().contiguous() for k, v in snap.items()}

    @staticmethod
    def _keep(name: str, outputs: dict[str, torch.Tensor]):
        def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            outputs[name] = out.detach()
        return hook

    # --- files and resume -------------------------------------------------------------------------------
    def _write(self) -> None:
        self._written_at = time.monotonic()
        if self.run_dir is None:
            return
        rundir.write_monitors(self.run_dir, self.records, self.filters, self.units)

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records, "filters": dict(self.filters), "units": dict(self.units)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state["records"])
        self.filters = dict(state["filters"])
        self.units = dict(state.get("units", {}))
        self._before = None  # a rollback may land between a step's two hooks


def off(a: torch.Tensor, m: nn.Module) -> torch.Tensor:
    """Where a unit is off: <= 0 for rectifiers, near the limits for tanh / sigmoid. The one definition of
    a dead unit (off for every example) and of a saturated output, for the monitors and the doctor alike."""
    if isinstance(m, SATURATING):
        lo = 0.01 if isinstance(m, nn.Sigmoid) else -0.99
        return (a <= lo) | (a >= 0.99)
    return a <= 0


def _per_unit(a: torch.Tensor) -> torch.Tensor:
    """units x examples: a conv unit's mean over its positions."""
    return a.transpose(0, 1).reshape(a.shape[1], a.shape[0], -1).mean(2) if a.ndim > 2 else a.t()
