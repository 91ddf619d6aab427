"""The space file: parsing, conditions, the grid, and one-line errors for everything a user can get wrong."""
from __future__ import annotations

import pytest

from trainwell.errors import UserError
from trainwell.tune.space import load_space, parse_space

BASE = {"data": "digits", "model": "mlp"}


def test_kinds_follow_the_option_types():
    s = parse_space({"lr": {"low": 0.001, "high": 0.1, "log": True}, "width": {"low": 8, "high": 32, "step": 8},
                     "final_lr_fraction": {"low": 0, "high": 1}, "optimizer": ["momentum", "adam"],
                     "hidden": [[64], [128, 64]]}, BASE, "bayes")
    kinds = {p.name: p.kind for p in s.params}
    assert kinds == {"lr": "float", "width": "int", "final_lr_fraction": "float", "optimizer": "categorical",
                     "hidden": "categorical"}
    assert s.params[4].choices == ["64", "128,64"]  # list values are kept as the text a flag takes
    assert s.params[1].grid_values() == [8, 16, 24, 32]


def test_grid_respects_conditions():
    s = parse_space({"optimizer": ["momentum", "adam"],
                     "momentum": {"values": [0.8, 0.9], "if": {"optimizer": "momentum"}},
                     "lr": [0.01, 0.1]}, BASE, "grid")
    points = s.grid()
    assert len(points) == 6  # momentum x 2 momenta x 2 rates + adam x 2 rates
    assert {"optimizer": "adam", "lr": 0.01} in points
    assert all(("momentum" in p) == (p["optimizer"] == "momentum") for p in points)


def test_round_trip_of_the_stored_form():
    raw = {"lr": {"low": 0.01, "high": 0.3, "log": True}, "optimizer": ["momentum", "adam"],
           "momentum": {"low": 0.8, "high": 0.99, "if": {"optimizer": ["momentum"]}}}
    s = parse_space(raw, BASE, "random")
    assert parse_space(s.to_dict(), BASE, "random").to_dict() == s.to_dict()


@pytest.mark.parametrize("raw, words", [
    ({"hiden": ["64"]}, "did you mean 'hidden'"),
    ({"lr": {"low": 0.1}}, "needs both low and high"),
    ({"lr": {"low": 0.3, "high": 0.1}}, "must be below high"),
    ({"lr": {"low": 0, "high": 0.1, "log": True}}, "log range needs low > 0"),
    ({"width": {"low": 8.5, "high": 32}}, "integer low, high"),
    ({"optimizer": ["momentum", "sgdd"]}, "optimizer='sgdd'"),
    ({"dropout": {"low": 0.0, "high": 0.99}}, "dropout=0.99"),
    ({"data": ["digits", "wine"]}, "fixed for a whole search"),
    ({"lr": {"low": 0.01, "high": 0.1, "spread": 2}}, "unknown key(s) spread"),
    ({"momentum": {"low": 0.8, "high": 0.9, "if": {"optimizer": "momentum"}}, "optimizer": ["momentum", "adam"]},
     "comes later in the file"),
    ({"momentum": {"low": 0.8, "high": 0.9, "if": {"optimizer": "adam"}}}, "never holds"),
    ([1, 2], "expected a mapping"),
])
def test_bad_spaces_get_one_line(raw, words):
    with pytest.raises(UserError) as e:
        parse_space(raw, BASE, "random", source="space.yaml")
    assert words in str(e.value) and str(e.value).startswith("space.yaml: ")
    assert "\n" not in str(e.value)


def test_grid_over_a_float_range_needs_values():
    with pytest.raises(UserError, match="grid search needs explicit values for a float range"):
        parse_space({"lr": {"low": 0.01, "high": 0.1}}, BASE, "grid")
    s = parse_space({"lr": {"low": 0.01, "high": 0.1, "grid": [0.01, 0.05]}}, BASE, "grid")
    assert s.grid() == [{"lr": 0.01}, {"lr": 0.05}]


def test_files(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_space(str(tmp_path / "nope.yaml"), BASE, "bayes")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [0.1\n")
    with pytest.raises(UserError, match="not a readable YAML file"):
        load_space(str(bad), BASE, "bayes")
    evil = tmp_path / "evil.yaml"
    evil.write_text("lr: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(UserError, match="not a readable YAML file"):  # safe_load refuses it
        load_space(str(evil), BASE, "bayes")


def test_storage_urls_and_passwords_never_shown():
    from trainwell.tune.storage import redact, storage_url

    assert storage_url(None, "runs/s").startswith("sqlite:///") and storage_url(None, "runs/s").endswith("runs/s/study.db")
    assert storage_url("postgresql://me:pw@db/x", "d") == "postgresql+psycopg://me:pw@db/x"
    assert redact("postgresql+psycopg://me:pw@db/x") == "postgresql+psycopg://me:***@db/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    with pytest.raises(UserError, match="use postgresql://"):
        storage_url("mysql://me:pw@db/x", "d")
