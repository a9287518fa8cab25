"""Training: checkpoints, resume, early stopping, learning-rate schedule, augmentation and tf.distribute."""

import io
import json
import re

import cv2
import numpy as np
import pytest
from rich.console import Console

from edgecnn.common.errors import EdgecnnError
from edgecnn.common.native_logs import import_tf
from edgecnn.runtime.manifest import Manifest
from edgecnn.workstation.augment import build_augmentation
from edgecnn.workstation.models import build_model
from edgecnn.workstation.training import BEST, LAST, STATE, Checkpoints, TrainConfig, read_state, train

from .conftest import run_subprocess

tf, keras = import_tf()


@pytest.mark.slow
def test_resume_continues_the_last_checkpoint(digits, tmp_path):
    config = TrainConfig(epochs=2, patience=10, batch_size=64)
    first = train(digits, config, tmp_path)
    assert first.epochs_run == 2 and {p.name for p in tmp_path.iterdir()} == {LAST, BEST, STATE}
    state = read_state(tmp_path)
    assert state["epochs_done"] == 2 and len(state["history"]["val_accuracy"]) == 2
    resumed = train(digits, TrainConfig(epochs=4, patience=10, batch_size=64), tmp_path, resume=True)
    steps = int(np.ceil(len(digits.split("train").labels) / 64))
    assert resumed.epochs_run == 4 and len(resumed.history["loss"]) == 4
    assert read_state(tmp_path)["history"]["loss"][:2] == state["history"]["loss"]  # kept, not retrained
    assert int(resumed.model.optimizer.iterations) == 4 * steps  # the optimizer state came back too
    assert resumed.val_accuracy == max(resumed.history["val_accuracy"])
    accuracy, loss = resumed.history["val_accuracy"], resumed.history["val_loss"]
    assert resumed.best_epoch == 1 + max(range(4), key=lambda i: (accuracy[i], -loss[i]))  # ties: the lower loss


@pytest.mark.slow
def test_a_run_resumed_after_a_kill_ends_with_the_weights_of_an_uninterrupted_one(digits, tmp_path, monkeypatch):
    config = TrainConfig(epochs=3, patience=10, batch_size=64)  # digits: shift augmentation; edge-cnn: dropout
    whole = train(digits, config, tmp_path / "whole")
    save_checkpoint = Checkpoints.on_epoch_end

    def killed_after_the_first_epoch(self, epoch, logs=None):
        save_checkpoint(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoints, "on_epoch_end", killed_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(digits, config, tmp_path / "split")
    assert read_state(tmp_path / "split")["epochs_done"] == 1
    monkeypatch.setattr(Checkpoints, "on_epoch_end", save_checkpoint)
    resumed = train(digits, config, tmp_path / "split", resume=True)
    assert resumed.history == whole.history
    for kept, uninterrupted in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, uninterrupted)


def test_resume_refuses_a_missing_or_different_checkpoint(digits, tmp_path):
    with pytest.raises(EdgecnnError, match="nothing to resume"):
        train(digits, TrainConfig(epochs=1), tmp_path, resume=True)
    (tmp_path / STATE).write_text(json.dumps({**GOOD_STATE, "config": {"arch": "resnet8"}}))
    with pytest.raises(EdgecnnError, match="is a resnet8 model, not edge-cnn"):
        train(digits, TrainConfig(epochs=1), tmp_path, resume=True)


GOOD_STATE = {"config": {"arch": "edge-cnn", "epochs": 3}, "run": {"dataset": "digits", "image_size": 28},
              "epochs_done": 2, "best_epoch": 2, "best_val_accuracy": 0.9, "best_val_loss": 0.3,
              "history": {"loss": [0.5, 0.3]}}


