"""A dataset in memory: raw uint8 images in train/val/test splits, its labels and its preprocessing.

    ds.split("test").labels    # int64 (N,)
    ds.inputs("train")         # float32 (N, H, W, C), made by ds.preprocessing
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from edgecnn.common.errors import EdgecnnError, check_choice
from edgecnn.runtime.preprocess import Preprocessing
from edgecnn.workstation.config import check_seed

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
    augmentation: str = "none"  # the training augmentation policy that suits it (edgecnn.workstation.augment)

    def split(self, name: str) -> Split:
        """One of ``SPLITS``: ``ds.split("test").labels``."""
        return self.splits[check_choice("split", name, SPLITS)]

    def inputs(self, name: str) -> np.ndarray:
        """The split's images as the model's float32 NHWC input."""
        return self.preprocessing(self.split(name).images)

    def calibration(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` preprocessed training images drawn with ``seed``, for int8 calibration."""
        train = self.splits["train"]
        if count < 1:
            raise EdgecnnError("calibration needs at least 1 image")
        check_seed(seed)
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(train.labels), size=min(count, len(train.labels)), replace=False)
        return self.preprocessing(train.images[np.sort(pick)])


def seeded_split(images, labels, seed: int, val_fraction: float, test_fraction: float) -> dict[str, Split]:
    """Train/val/test split (scikit-learn), the same for the same seed; stratified when every class has at
    least 10 images (fewer cannot give each split a member of each class)."""
    stratified = np.bincount(labels).min() >= 10
    rest_x, test_x, rest_y, test_y = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels if stratified else None, random_state=seed
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=val_fraction / (1 - test_fraction), stratify=rest_y if stratified else None,
        random_state=seed,
    )
    return {
        "train": Split(train_x, train_y.astype(np.int64)),
        "val": Split(val_x, val_y.astype(np.int64)),
        "test": Split(test_x, test_y.astype(np.int64)),
    }
