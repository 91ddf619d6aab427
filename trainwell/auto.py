"""Settings left at `auto`, resolved from the data: what `trainwell train --data FILE` does with no other flag.

Each choice comes with its reason; run.py records both in env.json and prints them, and config.yaml
holds the resolved values (so a resumed or repeated run does exactly the same). Imports no torch, so
that `trainwell --help` can quote the rules.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from trainwell import augment, optim
from trainwell.config import Config
from trainwell.models import INIT_OF, REGISTRY, is_user_file

if TYPE_CHECKING:
    from trainwell.data.splits import Splits

# The training budget (benchmarks/small_data.py measured these on small public sets; Fashion-MNIST,
# 54,000 training images, keeps batch 128 and 10 epochs):
BATCH = 128            # mini-batch size once the data is large enough
SMALL_DATA = 5000      # below this many training examples, small batches: more steps per pass
SMALL_BATCH = 32
EPOCHS = 10            # the least number of epochs
MIN_STEPS = 1000       # small sets get at least this many optimizer steps ...
MAX_EPOCHS = 100       # ... but never more than this many epochs
# Small image sets: conv nets at batch 32 and the batch-128 learning rate fell into a constant prediction
# on one seed in two (shapes: 52% vs 92%), so their SGD rate scales with the batch (0.05 x 32/128, the
# linear scaling rule), and +-2 pixel shifts fight the overfitting of a small set (98-99% over 3 seeds).
# MLPs measured better at the unscaled rate (mnist1d 64.6% vs 56.5%).
SMALL_IMAGE_AUGMENT = "translate=2"
# Tables: the MLP's dropout, chosen on the tuning half of benchmarks/tables.py (7 tables x 2 seeds: 84.67% mean
# accuracy against 84.27% without; 3 x 256 hidden units 84.62%, the tabular model with adam 84.45%, weight decay
# 5e-3 84.13%), RealMLP-TD's own value.
TABLE_DROPOUT = 0.15
# Tables with at least this many training rows get the MLP with periodic input embeddings (models/tabular.py).
# On the tuning half of benchmarks/tables.py (11 tables x seeds 0, 1) the embeddings gained where rows were many
# (hpc_data +3.9 points, nassCDS +0.5, Default +0.1, Fertility2 and HI +0.0, credit_data -0.6) and lost where
# they were few (Mroz, 753 rows, -4.6; Chile -1.0; OJ -0.9): with few rows the sharper functions they allow
# fit the noise. Only the numbers are embedded (not their missing indicators or the one-hot slots): 24 tables x 3
# seeds, tuning half 83.00% against 83.07% with every input embedded, held-out 84.72 against 84.66%, and up to
# 1.4x less wall time on the largest tables (diamonds 13.7 s against 18.7 s).
TABLE_EMBED_ROWS = 3000
# Tables: at least 30 epochs (and MIN_STEPS steps). Ten epochs stopped the larger tables short (best epoch the
# last). benchmarks/tables.py, 3 seeds, one session (2026-12-02): tuning half 83.13% -> 83.29% (hpc_data +1.6,
# Fertility2 +0.6, HI +0.1, credit_data -0.6, the tables that already had 30+ epochs unchanged); >= 3,000 steps
# instead gained less (83.23%: Mroz -0.7, HMDA -0.4). Then, not tuned on: held-out 84.78% -> 84.94% (diamonds
# +2.2), 13 tables never run before 82.87% -> 85.47% (Star +21 at the same column roles, DoctorContacts +6.4), at
# up to 2.3x the wall time on the largest (diamonds 15 -> 33 s).
TABLE_MIN_EPOCHS = 30
TABLE_MIN_STEPS = MIN_STEPS
# Larger image sets with the conv net `auto` picks: the recipe that reached 94% Fashion-MNIST test
# accuracy within the wall time of the earlier default (10 epochs of the 32-wide net at batch 128: 93.63%),
# measured side by side by benchmarks/recipes.py (94.10% in 0.76x the time; 94.06% at lr 0.1 in 0.87x;
# 94.01% at batch 128, lr 0.1, 20 epochs in 0.84x). A net half as wide costs about half as much per epoch
# on a CPU, so it takes smaller batches for nearly twice as many epochs, on mirror images, and is scored
# with flip averaging.
IMAGE_RECIPE = {"width": 16, "batch_size": 64, "epochs": 18, "augment": "flip"}
# Smaller image sets, chosen on the tuning half of benchmarks/image_zoo.py (issue 23): the course's conv net
# with a fully connected head and a batch-scaled rate sat at chance on clutter (shapes on clutter 47.6% vs
# a hand-written batch-norm net's 93%). Batch norm, global average pooling (where a shape sits stops
# mattering), the optimizer's own rate at batch 64, shifts of a tenth of the side, and >= SMALL_IMAGE_STEPS
# optimizer steps; a third stage only where the maps stay >= 3 pixels.
# Measured on shapes on clutter (seed 1): 89.6% at lr 0.05 and 600 steps, 91.3% at 1,000 steps, 96.4% at
# lr 0.1 and 1,000 steps (the baseline: 93.0% mean over 3 seeds), in less wall time than the baseline.
SMALL_IMAGE = {"width": 16, "head": "pool", "batch_size": 64}
SMALL_IMAGE_STEPS = 1000
SMALL_IMAGE_MIN_EPOCHS = 15
SMALL_IMAGE_LR = 2.0   # x the SGD family's default rate (0.05 -> 0.1): batch norm takes the larger steps


def default_monitor(has_valid: bool) -> str:
    return "valid_error" if has_valid else "train_loss"


# the fields `resolve` decides, and the values that leave them undecided
RESOLVED = {"model": ("auto",), "init": ("auto",), "augment": ("auto",), "tta": ("auto",), "monitor": ("auto",),
            "batch_size": (None,), "epochs": (None,), "lr": ("auto",)}


def unresolved(cfg: Config) -> list[str]:
    """The fields still left to `auto` (lr=auto: to the learning-rate protocol that prepare runs)."""
    return [k for k, undecided in RESOLVED.items() if any(getattr(cfg, k) == u for u in undecided)]


def resolve(cfg: Config, splits: Splits, user_model: Any = None) -> tuple[Config, dict[str, str]]:
    """The config with every `auto` replaced by a concrete value, and why each was chosen."""
    changes: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    shape = list(splits.preprocess.shape)
    n = len(splits.y_train)
    # the measured recipe applies to the conv net auto picks for a large enough image set
    recipe = user_model is None and cfg.model == "auto" and _is_image(shape) and n >= SMALL_DATA
    if recipe and cfg.width is None:
        changes["width"] = IMAGE_RECIPE["width"]
        reasons["width"] = (f"{IMAGE_RECIPE['width']}: a narrower conv net trained longer reached 94% Fashion-MNIST "
                            "test accuracy in less time than the 32-wide one took to reach 93.6% (benchmarks/RESULTS.md)")
    small_recipe = user_model is None and cfg.model == "auto" and _is_image(shape) and n < SMALL_DATA
    if small_recipe:
        side = min(shape[1:])
        for key, value in (("width", SMALL_IMAGE["width"]), ("head", SMALL_IMAGE["head"]),
                           ("depth", 3 if side >= 24 else 2)):  # the batch size is decided with the others below
            if getattr(cfg, key) is None:
                changes[key] = value
        if "head" in changes:
            reasons["head"] = (f"pool, depth {changes.get('depth', cfg.depth)}, width {changes.get('width', cfg.width)}: "
                               f"a small image set ({n:,}): batch norm and global average pooling, chosen on the "
                               "tuning half of benchmarks/image_zoo.py, where the course's fully connected head sat "
                               "near chance on clutter")
    if user_model is None and cfg.model == "auto":
        if _is_image(shape):
            changes["model"] = "convnet"
            reasons["model"] = f"convnet: the inputs are {'x'.join(map(str, shape))} images (channels x height x width)"
        elif splits.preprocess.kind == "table" and n >= TABLE_EMBED_ROWS:
            changes["model"] = "tabular"
            reasons["model"] = (f"tabular: a table of {n:,} training rows (>= {TABLE_EMBED_ROWS:,}): an MLP with "
                                "periodic embeddings of its numbers, which bends sharply where trees would cut")
        else:
            changes["model"] = "mlp"
            reasons["model"] = f"mlp: the inputs are vectors of {math.prod(shape)} features, not images"
        if changes["model"] != "convnet":
            if splits.preprocess.kind == "table" and cfg.dropout is None:
                changes["dropout"] = TABLE_DROPOUT
                reasons["dropout"] = (f"{TABLE_DROPOUT}: a table (RealMLP's dropout; +0.4 points of accuracy on the "
                                      "tuning half of benchmarks/tables.py)")
    if cfg.init == "auto":
        name = changes.get("model", cfg.model)
        if user_model is not None or is_user_file(name):
            changes["init"] = "default"
            reasons["init"] = "default: your model keeps the weights it was built with"
        else:
            changes["init"] = INIT_OF[name]
            reasons["init"] = f"{INIT_OF[name]}: the initialisation {name} is designed for"
    if cfg.monitor == "auto":
        has_valid = len(splits.y_valid) > 0
        changes["monitor"] = default_monitor(has_valid)
        if not has_valid:
            reasons["monitor"] = "train_loss: there is no validation split (valid_fraction 0) to select on"
    model = changes.get("model", cfg.model)
    small_images = n < SMALL_DATA and _is_image(shape) and model in REGISTRY and model != "mlp"  # a conv net
    if cfg.augment == "auto":
        shift = f"translate={max(1, round(min(shape[1:]) / 10))}" if small_recipe else SMALL_IMAGE_AUGMENT
        changes["augment"] = shift if small_images else IMAGE_RECIPE["augment"] if recipe else ""
        if small_images:
            reasons["augment"] = (f"{shift}: a small image set ({n:,} training images) overfits without it"
                                  + (" (shifts of a tenth of the side)" if small_recipe else ""))
        elif recipe:
            reasons["augment"] = ("flip: mirror images (as fastai does by default); pass --augment none where a "
                                  "mirror image changes the class (digits, text)")
    augment_ops = changes.get("augment", cfg.augment)
    if cfg.tta == "auto":
        changes["tta"] = "flip" if "h" in augment.parse(augment_ops).get("flip", "") else "none"  # left-right
        if changes["tta"] == "flip":
            reasons["tta"] = "flip: trained on mirror images, so each test image is scored with its mirror image too"
    if cfg.batch_size is None and small_recipe:
        changes["batch_size"] = min(SMALL_IMAGE["batch_size"], n)
        reasons["batch_size"] = f"{changes['batch_size']}: the small-image recipe (see head)"
    elif cfg.batch_size is None and recipe:
        changes["batch_size"] = IMAGE_RECIPE["batch_size"]
        reasons["batch_size"] = f"{changes['batch_size']}: the recipe of the {IMAGE_RECIPE['width']}-wide conv net (see width)"
    elif cfg.batch_size is None:
        changes["batch_size"] = BATCH if n >= SMALL_DATA else min(SMALL_BATCH, n)
        if n < SMALL_DATA:
            reasons["batch_size"] = f"{changes['batch_size']}: {n:,} training examples (< {SMALL_DATA:,}) get small batches"
    if cfg.epochs is None and small_recipe:
        steps = math.ceil(n / changes.get("batch_size", cfg.batch_size))
        changes["epochs"] = min(MAX_EPOCHS, max(SMALL_IMAGE_MIN_EPOCHS, math.ceil(SMALL_IMAGE_STEPS / steps)))
        reasons["epochs"] = (f"{changes['epochs']}: {steps} steps per epoch; a small image set gets >= "
                             f"{SMALL_IMAGE_STEPS} optimizer steps (at least {SMALL_IMAGE_MIN_EPOCHS} epochs)")
    elif cfg.epochs is None and recipe:
        changes["epochs"] = IMAGE_RECIPE["epochs"]
        reasons["epochs"] = f"{changes['epochs']}: the recipe of the {IMAGE_RECIPE['width']}-wide conv net (see width)"
    elif cfg.epochs is None:
        steps = math.ceil(n / changes.get("batch_size", cfg.batch_size))
        table = splits.preprocess.kind == "table"
        least, min_steps = (TABLE_MIN_EPOCHS, TABLE_MIN_STEPS) if table else (EPOCHS, MIN_STEPS)
        changes["epochs"] = min(MAX_EPOCHS, max(least, math.ceil(min_steps / steps)))
        if changes["epochs"] > least:
            reasons["epochs"] = (f"{changes['epochs']}: {steps} steps per epoch; small data gets >= {min_steps} "
                                 f"optimizer steps (at most {MAX_EPOCHS} epochs), selected on validation")
        elif table:
            reasons["epochs"] = (f"{changes['epochs']}: a table gets at least {least} epochs (10 stopped the larger "
                                 "tables of benchmarks/tables.py short), selected on validation")
    if cfg.lr is None:
        base = optim.DEFAULT_LR[cfg.optimizer]
        batch = changes.get("batch_size", cfg.batch_size)
        scale = (small_images and not small_recipe and cfg.optimizer in ("sgd", "momentum", "nesterov")
                 and batch < BATCH)
        changes["lr"] = base * batch / BATCH if scale else base
        if small_recipe and cfg.optimizer in ("sgd", "momentum", "nesterov"):
            changes["lr"] = base * SMALL_IMAGE_LR
            reasons["lr"] = f"{changes['lr']:g}: {SMALL_IMAGE_LR:g} x {cfg.optimizer}'s {base:g} for the batch-norm net (see head)"
        if scale:
            reasons["lr"] = f"{changes['lr']:g}: {cfg.optimizer}'s {base:g} scaled to batch {batch} (x {batch}/{BATCH})"
    return dataclasses.replace(cfg, **changes), reasons


def _is_image(shape: list[int]) -> bool:
    """(C, H, W) with room for a 3x3 convolution; (D,) feature vectors are not images."""
    return len(shape) == 3 and shape[1] >= 3 and shape[2] >= 3
