import cv2
import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.workstation.data import load_dataset, loaded_once


def test_digits_split_sizes_and_stratification(digits):
    sizes = {name: len(digits.split(name).labels) for name in ("train", "val", "test")}
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    assert digits.record["sizes"] == sizes
    test_counts = np.bincount(digits.split("test").labels, minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37  # 10% of each class, stratified
    assert digits.labels == [str(d) for d in range(10)]
    with pytest.raises(EdgecnnError, match="unknown split 'validation'; choose from: train, val, test"):
        digits.inputs("validation")


def test_same_seed_same_split_other_seed_other_split(digits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert np.array_equal(again.split("test").images, digits.split("test").images)
    assert not np.array_equal(other.split("test").images, digits.split("test").images)


def test_inputs_are_resized_and_normalized(digits):
    x = digits.inputs("test")
    assert x.shape == (360, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert load_dataset("digits", image_size=16).inputs("val").shape == (180, 16, 16, 1)


def test_calibration_draws_seeded_training_images(digits):
    a, b = digits.calibration(300, seed=0), digits.calibration(300, seed=0)
    assert a.shape == (300, 28, 28, 1) and np.array_equal(a, b)
    assert not np.array_equal(a, digits.calibration(300, seed=1))
    assert len(digits.calibration(10_000)) == 1257  # capped at the training split
    with pytest.raises(EdgecnnError, match="at least 1"):
        digits.calibration(0)
    with pytest.raises(EdgecnnError, match="seed must be a whole number from 0 to 4294967295, got -1"):
        digits.calibration(10, seed=-1)  # numpy's generator refuses it with its own ValueError


@pytest.mark.parametrize("kwargs, message", [  # a manifest's dataset record ends up here as JSON gave it
    ({"name": "imagenet"}, "unknown dataset 'imagenet'; choose from: digits"),
    ({"name": 5}, "unknown dataset 5; choose from: digits"),
    ({"image_size": 4}, "between 8 and 512 pixels, got 4"),
    ({"image_size": "28"}, "between 8 and 512 pixels, got '28'"),
    ({"image_size": True}, "between 8 and 512 pixels, got True"),
    ({"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
    ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295, got 4294967296"),
    ({"seed": 1.5}, "seed must be a whole number from 0 to 4294967295, got 1.5"),
])
def test_bad_dataset_requests(kwargs, message):
    with pytest.raises(EdgecnnError, match=message):
        load_dataset(**{"name": "digits", **kwargs})


def test_a_numpy_seed_is_a_seed(digits):
    assert np.array_equal(load_dataset("digits", seed=np.int64(0)).split("test").labels, digits.split("test").labels)


def test_loaded_once_reuses_a_dataset_within_its_block_only(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(tmp_path / "photos" / name / f"{i}.png"), np.full((9, 9), 40 * i, np.uint8))
    monkeypatch.chdir(tmp_path)
    with loaded_once():
        first = load_dataset("digits")
        assert load_dataset("digits") is first
        assert load_dataset("digits", seed=1) is not first and load_dataset("digits", image_size=16) is not first
        folder = load_dataset("folder:photos")
        assert load_dataset(f"folder:{tmp_path / 'photos'}") is folder  # a relative and an absolute path alike
        with loaded_once():  # nested: the same store
            assert load_dataset("digits") is first
        assert load_dataset("digits") is first
    assert load_dataset("digits") is not first  # outside the block every call reads afresh
    assert load_dataset("folder:photos") is not folder
