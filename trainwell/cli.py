"""`trainwell` command line. Imports nothing heavy until a command runs, so `--help` is instant.

Exit codes: 0 ok, 1 bug (traceback), 2 bad input (one line), 3 training failed, 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

EXAMPLES = """examples:
  trainwell train                                   # Fashion-MNIST, conv net, the course's defaults
  trainwell train --data my.csv --label species     # a table: text categories and empty cells are fine
  trainwell train --data train.csv --test-data test.csv --label y   # your own test file
  trainwell train --data photos/                    # one sub-folder of images per class (or train|val|test/CLASS)
  trainwell train --data digits --model mlp --hidden 64 --epochs 20 --optimizer adam
  trainwell train --config exp.yaml lr=0.02 epochs=5
  trainwell train --data my.csv --lr auto           # the learning rate by the course's protocol, on a subset
  trainwell train --resume runs/NAME                # carry on after Ctrl-C or a crash
  trainwell search --space space.yaml --trials 20   # Bayesian search (TPE + Hyperband pruning); tests the best once
  trainwell search --space space.yaml --sampler grid --jobs 2 --data digits --model mlp
  trainwell search --show search-space-fashion-mnist  # the trials table, best trial, importances
  trainwell doctor --data my.csv --model mlp         # the course's checks before a long run
  trainwell diagnose runs/NAME                       # what went wrong, and the command that fixes it
  trainwell report runs/NAME                         # rewrite runs/NAME/report.html (also mid-run)
  trainwell report runs/A runs/B --out ab.html       # runs side by side: curves, summaries, config differences
  trainwell summary --model resnet --depth 20        # parameters, FLOPs, measured epoch time
  trainwell evaluate runs/NAME
  trainwell ablate runs/NAME --remove conv3,conv4    # retrain without those layers, compare
  trainwell ensemble runs/A runs/B runs/C             # average their probabilities on one test set
  trainwell predict runs/NAME shirt.png --top 3
  trainwell predict runs/NAME new.csv --out predictions.csv        # the rows with predicted class + probability
  trainwell augment-preview --augment rotate=10,elastic=34:4 --out aug.png   # see it before training on it
"""

SPACE_HELP = """the space file (YAML), one line per searched option:
  lr: {low: 0.001, high: 0.3, log: true}            a range (float or int, as the option is)
  width: {low: 16, high: 64, step: 16}              an int range with a step
  dropout: {low: 0.0, high: 0.5, grid: [0, 0.25]}   a float range; grid search needs explicit values
  optimizer: [momentum, adam]                        a list of values
  hidden: ["256", "512,256"]                         a list option, written as text
  momentum: {low: 0.8, high: 0.99, if: {optimizer: [momentum, nesterov]}}   only where the condition holds

examples:
  trainwell search --space space.yaml --trials 30 --timeout 3600 --jobs 2
  trainwell search --space space.yaml --sampler grid --data digits --model mlp epochs=10
  trainwell search --space space.yaml --storage postgresql://me:pw@db.lan/studies --study wide   # on each machine
  trainwell search --show search-space-fashion-mnist
