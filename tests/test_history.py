"""The one history: append-only records that everyone reads."""
from trainwell.history import History


def test_history_queries_and_jsonl_round_trip():
    h = History()
    h.append({"epoch": 1, "valid_error": 0.3, "train_loss": 1.0})
    h.append({"epoch": 2, "valid_error": 0.2, "train_loss": 0.8, "extra": 5})
    h.append({"epoch": 3, "valid_error": 0.2, "train_loss": float("nan")})
    assert len(h) == 3 and h[-1]["epoch"] == 3
    assert h.column("valid_error") == [0.3, 0.2, 0.2] and h.column("extra") == [None, 5, None]
    assert h.keys() == ["epoch", "valid_error", "train_loss", "extra"]
    assert h.best("valid_error")["epoch"] == 2          # ties go to the earliest epoch
    assert h.best("train_loss")["epoch"] == 2           # NaN is never the best
    assert h.best("train_loss", mode="max")["epoch"] == 1
    assert h.best("missing") is None
    back = History.from_jsonl(h.to_jsonl())
    assert back.records[:2] == h.records[:2] and back[2]["train_loss"] != back[2]["train_loss"]


def test_append_copies_the_record():
    h, r = History(), {"epoch": 1}
    h.append(r)
    r["epoch"] = 99
    assert h[0]["epoch"] == 1
