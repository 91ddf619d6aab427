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
    assert h.best("valid_error")["epoch"] == 2          # a tie without losses: the earliest epoch
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


def test_best_is_the_selections_best_ties_broken_by_the_splits_loss():
    """History.best and the trainer's selection (Monitor) share one definition: among epochs tied on an error
    rate, the lower loss of the same split wins, not the earliest epoch."""
    from trainwell.callbacks import Monitor

    records = [{"epoch": 1, "valid_error": 0.1, "valid_loss": 0.9}, {"epoch": 2, "valid_error": 0.1, "valid_loss": 0.5},
               {"epoch": 3, "valid_error": 0.1, "valid_loss": 0.7}, {"epoch": 4, "valid_error": 0.2, "valid_loss": 0.1}]
    m = Monitor("valid_error")
    for r in records:
        m.improved(r)
    assert History(records).best("valid_error")["epoch"] == m.best_epoch == 2
