"""Datasets as raw uint8 images plus the preprocessing that turns them into model input.

The built-in dataset is scikit-learn's ``load_digits`` (1,797 real 8x8 handwritten digits shipped inside
scikit-learn, so it works offline), enlarged to the model input and split train/val/test with a fixed seed::

    ds = load_dataset("digits", image_size=28, seed=0)
    x = ds.inputs("train")            # float32 (N, 28, 28, 1), made by ds.preprocessing
    y = ds.split("train").labels      # int64 (N,)

MNIST and Fashion-MNIST come from their original IDX gz files or Keras' ``mnist.npz``, looked up in
``data_dir``, then ``$EDGECNN_DATA_DIR``, then Keras' cache (``~/.keras/datasets``), each folder as it is or in a
``mnist/`` / ``fashion-mnist/`` sub-folder; failing that, Keras' own download; failing that, a one-line error::

    ds = load_dataset("mnist", data_dir="datasets")   # official test set; validation drawn from train, seeded

CIFAR-10 (``cifar10``) is found the same way, in its binary or Python layout (see :mod:`edgecnn.workstation.cifar`), and
``folder:PATH`` reads the user's own class folders (see :mod:`edgecnn.workstation.image_folders`).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from edgecnn.common.errors import EdgecnnError, check_choice, is_whole
from edgecnn.runtime.preprocess import MAX_SIDE, MIN_SIDE, Preprocessing
from edgecnn.workstation.cifar import LABELS as CIFAR_LABELS
from edgecnn.workstation.cifar import read_cifar10
from edgecnn.workstation.config import check_seed
from edgecnn.workstation.dataset import Dataset, Split, seeded_split
from edgecnn.workstation.readers import read_idx, read_npz

FOLDER_PREFIX = "folder:"


def _load_digits(image_size: int, seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 ink levels -> 0..255
    splits = seeded_split(images, digits.target, seed, val_fraction=0.1, test_fraction=0.2)
    return Dataset(
        name="digits",
        labels=[str(d) for d in range(10)],
        preprocessing=Preprocessing(height=image_size, width=image_size, channels=1),
        splits=splits,
        augmentation="shift",
        record={
            "name": "digits",
            "source": "scikit-learn load_digits (8x8, 0..16 scaled to 0..255)",
            "image_size": image_size,
            "seed": seed,
            "sizes": {k: len(v.labels) for k, v in splits.items()},
        },
    )


IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot"]
MNIST_LIKE = {  # name: (sub-folders to look in, Keras' .npz name or None, labels)
    "mnist": (("mnist",), "mnist.npz", [str(d) for d in range(10)]),
    "fashion_mnist": (("fashion-mnist", "fashion_mnist"), None, FASHION_LABELS),
}


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Where datasets are looked up, in order: ``data_dir``, ``$EDGECNN_DATA_DIR``, Keras' cache."""
    candidates = [data_dir, os.environ.get("EDGECNN_DATA_DIR"), Path.home() / ".keras" / "datasets"]
    return [Path(c) for c in candidates if c]


def find_mnist_like(name: str, data_dir=None):
    """(x_train, y_train, x_test, y_test) from the first folder that holds the files, or None."""
    folders, npz_name, _ = MNIST_LIKE[name]
    for base in data_dirs(data_dir):
        for folder in (base, *(base / sub for sub in folders)):
            if all((folder / f).is_file() for f in IDX_FILES):
                return tuple(read_idx(folder / f) for f in IDX_FILES)
            if npz_name and (folder / npz_name).is_file():
                return read_npz(folder / npz_name)
    return None


def keras_download(name: str):
    """Keras' own download of ``name`` (needs the network), or None when it fails. Keras prints its progress on
    stdout, where ``--json -`` writes JSON, so that is kept back: a failed attempt shows only our error."""
    try:
        from edgecnn.common.native_logs import import_tf

        _, keras = import_tf()
        with contextlib.redirect_stdout(io.StringIO()):
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception:  # no network, no TensorFlow, a proxy error page: all mean "not available here"
        return None
    return x_train, y_train, x_test, y_test


def _official_split(name, labels, arrays, image_size: int, seed: int, channels: int, augmentation: str) -> Dataset:
    """Dataset from official (x_train, y_train, x_test, y_test): validation is 1/12 of train, stratified."""
    x_train, y_train, x_test, y_test = arrays
    if len(x_train) != len(y_train) or len(x_test) != len(y_test) or x_train.ndim != 3 + (channels == 3):
        raise EdgecnnError(f"{name} files do not match: {x_train.shape} images for {y_train.shape} labels")
    train_x, val_x, train_y, val_y = train_test_split(
        x_train, y_train, test_size=1 / 12, stratify=y_train, random_state=seed
    )
    splits = {
        "train": Split(train_x, train_y.astype(np.int64)),
        "val": Split(val_x, val_y.astype(np.int64)),
        "test": Split(np.asarray(x_test), np.asarray(y_test, np.int64)),
    }
    return Dataset(
        name=name,
        labels=labels,
        preprocessing=Preprocessing(height=image_size, width=image_size, channels=channels),
        splits=splits,
        record={"name": name, "source": "official train/test files; validation: 1/12 of train, stratified",
                "image_size": image_size, "seed": seed, "sizes": {k: len(v.labels) for k, v in splits.items()}},
        augmentation=augmentation,
    )


