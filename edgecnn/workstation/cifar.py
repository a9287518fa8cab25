"""CIFAR-10 from its official files, in either published layout, as uint8 BGR images (OpenCV's order).

    x_train, y_train, x_test, y_test, labels = read_cifar10("datasets")   # finds the folder or archive inside

- binary version (``cifar-10-batches-bin/`` or ``cifar-10-binary.tar.gz``): fixed-size records of one label
  byte and 3,072 pixel bytes (1,024 red, then green, then blue, row-major 32x32); no pickle.
- Python version (``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``), the layout Keras reads: pickled
  batches. This is the only pickle edgecnn reads, through an unpickler that can build dicts, lists, bytes and
  numpy arrays and refuses every other global (a hostile file cannot run code).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError

LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
RECORD = 1 + 32 * 32 * 3
BIN = ("cifar-10-batches-bin", "cifar-10-binary.tar.gz", [f"data_batch_{i}.bin" for i in range(1, 6)],
       "test_batch.bin")
PY = ("cifar-10-batches-py", "cifar-10-python.tar.gz", [f"data_batch_{i}" for i in range(1, 6)], "test_batch")
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise EdgecnnError(f"refusing a pickle that needs {module}.{name}: not a CIFAR-10 batch")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return super().find_class(module, name)


def _rgb_planes_to_bgr(flat: np.ndarray) -> np.ndarray:
    """(N, 3072) red/green/blue planes -> (N, 32, 32, 3) BGR."""
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)[..., ::-1])


def parse_bin_batch(data: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """One binary batch: (images BGR uint8, labels int64)."""
    if not data or len(data) % RECORD:
        raise EdgecnnError(f"{name} is truncated or not a CIFAR-10 binary batch ({len(data)} bytes, "
                           f"not a multiple of {RECORD})")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(LABELS):
        raise EdgecnnError(f"{name} has label {labels.max()}: not a CIFAR-10 batch")
    return _rgb_planes_to_bgr(records[:, 1:]), labels


def parse_py_batch(data: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch (dict with b'data' (N, 3072) and b'labels'): (images BGR uint8, labels int64)."""
    try:
        batch = _ArraysOnly(io.BytesIO(data), encoding="bytes").load()
        flat = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except EdgecnnError:
        raise
    except Exception as exc:  # unpickling garbage raises anything
        raise EdgecnnError(f"{name} is not a CIFAR-10 Python batch: {type(exc).__name__}") from None
    if flat.ndim != 2 or flat.shape[1] != RECORD - 1 or len(flat) != len(labels):
        raise EdgecnnError(f"{name} is not a CIFAR-10 Python batch: data {flat.shape}, {len(labels)} labels")
    return _rgb_planes_to_bgr(flat), labels


def _batches(base: Path, layout) -> dict[str, bytes] | None:
    """The raw bytes of every batch of ``layout`` under ``base`` (folder or archive), or None if absent."""
    folder, archive, train_names, test_name = layout
    wanted = [*train_names, test_name]
    for candidate in (base / folder, base):
        if all((candidate / n).is_file() for n in wanted):
            return {n: (candidate / n).read_bytes() for n in wanted}
    if (base / archive).is_file():
        try:
            with tarfile.open(base / archive, "r:gz") as tar:  # members are read in memory, never extracted
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                if all(n in members for n in wanted):
                    return {n: tar.extractfile(members[n]).read() for n in wanted}
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise EdgecnnError(f"cannot read {base / archive}: {exc}") from None
    return None


def read_cifar10(base: str | Path):
    """(x_train, y_train, x_test, y_test, labels) from ``base``, or None when neither layout is there."""
    base = Path(base)
    for layout, parse in ((BIN, parse_bin_batch), (PY, parse_py_batch)):
        batches = _batches(base, layout)
        if batches is not None:
            parsed = [parse(batches[n], n) for n in layout[2]]
            x_test, y_test = parse(batches[layout[3]], layout[3])
            return (np.concatenate([p[0] for p in parsed]), np.concatenate([p[1] for p in parsed]),
                    x_test, y_test, LABELS)
    return None
