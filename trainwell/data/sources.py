"""Data sources: built-in sets and a user's own files, read into checked numpy arrays.

Every loader returns a Source; nothing here knows about splits, tensors or models.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainwell.data import tables
from trainwell.data._limits import MAX_COMPRESSION_RATIO, check_bytes, file_error
from trainwell.errors import UserError

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
BUILTINS = ("fashion-mnist", "digits")


@dataclass
class Source:
    """Raw examples: x is (N, D) features or (N, C, H, W) images; y holds class indices into `classes`.

    x of an image folder is a read-only memory map of its decoded pixels (data/cache.py).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    label_column: str | None = None
    columns: list[tables.Column] | None = None  # a table's feature columns: roles and vocabularies
    left_out: dict[str, str] = field(default_factory=dict)  # a table's columns not used, and why
    x_valid: np.ndarray | None = None  # a validation set the data came with (ROOT/valid/CLASS)
    y_valid: np.ndarray | None = None
    image_fit: str = "resize"          # how an image folder's files were brought to one size (images.Geometry)
    choices: dict[str, str] = field(default_factory=dict)  # what loading decided from the data, and why

    @property
    def kind(self) -> str:
        if self.columns is not None:
            return "table"  # raw rows: numbers with NaN and category codes (data/tables.py)
        return "image" if self.x.ndim == 4 else "features"

    @property
    def input_scale(self) -> float:
        """Raw pixels (uint8) are scaled to [0, 1]; everything else is taken as it is."""
        return 1 / 255 if self.x.dtype == np.uint8 else 1.0


def load_source(data: str, data_dir: str | None = None, label: str | None = None,
                image_size: int | None = None, training: bool = True, columns: list[Any] | None = None,
                roles: dict[str, list[str] | None] | None = None, test_data: str | None = None,
                skip_bad_images: bool = False, device: str = "cpu", geometry: Any = None) -> Source:
    """Read `data` (a built-in name, a .npz file, a table: .csv/.tsv/.parquet, or an image folder) and check it.

    A table's columns are decided from its values (`roles`: the user's --categorical/--numeric/--ignore), or
    given (`columns`, as a run saved them: then every value is encoded as in that run). `test_data`: a
    file or folder of the same kind whose examples are the test set (its labels mapped onto the classes
    of `data`). An image folder's geometry is decided from all its images (for `device`'s compute), or given
    (`geometry`, a run's); `skip_bad_images` leaves unreadable images out instead of refusing the folder."""
    if data == "fashion-mnist":
        src = _fashion_mnist(data_dir)
    elif data == "digits":
        src = _digits()
    elif data.lower().endswith(".npz"):
        src = _npz(data)
    elif tables.is_table(data):
        src = _table(data, label, columns, roles or {})
    elif os.path.isdir(data):
        src = _image_folder(data, image_size, skip_bad_images, device, geometry)
    elif not os.path.exists(data):
        raise UserError(f"--data {data}: not found; use one of {', '.join(BUILTINS)}, a .npz or .csv file, "
                        "or a folder with one sub-folder of images per class")
    else:
        raise UserError(f"--data {data}: unsupported file type; use a .npz, .csv, .tsv or .parquet file or an "
                        "image folder")
    if test_data is not None:
        _attach_test(src, data, test_data, data_dir, label, image_size)
    check_source(src, data, training)
    return src