def _load_mnist_like(name: str, image_size: int, seed: int, data_dir) -> Dataset:
    arrays = find_mnist_like(name, data_dir) or keras_download(name)
    if arrays is None:
        folders = " or ".join(f"DIR/{sub}/" for sub in MNIST_LIKE[name][0])
        raise EdgecnnError(
            f"{name} not found, and Keras could not download it: put {', '.join(IDX_FILES)} in DIR or {folders} "
            "and pass --data-dir DIR (or set EDGECNN_DATA_DIR); looked in: "
            f"{', '.join(map(str, data_dirs(data_dir))) or 'nowhere'}"
        )
    policy = "shift" if name == "mnist" else "flip-shift"
    return _official_split(name, MNIST_LIKE[name][2], arrays, image_size, seed, 1, policy)


def _load_cifar10(image_size: int, seed: int, data_dir) -> Dataset:
    found = next((r for r in map(read_cifar10, data_dirs(data_dir)) if r is not None), None)
    if found is None:
        downloaded = keras_download("cifar10")  # RGB; flatten Keras' (N, 1) labels, reorder to BGR
        if downloaded is None:
            raise EdgecnnError(
                "cifar10 not found, and Keras could not download it: put cifar-10-batches-bin/ (or "
                "cifar-10-binary.tar.gz, or Keras' cifar-10-batches-py/) in DIR and pass --data-dir DIR (or set "
                "EDGECNN_DATA_DIR); looked in: "
                f"{', '.join(map(str, data_dirs(data_dir))) or 'nowhere'}"
            )
        x_train, y_train, x_test, y_test = downloaded
        found = (x_train[..., ::-1], y_train.ravel(), x_test[..., ::-1], y_test.ravel(), CIFAR_LABELS)
    return _official_split("cifar10", found[4], found[:4], image_size, seed, 3, "flip-shift")


DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": lambda image_size, seed, data_dir: _load_digits(image_size, seed),
    "mnist": lambda image_size, seed, data_dir: _load_mnist_like("mnist", image_size, seed, data_dir),
    "fashion_mnist": lambda image_size, seed, data_dir: _load_mnist_like("fashion_mnist", image_size, seed, data_dir),
    "cifar10": _load_cifar10,
}


def check_dataset_name(name: str) -> None:
    """EdgecnnError for a name that is neither a built-in dataset nor ``folder:PATH`` (no file is looked at)."""
    if not (isinstance(name, str) and name.startswith(FOLDER_PREFIX)):
        check_choice("dataset", name, [*DATASETS, f"{FOLDER_PREFIX}PATH"])


_loaded: dict | None = None  # the datasets built inside loaded_once(), by what built them


@contextlib.contextmanager
def loaded_once():
    """Within this block, :func:`load_dataset` hands back the Dataset it already built for the same arguments
    (``folder:data`` and ``folder:/abs/data`` alike): the pipeline's train, export and bench stages read the files,
    and warn of the unreadable ones, once. Outside it every call reads the files afresh::

        with loaded_once():
            assert load_dataset("digits") is load_dataset("digits")
    """
    global _loaded
    outer, _loaded = _loaded, ({} if _loaded is None else _loaded)
    try:
        yield
    finally:
        _loaded = outer


def load_dataset(name: str = "digits", image_size: int = 28, seed: int = 0, data_dir=None) -> Dataset:
    """Load a dataset by name (or ``folder:PATH``); EdgecnnError (one line) for an unknown name or missing files."""
    if not (is_whole(image_size) and MIN_SIDE <= image_size <= MAX_SIDE):
        raise EdgecnnError(f"image size must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {image_size!r}")
    check_seed(seed)
    check_dataset_name(name)
    if _loaded is None:
        return _build(name, image_size, seed, data_dir)
    folder = name.startswith(FOLDER_PREFIX)
    key = (str(Path(name[len(FOLDER_PREFIX):]).expanduser().resolve()) if folder else name, image_size, seed,
           None if folder else str(data_dir))
    if key not in _loaded:
        _loaded[key] = _build(name, image_size, seed, data_dir)
    return _loaded[key]


def _build(name: str, image_size: int, seed: int, data_dir) -> Dataset:
    if name.startswith(FOLDER_PREFIX):
        from edgecnn.workstation.image_folders import load_image_folder

        return load_image_folder(name[len(FOLDER_PREFIX):], image_size, seed)
    return DATASETS[name](image_size, seed, data_dir)
