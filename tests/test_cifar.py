"""CIFAR-10 loaders on small files written in the official binary and Python layouts (the real files are not here)."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.workstation.cifar import BIN, LABELS, PY, parse_bin_batch, parse_py_batch, read_cifar10
from edgecnn.workstation.data import load_dataset

PER_BATCH = 24


def _batch(seed: int):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (PER_BATCH, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(PER_BATCH) % 10
    planes = rgb.transpose(0, 3, 1, 2).reshape(PER_BATCH, -1)  # red plane, green plane, blue plane
    return rgb, labels, planes


def _bin_bytes(seed: int) -> bytes:
    _, labels, planes = _batch(seed)
    return np.concatenate([labels[:, None].astype(np.uint8), planes], axis=1).tobytes()


def _py_bytes(seed: int) -> bytes:
    _, labels, planes = _batch(seed)
    return pickle.dumps({b"batch_label": b"x", b"labels": labels.tolist(), b"data": planes}, protocol=2)


def _write_layout(root, layout, make, archive=False):
    folder, archive_name, train_names, test_name = layout
    files = {name: make(i) for i, name in enumerate([*train_names, test_name])}
    if not archive:
        (root / folder).mkdir(parents=True)
        for name, data in files.items():
            (root / folder / name).write_bytes(data)
        return
    with tarfile.open(root / archive_name, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("layout, make", [(BIN, _bin_bytes), (PY, _py_bytes)], ids=["binary", "python"])
@pytest.mark.parametrize("archive", [False, True], ids=["folder", "tar.gz"])
def test_both_layouts_read_to_bgr_images_with_labels(tmp_path, layout, make, archive):
    _write_layout(tmp_path, layout, make, archive)
    x_train, y_train, x_test, y_test, labels = read_cifar10(tmp_path)
    assert x_train.shape == (5 * PER_BATCH, 32, 32, 3) and x_test.shape == (PER_BATCH, 32, 32, 3)
    rgb, expected_labels, _ = _batch(5)  # the test batch was made with seed 5
    assert np.array_equal(x_test, rgb[..., ::-1])  # OpenCV's BGR order
    assert np.array_equal(y_test, expected_labels) and labels == LABELS


def test_cifar10_dataset_through_data_dir(tmp_path):
    _write_layout(tmp_path, BIN, _bin_bytes)
    ds = load_dataset("cifar10", image_size=32, data_dir=tmp_path)
    assert ds.preprocessing.input_shape == (32, 32, 3) and ds.augmentation == "flip-shift"
    assert sum(len(ds.split(s).labels) for s in ("train", "val")) == 5 * PER_BATCH
    assert ds.inputs("test").shape == (PER_BATCH, 32, 32, 3)


def test_missing_cifar10_names_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("EDGECNN_DATA_DIR", raising=False)
    monkeypatch.setattr("edgecnn.workstation.data.keras_download", lambda name: None)
    with pytest.raises(EdgecnnError, match="cifar10 not found, and Keras could not download it: put cifar-10-bat"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_truncated_and_mislabelled_binary_batches_are_refused():
    data = _bin_bytes(0)
    with pytest.raises(EdgecnnError, match="truncated"):
        parse_bin_batch(data[:-7], "data_batch_1.bin")
    bad = bytearray(data)
    bad[0] = 200
    with pytest.raises(EdgecnnError, match="label 200"):
        parse_bin_batch(bytes(bad))


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_python_batches_refuse_pickles_that_would_run_code():
    with pytest.raises(EdgecnnError, match="refusing a pickle that needs .*system"):
        parse_py_batch(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(EdgecnnError, match="not a CIFAR-10 Python batch"):
        parse_py_batch(b"\x80\x02garbage")
    with pytest.raises(EdgecnnError, match="not a CIFAR-10 Python batch: data"):
        parse_py_batch(pickle.dumps({b"data": np.zeros((3, 10), np.uint8), b"labels": [0, 1, 2]}))
