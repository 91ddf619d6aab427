"""One append-only history of per-epoch records, written by the trainer and read by everyone else."""
from __future__ import annotations

import json
import math
from typing import Any, Iterator


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
        rows = [r for r in self.records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if not rows:
            return None
        pick = min if mode == "min" else max
        return pick(rows, key=lambda r: r[key])  # ties go to the earliest epoch

    def to_jsonl(self) -> str:
        return "".join(json.dumps(r, sort_keys=False) + "\n" for r in self.records)

    @classmethod
    def from_jsonl(cls, text: str) -> "History":
        return cls([json.loads(line) for line in text.splitlines() if line.strip()])