def _image_folder(root: str, image_size: int | None, skip_bad: bool, device: str, geometry: Any) -> Source:
    """ROOT/CLASS/*, or ROOT/train|valid|test/CLASS/* as the given splits; one geometry for all the splits."""
    from trainwell.data import images
    from trainwell.data.cache import cached_image_folder

    name = os.path.basename(os.path.normpath(root))
    given = geometry if geometry is None or isinstance(geometry, images.Geometry) else images.Geometry(**geometry)
    splits = images.split_folders(root)
    if splits is None:
        x, y, classes, g = cached_image_folder(root, image_size, given, skip_bad, device)
        return Source(name, x, y, classes, image_fit=g.fit, choices={"image_size": g.why} if g.why else {})
    if given is None:  # decided over every split's images together
        headers = []
        for folder in splits.values():
            headers += images.scan(images.list_image_folder(folder, quiet=True)[0], skip_bad, quiet=True)[1]
        given = images.folder_geometry(headers, image_size, device)
    parts = {k: cached_image_folder(v, image_size, given, skip_bad, device) for k, v in splits.items()}
    classes = parts["train"][2]
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, Any] = {}
    for split in ("valid", "test"):
        if split in parts:
            x, y, names, _ = parts[split]
            unknown = [c for c in names if c not in index]
            if unknown:
                raise UserError(f"{splits[split]}: classes {unknown[:5]} are not in {splits['train']}; every class "
                                "needs training images")
            out[split] = (x, np.array([index[c] for c in names], dtype=np.int64)[y])
    src = Source(name, parts["train"][0], parts["train"][1], classes, image_fit=given.fit,
                 choices={"splits": f"given by the folders: {', '.join(sorted(splits))} (only the missing ones are "
                                    "split off)"})
    if given.why:
        src.choices["image_size"] = given.why
    if "valid" in out:
        src.x_valid, src.y_valid = out["valid"]
    if "test" in out:
        src.x_test, src.y_test = out["test"]
    return src


def _attach_test(src: Source, data: str, test_data: str, data_dir: str | None, label: str | None,
                 image_size: int | None) -> None:
    """`--test-data`: another file or folder of the same kind, its labels mapped onto the training classes."""
    if src.x_test is not None:
        raise UserError(f"--test-data {test_data}: {data} has a test set of its own; drop --test-data")
    if not os.path.exists(test_data):
        raise UserError(f"--test-data {test_data}: not found; give a file or folder like --data {data}")
    columns = [dataclasses.asdict(c) for c in src.columns] if src.columns is not None else None
    geometry = None
    if src.kind == "image" and os.path.isdir(test_data):  # the training images' geometry, exactly
        from trainwell.data.images import Geometry

        geometry = Geometry(src.x.shape[1], src.x.shape[2], src.x.shape[3], src.image_fit)
    size = image_size or (src.x.shape[-1] if src.kind == "image" else None)
    test = load_source(test_data, data_dir, src.label_column or label, size, training=False, columns=columns,
                       geometry=geometry)
    if test.kind != src.kind or test.x.shape[1:] != src.x.shape[1:]:
        raise UserError(f"--test-data {test_data}: examples of shape {list(test.x.shape[1:])} ({test.kind}), the "
                        f"training data's are {list(src.x.shape[1:])} ({src.kind}); give test data like the training data")
    index = {c: i for i, c in enumerate(src.classes)}
    unknown = [c for c in test.classes if c not in index]
    if unknown:
        raise UserError(f"--test-data {test_data}: classes {unknown[:5]} do not occur in {data} "
                        f"({', '.join(src.classes[:10])}); a model cannot learn classes it never saw")
    xs, ys = (test.x_test, test.y_test) if test.x_test is not None else (test.x, test.y)
    src.x_test, src.y_test = xs, np.array([index[c] for c in test.classes], dtype=np.int64)[ys]