@pytest.mark.parametrize("change, message", [
    ({"epochs_done": "two"}, "state.json field epochs_done is 'two'"),
    ({"history": {"loss": 5}}, "state.json history holds something other than lists"),
    ({"config": {"arch": "edge-cnn", "batch_size": "32"}}, "state.json config field batch_size is '32'"),
    ({"config": 5}, "state.json field config is 5"),
    ({"best_val_loss": None, "best_epoch": None}, "state.json field best_epoch is None"),
])
def test_a_damaged_checkpoint_state_is_one_line(tmp_path, change, message):
    """state.json drives a resume: a hand-edited or damaged one used to fail as TypeError, KeyError or
    AttributeError lines from deep inside training."""
    (tmp_path / STATE).write_text(json.dumps(GOOD_STATE))
    assert read_state(tmp_path) == GOOD_STATE
    (tmp_path / STATE).write_text(json.dumps({**GOOD_STATE, **change}))
    with pytest.raises(EdgecnnError, match=f"^cannot resume from {tmp_path}: {re.escape(message)}$"):
        read_state(tmp_path)
    (tmp_path / STATE).write_text(json.dumps([1]))
    with pytest.raises(EdgecnnError, match=r"state.json \[1\] is not an object"):
        read_state(tmp_path)


def _checkpoints(folder, patience):
    """A Checkpoints callback on a small fresh model, with a fresh state: (callback, model, state)."""
    model = build_model("edge-cnn", (16, 16, 1), 3)
    state = {"config": {"arch": "edge-cnn"}, "run": {}, "epochs_done": 0, "best_epoch": 0, "best_val_accuracy": -1.0,
             "history": {}}  # as train() starts one
    callback = Checkpoints(folder, state, patience=patience)
    callback.set_model(model)
    model.stop_training = False
    return callback, model, state


def test_early_stopping_counts_from_the_best_epoch_in_the_state(tmp_path):
    callback, model, state = _checkpoints(tmp_path, patience=2)
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert state["best_epoch"] == 2 and not model.stop_training
    callback.on_epoch_end(3, {"val_accuracy": 0.69})
    assert model.stop_training and read_state(tmp_path)["epochs_done"] == 4


