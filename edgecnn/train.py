"""Train a model on a :class:`~edgecnn.data.Dataset` with a rich progress bar, and save or load it safely.

    ds = load_dataset("digits")
    result = train(ds, arch="edge-cnn", epochs=15)
    result.val_accuracy, result.seconds
    save_model(result.model, "runs/demo/model.keras")   # atomic; reload with load_model (safe_mode=True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgecnn.atomic import atomic_output
from edgecnn.data import Dataset
from edgecnn.errors import EdgecnnError
from edgecnn.models import build_model
from edgecnn.quiet import import_tf

tf, keras = import_tf()


@dataclass
class TrainResult:
    model: keras.Model
    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    val_accuracy: float  # of the kept (best) weights


class RichProgress(keras.callbacks.Callback):
    """One rich progress bar over all training steps, with the last epoch's metrics beside it."""

    def __init__(self, progress: Progress, epochs: int, steps: int):
        super().__init__()
        self.progress, self.epochs = progress, epochs
        self.task = progress.add_task("training", total=epochs * steps, metrics="")

    def on_train_batch_end(self, batch, logs=None):
        self.progress.advance(self.task)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "learning_rate")
        self.progress.update(self.task, description=f"epoch {epoch + 1}/{self.epochs}", metrics=metrics)
        if not self.progress.console.is_terminal:  # logs and CI get a line per epoch; a terminal gets the live bar
            self.progress.console.print(f"epoch {epoch + 1}/{self.epochs}  {metrics}")


def train(
    ds: Dataset,
    arch: str = "edge-cnn",
    epochs: int = 15,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    patience: int = 5,
    console: Console | None = None,
) -> TrainResult:
    """Train with Adam and cross-entropy; stop early on validation accuracy and keep the best weights."""
    if epochs < 1 or batch_size < 1:
        raise EdgecnnError("epochs and batch size must be at least 1")
    keras.utils.set_random_seed(seed)
    model = build_model(arch, ds.preprocessing.input_shape, len(ds.labels))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x_train, y_train = ds.inputs("train"), ds.split("train").labels
    x_val, y_val = ds.inputs("val"), ds.split("val").labels
    steps = int(np.ceil(len(y_train) / batch_size))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[metrics]}"), console=console, transient=False) as bar:
        callbacks = [
            RichProgress(bar, epochs, steps),
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=patience, restore_best_weights=True, mode="max"
            ),
        ]
        start = time.perf_counter()
        history = model.fit(
            x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
            shuffle=True, verbose=0, callbacks=callbacks,
        ).history
        seconds = time.perf_counter() - start
    _, val_accuracy = model.evaluate(x_val, y_val, verbose=0)
    return TrainResult(model, history, seconds, len(history["loss"]), float(val_accuracy))


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save in the native ``.keras`` format (no pickle), atomically."""
    path = Path(path)
    with atomic_output(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True``; one-line EdgecnnError when it is missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"model not found: {path}")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise EdgecnnError(f"{path} is not a loadable Keras model: {str(exc).splitlines()[0]}") from None
