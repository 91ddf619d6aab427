"""The course's pre-flight checks, each a function (context) -> Finding, run on copies of the prepared model.

Nothing here trains the user's model in place or writes a file: every check works on a deep copy.
"""
from __future__ import annotations

import copy
import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.callbacks.layers import ACTIVATIONS, SATURATING, WEIGHTED, off
from trainwell.data.splits import take
from trainwell.models import count_params
from trainwell.doctor.findings import Finding, model_of, train_command

SAMPLE = 256                # examples the forward checks look at
DUPLICATE_SCAN = 200_000    # rows hashed per split, at most


@dataclass
class Context:
    prep: Any                  # run.Prepared: config, splits, model (never modified), precision
    base: list[str]            # the user's `trainwell train` arguments, for runnable prescriptions

    def command(self, **changes: Any) -> str:
        return train_command(self.base, changes, model_of(self.prep.spec, self.prep.config.model))

    @property
    def classes(self) -> int:
        return self.prep.splits.num_classes

    def batch(self, n: int = SAMPLE, split: str = "train", offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """n examples of a split, normalised as training normalises them, in float32 on the CPU."""
        s = self.prep.splits
        x, y = {"train": (s.x_train, s.y_train), "test": (s.x_test, s.y_test)}[split]
        idx = torch.arange(offset, min(len(y), offset + n))
        return s.preprocess.apply(take(x, idx)).float().cpu(), y[idx].cpu()

    def model_copy(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        return copy.deepcopy(self.prep.model).to(device="cpu", dtype=dtype)


# --- data -----------------------------------------------------------------------------------------------

def data_balance(ctx: Context) -> Finding:
    y = ctx.prep.splits.y_train.cpu().numpy()
    names = ctx.prep.splits.preprocess.classes
    counts = np.bincount(y, minlength=ctx.classes)
    fair = len(y) / ctx.classes
    missing = [names[i] for i in np.flatnonzero(counts == 0)]
    ev = {"counts": dict(zip(names, counts.tolist())), "smallest_share_of_fair": round(float(counts.min() / fair), 3)}
    if missing:
        return Finding("data-balance", "fail", f"no training examples of {', '.join(missing[:5])}", ev,
                       "every class needs training examples: fix the labels or the split")
    rare = counts.min() / fair
    if rare < 0.1:
        worst = names[int(counts.argmin())]
        return Finding("data-balance", "warn", f"class '{worst}' has {counts.min()} training examples, "
                       f"{rare:.0%} of an even share", ev,
                       "collect more of the rare classes, or judge the run by per-class error, not accuracy alone")
    return Finding("data-balance", "pass", f"{ctx.classes} classes, the rarest at {rare:.0%} of an even share", ev)


def data_values(ctx: Context) -> Finding:
    """The loader already refuses NaN/Inf; here: what the network will see after normalisation."""
    x, _ = ctx.batch(2048)
    flat = x.flatten(1)
    mean, std = float(flat.mean()), float(flat.std())
    ev = {"normalised_mean": round(mean, 3), "normalised_std": round(std, 3),
          "min": round(float(flat.min()), 3), "max": round(float(flat.max()), 3),
          "finite": bool(torch.isfinite(flat).all())}
    if not ev["finite"]:
        return Finding("data-values", "fail", "non-finite inputs after normalisation", ev,
                       "drop or impute the examples with NaN/Inf")
    if abs(mean) > 1.0 or not 0.2 < std < 5.0 or max(abs(ev["min"]), abs(ev["max"])) > 1e3:
        return Finding("data-values", "warn", f"normalised inputs have mean {mean:.2f}, std {std:.2f}, range "
                       f"[{ev['min']:.3g}, {ev['max']:.3g}]", ev,
                       "inputs far from zero mean and unit variance slow training; look for outliers or a column "
                       "on another scale")
    return Finding("data-values", "pass", f"finite; normalised mean {mean:.2f}, std {std:.2f}", ev)


def _row_hashes(x: Any) -> list[bytes]:
    out = []
    for start in range(0, min(len(x), DUPLICATE_SCAN), 4096):
        chunk = take(x, torch.arange(start, min(len(x), DUPLICATE_SCAN, start + 4096)))
        arr = np.ascontiguousarray(chunk.cpu().numpy() if isinstance(chunk, torch.Tensor) else chunk)
        out += [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in arr.reshape(len(arr), -1)]
    return out


def data_duplicates(ctx: Context) -> Finding:
    s = ctx.prep.splits
    train = _row_hashes(s.x_train)
    labels = s.y_train.cpu().numpy()
    first_label: dict[bytes, int] = {}
    conflicts = 0
    for h, label in zip(train, labels):
        if first_label.setdefault(h, int(label)) != label:
            conflicts += 1
    test = _row_hashes(s.x_test) if len(s.y_test) else []
    shared = sum(h in first_label for h in test)
    # How often a row repeats by nature: the share of training rows that have a twin elsewhere in training is
    # what a fresh row drawn the same way would match (iris: 4 numbers of one decimal repeat; pixels do not).
    counts = Counter(train)
    natural = sum(c for c in counts.values() if c > 1) / max(1, len(train))
    ev = {"test_examples_also_in_train": shared, "test_examples": len(test),
          "train_inputs_with_two_labels": conflicts, "train_rows_repeated": round(natural, 4)}
    share = shared / max(1, len(test))
    noise = 3 * math.sqrt(max(natural, 1 / max(1, len(test))) * (1 - natural) / max(1, len(test)))
    if share > max(0.01, 2 * natural, natural + noise):
        return Finding("data-duplicates", "warn", f"{shared} of {len(test)} test examples ({share:.1%}) are also "
                       f"in the training data, where {natural:.1%} of training rows repeat inside training: the test "
                       "score flatters the model", ev,
                       "remove the duplicates from the test split (or from training) before trusting the test score")
    if conflicts > 0.01 * len(train):
        return Finding("data-duplicates", "warn", f"{conflicts} training inputs appear with two different labels",
                       ev, "check the labelling: identical inputs with different labels cap the accuracy")
    return Finding("data-duplicates", "pass", f"{shared} test examples also in training, {conflicts} inputs with "
                   "two labels", ev)


def data_classes(ctx: Context) -> Finding:
    s = ctx.prep.splits
    seen = set(s.y_train.cpu().tolist())
    names = s.preprocess.classes
    unseen = sorted({int(c) for c in torch.cat([s.y_valid, s.y_test]).cpu().tolist()} - seen)
    ev = {"classes": len(names), "model_outputs": ctx.classes, "unseen_in_training": [names[i] for i in unseen]}
    if unseen:
        return Finding("data-classes", "fail", f"{len(unseen)} classes appear in validation/test but not in "
                       f"training: {', '.join(names[i] for i in unseen[:5])}", ev,
                       "give every class training examples (a larger valid/test fraction takes them away)")
    return Finding("data-classes", "pass", f"{len(names)} classes, one output each", ev)


LEAK_ACCURACY = 0.98   # one column alone predicting this share of validation rows, well above the majority class
LEAK_MARGIN = 0.2      # ... by at least this much: a leak, or a row order that follows the label
MOSTLY_EMPTY = 0.5     # a column empty in more than this share of the training rows


def data_columns(ctx: Context) -> list[Finding]:
    """A table's columns: a column that predicts the label almost alone (a leak: Mroz's row numbers follow its
    label), columns mostly empty, and what was left out as identifier-like."""
    s = ctx.prep.splits
    table = s.preprocess.table
    if table is None:
        return [Finding("data-columns", "pass", "not a table: no columns to check", {})]
    x_tr, y_tr = s.x_train.cpu().numpy(), s.y_train.cpu().numpy()
    if len(s.y_valid):
        x_va, y_va = s.x_valid.cpu().numpy(), s.y_valid.cpu().numpy()
    else:  # no validation split: the last fifth of training rows stands in for it
        cut = len(y_tr) * 4 // 5
        x_tr, y_tr, x_va, y_va = x_tr[:cut], y_tr[:cut], x_tr[cut:], y_tr[cut:]
    names = [c["name"] for c in table["columns"]]
    majority = float(np.bincount(y_va, minlength=ctx.classes).max() / max(1, len(y_va)))
    alone = {name: _one_column_accuracy(x_tr[:, j], y_tr, x_va[:, j], y_va, ctx.classes)
             for j, name in enumerate(names)} if len(y_va) else {}
    leaks = {k: v for k, v in alone.items() if v >= LEAK_ACCURACY and v - majority >= LEAK_MARGIN}
    empty = {n: m for n, m in zip(names, table.get("missing") or []) if m > MOSTLY_EMPTY}
    ids = {k: v for k, v in (table.get("left_out") or {}).items() if v.startswith("identifier-like")}
    ev = {"alone_accuracy": {k: round(v, 4) for k, v in sorted(alone.items(), key=lambda kv: -kv[1])[:10]},
          "majority_class": round(majority, 4), "mostly_empty": empty, "left_out": table.get("left_out") or {}}
    out = []
    if leaks:
        worst = max(leaks, key=leaks.get)
        out.append(Finding("data-leak", "warn", f"column '{worst}' alone predicts the label of {leaks[worst]:.1%} of "
                           f"the validation rows (the most frequent class: {majority:.0%})"
                           + (f"; {len(leaks) - 1} more columns too" if len(leaks) > 1 else ""), ev,
                           "check how the column was made: one computed from the label, or a row number of a file "
                           "sorted by it, will not be there when predicting; leave it out",
                           ctx.command(ignore=",".join(sorted(leaks)))))
    if empty:
        shown = ", ".join(f"{k} ({v:.0%})" for k, v in sorted(empty.items(), key=lambda kv: -kv[1])[:5])
        out.append(Finding("data-columns", "warn", f"{len(empty)} column{'s are' if len(empty) > 1 else ' is'} mostly "
                           f"empty: {shown}", ev, "an empty cell is imputed and flagged (the flag is an input); if the "
                           "emptiness tells nothing, leave the column out", ctx.command(ignore=",".join(sorted(empty)))))
    if not out:
        roles = [c["role"] for c in table["columns"]]
        out.append(Finding("data-columns", "pass", f"{roles.count('numeric')} numeric and {roles.count('categorical')} "
                           "categorical columns; no column predicts the label alone"
                           + (f"; left out as identifier-like: {', '.join(ids)}" if ids else ""), ev))
    return out


def _one_column_accuracy(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, classes: int) -> float:
    """Validation accuracy of the majority label per value (categories, and numbers in up to 32 quantile bins;
    empty cells a bin of their own): what the column alone tells about the label."""
    def bins(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
        b = np.searchsorted(edges, v, side="right")
        return np.where(np.isnan(v), len(edges) + 1, b)

    finite = x[np.isfinite(x)]
    distinct = np.unique(finite)
    edges = distinct[1:] if len(distinct) <= 32 else np.unique(np.quantile(finite, np.linspace(0, 1, 33)[1:-1]))
    b, bv = bins(x, edges), bins(xv, edges)
    counts = np.zeros((len(edges) + 2, classes), dtype=np.int64)
    np.add.at(counts, (b, y), 1)
    guess = np.where(counts.sum(1) > 0, counts.argmax(1), np.bincount(y, minlength=classes).argmax())
    return float((guess[bv] == yv).mean())


# --- the model at initialisation ------------------------------------------------------------------------

def initial_loss(ctx: Context) -> Finding:
    net = ctx.model_copy().eval()
    x, y = ctx.batch()
    with torch.no_grad():
        loss = float(F.cross_entropy(net(x), y))
    chance = math.log(ctx.classes)
    ev = {"initial_loss": round(loss, 4), "ln_classes": round(chance, 4)}
    if not math.isfinite(loss) or loss > 3 * chance:
        return Finding("initial-loss", "warn", f"loss at initialisation {loss:.3g}, ln({ctx.classes}) = {chance:.3g}: "
                       "the untrained model is confidently wrong", ev,
                       "initialise with small weights (Glorot) so that the first predictions are near uniform",
                       ctx.command(init="glorot"))
    return Finding("initial-loss", "pass", f"{loss:.3f} at initialisation vs ln({ctx.classes}) = {chance:.3f}", ev)


def _weight_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_modules()
            if isinstance(m, WEIGHTED) and m.weight.requires_grad]


def symmetric_init(ctx: Context) -> Finding:
    """All-zero weights, or every unit of a layer with the same weights: gradient descent keeps them equal."""
    layers = _weight_layers(ctx.prep.model)
    bad = []
    for name, m in layers[:-1]:  # the output layer may start at zero: the units below still differ
        w = m.weight.detach().flatten(1)
        if w.shape[0] > 1 and bool((w == w[:1]).all()):
            bad.append((name, "all zero" if not w.any() else "identical units"))
    ev = {"layers_checked": len(layers) - 1, "symmetric": [f"{n} ({why})" for n, why in bad]}
    if bad:
        return Finding("symmetric-init", "fail", f"{len(bad)} layers start with {bad[0][1]} weights "
                       f"({', '.join(n for n, _ in bad[:3])})", ev,
                       "initialise weights randomly (Glorot: uniform in +-sqrt(6/(fan_in+fan_out)))",
                       ctx.command(init="glorot"))
    return Finding("symmetric-init", "pass", f"{len(layers) - 1} hidden layers start with distinct units", ev)


def output_activation(ctx: Context) -> Finding:
    from trainwell.models.outputs import ProbabilitiesToLogits

    net = ctx.model_copy().eval()
    declared = isinstance(net, ProbabilitiesToLogits)  # outputs=probabilities: look at the user's own outputs
    x, _ = ctx.batch()
    made_by: dict[int, nn.Module] = {}  # which leaf module returned which tensor
    kept: list[Any] = []  # every output stays alive, so that no id is reused for another tensor

    def note(mod: nn.Module, _inputs: Any, out: Any) -> None:  # returns None: a hook's return replaces the output
        kept.append(out)
        made_by.setdefault(id(out), mod)  # the first module that returned a tensor made it (dropout at evaluation
                                          # hands its input on unchanged)

    hooks = [m.register_forward_hook(note) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            out = net.model(x) if declared else net(x)
    finally:
        for h in hooks:
            h.remove()
    ev = {"min": round(float(out.min()), 4), "max": round(float(out.max()), 4),
          "row_sum_mean": round(float(out.sum(1).mean()), 4)}
    last = made_by.get(id(out))
    if not declared and isinstance(last, WEIGHTED):  # a linear or conv layer made the output: raw scores, whatever
        ev["last_layer"] = type(last).__name__       # their values (a deep sigmoid stack's sit in [0.52, 0.56])
        return Finding("output-activation", "pass", f"raw scores (logits) straight from a {type(last).__name__} layer", ev)
    softmax = bool(torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3))
    squashing = (nn.Tanh, nn.Sigmoid, nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Hardsigmoid, nn.Softsign, nn.ELU,
                 nn.GELU, nn.SiLU, nn.Softplus, nn.LeakyReLU, nn.SELU, nn.CELU, nn.Mish, nn.Tanhshrink)
    if not declared and isinstance(last, squashing):  # an activation module after the last layer: named
        ev["last_layer"] = type(last).__name__
        name = next((n for n, m in net.named_modules() if m is last), type(last).__name__)
        # the last layer of a top-level nn.Sequential can be taken out by name (the ablation's `remove`)
        removable = isinstance(net, nn.Sequential) and len(net) > 1 and net[-1] is last
        return Finding("output-activation", "fail", f"the outputs come out of a {type(last).__name__} ({name}) after "
                       f"the last layer, in [{ev['min']:.3g}, {ev['max']:.3g}]: the logits are bent before the loss",
                       ev, f"remove the {type(last).__name__} after the last layer: the loss wants raw scores (logits) "
                       "from a linear layer, free to take any value" + (" (trainwell can take it out: remove)"
                                                                         if removable else ""),
                       ctx.command(remove=[name]) if removable else "")
    if declared:
        if float(out.min()) >= 0 and softmax:
            return Finding("output-activation", "pass", "the model returns probabilities, as outputs=probabilities "
                           "says; trainwell trains on their logarithms", ev)
        return Finding("output-activation", "fail", "outputs=probabilities, but the model's outputs are not "
                       "probabilities (each row >= 0 and summing to 1)", ev,
                       "drop outputs=probabilities: the model returns raw scores", ctx.command(outputs="logits"))
    if float(out.max() - out.min()) < 1e-6:
        return Finding("output-activation", "pass", "every output is the same number: nothing to tell from it", ev)
    if float(out.min()) >= 0 and float(out.max()) <= 1:
        what = "softmax" if softmax else "sigmoid"
        if softmax:  # trainwell can take the model as it is
            return Finding("output-activation", "fail", "the outputs are probabilities (softmax inside the model); "
                           "the loss applies its own softmax on top, so training is squashed", ev,
                           "remove the final softmax from the model (return raw scores), or keep the model and "
                           "tell trainwell it returns probabilities", ctx.command(outputs="probabilities"))
        return Finding("output-activation", "fail", f"the outputs are in [0, 1] (a {what} inside the model?); "
                       "the loss applies its own softmax, so training is squashed", ev,
                       f"remove the final {what} from the model: return raw scores (logits)")
    if float(out.min()) >= 0:
        return Finding("output-activation", "warn", "every output is >= 0: a ReLU (or similar) on the logits?", ev,
                       "let the last layer be linear: logits must be able to go negative")
    return Finding("output-activation", "pass", "raw scores (logits) out of the last layer", ev)


def gradient_check(ctx: Context, examples: int = 4, budget: int = 400, eps: float = 1e-6) -> Finding:
    """Autograd vs central finite differences in float64, dropout off and batch norm in eval mode.

    Each parameter tensor is sampled at a few entries. An entry agrees when the two derivatives match to
    1e-4 relative; one that does not is tried again with a step 10x smaller, since a ReLU or max-pool kink
    inside the step spoils a difference (Fashion-MNIST's conv net: 1 entry in 20 at 1e-6). An entry that sits
    on a kink at both steps (its left and right differences disagree: a ReLU input exactly 0, as a zero bias
    over a blank patch of image gives) has no derivative to check and is left out. A tensor fails when over a
    quarter of its checked entries disagree: a wrong backward is wrong nearly everywhere.
    """
    try:
        net = ctx.model_copy(torch.float64).eval()
        x, y = ctx.batch(examples)
        x = x.double()
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
    except (RuntimeError, TypeError) as e:
        return Finding("gradient-check", "warn", f"could not run the model in float64 ({str(e).splitlines()[0]})", {})
    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad and p.grad is not None]
    g = torch.Generator().manual_seed(0)
    per = max(2, budget // (2 * max(1, len(params))))
    with torch.no_grad():
        at = F.cross_entropy(net(x), y).item()

    def numeric(flat: torch.Tensor, i: int, h: float) -> tuple[float, bool]:
        """The central difference, and whether the loss is smooth there (left and right differences agree)."""
        keep = flat[i].item()
        flat[i] = keep + h
        up = F.cross_entropy(net(x), y).item()
        flat[i] = keep - h
        down = F.cross_entropy(net(x), y).item()
        flat[i] = keep
        left, right = (at - down) / h, (up - at) / h
        # as tight as `agree`: a kink that spoils the central difference beyond its tolerance shows here
        return (up - down) / (2 * h), abs(left - right) <= 1e-4 * (abs(left) + abs(right)) + 1e-8

    def agree(a: float, n: float) -> bool:
        return abs(a - n) <= 1e-4 * (abs(a) + abs(n)) + 1e-9

    def verdict(a: float, flat: torch.Tensor, i: int) -> str:
        smooth = False
        for h in (eps, eps / 10):
            n, ok = numeric(flat, i, h)
            if agree(a, n):
                return "agree"
            smooth |= ok
        return "disagree" if smooth else "kink"

    disagree: dict[str, float] = {}
    kinks = 0
    with torch.no_grad():
        for name, p in params:
            flat, grad = p.view(-1), p.grad.reshape(-1)
            idx = torch.randperm(flat.numel(), generator=g)[:per].tolist()
            seen = [verdict(grad[i].item(), flat, i) for i in idx]
            kinks += seen.count("kink")
            checked = [v for v in seen if v != "kink"]
            disagree[name] = checked.count("disagree") / len(checked) if checked else 0.0
    failed = [k for k, v in disagree.items() if v > 0.25]
    ev = {"share_of_entries_disagreeing": {k: round(v, 3) for k, v in disagree.items()}, "entries_per_tensor": per,
          "examples": examples, "step": eps, "entries_on_a_kink": kinks}
    if failed:
        return Finding("gradient-check", "fail", f"autograd and finite differences disagree on {len(failed)} of "
                       f"{len(params)} parameter tensors ({', '.join(failed[:3])})", ev,
                       "a custom backward (torch.autograd.Function) or an in-place operation computes wrong "
                       f"gradients for {failed[-1]} (and what feeds it); fix it, or use built-in ops")
    return Finding("gradient-check", "pass", f"{len(params)} parameter tensors agree with finite differences", ev)


# --- through depth ---------------------------------------------------------------------------------------

def _activity(net: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Per activation module: the share of units dead (0 for every example) and of outputs saturated."""
    stats: list[dict[str, Any]] = []
    hooks = []

    def hook(name: str, m: nn.Module) -> Callable:
        def f(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            a = out.detach().float()
            units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.ndim > 2 else a.t()  # unit/channel x samples
            rec = {"layer": name, "kind": type(m).__name__, "units": units.shape[0]}
            if isinstance(m, SATURATING):
                rec["saturated"] = float(off(a, m).float().mean())
            else:
                rec["dead"] = float(off(units, m).all(1).float().mean())
            stats.append(rec)
        return f

    for name, m in net.named_modules():
        if isinstance(m, ACTIVATIONS):
            hooks.append(m.register_forward_hook(hook(name, m)))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return stats


def frozen_parameters(ctx: Context) -> Finding:
    """Weight layers that do not learn: requires_grad off (frozen), or out of the loss' graph (cut off: a
    `.detach()`, `.data` or `torch.no_grad()` in forward leaves their gradient None after a backward). Counted
    and named, so that their zero gradient is not read as a vanishing one."""
    layers = [(n, m) for n, m in ctx.prep.model.named_modules() if isinstance(m, WEIGHTED)]
    frozen = [name for name, m in layers if not m.weight.requires_grad]
    params = sum(p.numel() for p in ctx.prep.model.parameters())
    training = sum(p.numel() for p in ctx.prep.model.parameters() if p.requires_grad)
    ev: dict[str, Any] = {"frozen_layers": frozen, "weight_layers": len(layers), "trainable_params": training,
                          "params": params}
    if training == 0:
        return Finding("frozen-parameters", "fail", f"no parameter trains: all {params:,} have requires_grad=False",
                       ev, "nothing can learn: set requires_grad=True on the layers that should train")
    cut = _cut_off(ctx)
    ev["cut_off_layers"] = cut
    if cut:
        return Finding("frozen-parameters", "fail", f"{len(cut)} of {len(layers)} weight layers get no gradient at "
                       f"all: {', '.join(cut[:6])} (requires_grad is on, but they are cut off from the loss)", ev,
                       "look in forward for a .detach(), .data, or a torch.no_grad() block between these layers and "
                       "the output: nothing before it learns")
    if frozen:
        return Finding("frozen-parameters", "warn", f"{len(frozen)} of {len(layers)} weight layers are frozen "
                       f"(requires_grad=False): {', '.join(frozen[:6])}; {training / params:.1%} of the parameters "
                       "train", ev, "if the model should fit this data, unfreeze them (p.requires_grad_(True)); "
                       "fine-tuning on little data keeps a pretrained net's early layers frozen on purpose")
    return Finding("frozen-parameters", "pass", f"every weight layer trains ({params:,} parameters)", ev)


def _cut_off(ctx: Context) -> list[str]:
    """The weight layers with requires_grad on whose weight has no gradient after one backward of the loss."""
    net = ctx.model_copy().train()
    x, y = ctx.batch(16)
    try:
        F.cross_entropy(net(x), y).backward()
    except RuntimeError:  # nothing requires a gradient on the way out, or a model that cannot run backward here
        pass
    return [n for n, m in net.named_modules()
            if isinstance(m, WEIGHTED) and m.weight.requires_grad and m.weight.grad is None]


MIXING = 1e-3  # relative change of one example's output when its batch companions change: more is mixing


def batch_independence(ctx: Context) -> Finding:
    """Karpathy's "use backprop to chart dependencies": in evaluation mode, an example's output must not change
    when the other examples of its batch change. A reshape across the batch dimension, or a mean taken over the
    batch inside `forward`, makes predictions depend on the company an example keeps (batch norm in training
    mode does too, by design; evaluation uses its running statistics). Checked with the batch size the same,
    only the companions swapped, and with the gradient of example 0's output with respect to the others."""
    net = ctx.model_copy().eval()
    x, _ = ctx.batch(16)
    if len(x) < 4:
        return Finding("batch-dependence", "pass", "too few examples to compare batches", {})
    other, _ = ctx.batch(16, offset=16) if len(ctx.prep.splits.y_train) >= 32 else (x.flip(0), None)
    companions = torch.cat([x[:1], other[1:len(x)]]) if len(other) >= len(x) else torch.cat([x[:1], x[1:].flip(0)])
    with torch.no_grad():
        a, b = net(x)[0], net(companions)[0]
    change = float((a - b).abs().max() / (a.abs().max() + 1e-6))
    xg = x.clone().requires_grad_(True)
    net.zero_grad()
    try:
        net(xg)[0].sum().backward()
        grad = xg.grad
        reach = float(grad[1:].abs().sum() / (grad[0].abs().sum() + 1e-12)) if grad is not None else 0.0
    except RuntimeError:  # a model that cannot be differentiated here: the forward comparison decides
        reach = 0.0
    ev = {"output_change": float(f"{change:.3g}"), "gradient_to_other_examples": float(f"{reach:.3g}")}
    if change > MIXING or reach > MIXING:
        return Finding("batch-dependence", "fail", f"in evaluation mode, example 0's output changes by {change:.1%} "
                       "when the other examples of its batch change: the model mixes the examples of a batch", ev,
                       "look in forward for a reshape or view that crosses the batch dimension (keep dim 0 apart: "
                       "x.flatten(1), x.view(len(x), -1)) or a mean/std over dim 0 (use nn.BatchNorm, which uses "
                       "running statistics when evaluating)")
    return Finding("batch-dependence", "pass", "each example's output depends on that example alone", ev)


def _grad_ratios(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[str, float]]:
    """||grad|| / ||weight|| of each weight layer, input side first."""
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    out = []
    for name, m in _weight_layers(net):
        w = m.weight
        if w.grad is not None:
            out.append((name, float(w.grad.norm() / (w.detach().norm() + 1e-12))))
    return out


def _few_steps(ctx: Context, net: nn.Module, steps: int) -> None:
    from trainwell.optim import build_optimizer, build_schedule

    cfg = ctx.prep.config
    opt = build_optimizer(cfg.optimizer, net.parameters(), cfg.resolved_lr(), cfg.momentum, cfg.weight_decay)
    total = cfg.epochs * ((len(ctx.prep.splits.y_train) + cfg.batch_size - 1) // cfg.batch_size)
    schedule = build_schedule(opt, cfg.schedule, total, cfg.warmup, cfg.final_lr_fraction)  # the run's first steps
    n = len(ctx.prep.splits.y_train)
    net.train()
    for t in range(steps):
        x, y = ctx.batch(cfg.batch_size, offset=(t * cfg.batch_size) % max(1, n - cfg.batch_size))
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        schedule.step()


def depth(ctx: Context, steps: int = 20) -> list[Finding]:
    """At initialisation and after a few steps: dead and saturated units, gradients through depth, and
    whether the output depends on the input at all."""
    x, y = ctx.batch()
    net = ctx.model_copy()
    phases = {}
    for phase in ("init", f"after {steps} steps"):
        if phase != "init":
            _few_steps(ctx, net, steps)
        net.eval()
        act = _activity(net, x)
        net.train()
        ratios = _grad_ratios(net, x, y)
        net.eval()
        with torch.no_grad():
            out, other = net(x), net(x.roll(1, 0) if len(x) > 1 else torch.randn_like(x))
        spread = float((out - other).abs().max() / (out.abs().max() + 1e-12))
        phases[phase] = {"activity": act, "grad_ratios": ratios, "output_change": spread}
    dead, flow, blind = _dead(ctx, phases), _gradient_flow(ctx, phases), _ignores_input(ctx, phases)
    if blind.status == "fail" and dead.status != "fail":  # dead behind an activation no module hook sees?
        dead = _dead_before_functional(ctx, x) or dead
    # A layer of dead units, or a signal that fades through many saturating layers (a gradient that is
    # tiny but not 0), also leaves the output blind to the input: there, blindness is the symptom.
    fading = flow.check == "vanishing-gradients" and flow.status != "pass" and flow.evidence.get("worst_ratio", 0) > 0
    if blind.status == "fail" and (dead.status == "fail" or fading):
        blind.status = "warn"
        blind.summary += ", because of the " + ("dead units" if dead.status == "fail" else "vanishing signal")
    return [dead, _saturated(ctx, phases), flow, blind]


def _dead(ctx: Context, phases: dict[str, Any]) -> Finding:
    worst = max(((p, r) for p, v in phases.items() for r in v["activity"] if "dead" in r),
                key=lambda t: t[1]["dead"], default=None)
    ev = {p: {r["layer"]: round(r["dead"], 3) for r in v["activity"] if "dead" in r} for p, v in phases.items()}
    if worst is None:
        return Finding("dead-units", "pass", "no ReLU-family activation modules to inspect", ev)
    phase, r = worst
    if r["dead"] >= 0.5:
        return Finding("dead-units", "fail" if r["dead"] >= 0.9 else "warn",
                       f"{r['dead']:.0%} of the units of {r['layer']} output 0 for every example ({phase})", ev,
                       "dead ReLUs come from a bad initialisation (dead from the start) or a learning rate too "
                       "high (dying in training): use He (kaiming) initialisation with zero biases, a lower rate, "
                       "or batch norm", ctx.command(init="kaiming") if phase == "init" else
                       ctx.command(lr=ctx.prep.config.resolved_lr() / 10, init="kaiming"))
    return Finding("dead-units", "pass", f"at most {r['dead']:.0%} dead units in a layer ({r['layer']}, {phase})", ev)


def _dead_before_functional(ctx: Context, x: torch.Tensor) -> Finding | None:
    """For a blind output: a hidden weight layer whose units are all <= 0 for every example, at initialisation.
    Behind a ReLU called as a function (`F.relu`, which no module hook sees) those units are dead, and the root
    cause is the layer's initial weights or biases (biases of -5: every unit off), not the input."""
    net, outs, hooks = ctx.model_copy(), {}, []
    layers = _weight_layers(net)[:-1]  # the last layer's outputs are the logits
    for name, m in layers:
        def f(_m: nn.Module, _inp: Any, out: torch.Tensor, name: str = name) -> None:
            a = out.detach().float()
            units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.ndim > 2 else a.t()
            outs[name] = float((units <= 0).all(1).float().mean())
        hooks.append(m.register_forward_hook(f))
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    worst = max(outs.items(), key=lambda kv: kv[1], default=None)
    if worst is None or worst[1] < 0.9:
        return None
    return Finding("dead-units", "fail", f"{worst[1]:.0%} of the units of {worst[0]} are <= 0 for every example at "
                   "initialisation: behind a ReLU they are dead, and the output cannot see the input",
                   {"init": {k: round(v, 3) for k, v in outs.items()}, "functional": True},
                   "the layer's initial weights or biases switch every unit off: initialise with zero biases and He "
                   "(kaiming) weights", ctx.command(init="kaiming"))


def _saturated(ctx: Context, phases: dict[str, Any]) -> Finding:
    worst = max(((p, r) for p, v in phases.items() for r in v["activity"] if "saturated" in r),
                key=lambda t: t[1]["saturated"], default=None)
    ev = {p: {r["layer"]: round(r["saturated"], 3) for r in v["activity"] if "saturated" in r}
          for p, v in phases.items()}
    if worst is None:
        return Finding("saturated-units", "pass", "no tanh/sigmoid units", ev)
    phase, r = worst
    if r["saturated"] >= 0.3:
        return Finding("saturated-units", "warn", f"{r['saturated']:.0%} of the outputs of {r['layer']} "
                       f"({r['kind']}) are saturated ({phase})", ev,
                       "saturated units pass no gradient: use ReLU, normalise the inputs, or initialise smaller "
                       "(Glorot)", ctx.command(activation="relu", init="glorot"))
    return Finding("saturated-units", "pass", f"at most {r['saturated']:.0%} saturated outputs in a layer", ev)


def _gradient_flow(ctx: Context, phases: dict[str, Any]) -> Finding:
    ev = {p: {n: float(f"{v:.3g}") for n, v in ph["grad_ratios"]} for p, ph in phases.items()}
    worst_phase, worst = None, 1.0
    for p, ph in phases.items():
        r = ph["grad_ratios"]
        if len(r) < 3 or r[-1][1] <= 0:
            continue
        ratio = r[0][1] / r[-1][1]  # first layer's relative gradient over the last layer's
        if abs(math.log10(max(ratio, 1e-30))) > abs(math.log10(max(worst, 1e-30))):
            worst_phase, worst = p, ratio
    if worst_phase is None:
        return Finding("vanishing-gradients", "pass", "too few weight layers for gradients to vanish", ev)
    ev["worst_ratio"] = worst
    if worst < 1e-3:
        return Finding("vanishing-gradients", "fail" if worst < 1e-5 else "warn",
                       f"the first layer's relative gradient is {worst:.1e} of the last layer's ({worst_phase})", ev,
                       "gradients vanish through depth: use ReLU instead of sigmoid/tanh, batch norm, residual "
                       "connections, or fewer layers", ctx.command(activation="relu", init="kaiming"),
                       [c for c in [ctx.command(**v) for v in _deeper_cures(ctx.prep.spec)]
                        if c and c != ctx.command(activation="relu", init="kaiming")])
    if worst > 1e3:
        return Finding("exploding-gradients", "warn", f"the first layer's relative gradient is {worst:.1e} times "
                       f"the last layer's ({worst_phase})", ev,
                       "gradients explode through depth: lower the learning rate, use batch norm, or initialise "
                       "smaller", ctx.command(lr=ctx.prep.config.resolved_lr() / 10, init="glorot"))
    return Finding("vanishing-gradients", "pass", f"relative gradients within {max(worst, 1 / worst):.0f}x from "
                   "the first layer to the last", ev)


def _ignores_input(ctx: Context, phases: dict[str, Any]) -> Finding:
    ev = {p: float(f"{v['output_change']:.3g}") for p, v in phases.items()}
    if all(v["output_change"] < 1e-6 for v in phases.values()):
        return Finding("ignores-input", "fail", "the output is the same whatever the input", ev,
                       "the input never reaches the output: look for a multiplication by zero, a detached "
                       "tensor, or a layer that replaces its input")
    return Finding("ignores-input", "pass", "the output changes with the input", ev)


# --- training on a tiny subset ---------------------------------------------------------------------------

# Settings far outside what the course (and every default here) uses, each with the value tried instead.
SUSPECTS = (("weight_decay", 0.05, 5e-4), ("dropout", 0.8, 0.2), ("label_smoothing", 0.5, 0.1))
HELPS = 0.2  # a fix is prescribed when it lowers the subset's training error by this much at least


def configuration(ctx: Context, steps: int = 300) -> list[Finding]:
    """The run's own settings as suspects: a weight decay, dropout or label smoothing far outside the usual range
    is tried on the 64-example subset against the usual value, and prescribed only when the change measurably
    lets the model fit ("dropout 0.95 -> 0.2: subset training error 88% -> 3%")."""
    cfg, spec = ctx.prep.config, ctx.prep.spec
    out = []
    for name, limit, usual in SUSPECTS:
        value = getattr(cfg, name)
        if value is None or value < limit:
            continue
        if name == "dropout" and "dropout" not in spec.get("kwargs", {}):
            continue  # the model does not take it (refused at prepare already)
        before = _subset_error(ctx, steps)
        after = _subset_error(ctx, steps, **{name: usual})
        ev = {name: value, "tried": usual, "subset_error": round(before, 3), "subset_error_tried": round(after, 3)}
        if before - after >= HELPS:
            out.append(Finding("config-suspect", "fail", f"{name.replace('_', ' ')} {value:g} -> {usual:g}: subset "
                               f"training error {before:.0%} -> {after:.0%}", ev,
                               f"the run's own {name.replace('_', ' ')} keeps the model from fitting even a few "
                               "examples: use a value in the usual range", ctx.command(**{name: usual})))
    return out or [Finding("config-suspect", "pass", "weight decay, dropout and label smoothing in the usual range, or "
                           "not what keeps the model from fitting", {})]


def _subset_error(ctx: Context, steps: int, **changes: Any) -> float:
    """Training error on 64 training examples after `steps` steps of the run's optimizer and rate, with the run's
    regularisation (or `changes` to it); the model rebuilt from its spec when its dropout changes."""
    from trainwell.models import build_model, initialise
    from trainwell.optim import build_optimizer

    cfg = ctx.prep.config
    n = min(64, len(ctx.prep.splits.y_train))
    x, y = ctx.batch(n)
    torch.manual_seed(0)
    if "dropout" in changes:
        spec = {**ctx.prep.spec, "kwargs": {**ctx.prep.spec["kwargs"], "dropout": changes["dropout"]}}
        net = initialise(build_model(spec), cfg.init).to("cpu", torch.float32)
    else:
        net = ctx.model_copy()
    opt = build_optimizer(cfg.optimizer, net.parameters(), cfg.resolved_lr(), cfg.momentum,
                          changes.get("weight_decay", cfg.weight_decay))
    smoothing = changes.get("label_smoothing", cfg.label_smoothing)
    for _ in range(steps):
        net.train()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y, label_smoothing=smoothing)
        if not torch.isfinite(loss):
            return 1.0
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(1) != y).float().mean())