"""

# (flag, config key, type, help). The default and the list of names are appended from Config and the
# registries when the parser is built, so the help cannot drift from the code.
TRAIN_FLAGS = [
    ("--data", "data", str, "fashion-mnist | digits | FILE.npz | a table: FILE.csv, .tsv, .parquet | IMAGE_DIR"),
    ("--data-dir", "data_dir", str, "folder with the Fashion-MNIST IDX files (default: Debian's, or $TRAINWELL_DATA)"),
    ("--label", "label", str, "a table's label column (default: 'label', else the last column)"),
    ("--test-data", "test_data", str, "a file or folder like --data that is the test set (then no test split is "
     "taken): a CSV/TSV/Parquet with the same columns, an .npz, an image folder"),
    ("--categorical", "categorical", str, "a table's columns to take as categories whatever their values (e.g. "
     "integer codes), comma-separated (default: text and yes/no columns)"),
    ("--numeric", "numeric", str, "a table's columns to take as numbers, comma-separated"),
    ("--ignore", "ignore", str, "a table's columns to leave out, comma-separated (identifier-like and constant "
     "columns are left out on their own, with the reason printed)"),
    ("--image-size", "image_size", int, "image folders: resize to this square size (default: the size every "
     "image has, or with sizes that vary the median shorter side, at most 32 on a CPU, centre-cropped)"),
    ("--skip-bad-images", "skip_bad_images", str, "image folders: true leaves unreadable images out, saying how "
     "many (default: refuse the folder, naming them)"),
    ("--valid-fraction", "valid_fraction", float, "stratified validation split of the training data"),
    ("--test-fraction", "test_fraction", float, "test split for sources without a test set"),
    ("--limit-train", "limit_train", int, "use only N training examples (quick experiments)"),
    ("--augment", "augment", str, "training augmentation, e.g. flip,translate=2; ops: {choices}"),
    ("--model", "model", str, "{choices} (auto: a conv net for images, an MLP for feature vectors)"),
    ("--hidden", "hidden", str, "hidden sizes, e.g. 256,128 (mlp) or fully connected sizes (convnet)"),
    ("--width", "width", int, "channels of the first stage (default: the model's; convnet 32)"),
    ("--depth", "depth", int, "convnet stages, resnet layers (20, 18, 50...), inception stages (default: the model's)"),
    ("--activation", "activation", str, "{choices}"),
    ("--batch-norm", "batch_norm", str, "batch norm: true | false (default: the model's; off for alexnet)"),
    ("--head", "head", str, "convnet: fc (flatten + fully connected, the course's) | pool (global average pooling "
     "+ one linear layer)"),
    ("--dropout", "dropout", float, "dropout probability (default: the model's, 0 for mlp and convnet)"),
    ("--preact", "preact", str, "resnet: pre-activation blocks: true | false"),
    ("--zero-init-residual", "zero_init_residual", str, "resnet: start each block as the identity: true | false"),
    ("--outputs", "outputs", str, "what the model returns: logits (raw scores) | probabilities (it ends in a "
     "softmax; trainwell takes their log, like Keras' from_logits=False)"),
    ("--unfreeze", "unfreeze", str, "true: train every parameter, also those the model froze (requires_grad=False), "
     "like fastai's unfreeze()"),
    ("--init", "init", str, "{choices} (auto: the model's own design, glorot for mlp and convnet; "
     "a model of your own keeps its weights)"),
    ("--optimizer", "optimizer", str, "{choices}"),
    ("--lr", "lr", str, "peak learning rate, or auto: the course's protocol picks it on a subset (start large, "
     "halve until the loss no longer diverges; half of that) (default per optimizer: {lr_defaults})"),
    ("--momentum", "momentum", float, "momentum beta"),
    ("--weight-decay", "weight_decay", float, "L2 weight decay (decoupled for adamw)"),
    ("--schedule", "schedule", str, "{choices}"),
    ("--warmup", "warmup", float, "fraction of training spent warming up the learning rate"),
    ("--final-lr-fraction", "final_lr_fraction", float, "lr at the end / peak lr (the course's ~100x decay)"),
    ("--epochs", "epochs", str, "epochs (auto: 10, {table_epochs} for a table, or more on small data so "
     "that it gets >= {min_steps} optimizer steps, at most {max_epochs} epochs)"),
    ("--time-budget", "time_budget", float, "seconds of training + validation: with auto epochs, the epochs "
     "that fit it (measured on this device); training stops once it is spent"),
    ("--batch-size", "batch_size", str, "mini-batch size, 1 = per-example SGD (auto: {batch}, or {small_batch} "
     "below {small_data} training examples)"),
    ("--class-weights", "class_weights", str, "none | balanced: weigh each class n / (C n_c) in the training "
     "loss, for imbalanced classes (scikit-learn's and Keras' class_weight)"),
    ("--label-smoothing", "label_smoothing", float, "label smoothing of the training loss (0 = plain cross-entropy)"),
    ("--tta", "tta", str, "test-time augmentation for validation, test and predictions: {choices}; flip "
     "averages each image's and its mirror image's probabilities (auto: flip when --augment has flip)"),
    ("--patience", "patience", int, "early stopping: epochs without improvement before stopping (0 = off)"),
    ("--monitor", "monitor", str, "metric for selection and early stopping, e.g. valid_error, valid_loss, "
     "valid_top5_error (auto: valid_error, train_loss without a validation split)"),
    ("--recoveries", "recoveries", int, "divergence (a non-finite or exploding loss): roll back to the last calm "
     "state, cut the learning rate and go on, at most this many times; then stop with exit 3 (0 = stop at once)"),
    ("--monitor-every", "monitor_every", int, "layer monitors (weight/gradient norms, update ratios, hidden-unit "
     "statistics on a probe batch, first-layer filters) every N steps, into monitors.jsonl (auto: ~4 an epoch, "
     "at least 50 steps apart; 0 = off)"),
    ("--seed", "seed", int, "random seed: same flags, same machine -> same history"),
    ("--split-seed", "split_seed", int, "seed of the validation and test splits alone, so that runs differing only "
     "in --seed hold out the same examples (and can be ensembled)"),
    ("--device", "device", str, "{choices}"),
    ("--precision", "precision", str, "{choices} (auto: bf16 where the hardware has bf16 units; on a CPU "
     "a small dense model, such as a table's MLP, stays fp32, which is faster there)"),
    ("--compile", "compile", str, "torch.compile the model: true | false"),
    ("--threads", "threads", int, "CPU threads (0: torch's default, one per core)"),
    ("--checkpoint-every", "checkpoint_every", int, "steps between mid-epoch checkpoints (0 = epoch ends only)"),
]


def _flag_help(key: str, text: str) -> str:
    """A flag's help with its names from the registries and its default from Config."""
    from dataclasses import fields

    from trainwell import augment, config, models, optim

    choices = {"model": [*models.CHOICES, "FILE.py:FUNCTION"], "activation": models.ACTIVATIONS,
               "init": models.INITS, "optimizer": optim.OPTIMIZERS, "schedule": optim.SCHEDULES,
               "augment": augment.OPS, "device": config.DEVICES, "precision": config.PRECISIONS,
               "tta": config.TTA_CHOICES}
    from trainwell import auto

    text = text.format(choices=" | ".join(choices.get(key, ())),
                       lr_defaults=", ".join(f"{k} {v:g}" for k, v in optim.DEFAULT_LR.items()),
                       min_steps=auto.MIN_STEPS, max_epochs=auto.MAX_EPOCHS, batch=auto.BATCH,
                       table_epochs=auto.TABLE_MIN_EPOCHS,
                       small_batch=auto.SMALL_BATCH, small_data=f"{auto.SMALL_DATA:,}")
    default = {f.name: f.default for f in fields(config.Config)}[key]
    if "(auto:" in text:
        text += " (default auto)"
    elif default not in (None, "") and "(default" not in text:
        text += f" (default {default})"
    return text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        sys.stderr.write(f"trainwell: {message}; see '{self.prog} --help'\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="trainwell", description="Train neural networks well: train, select on validation, "
                "test once, keep the evidence.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="store_true", help="print the version")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser("train", help="train, select on validation, test once", epilog=EXAMPLES,
                       usage="trainwell train [options] [key=value ...]",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_flags(t)
    run = t.add_argument_group("the run")
    run.add_argument("--config", dest="config_file", metavar="FILE.yaml",
                     help="YAML file of options (flags and key=value win over it)")
    run.add_argument("--name", help="run name (default: time-data-model); an interrupted run of that name resumes")
    run.add_argument("--out", default="runs", metavar="DIR", help="folder that holds run directories (runs)")
    run.add_argument("--resume", metavar="RUN|auto", help="run directory to carry on, or 'auto' for the latest "
                     "interrupted run")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard event files (scalars, weight and "
                     "gradient histograms) to DIR/NAME (needs: pip install tensorboard)")
    run.add_argument("--nproc", type=int, metavar="N", help="data-parallel over N local processes: runs this command "
                     "under torchrun on loopback (the same as torchrun --nproc-per-node N -m trainwell train ...)")
    run.add_argument("--max-restarts", type=int, default=0, metavar="N", help="with --nproc: restart the group up to N "
                     "times after a process dies; it resumes from the last checkpoint (0)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=0.01")
    s = sub.add_parser("summary", help="parameters and FLOPs per layer, and a measured epoch time",
                       usage="trainwell summary [train options] [key=value ...]",
                       description="The model `trainwell train` would build from the same options: per layer its "
                       "output shape, parameters and forward FLOPs; the training FLOPs per epoch; and the epoch "
                       "time measured over a few real training steps on this device. Nothing is written.")
    _add_train_flags(s)
    s.add_argument("--steps", type=int, default=5, help="training steps to time (5)")
    s.add_argument("--config", dest="config_file", metavar="FILE.yaml", help="YAML file of options")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. depth=56")
    v = sub.add_parser("augment-preview", help="a PNG grid of training images and augmented copies of them",
                       usage="trainwell augment-preview [train options] [--out FILE.png] [key=value ...]",
                       description="Training images (one of each class first), each beside augmented copies, as "
                       "`trainwell train` with the same options would augment them. Nothing else is written.")
    _add_train_flags(v)
    v.add_argument("--out", default="augment-preview.png", metavar="FILE.png", help="where (augment-preview.png)")
    v.add_argument("--examples", type=int, default=8, help="training images, one row each (8)")
    v.add_argument("--copies", type=int, default=6, help="augmented copies of each (6)")
    v.add_argument("--config", dest="config_file", metavar="FILE.yaml", help="YAML file of options")
    v.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. augment=rotate=10")
    q = sub.add_parser("search", help="grid, random or Bayesian search over train options; tests the best once",
                       usage="trainwell search --space SPACE.yaml [--sampler grid|random|bayes] [--trials N] "
                       "[--timeout S] [--jobs J] [--storage URL] [--study NAME] [train options] [key=value ...]\n"
                       "       trainwell search --show STUDY",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Every train option given here is the fixed base; the space file says which options "
                       "vary and how. Each trial is a trainwell run under OUT/STUDY/trials/ that selects on "
                       "validation (and may be pruned); only the best configuration is tested, once. Rerun the same "
                       "command to resume a study; the same command with --storage postgresql://... on several "
                       "machines joins one study.",
                       epilog=SPACE_HELP)
    srch = q.add_argument_group("the search")
    srch.add_argument("--space", metavar="SPACE.yaml", help="the options to search and their ranges (see below)")
    srch.add_argument("--sampler", default="bayes", help="grid | random | bayes (TPE) (default bayes)")
    srch.add_argument("--trials", type=int, help="finished trials to reach (default: the whole grid, else 20)")
    srch.add_argument("--timeout", type=float, metavar="S", help="start no trial after S seconds")
    srch.add_argument("--jobs", type=int, default=1, metavar="J", help="worker processes on this machine (1)")
    srch.add_argument("--storage", metavar="URL", help="postgresql://USER:PASS@HOST/DB to share a study between "
                      "machines (default: OUT/STUDY/study.db, SQLite)")
    srch.add_argument("--study", metavar="NAME", help="study name (default search-SPACE-DATA); an existing one resumes")
    srch.add_argument("--metric", default="valid_error", help="what trials are selected and ranked on: valid_error | "
                      "valid_loss (default valid_error)")
    srch.add_argument("--pruner", default="auto", help="auto | none | median | halving | hyperband (auto: none "
                      "for grid, median for random, hyperband for bayes)")
    srch.add_argument("--final", action="store_true", help="retrain the best configuration on train + validation "
                      "for its selected epoch count, and test that instead")
    srch.add_argument("--show", metavar="STUDY", help="print a study's trials, best trial and importances; run nothing")
    srch.add_argument("--out", default="runs", metavar="DIR", help="folder that holds the study folder (runs)")
    srch.add_argument("--quiet", action="store_true", help="no progress output")
    srch.add_argument("--tensorboard", metavar="DIR", help="also write each trial's TensorBoard event files to "
                      "DIR/STUDY/TRIAL (needs: pip install tensorboard)")
    srch.add_argument("--config", dest="config_file", metavar="FILE.yaml", help="YAML file of base options")
    _add_train_flags(q)
    q.add_argument("overrides", nargs="*", metavar="key=value", help="base overrides, e.g. epochs=5")
    d = sub.add_parser("doctor", help="the course's checks before a long run, with prescriptions",
                       usage="trainwell doctor [train options] [--json] [key=value ...]",
                       description="Checks the run `trainwell train` would start with the same options, before it "
                       "starts: the data (balance, values, train/test duplicates, classes), the model at "
                       "initialisation (loss vs ln C, symmetric or zero weights, softmax inside the model), a "
                       "float64 gradient check, dead and saturated units and gradients through depth, fitting a "
                       "tiny subset, the largest stable learning rate (halving from large), and the cost. Each "
                       "check says PASS, WARN or FAIL with its numbers and, for a problem, the command that fixes "
                       "it. Exit 0 without failures, 3 with any. Nothing is written.")
    _add_train_flags(d)
    d.add_argument("--json", action="store_true", help="print the findings as JSON")
    d.add_argument("--no-lr", dest="no_lr", action="store_true", help="skip the learning-rate protocol (the slowest check)")
    d.add_argument("--no-try", dest="no_try", action="store_true",
                   help="print the prescriptions without trying them (by default each prescribed command is run "
                        "briefly beside the run's own settings, and printed only if it measurably helps)")
    d.add_argument("--config", dest="config_file", metavar="FILE.yaml", help="YAML file of options")
    d.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=0.01")
    g = sub.add_parser("diagnose", help="the triage of a run: verdict, evidence, prescriptions",
                       description="Reads a run directory (finished or failed) and says what went wrong, with the "
                       "evidence from its history and the command that fixes it. The same is written to "
                       "RUN/diagnosis.json at the end of every run. Codes: see the README.")
    g.add_argument("run", help="run directory")
    g.add_argument("--json", action="store_true", help="print the findings as JSON")
    g.add_argument("--no-try", dest="no_try", action="store_true",
                   help="print the prescriptions without trying them (by default each prescribed command is run "
                        "briefly beside the run's own settings, and printed only if it measurably helps)")
    o = sub.add_parser("report", help="a self-contained HTML report of a run, of runs side by side, or of a search",
                       description="One run directory: writes RUN/report.html (every run writes it at its end; this "
                       "refreshes it, also while the run is still training). Several runs: one page with their "
                       "curves overlaid, their summaries in one table and the settings that differ highlighted. "
                       "A search's study directory: its trials, parameters against the metric and importances. "
                       "The file needs no network: figures and styles are inside it.")
    o.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or one study directory")
    o.add_argument("--out", metavar="FILE.html", help="where to write (default: RUN/report.html, STUDY/report.html, "
                   "or comparison.html for several runs)")
    n = sub.add_parser("ensemble", help="average the class probabilities of several runs on one test set")
    n.add_argument("runs", nargs="+", metavar="RUN", help="run directories (at least two)")
    n.add_argument("--data", help="score on this data instead of the runs' own test split")
    n.add_argument("--data-dir", help="folder with Fashion-MNIST IDX files")
    n.add_argument("--label", help="CSV label column")
    n.add_argument("--geometric", action="store_true", help="geometric mean of probabilities (default arithmetic)")
    a = sub.add_parser("ablate", help="retrain a run without some layers and compare")
    a.add_argument("run", help="a finished run directory")
    a.add_argument("--remove", required=True, metavar="LAYER[,LAYER]",
                   help="layers to take out, by name (trainwell summary lists them), e.g. conv3,conv4")
    a.add_argument("--name", help="name of the new run (default RUN-minus-LAYERS, beside RUN)")
    a.add_argument("--out", metavar="DIR", help="folder for the new run (default: RUN's)")
    a.add_argument("--quiet", action="store_true", help="no progress output")
    e = sub.add_parser("evaluate", help="metrics of a run's model on its test split or other data")
    e.add_argument("run", help="run directory")
    e.add_argument("--data", help="other data to score (default: the run's own test split)")
    e.add_argument("--data-dir", help="folder with Fashion-MNIST IDX files")
    e.add_argument("--label", help="a table's label column (default: the run's)")
    r = sub.add_parser("predict", help="class names for an image, or each row of a .npz or a table")
    r.add_argument("run", help="run directory")
    r.add_argument("input", help="PNG/JPEG image, .npz with array 'x', or a table (.csv, .tsv, .parquet) with the "
                   "run's feature columns, in any order; new categories and empty cells are fine")
    r.add_argument("--top", type=int, default=1, help="how many classes to list per example (1)")
    r.add_argument("--out", metavar="FILE", help="a table's rows as given, with columns predicted and probability "
                   "added (predicted_2, ... with --top), written to FILE (.csv, .tsv or .parquet)")
    return p


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    groups = {"--data": "data", "--model": "model", "--optimizer": "optimisation", "--seed": "reproducibility and speed"}
    group = None
    for flag, key, typ, text in TRAIN_FLAGS:
        group = parser.add_argument_group(groups[flag]) if flag in groups else group
        group.add_argument(flag, dest=key, type=typ, default=None, help=_flag_help(key, text), metavar=_metavar(typ))


def _metavar(typ: type) -> str:
    return {int: "N", float: "X"}.get(typ, "VALUE")


OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(argv)
        # key=value overrides may come between flags too (argparse takes one run of positionals only)
        if rest and hasattr(args, "overrides") and all(OVERRIDE.match(r) for r in rest):
            args.overrides = [*(args.overrides or []), *rest]
        elif rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as e:  # --help (0) or a bad flag (2, already printed as one line)
        return int(e.code or 0)
    if args.version:
        from trainwell.version import __version__

        print(__version__)
        return 0
    if args.command is None:
        build_parser().print_help()
        return 2
    from trainwell.errors import Interrupted, TrainingFailed, UserError

    try:
        args.argv = list(sys.argv[1:] if argv is None else argv)
        commands = {"train": _train, "search": _search, "doctor": _doctor, "diagnose": _diagnose, "report": _report, "summary": _summary, "ablate": _ablate, "ensemble": _ensemble,
                    "evaluate": _evaluate, "predict": _predict, "augment-preview": _augment_preview}
        return commands[args.command](args)
    except UserError as e:
        print(f"trainwell: error: {e}", file=sys.stderr)
        return e.exit_code
    except TrainingFailed as e:
        print(f"trainwell: training failed: {e}", file=sys.stderr)
        return e.exit_code
    except Interrupted as e:
        print(f"trainwell: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("trainwell: interrupted", file=sys.stderr)
        return 130


def _train_options(args: argparse.Namespace) -> dict:
    """The train flags the user gave, with the config file and key=value overrides beside them: the one
    way every command that trains (or would train) takes them."""
    values = {key: getattr(args, key) for _, key, _, _ in TRAIN_FLAGS if getattr(args, key) is not None}
    return {"config": values, "config_file": args.config_file, "overrides": args.overrides}


def _train(args: argparse.Namespace) -> int:
    from trainwell import distributed
    from trainwell.errors import UserError

    if args.nproc is not None and not distributed.launched():
        if args.nproc < 1 or args.max_restarts < 0:
            raise UserError(f"--nproc {args.nproc} / --max-restarts {args.max_restarts}: need N >= 1 and restarts >= 0")
        _check_before_launch(args)  # one line here, not one traceback per process from torchrun
        return distributed.launch(args.nproc, _without(args.argv, ("--nproc", "--max-restarts")), args.max_restarts)
    from trainwell.pipeline import train

    try:
        train(**_train_options(args), out=args.out, name=args.name, resume=args.resume, quiet=args.quiet,
              tensorboard=args.tensorboard)
    finally:
        distributed.shutdown()
    return 0


def _check_before_launch(args: argparse.Namespace) -> None:
    """What can be checked without loading data: the config, and that a data file or folder exists."""
    import os

    from trainwell.config import build_config, merge_options
    from trainwell.data.sources import BUILTINS
    from trainwell.errors import UserError

    if not args.resume:
        o = _train_options(args)
        cfg = build_config(merge_options(o["config"], config_file=o["config_file"], overrides=o["overrides"]))
        if cfg.data not in BUILTINS and not os.path.exists(cfg.data):
            raise UserError(f"--data {cfg.data}: not found; use one of {', '.join(BUILTINS)}, a .npz or .csv file, "
                            "or a folder with one sub-folder of images per class")


def _without(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """argv less the given flags and their values (as `--flag V` or `--flag=V`)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        elif not a.startswith(tuple(f + "=" for f in flags)):
            out.append(a)
    return out


def _search(args: argparse.Namespace) -> int:
    from trainwell.errors import UserError
    from trainwell.tune import search, show

    if args.show:
        show(args.show, out=args.out, storage=args.storage)
        return 0
    if not args.space:
        raise UserError("search needs --space SPACE.yaml (or --show STUDY); see 'trainwell search --help'")
    o = _train_options(args)
    search(args.space, sampler=args.sampler, trials=args.trials, timeout=args.timeout, jobs=args.jobs,
           storage=args.storage, study=args.study, metric=args.metric, pruner=args.pruner, final=args.final,
           out=args.out, quiet=args.quiet, config_file=o["config_file"], overrides=o["overrides"],
           tensorboard=args.tensorboard, **o["config"])
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from trainwell.doctor import doctor

    base = [a for a in args.argv[1:] if a not in ("--json", "--no-lr")]  # the user's train arguments
    report = doctor(**_train_options(args), base=base, lr=not args.no_lr, try_fixes=not args.no_try)
    print(report.to_json() if args.json else report.render())
    return 3 if any(f.status == "fail" for f in report.findings) else 0


def _diagnose(args: argparse.Namespace) -> int:
    from trainwell import rundir
    from trainwell.doctor import diagnose, try_prescriptions
    from trainwell.pipeline import write_report

    report = diagnose(args.run)
    if not args.no_try:
        report = try_prescriptions(args.run, report)
    try:
        rundir.write_diagnosis(args.run, report.to_dict())
    except OSError as e:  # a read-only run directory still gets its diagnosis printed
        print(f"trainwell: note: {args.run}/diagnosis.json not written ({e.strerror})", file=sys.stderr)
    else:
        if os.path.exists(os.path.join(args.run, "report.html")):  # the page shows what was tried
            write_report(args.run)
    print(report.to_json() if args.json else report.render())
    return 0


def _report(args: argparse.Namespace) -> int:
    from trainwell.errors import UserError
    from trainwell.report import report
    from trainwell.tune import is_study, write_study_report

    studies = [p for p in args.runs if is_study(p)]
    if studies and len(args.runs) == 1:  # a search's study directory: its own report, drawn beside the search
        from trainwell.report.pages import check_out

        check_out(args.out)
        print(write_study_report(studies[0], args.out))
        return 0
    if studies:
        raise UserError(f"{studies[0]}: a search's study directory; report it on its own (trainwell report {studies[0]})")
    print(report(args.runs, args.out))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from trainwell.summary import model_summary

    if args.steps < 1:
        print("trainwell: error: --steps must be >= 1", file=sys.stderr)
        return 2
    s = model_summary(steps=args.steps, **_train_options(args))
    print(f"{s['model']}: input {'x'.join(map(str, s['input_shape']))}, {s['num_classes']} classes")
    rows = [(r["layer"], r["type"], "x".join(map(str, r["output"] or [])) or "-", f"{r['params']:,}",
             f"{r['flops'] / 1e6:,.2f}") for r in s["layers"]]
    head = ("layer", "type", "output", "params", "MFLOPs")
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    for i, row in enumerate([head, *rows]):
        print("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total: {s['params']:,} parameters ({s['trainable_params']:,} trainable), "
          f"{s['forward_flops'] / 1e6:,.2f} MFLOPs forward per example")
    print(f"training: {s['train_flops_per_example'] / 1e6:,.2f} MFLOPs per example (forward + backward), "
          f"{s['train_flops_per_epoch'] / 1e12:,.3f} TFLOPs per epoch of {s['train_examples']:,} examples")
    p = s["precision"]
    print(f"measured: {s['step_s'] * 1e3:,.1f} ms per step of {s['batch_size']} on {p['device']} ({p['precision']}"
          f"{', channels_last' if p['channels_last'] else ''}), median of {s['measured_steps']} steps -> "
          f"~{s['epoch_s']:,.0f} s per epoch of {s['steps_per_epoch']} steps (training only)")
    return 0


def _augment_preview(args: argparse.Namespace) -> int:
    from trainwell.config import build_config
    from trainwell.preview import augment_preview

    o = _train_options(args)
    cfg = build_config(o["config"], config_file=o["config_file"], overrides=o["overrides"])
    r = augment_preview(args.out, args.examples, args.copies, config=cfg)
    print(f"wrote {r['out']}: {r['examples']} {r['data']} training images, each with {r['copies']} copies "
          f"augmented by '{r['augment'] or 'none'}'")
    return 0


def _ablate(args: argparse.Namespace) -> int:
    from trainwell.ablation import ablate

    r = ablate(args.run, [n for n in args.remove.split(",") if n], out=args.out, name=args.name, quiet=args.quiet)
    print(f"{'':10}{'parameters':>14}{'MFLOPs':>10}{'test accuracy':>15}  run")
    for key in ("original", "ablated"):
        m = r[key]
        flops = f"{m['flops_per_example'] / 1e6:,.2f}" if m["flops_per_example"] is not None else "?"
        print(f"{key:10}{m['params']:>14,}{flops:>10}{m['test_accuracy']:>15.2%}  {m['run']}")
    return 0


def _ensemble(args: argparse.Namespace) -> int:
    from trainwell.ensemble import evaluate_ensemble

    r = evaluate_ensemble(args.runs, args.data, args.data_dir, args.label, geometric=args.geometric)

    def line(name: str, m: dict) -> str:
        top5 = f"  top-5 error {m['top5_error']:.2%}" if "top5_error" in m else ""
        return f"{name}  error {m['error']:.2%}{top5}  loss {m['loss']:.4f}"

    width = max(len(m["run"]) for m in r["members"])
    print(f"{r['data']}: {r['examples']} examples")
    for m in r["members"]:
        print(line(m["run"].ljust(width), m))
    print(f"{'members (mean)'.ljust(width)}  error {r['members_mean_error']:.2%}")
    print(line(f"ensemble ({r['mean']})".ljust(width), r["ensemble"]))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from trainwell.inference import evaluate_run

    m = evaluate_run(args.run, args.data, args.data_dir, args.label)
    line = f"{m['data']}: {m['examples']} examples  accuracy {m['accuracy']:.2%}  loss {m['loss']:.4f}"
    if "top5_error" in m:
        line += f"  top-5 error {m['top5_error']:.2%}"
    print(line)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from trainwell.inference import predict

    if args.top < 1:
        print("trainwell: error: --top must be >= 1", file=sys.stderr)
        return 2
    rows = predict(args.run, args.input, args.top, out=args.out)
    if args.out:
        print(f"wrote {args.out}: {len(rows)} rows of {args.input} with their predicted class and probability")
        return 0
    for i, row in enumerate(rows):
        print(f"{i}\t" + "\t".join(f"{name} ({p:.1%})" for name, p in row))
    return 0
