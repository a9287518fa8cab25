"""Datasets as raw uint8 images plus the preprocessing that turns them into model input.

The built-in dataset is scikit-learn's ``load_digits`` (1,797 real 8x8 handwritten digits shipped inside
scikit-learn, so it works offline), enlarged to the model input and split train/val/test with a fixed seed::

    ds = load_dataset("digits", image_size=28, seed=0)
    x = ds.inputs("train")            # float32 (N, 28, 28, 1), made by ds.preprocessing
    y = ds.split("train").labels      # int64 (N,)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from edgecnn.errors import EdgecnnError, check_choice
from edgecnn.preprocess import Preprocessing

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray  # uint8, (N, H, W) gray or (N, H, W, 3) BGR
    labels: np.ndarray  # int64, (N,)


@dataclass
class Dataset:
    name: str
    labels: list[str]
    preprocessing: Preprocessing
    splits: dict[str, Split]
    record: dict  # how to rebuild it: stored in the manifest

    def split(self, name: str) -> Split:
        return self.splits[name]

    def inputs(self, name: str) -> np.ndarray:
        """The split's images as the model's float32 NHWC input."""
        return self.preprocessing(self.splits[name].images)

    def calibration(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` preprocessed training images drawn with ``seed``, for int8 calibration."""
        train = self.splits["train"]
        if count < 1:
            raise EdgecnnError("calibration needs at least 1 image")
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(train.labels), size=min(count, len(train.labels)), replace=False)
        return self.preprocessing(train.images[np.sort(pick)])


def seeded_split(images, labels, seed: int, val_fraction: float, test_fraction: float) -> dict[str, Split]:
    """Stratified train/val/test split (scikit-learn), the same for the same seed."""
    rest_x, test_x, rest_y, test_y = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=val_fraction / (1 - test_fraction), stratify=rest_y, random_state=seed
    )
    return {
        "train": Split(train_x, train_y.astype(np.int64)),
        "val": Split(val_x, val_y.astype(np.int64)),
        "test": Split(test_x, test_y.astype(np.int64)),
    }


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
        record={
            "name": "digits",
            "source": "scikit-learn load_digits (8x8, 0..16 scaled to 0..255)",
            "image_size": image_size,
            "seed": seed,
            "sizes": {k: len(v.labels) for k, v in splits.items()},
        },
    )


DATASETS: dict[str, Callable[[int, int], Dataset]] = {"digits": _load_digits}


def load_dataset(name: str = "digits", image_size: int = 28, seed: int = 0) -> Dataset:
    """Load a dataset by name; raise EdgecnnError (one line) for an unknown name."""
    check_choice("dataset", name, DATASETS)
    if not 8 <= image_size <= 512:
        raise EdgecnnError(f"image size must be between 8 and 512 pixels, got {image_size}")
    return DATASETS[name](image_size, seed)