def overfit_subset(ctx: Context, steps: int = 300) -> Finding:
    """One or two batches, no regularisation: training error must reach 0, else something is broken."""
    cfg = ctx.prep.config
    n = min(64, len(ctx.prep.splits.y_train))
    x, y = ctx.batch(n)
    tried: dict[str, int | None] = {}
    errors: dict[str, float] = {}
    for opt_name, lr in ((cfg.optimizer, cfg.resolved_lr()), ("adam", 1e-3)):
        torch.manual_seed(0)
        net = ctx.model_copy()
        from trainwell.optim import build_optimizer

        opt = build_optimizer(opt_name, net.parameters(), lr, cfg.momentum, 0.0)
        reached, err = None, 1.0
        for t in range(steps):
            net.train()
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            if not torch.isfinite(loss):
                break
            loss.backward()
            opt.step()
            if t % 10 == 9:
                net.eval()
                with torch.no_grad():
                    err = float((net(x).argmax(1) != y).float().mean())
                if err == 0:
                    reached = t + 1
                    break
        tried[f"{opt_name} lr {lr:g}"] = reached
        errors[f"{opt_name} lr {lr:g}"] = round(err, 3)
        if reached:
            break
    ev = {"examples": n, "steps_to_zero_error": tried, "final_error": errors, "step_budget": steps,
          "params": count_params(ctx.prep.model)}
    first = next(iter(tried))
    if tried[first]:
        return Finding("overfit-subset", "pass", f"{n} examples fitted to 0 training error in {tried[first]} steps", ev)
    narrowest = min((m.out_features for _, m in _weight_layers(ctx.prep.model)[:-1] if isinstance(m, nn.Linear)),
                    default=None)
    ev["narrowest_hidden_layer"] = narrowest
    bottleneck = narrowest is not None and narrowest < ctx.classes
    if any(tried.values()) and not bottleneck:  # (through a layer narrower than the classes, 64 examples may
                                                # still be memorised; the whole set is not: underfitting below)
        return Finding("overfit-subset", "warn", f"with {first} the model could not fit {n} examples in {steps} "
                       "steps; adam lr 0.001 could", ev,
                       "the optimiser settings, not the model, fail to fit: try adam, or pick the rate with the "
                       "learning-rate check", ctx.command(optimizer="adam", lr=1e-3))
    best = min(errors.values())
    # it learns (well below chance), but cannot hold them all, or a layer narrower than the classes
    if best < 0.8 * (1 - 1 / ctx.classes) or bottleneck:
        why = (f"a hidden layer of {narrowest} units for {ctx.classes} classes, a bottleneck every example is squeezed "
               "through" if bottleneck else f"{ev['params']:,} parameters: far too small")
        return Finding("underfitting", "fail", f"the model could not fit {n} training examples in {steps} steps with "
                       f"{first} (at best {errors[first]:.0%} error left): {why}", ev,
                       "a model that cannot memorise a few examples cannot fit the data set: make it larger",
                       ctx.command(**wider(ctx.prep.config, ctx.prep.spec)))
    return Finding("overfit-subset", "fail", f"the model could not fit {n} training examples to 0 error in {steps} "
                   "steps, with either optimiser", ev,
                   "a model that cannot memorise a few examples is broken: check the labels match the inputs, the "
                   "model's output, and the loss")


