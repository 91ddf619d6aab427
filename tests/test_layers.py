"""The layer order of the package, written down once, and held by parsing every import (top-level and inside
functions alike): a module imports only from its own layer or the layers below it, and the import graph has no
cycle, so no import inside a function can be there to dodge one."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import trainwell

ROOT = Path(trainwell.__file__).parent

# Bottom to top. A name is a module, or a package (all of its modules). Within one layer, imports may go
# either way as long as they make no cycle.
LAYERS: list[list[str]] = [
    ["errors", "version", "eager", "history", "optim", "augment", "checkpoint", "distributed", "divergence"],  # leaves
    ["data", "models"],                                     # what the user brings, and what we build
    ["config", "auto", "metrics", "tta", "precision"],      # one validated config; defaults from the data
    ["callbacks", "rundir", "samples"],                     # hooks; the run directory's one owner
    ["trainer"],                                            # the loop
    ["capacity", "lr_protocol", "importance"],              # measurements on a prepared (or trained) run
    ["prepared"],                                           # prepare: checks everything, writes nothing
    ["run", "inference", "summary"],                        # fit / keep / test / finish; a finished run
    ["doctor", "report", "preview", "ensemble"],            # tools on prepared runs and run directories
    ["pipeline"],                                           # train = prepare + fit + finish + diagnose + report
    ["tune", "ablation"],                                   # many trainings: search; retrain without layers
    ["cli", "__main__", "__init__"],                        # the command line; the public API (re-exports)
]


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def resolve(name: str, known: set[str]) -> str | None:
    """The package module an imported name lives in: 'trainwell.data.splits.take' -> 'trainwell.data.splits'."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(path: Path, known: set[str], root: Path = ROOT) -> list[tuple[str, int]]:
    """(imported trainwell module, line) for every import statement in the file, wherever it stands."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
        for n in names:
            target = resolve(n, known)
            if target and target != me:
                found.append((target, node.lineno))
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for i, layer in enumerate(LAYERS):
        if key in layer:
            return i
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py; add it to one")


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: {t for t, _ in imports(p, known)} for m, p in mods.items()}


def test_every_module_has_a_layer():
    for m in modules():
        layer_of(m)


def test_no_import_goes_up_a_layer():
    mods = modules()
    known = set(mods)
    up = []
    for m, p in mods.items():
        for target, line in imports(p, known):
            if layer_of(target) > layer_of(m):
                up.append(f"{os.path.relpath(p, ROOT.parent)}:{line} {m} imports {target} (a higher layer)")
    assert not up, "\n".join(up)


def test_no_import_cycle():
    cycles = find_cycles(graph())
    assert not cycles, "\n".join(cycles)


def find_cycles(g: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(g.get(m, ())):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    return cycles


def test_the_checker_sees_an_upward_import_inside_a_function(tmp_path):
    """The tests above can fail: a trainer that imports the pipeline inside a function is caught."""
    src = tmp_path / "trainwell" / "trainer.py"
    src.parent.mkdir()
    src.write_text("import torch\n\n\ndef f():\n    from trainwell.pipeline import train\n")
    targets = imports(src, set(modules()), root=tmp_path / "trainwell")
    assert targets == [("trainwell.pipeline", 5)]
    assert layer_of("trainwell.pipeline") > layer_of("trainwell.trainer")


def test_the_checker_sees_a_cycle_within_a_layer():
    g = {"trainwell.run": {"trainwell.inference"}, "trainwell.inference": {"trainwell.run"}}
    assert find_cycles(g) == ["trainwell.inference -> trainwell.run -> trainwell.inference"]
