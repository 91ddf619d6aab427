"""The search space: a YAML file over any `trainwell train` option, checked before anything trains.

    lr: {low: 0.001, high: 0.3, log: true}            # a range; float or int follows the option's type
    width: {low: 16, high: 64, step: 16}              # int range with a step
    dropout: {low: 0.0, high: 0.5, grid: [0, 0.25]}   # grid search needs explicit values for a float range
    optimizer: [momentum, adam]                        # categorical
    hidden: ["256", "512,256"]                         # a list option, written as text
    momentum: {low: 0.8, high: 0.99, if: {optimizer: [momentum, nesterov]}}   # only where the condition holds
    epochs: {values: [5, 10, 20], if: {...}}           # categorical, in the long form (to take an `if`)

A condition names an option searched earlier in the file (or a fixed one of the base); the option is
left out of a trial whose values do not meet it. YAML is read with safe_load only.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields
from typing import Any, get_type_hints

from trainwell.config import Config, build_config
from trainwell.errors import UserError

SAMPLERS = ("grid", "random", "bayes")
NOT_SEARCHABLE = {"data", "data_dir", "label", "device", "threads", "checkpoint_every", "compile"}
MAX_GRID = 10_000
_KEYS = {"low", "high", "log", "step", "grid", "values", "if"}


@dataclass
class Param:
    name: str
    kind: str                                  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)  # categorical choices, as Optuna stores them
    grid: list[Any] | None = None              # explicit grid values of a range
    when: dict[str, list[Any]] = field(default_factory=dict)

    def active(self, values: dict[str, Any]) -> bool:
        return all(values.get(k) in allowed for k, allowed in self.when.items())

    def grid_values(self) -> list[Any]:
        if self.kind == "categorical":
            return list(self.choices)
        if self.grid is not None:
            return list(self.grid)
        if self.kind == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))  # type: ignore[arg-type]
        raise ValueError(f"{self.name}: grid search needs explicit values for a float range: write "
                         f"'{self.name}: [a, b, c]' or add 'grid: [a, b, c]' to its range")

    def describe(self) -> str:
        cond = f" if {', '.join(f'{k} in {v}' for k, v in self.when.items())}" if self.when else ""
        if self.kind == "categorical":
            return f"{self.name}: one of {self.choices}{cond}"
        scale = " (log)" if self.log else ""
        step = f" step {self.step:g}" if self.step else ""
        return f"{self.name}: {self.kind} in [{self.low:g}, {self.high:g}]{scale}{step}{cond}"


@dataclass
class Space:
    params: list[Param]
    source: str = "space"

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def grid(self) -> list[dict[str, Any]]:
        """Every combination, with conditional options present only where their condition holds."""
        points: list[dict[str, Any]] = [{}]
        for p in self.params:
            grown = []
            for point in points:
                if p.active(point):
                    grown.extend({**point, p.name: v} for v in p.grid_values())
                else:
                    grown.append(point)
            points = grown
            if len(points) > MAX_GRID:
                raise UserError(f"{self.source}: the grid has more than {MAX_GRID:,} points; use "
                                "--sampler random or bayes, or fewer values")
        return points

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One trial's values from an Optuna trial (random and bayes samplers)."""
        values: dict[str, Any] = {}
        for p in self.params:
            if not p.active(values):
                continue
            if p.kind == "categorical":
                values[p.name] = trial.suggest_categorical(p.name, p.choices)
            elif p.kind == "int":
                values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
            else:
                values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        return values

    def longest_epochs(self) -> int | None:
        """The most epochs a trial can have when the space varies them (for the pruner's common axis)."""
        p = next((p for p in self.params if p.name == "epochs"), None)
        if p is None:
            return None
        values = [v for v in p.choices if isinstance(v, (int, float))] if p.kind == "categorical" else [p.high]
        return int(max(values)) if values else None

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions of the options (for importances, whatever the sampler)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "categorical":
                out[p.name] = CategoricalDistribution(p.choices)
            elif p.kind == "int":
                out[p.name] = IntDistribution(int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
            else:
                out[p.name] = FloatDistribution(p.low, p.high, step=p.step, log=p.log)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The space in the file's own form (parse_space reads it back)."""
        out: dict[str, Any] = {}
        for p in self.params:
            d: dict[str, Any] = {"values": list(p.choices)} if p.kind == "categorical" else {"low": p.low, "high": p.high}
            if p.log:
                d["log"] = True
            if p.step:
                d["step"] = p.step
            if p.grid is not None:
                d["grid"] = list(p.grid)
            if p.when:
                d["if"] = {k: list(v) for k, v in p.when.items()}
            out[p.name] = d
        return out


def load_space(path: str, base: dict[str, Any], sampler: str) -> Space:
    """Read and check a space file against the base options; every problem is reported at once."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise UserError(f"--space {path}: no such file; write a YAML file such as 'lr: {{low: 0.01, high: 0.3, "
                        "log: true}'") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"--space {path}: not a readable YAML file ({str(e).splitlines()[0]})") from None
    return parse_space(raw, base, sampler, source=path)


def parse_space(raw: Any, base: dict[str, Any], sampler: str, source: str = "space") -> Space:
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{source}: expected a mapping of train options to ranges or lists, e.g. "
                        "'lr: {low: 0.01, high: 0.3, log: true}'")
    hints = get_type_hints(Config)
    names = [f.name for f in fields(Config)]
    problems: list[str] = []
    params: list[Param] = []
    for name, spec in raw.items():
        name = str(name).replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            problems.append(f"{name}: not a train option" + (f" (did you mean '{close[0]}'?)" if close else ""))
            continue
        if name in NOT_SEARCHABLE:
            problems.append(f"{name}: fixed for a whole search; give it as a train option instead")
            continue
        try:
            params.append(_param(name, spec, str(hints[name])))
        except ValueError as e:
            problems.append(f"{name}: {e}")
    searched = [p.name for p in params]
    for i, p in enumerate(params):
        for key, allowed in p.when.items():
            if key not in names:
                problems.append(f"{p.name}: its condition names '{key}', which is not a train option")
            elif key in searched and searched.index(key) > i:
                problems.append(f"{p.name}: its condition names '{key}', which comes later in the file; put "
                                f"'{key}' first")
            elif key not in searched:  # a fixed option: the condition is the same for every trial
                fixed = build_config(base).to_dict()[key] if _builds(base) else base.get(key)
                if fixed not in allowed:
                    problems.append(f"{p.name}: its condition {key} in {allowed} never holds ({key} is fixed at "
                                    f"{fixed!r}); drop {p.name} or the condition")
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
    space = Space(params, source)
    _check_values(space, base, source)
    if sampler == "grid":
        try:
            for p in space.params:
                p.grid_values()
        except ValueError as e:
            raise UserError(f"{source}: {e}") from None
    return space


def _builds(base: dict[str, Any]) -> bool:
    try:
        build_config(base)
        return True
    except UserError:
        return False


def _param(name: str, spec: Any, hint: str) -> Param:
    if isinstance(spec, list):
        spec = {"values": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"expected a range {{low: .., high: ..}} or a list of values, got {spec!r}")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; use {', '.join(sorted(_KEYS))}")
    when = _condition(spec.get("if"))
    if "values" in spec:
        if {"low", "high", "log", "step", "grid"} & set(spec):
            raise ValueError("give either values: [...] or a range low/high, not both")
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ValueError("values: expected a non-empty list")
        choices = [_scalar(v) for v in values]
        if len(set(map(repr, choices))) < len(choices):
            raise ValueError(f"values: {values} repeats a value")
        return Param(name, "categorical", choices=choices, when=when)
    if "low" not in spec or "high" not in spec:
        raise ValueError("a range needs both low and high (or give a list of values)")
    is_int = "int" in hint and "float" not in hint
    if not ("int" in hint or "float" in hint):
        raise ValueError("takes text or a list: give a list of values, e.g. [a, b]")
    try:
        low, high = float(spec["low"]), float(spec["high"])
        step = float(spec["step"]) if spec.get("step") is not None else None
    except (TypeError, ValueError):
        raise ValueError("low, high and step must be numbers") from None
    if not all(map(math.isfinite, (low, high))) or not low < high:
        raise ValueError(f"low ({spec['low']}) must be below high ({spec['high']})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ValueError("a log range needs low > 0")
    if log and step:
        raise ValueError("a log range takes no step")
    if step is not None and step <= 0:
        raise ValueError("step must be > 0")
    if is_int and (not low.is_integer() or not high.is_integer() or (step and not step.is_integer())):
        raise ValueError("an integer option needs integer low, high and step")
    grid = spec.get("grid")
    if grid is not None and (not isinstance(grid, list) or not grid):
        raise ValueError("grid: expected a non-empty list of values")
    if grid is not None and any(not isinstance(g, (int, float)) or not low <= g <= high for g in grid):
        raise ValueError(f"grid: every value must be a number in [{spec['low']}, {spec['high']}]")
    kind = "int" if is_int else "float"
    return Param(name, kind, low=int(low) if is_int else low, high=int(high) if is_int else high, log=log,
                 step=(int(step) if is_int else step) if step else None, grid=grid, when=when)


def _condition(raw: Any) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise ValueError("if: expected a mapping such as {optimizer: [momentum, nesterov]}")
    return {str(k): [_scalar(x) for x in (v if isinstance(v, list) else [v])] for k, v in raw.items()}


def _scalar(v: Any) -> Any:
    """Optuna stores None, bool, int, float and text; a list value (hidden: [512, 256]) is kept as "512,256"."""
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ValueError(f"{v!r} is not a plain value")


def _check_values(space: Space, base: dict[str, Any], source: str) -> None:
    """Every value a trial can take must make a valid config with the base: lows, highs, choices."""
    problems: list[str] = []
    for p in space.params:
        candidates = p.choices if p.kind == "categorical" else [p.low, p.high, *(p.grid or [])]
        for v in candidates:
            try:
                build_config({**base, p.name: v})
            except UserError as e:
                problems.append(f"{p.name}={v!r}: {e}")
                break
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))