def _fashion_mnist(data_dir: str | None) -> Source:
    from trainwell.data.idx import find_idx, read_idx

    folder = data_dir or os.environ.get("TRAINWELL_DATA") or DEBIAN_FASHION_DIR
    if not os.path.isdir(folder):
        raise UserError(f"fashion-mnist: folder {folder} not found; install Debian's dataset-fashion-mnist "
                        "(apt-get install dataset-fashion-mnist) or pass --data-dir with the IDX files")
    parts = [read_idx(find_idx(folder, stem)) for stem in
             ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    x, y, xt, yt = parts
    for img, lbl, what in ((x, y, "train"), (xt, yt, "t10k")):
        if img.ndim != 3 or lbl.ndim != 1 or len(img) != len(lbl):
            raise UserError(f"{folder}: {what} images {img.shape} and labels {lbl.shape} do not match; "
                            "re-install the data set")
    return Source("fashion-mnist", x[:, None], y.astype(np.int64), list(FASHION_CLASSES),
                  xt[:, None], yt.astype(np.int64))


def _digits() -> Source:
    from sklearn.datasets import load_digits  # ships its data; nothing is downloaded

    d = load_digits()
    # 8x8 grey images with values 0..16: stored as 0..255 pixels so they behave like any image file.
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]
    return Source("digits", x, d.target.astype(np.int64), [str(c) for c in d.target_names])


def _npz(path: str) -> Source:
    if not os.path.isfile(path):
        raise file_error(path, "file not found", "check the path")
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                total += info.file_size
                if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO \
                        and info.file_size > 2**20:
                    raise file_error(path, f"member {info.filename} expands {info.file_size // info.compress_size}x "
                                     "(a zip bomb?)", "re-save it with numpy.savez")
            check_bytes(path, total, "its arrays")
            for info in zf.infolist():
                _check_npy_header(path, zf, info)
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if not {"x", "y"} <= names:
                raise file_error(path, f"needs arrays 'x' and 'y' (found {sorted(names) or 'none'})",
                                 "save with numpy.savez(path, x=features, y=labels)")
            if ("x_test" in names) != ("y_test" in names):
                raise file_error(path, "has only one of 'x_test' and 'y_test'", "save both or neither")
            arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test", "classes") if k in names}
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, NotImplementedError) as e:
        # ValueError covers object arrays refused by allow_pickle=False and malformed .npy headers.
        raise file_error(path, f"is not a readable .npz file ({type(e).__name__}: {str(e)[:80]})",
                         "save it with numpy.savez(path, x=..., y=...) using numeric arrays") from None
    x = image_layout(path, arrays["x"], "x")
    y, classes = _labels(path, arrays["y"], "y", arrays.get("classes"))
    xt = yt = None
    if "x_test" in arrays:
        xt = image_layout(path, arrays["x_test"], "x_test")
        yt, classes_t = _labels(path, arrays["y_test"], "y_test", np.array(classes))
        if classes_t != classes:
            raise file_error(path, "'y_test' has classes that 'y' does not have", "check the labels")
    return Source(os.path.basename(path), x, y, classes, xt, yt)