def test_an_epoch_that_ties_the_best_accuracy_with_a_lower_loss_becomes_the_best(tmp_path):
    callback, model, state = _checkpoints(tmp_path, patience=2)
    for epoch, (accuracy, loss) in enumerate([(0.5, 0.9), (0.7, 0.6), (0.7, 0.4), (0.7, 0.5), (0.6, 0.1)]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": loss})
    assert state["best_epoch"] == 3 and state["best_val_loss"] == 0.4  # not epoch 2 (worse loss) nor 4 or 5
    assert model.stop_training  # patience counts from epoch 3
    resumed = {"epochs_done": 1, "best_epoch": 1, "best_val_accuracy": 0.7, "history": {}}  # kept no loss
    callback.state = resumed
    callback.on_epoch_end(1, {"val_accuracy": 0.7, "val_loss": 0.1})
    assert resumed["best_epoch"] == 1  # nothing to compare a tie with: the first best stands


def test_a_loss_that_stops_being_finite_stops_training_and_keeps_the_epochs_before(tmp_path):
    callback, model, _ = _checkpoints(tmp_path, patience=5)
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(0, {"loss": 2.3})
    callback.on_epoch_end(0, {"loss": 2.3, "val_accuracy": 0.4})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    callback.on_epoch_begin(1)
    callback.on_train_batch_end(6, {"loss": float("inf")})
    assert model.stop_training and callback.diverged == (2, 7, float("inf"))
    callback.on_epoch_end(1, {"loss": float("nan"), "val_accuracy": 0.1})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # epoch 1's checkpoints, untouched
    assert read_state(tmp_path)["epochs_done"] == 1


def test_a_diverging_run_is_one_line_and_leaves_no_folder(digits, tmp_path):
    from edgecnn.api import train as train_run

    with pytest.raises(EdgecnnError, match=r"^training diverged: the loss became nan in epoch 1, batch \d+; train "
                                           r"again with a lower learning rate than 1e\+09$"):
        train_run(out=tmp_path / "run", dataset="digits", epochs=2, learning_rate=1e9)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_stops_once_patience_is_spent(digits):
    result = train(digits, TrainConfig(epochs=30, patience=1, batch_size=128))
    assert result.epochs_run == result.best_epoch + 1 < 30 and len(result.history["loss"]) == result.epochs_run


def test_defaults_give_a_small_dataset_the_optimizer_steps_of_a_larger_one():
    digits_epoch, folder_epoch = 40, 3  # steps an epoch: 1,257 training digits, 84 images of a 120-image folder
    assert (TrainConfig().settled(digits_epoch).epochs, TrainConfig().settled(digits_epoch).patience) == (20, 5)
    assert (TrainConfig().settled(folder_epoch).epochs, TrainConfig().settled(folder_epoch).patience) == (100, 25)
    assert TrainConfig().settled(1).epochs == 300 and TrainConfig().settled(15).epochs == 20
    assert TrainConfig(epochs=7, patience=2).settled(folder_epoch) == TrainConfig(epochs=7, patience=2, frozen_epochs=0)


def test_a_run_records_the_settled_epochs_and_patience(tmp_path):
    from edgecnn.api import CHECKPOINTS
    from edgecnn.api import train as train_run

    for label, level in (("dark", 40), ("light", 200)):  # 2 x 10 images: 14 to train on, one step an epoch
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(10):
            cv2.imwrite(str(tmp_path / "data" / label / f"{i}.png"), np.full((12, 12), level + i, np.uint8))
    console = Console(file=io.StringIO(), width=200)
    train_run(out=tmp_path / "run", dataset=f"folder:{tmp_path / 'data'}", epochs=2, console=console)
    manifest = Manifest.load(tmp_path / "run")
    note = "14 training images are 1 step an epoch at batch 32; for a small dataset: patience 75\n"
    assert note in console.file.getvalue()
    training = manifest.source["training"]
    assert (training["epochs"], training["patience"]) == (2, 75)
    assert read_state(tmp_path / "run" / CHECKPOINTS)["config"]["patience"] == 75


def test_cosine_schedule_decays_to_one_percent(digits):
    result = train(digits, TrainConfig(epochs=1, batch_size=256))
    assert float(np.asarray(result.model.optimizer.learning_rate)) == pytest.approx(1e-5, rel=0.05)  # 1% of 1e-3


def test_augmentation_changes_images_but_keeps_shapes(digits):
    batch = digits.inputs("train")[:16]
    for policy in ("shift", "flip-shift", "flip-shift-erase"):
        out = np.asarray(build_augmentation(policy, seed=1)(batch, training=True))
        assert out.shape == batch.shape and not np.allclose(out, batch)
        assert 0.0 <= out.min() and out.max() <= 1.0 + 1e-6  # fills repeat borders, no new values outside
    assert build_augmentation("none") is None
    with pytest.raises(EdgecnnError, match="unknown augmentation 'mixup'"):
        build_augmentation("mixup")


def test_random_erasing_blanks_one_patch_in_about_half_the_images():
    batch = np.full((400, 28, 28, 1), 0.5, np.float32)  # flat images: flips and shifts leave them as they are
    out = np.asarray(build_augmentation("flip-shift-erase", seed=3)(batch, training=True))
    blanked = (out == 0.0).mean(axis=(1, 2, 3))
    assert 0.4 < (blanked > 0).mean() < 0.6
    hit = blanked[blanked > 0]
    assert 0.02 * 0.5 < hit.min() and hit.max() <= 0.33 + 0.05  # area 2-33% (rounded to whole pixels)
    rows, cols = np.nonzero(out[np.argmax(blanked), :, :, 0] == 0.0)
    assert len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one rectangle
    assert np.all(out[blanked == 0] == 0.5)


@pytest.mark.slow
def test_the_same_seed_trains_the_same_weights(digits):
    def weights(seed):  # augmentation, shuffling and multi-threaded kernels all draw on the seed or may reorder sums
        config = TrainConfig(epochs=2, batch_size=64, augment="shift", seed=seed, patience=10)
        return train(digits, config).model.get_weights()

    first, again, other = weights(0), weights(0), weights(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_an_op_without_a_deterministic_kernel_names_the_way_out(digits, monkeypatch):
    def fit(*args, **kwargs):  # what TensorFlow raises on a GPU whose kernel has no deterministic version
        raise tf.errors.UnimplementedError(None, None, "Deterministic GPU implementation of Foo not available.\nmore")

    monkeypatch.setattr(keras.Model, "fit", fit)
    with pytest.raises(EdgecnnError, match=r"^Deterministic GPU .* available\. \(train with --no-deterministic\)$"):
        train(digits, TrainConfig(epochs=1))
    with pytest.raises(tf.errors.UnimplementedError):
        train(digits, TrainConfig(epochs=1, deterministic=False))


def test_bad_training_settings_fail_in_one_line(digits):
    with pytest.raises(EdgecnnError, match="unknown learning-rate schedule 'step'"):
        train(digits, TrainConfig(schedule="step"))
    with pytest.raises(EdgecnnError, match="unknown strategy 'tpu'"):
        train(digits, TrainConfig(strategy="tpu"))
    with pytest.raises(EdgecnnError, match="at least 1"):
        train(digits, TrainConfig(epochs=0))
    with pytest.raises(EdgecnnError, match="seed must be a whole number from 0 to 4294967295, got -1"):
        train(digits, TrainConfig(seed=-1))  # Keras' own error would come only after the model is built


@pytest.mark.slow
def test_mirrored_training_over_two_logical_cpus(tmp_path):
    out = tmp_path / "run"
    done = run_subprocess(["train", "--out", str(out), "--epochs", "2", "--strategy", "mirrored",
                           "--cpu-devices", "2", "--batch-size", "64"])
    assert done.returncode == 0, done.stderr
    source = json.loads((out / "manifest.json").read_text())["source"]
    assert source["training"]["replicas"] == 2 and source["training"]["strategy"] == "mirrored"
    assert source["test_accuracy"] > 50.0  # two epochs over two replicas learned something


@pytest.mark.slow
def test_multi_worker_without_a_cluster_is_a_one_line_error(tmp_path):
    done = run_subprocess(["train", "--out", str(tmp_path / "r"), "--epochs", "1", "--strategy", "multi-worker"],
                          env={k: v for k, v in __import__("os").environ.items() if k != "TF_CONFIG"})
    assert done.returncode == 1 and "needs TF_CONFIG" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("width", [80, 100, 140])
def test_the_training_bar_keeps_its_count_and_time_whole_and_its_metrics_short(width):
    import io

    from rich.console import Console

    from edgecnn.workstation.training import epoch_metrics, training_progress

    metrics = epoch_metrics({"accuracy": 0.93476, "loss": 0.22401, "val_accuracy": 0.96667, "val_loss": 0.11224,
                             "learning_rate": 0.001})
    assert metrics == "acc 93.48%  loss 0.224  val_acc 96.67%  val_loss 0.112"
    bar = training_progress(Console(file=io.StringIO(), width=width, force_terminal=True))
    bar.add_task("epoch 12/20", total=800, completed=450, metrics=metrics)
    screen = Console(file=io.StringIO(), width=width)
    screen.print(bar.make_tasks_table(bar.tasks))
    lines = screen.file.getvalue().splitlines()
    assert "450/800 0:00:00" in lines[0] and "…" not in screen.file.getvalue()
    assert len(lines) == (1 if width >= 100 else 2)  # a narrow terminal wraps the metrics, nothing else
    assert " ".join(" ".join(lines).split()).endswith("val_loss 0.112")
