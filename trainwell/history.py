"""One append-only history of per-epoch records, written by the trainer and read by everyone else."""
from __future__ import annotations

import json
import math
from typing import Any, Iterator


def tiebreak_for(metric: str) -> str | None:
    """An error rate ties often on a small validation set (12 iris flowers: steps of 8%); among tied
    epochs the one with the lower loss of the same split is the better model, not the earliest."""
    split, _, kind = metric.partition("_")
    return f"{split}_loss" if kind.endswith("error") else None


def finite(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def better(value: float, tie: float | None, best: float | None, best_tie: float | None, mode: str = "min",
           min_delta: float = 0.0) -> bool:
    """The one definition of "best": lower (or higher, mode max) by more than `min_delta`; on a tie of an error
    metric, the lower loss of its split (`tie`); else the earlier epoch stays best."""
    if best is None:
        return True
    if value < best - min_delta if mode == "min" else value > best + min_delta:
        return True
    return value == best and tie is not None and (best_tie is None or tie < best_tie)


class History:
    """A list of JSON-serialisable dicts, one per epoch: {"epoch": 1, "train_loss": ..., "valid_error": ...}.

    >>> h = History(); h.append({"epoch": 1, "valid_error": 0.2}); h.best("valid_error")["epoch"]
    1
    """

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records: list[dict[str, Any]] = list(records or [])

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.records[i]

    def column(self, key: str) -> list[Any]:
        return [r.get(key) for r in self.records]

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def best(self, key: str, mode: str = "min") -> dict[str, Any] | None:
        """The best epoch's record on `key`, as selection picks it (`better`): the run's selected epoch when
        `key` is the metric it monitored."""
        tiebreak = tiebreak_for(key) if mode == "min" else None
        found, best, best_tie = None, None, None
        for r in self.records:
            value = finite(r.get(key))
            if value is None:
                continue
            tie = finite(r.get(tiebreak)) if tiebreak else None
            if better(value, tie, best, best_tie, mode):
                found, best, best_tie = r, value, tie
        return found

    def to_jsonl(self) -> str:
        return "".join(json.dumps(r, sort_keys=False) + "\n" for r in self.records)

    @classmethod
    def from_jsonl(cls, text: str) -> "History":
        return cls([json.loads(line) for line in text.splitlines() if line.strip()])