def _deeper_cures(spec: Any) -> list[dict[str, Any]]:
    return [{**VANISHING_FIX, "batch_norm": True}, *shallower(spec, VANISHING_FIX)]


VANISHING_FIX = {"activation": "relu", "init": "kaiming"}


def shallower(spec: Any, fix: dict[str, Any]) -> list[dict[str, Any]]:
    """The course's last cure for a vanishing gradient, fewer layers: the hidden layers cut to 3 (a 12-layer
    sigmoid MLP on digits reached 94% with ReLU and He alone, 96.7% with 3 of its layers, the default 98%)."""
    hidden = ((spec if isinstance(spec, dict) else {}).get("kwargs") or {}).get("hidden")
    return [{**fix, "hidden": list(hidden[:3])}] if isinstance(hidden, (list, tuple)) and len(hidden) > 3 else []


def wider(cfg: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Config changes for a model with more capacity: 4x the hidden units of an MLP (or the tabular model),
    2x a conv net's width."""
    spec = spec if isinstance(spec, dict) else {}
    kwargs = spec.get("kwargs") or {}
    if spec.get("name") in ("mlp", "tabular") or cfg.model in ("mlp", "tabular"):
        hidden = kwargs.get("hidden") or cfg.hidden or [256, 128]
        return {"hidden": [max(64, 4 * h) for h in hidden]}
    width = kwargs.get("width") or cfg.width
    return {"width": 2 * width} if width else {"epochs": 2 * (cfg.epochs or 10)}
