"""The options of training and export, as small records whose defaults are the ones the CLI and API show.

Light to import (no TensorFlow), so the command line can read these defaults for its --help.

    TrainConfig(arch="dscnn", epochs=30).check()
    ExportOptions(calibration_method="entropy")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from edgecnn.common.errors import EdgecnnError, check_choice, is_whole
from edgecnn.runtime.manifest import TTA

SCHEDULES = ("cosine", "constant")
STRATEGIES = ("default", "mirrored", "multi-worker")
DEFAULT_EPOCHS, DEFAULT_PATIENCE = 20, 5
# the least optimizer steps that training, and patience, get by default: 20 epochs of the digits are 800 steps,
# but 20 epochs of a folder of 120 images are 60, and ended at a median 54-83% test accuracy where 300 steps
# reached 100% (benchmarks/results/small_data.md)
MIN_STEPS, PATIENCE_STEPS = 300, 75
# a pretrained backbone stays frozen for this share of the epochs while the new head learns, then fine-tunes at
# this share of the learning rate (Keras' transfer-learning guide: train the head first, then fine-tune slowly)
FROZEN_SHARE, FINE_TUNE_RATE = 0.25, 0.1


@dataclass
class TrainConfig:
    """Training settings. ``epochs`` and ``patience`` left at None are settled by :meth:`settled` for the dataset:
    20 epochs and a patience of 5 where an epoch is 15 optimizer steps or more (480 training images at batch 32),
    and enough epochs for ``MIN_STEPS`` and ``PATIENCE_STEPS`` steps where it is fewer."""

    arch: str = "edge-cnn"
    epochs: int | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine decay to 1% over all epochs, or constant
    augment: str = "auto"  # a policy of edgecnn.workstation.augment, or auto: the dataset's own
    seed: int = 0
    patience: int | None = None
    strategy: str = "default"
    deterministic: bool = True  # TensorFlow's op determinism: the same seed gives the same weights on one machine
    weights: str | None = None  # a transfer architecture's backbone: "imagenet", a weights file, or None (random)
    frozen_epochs: int | None = None  # with weights: epochs before the backbone fine-tunes (None: a quarter)

    def check(self) -> None:
        counts = (self.batch_size, *(n for n in (self.epochs, self.patience) if n is not None))
        if min(counts) < 1 or not self.learning_rate > 0:
            raise EdgecnnError("epochs, batch size and patience must be at least 1 and the learning rate above 0")
        check_choice("learning-rate schedule", self.schedule, SCHEDULES)
        check_choice("strategy", self.strategy, STRATEGIES)
        from edgecnn.workstation.models import ARCHS, check_weights  # Keras: only once a config is used

        check_choice("architecture", self.arch, ARCHS)
        check_weights(self.arch, self.weights)
        if self.frozen_epochs is not None and self.frozen_epochs < 0:
            raise EdgecnnError(f"frozen epochs must be at least 0, got {self.frozen_epochs}")
        if self.frozen_epochs and self.weights is None:
            raise EdgecnnError("--frozen-epochs freezes a pretrained backbone: pass --weights imagenet or a file")
        check_seed(self.seed)

    def settled(self, steps: int) -> TrainConfig:
        """This config with epochs and patience left at None settled for ``steps`` optimizer steps an epoch:

            TrainConfig().settled(steps=40)   # the digits: epochs 20, patience 5
            TrainConfig().settled(steps=3)    # 84 images: epochs 100, patience 25
            TrainConfig(arch="mobilenetv2-0.35", weights="imagenet").settled(steps=40)   # frozen_epochs 5

        ``frozen_epochs`` is settled too: 0 without weights, at most ``epochs``.
        """
        epochs = max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / steps)) if self.epochs is None else self.epochs
        patience = max(DEFAULT_PATIENCE, math.ceil(PATIENCE_STEPS / steps)) if self.patience is None else self.patience
        frozen = 0
        if self.weights is not None:
            frozen = min(epochs, math.ceil(FROZEN_SHARE * epochs) if self.frozen_epochs is None else self.frozen_epochs)
        return replace(self, epochs=epochs, patience=patience, frozen_epochs=frozen)


FORMATS = ("tflite", "onnx")
C_FORMAT = "c"  # each TFLite artifact also as a C array, for microcontrollers (portable.write_c_array)
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
SUPPORTED = {"tflite": PRECISIONS, "onnx": ("fp32", "int8")}
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
ONNX_ACTIVATIONS = ("int8", "uint8")
MIN_CALIBRATION = 100  # fewer images give a warning, as Ultralytics warns


@dataclass(frozen=True)
class ExportOptions:
    int8_io: bool = True  # full-int8 TFLite takes and gives int8 (False: float I/O around int8 kernels)
    opset: int | None = None  # ONNX opset (None: the exporter's default)
    calibration_method: str = "minmax"  # ONNX Runtime's calibrator; the TFLite converter always uses min/max
    min_agreement: float | None = None  # percent; below it the export fails and nothing is written
    onnx_activations: str = "uint8"  # U8S8: ONNX Runtime fuses every QDQ conv and add (docs/performance.md)
    tta: str | None = None  # test-time augmentation built into every artifact (manifest.TTA); None: the run's
    mediapipe: bool = False  # also a MediaPipe Tasks ImageClassifier file of each TFLite artifact (portable.py)
    # int8 within this many points of float accuracy on the validation split: a sweep, then float layers (recipes.py)
    max_drop: float | None = None

    def __post_init__(self):  # a bad choice fails here, before the dataset is loaded
        check_choice("calibration method", self.calibration_method, CALIBRATION_METHODS)
        check_choice("ONNX activation type", self.onnx_activations, ONNX_ACTIVATIONS)
        if self.tta is not None:
            check_choice("test-time augmentation", self.tta, TTA)
        if self.max_drop is not None and not (0 <= self.max_drop <= 100):
            raise EdgecnnError(f"--max-drop must be from 0 to 100 points, got {self.max_drop}")


MAX_SEED = 2**32 - 1  # scikit-learn's and numpy's seeds are 32-bit


def check_seed(seed: int) -> None:
    """EdgecnnError for a seed that scikit-learn's splits and numpy's generators refuse."""
    if not (is_whole(seed) and 0 <= seed <= MAX_SEED):
        raise EdgecnnError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
