"""Readers for dataset file formats, with one-line errors for files that are not what they claim.

    images = read_idx("train-images-idx3-ubyte.gz")   # (60000, 28, 28) uint8; plain or gzip
    x_train, y_train, x_test, y_test = read_npz("mnist.npz")   # Keras' file, read without pickle
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError

IDX_UBYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (magic 0x0000 08 NDIM, big-endian uint32 sizes, then the bytes) as a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise EdgecnnError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != IDX_UBYTE:
        raise EdgecnnError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4")) if len(data) >= header else ()
    if len(shape) != ndim or len(data) - header != int(np.prod(shape)):
        raise EdgecnnError(f"{path} is truncated or malformed: header says {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras' ``mnist.npz`` (x_train, y_train, x_test, y_test), loaded with ``allow_pickle=False``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return tuple(np.asarray(npz[k]) for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise EdgecnnError(f"{path} is not a Keras-style dataset .npz: {exc}") from None