def _check_npy_header(path: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Read a member's .npy header and refuse a shape that its stored bytes cannot hold."""
    if not info.filename.endswith(".npy"):
        return
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            shape, _, dtype = reader[version](f) if version in reader else (None, None, None)
        except (ValueError, KeyError, SyntaxError, EOFError) as e:
            raise file_error(path, f"member {info.filename} has a bad .npy header ({str(e)[:60]})",
                             "re-save it with numpy.savez") from None
    if shape is None:
        return
    if dtype.hasobject:
        raise file_error(path, f"'{info.filename[:-4]}' holds Python objects, which are never unpickled",
                         "store numbers (or fixed-width strings) instead")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    check_bytes(path, nbytes, f"array '{info.filename[:-4]}' of shape {shape}")
    if nbytes > info.file_size:
        raise file_error(path, f"array '{info.filename[:-4]}' claims shape {shape} but holds only "
                         f"{info.file_size} bytes", "the file is truncated or corrupt; re-save it")


def image_layout(path: str, x: np.ndarray, name: str) -> np.ndarray:
    """Accept (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3}; return (N, D) or NCHW."""
    if x.dtype.kind not in "uif" or x.dtype.kind == "f" and x.dtype.itemsize > 8:
        raise file_error(path, f"'{name}' has dtype {x.dtype}; expected numbers", "store it as float32 or uint8")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim not in (2, 4):
        raise file_error(path, f"'{name}' has shape {x.shape}; expected (N, features) or (N, [C,] H, W)",
                         "reshape it")
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def _labels(path: str, y: np.ndarray, name: str, classes: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """Integer labels 0..K-1 or strings; returns int64 indices and class names."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise file_error(path, f"'{name}' has shape {y.shape}; expected one label per example (N,)", "flatten it")
    if y.dtype.kind in "US":
        names = sorted(set(y.tolist())) if classes is None else [str(c) for c in classes]
        index = {c: i for i, c in enumerate(names)}
        missing = sorted(set(y.tolist()) - set(index))
        if missing:
            raise file_error(path, f"'{name}' has labels {missing[:3]} not in 'classes'", "add them to 'classes'")
        return np.array([index[v] for v in y.tolist()], dtype=np.int64), names
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise file_error(path, f"'{name}' has non-integer labels", "store class indices 0..K-1 as integers")
    elif y.dtype.kind not in "iub":
        raise file_error(path, f"'{name}' has dtype {y.dtype}; expected integer class indices", "convert it")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise file_error(path, f"'{name}' has label {int(y.min())} < 0", "use class indices 0..K-1")
    k = int(y.max()) + 1 if len(y) else 0
    if classes is not None:
        names = [str(c) for c in np.asarray(classes).tolist()]
        if k > len(names):
            raise file_error(path, f"'{name}' has label {k - 1} but only {len(names)} classes are named",
                             "use class indices 0..K-1")
    else:
        names = [str(i) for i in range(k)]
    return y, names


def _table(path: str, label: str | None, columns: list[Any] | None, roles: dict[str, list[str] | None]) -> Source:
    table, col = tables.split_label(tables.read_table(path), path, label)
    y, names = tables.label_values(table, col, path)
    if columns is None:
        cols, left_out = tables.decide_columns(table, col, roles.get("categorical"), roles.get("numeric"),
                                               roles.get("ignore"), where=path)
    else:
        cols, left_out = [tables.Column(**c) for c in columns], {}
    x = tables.encode(table, cols, path)
    return Source(os.path.basename(path), x, y, names, feature_names=[c.name for c in cols], label_column=col,
                  columns=cols, left_out=left_out,
                  choices={"columns": tables.describe(cols, left_out)} if columns is None else {})


def check_source(src: Source, where: str, training: bool = True) -> None:
    """Refuse data no model should be trained on: NaN/Inf, empty sets, labels out of range, one class."""
    for x, y, part in ((src.x, src.y, "x"), (src.x_valid, src.y_valid, "x_valid"), (src.x_test, src.y_test, "x_test")):
        if x is None:
            continue
        if len(x) != len(y):
            raise UserError(f"{where}: {part} has {len(x)} examples but {len(y)} labels; give one label per example")
        if len(x) == 0:
            raise UserError(f"{where}: {part} is empty; provide at least a few examples per class")
        if x.dtype.kind == "f" and src.columns is None:  # a table's NaN is a missing cell (data/tables.py)
            bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            if bad.any():
                raise UserError(f"{where}: {int(bad.sum())} examples in {part} contain NaN or Inf "
                                f"(first at row {int(np.argmax(bad))}); drop or impute them")
        if y.min() < 0 or y.max() >= len(src.classes):
            raise UserError(f"{where}: labels must be in 0..{len(src.classes) - 1}, found {int(y.min())}..{int(y.max())}"
                            "; fix the labels or the class list")
    if src.x_test is not None and src.x_test.shape[1:] != src.x.shape[1:]:
        raise UserError(f"{where}: x_test shape {src.x_test.shape[1:]} differs from x {src.x.shape[1:]}; make them match")
    if training and len(np.unique(src.y)) < 2:
        raise UserError(f"{where}: all training labels are the same class; a classifier needs at least 2 classes")
