"""Dataset files: IDX and Keras .npz readers, and the MNIST / Fashion-MNIST lookup order."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.workstation import data
from edgecnn.workstation.data import IDX_FILES, load_dataset
from edgecnn.workstation.readers import read_idx, read_npz

SHARED = Path(os.environ.get("EDGECNN_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_mnist_like(folder: Path, n_train: int = 120, n_test: int = 40, seed: int = 0) -> None:
    """The four IDX gz files, in the original names, holding random images and balanced labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
              rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10]
    for name, array in zip(IDX_FILES, arrays, strict=True):
        (folder / name).write_bytes(gzip.compress(idx_bytes(array)))


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    monkeypatch.setattr(data, "keras_download", lambda name: None)  # tests never touch the network
    monkeypatch.delenv("EDGECNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")


def test_read_idx_plain_and_gzip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(images))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(images)))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), images)
    assert np.array_equal(read_idx(tmp_path / "a.idx.gz"), images)


@pytest.mark.parametrize("payload, message", [
    (b"\x00\x00\x0d\x01" + b"\x00" * 8, "not an IDX file"),   # float IDX
    (idx_bytes(np.zeros((4, 4)))[:-3], "truncated"),
    (b"PK\x03\x04", "not an IDX file"),
])
def test_read_idx_refuses_bad_files(tmp_path, payload, message):
    (tmp_path / "bad.idx").write_bytes(payload)
    with pytest.raises(EdgecnnError, match=message):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(EdgecnnError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")


def test_read_npz_without_pickle(tmp_path):
    arrays = {"x_train": np.zeros((3, 28, 28), np.uint8), "y_train": np.arange(3),
              "x_test": np.ones((2, 28, 28), np.uint8), "y_test": np.arange(2)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    assert [a.shape for a in read_npz(tmp_path / "mnist.npz")] == [(3, 28, 28), (3,), (2, 28, 28), (2,)]
    np.savez(tmp_path / "evil.npz", x_train=np.array([object()], dtype=object), y_train=[0], x_test=[0], y_test=[0])
    with pytest.raises(EdgecnnError, match="not a Keras-style"):
        read_npz(tmp_path / "evil.npz")


def test_mnist_from_a_data_dir_sub_folder(tmp_path):
    write_mnist_like(tmp_path / "mnist")
    ds = load_dataset("mnist", data_dir=tmp_path, seed=3)
    assert {k: len(v.labels) for k, v in ds.splits.items()} == {"train": 110, "val": 10, "test": 40}
    assert sorted(ds.split("val").labels.tolist()) == list(range(10))  # stratified
    assert ds.inputs("test").shape == (40, 28, 28, 1)


def test_fashion_mnist_from_the_environment_and_its_labels(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "fashion-mnist")
    monkeypatch.setenv("EDGECNN_DATA_DIR", str(tmp_path))
    ds = load_dataset("fashion_mnist")
    assert ds.labels[0] == "T-shirt/top" and ds.labels[9] == "Ankle boot" and len(ds.split("test").labels) == 40


def test_data_dir_wins_over_the_environment(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "a", n_test=20)
    write_mnist_like(tmp_path / "b", n_test=30)
    monkeypatch.setenv("EDGECNN_DATA_DIR", str(tmp_path / "b"))
    assert len(load_dataset("mnist", data_dir=tmp_path / "a").split("test").labels) == 20
    assert len(load_dataset("mnist").split("test").labels) == 30


def test_missing_files_name_what_to_put_where(tmp_path):
    with pytest.raises(EdgecnnError) as info:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and all(name in message for name in IDX_FILES)
    assert "--data-dir" in message and str(tmp_path) in message


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="the real MNIST files are not beside the project")
def test_real_mnist_and_fashion_mnist_files():
    for name in ("mnist", "fashion_mnist"):
        ds = load_dataset(name, data_dir=SHARED)
        sizes = {k: len(v.labels) for k, v in ds.splits.items()}
        assert sizes == {"train": 55000, "val": 5000, "test": 10000}
        assert np.bincount(ds.split("test").labels).tolist() == (
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009] if name == "mnist" else [1000] * 10)
