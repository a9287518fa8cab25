"""Transfer learning: keras.applications backbones, ImageNet or file weights, frozen then fine-tuned, exported int8.

No test needs the network: the weights files are saved here from randomly initialised backbones."""

import os

import cv2
import numpy as np
import pytest

from edgecnn import api
from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.inspection import inspect_artifact
from edgecnn.workstation.config import TrainConfig
from edgecnn.workstation.data import load_dataset
from edgecnn.workstation.models import BACKBONE, build_model, keras, load_model, set_backbone_frozen
from edgecnn.workstation.training import LAST, Checkpoints

from .conftest import assert_one_error_line, run_cli, run_subprocess

SIDE = 32  # the smallest input the MobileNets take: the cheapest to train here


def _backbone_file(folder, alpha=0.35):
    """A weights file of a randomly initialised MobileNetV2 backbone, as ``keras.applications`` saves one."""
    backbone = keras.applications.MobileNetV2(input_shape=(SIDE, SIDE, 3), alpha=alpha, include_top=False,
                                              weights=None)
    path = folder / f"mobilenetv2_{alpha}.weights.h5"
    backbone.save_weights(path)
    return path, backbone.get_weights()


def _colour_folders(root, per_class=12):
    """Three classes of coloured discs on noise."""
    rng = np.random.default_rng(0)
    for label, colour in (("red", (0, 0, 255)), ("green", (0, 255, 0)), ("blue", (255, 0, 0))):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (48, 48, 3), dtype=np.uint8)
            cv2.circle(image, tuple(int(c) for c in rng.integers(16, 32, 2)), 10, colour, -1)
            cv2.imwrite(str(root / label / f"{i}.png"), image)
    return f"folder:{root}"


def _pretrained_file(folder, dataset):
    """A MobileNetV2-0.35 weights file whose BatchNorm statistics are the dataset's: a random backbone with its
    BatchNorm frozen at Keras' initial statistics (mean 0, variance 1) passes nothing on, and gets no gradient."""
    backbone = keras.applications.MobileNetV2(input_shape=(SIDE, SIDE, 3), alpha=0.35, include_top=False,
                                              weights=None)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # one pass in training mode sets the statistics to this batch's
    images = load_dataset(dataset, image_size=SIDE).inputs("train")
    backbone(2 * images - 1, training=True)  # the range build_model's Rescaling gives it
    path = folder / "calibrated.weights.h5"
    backbone.save_weights(path)
    return path, backbone.get_weights()


def test_a_file_loads_into_the_backbone_and_freezing_spares_batchnorm_statistics(tmp_path):
    path, saved = _backbone_file(tmp_path)
    model = build_model("mobilenetv2-0.35", (SIDE, SIDE, 1), 4, weights=str(path))
    backbone = model.get_layer(BACKBONE)
    for loaded, kept in zip(backbone.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(loaded, kept)
    set_backbone_frozen(model, frozen=True)
    assert [v.path for v in model.trainable_variables] == ["probs/kernel", "probs/bias"]
    set_backbone_frozen(model, frozen=False)
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)  # BatchNorm keeps the pretrained statistics
    assert len(model.trainable_variables) == 2 + sum(1 for layer in backbone.layers if layer.trainable
                                                     for _ in layer.trainable_weights)
    assert model.get_layer("gray_to_rgb") and model.output.shape == (None, 4)


@pytest.mark.parametrize(("arch", "weights", "message"), [
    ("edge-cnn", "imagenet", "--weights is for the transfer architectures (mobilenetv2-0.35"),
    ("mobilenetv2-0.35", "missing.weights.h5", "weights file not found: missing.weights.h5"),
])
def test_weights_an_architecture_cannot_take_are_one_line(arch, weights, message):
    with pytest.raises(EdgecnnError, match=message.replace("(", r"\(").replace(".", r"\.")):
        build_model(arch, (SIDE, SIDE, 3), 3, weights=weights)


def test_bad_transfer_settings_fail_before_anything_is_written(tmp_path):
    with pytest.raises(EdgecnnError, match="mobilenetv3s-0.75 needs an input of at least 32x32, got 28x28"):
        build_model("mobilenetv3s-0.75", (28, 28, 3), 3)
    with pytest.raises(EdgecnnError, match="--frozen-epochs freezes a pretrained backbone"):
        TrainConfig(arch="mobilenetv2-0.35", frozen_epochs=3).check()
    other, _ = _backbone_file(tmp_path, alpha=0.5)
    with pytest.raises(EdgecnnError, match=f"{other} does not hold mobilenetv2-0.35's backbone weights"):
        build_model("mobilenetv2-0.35", (SIDE, SIDE, 3), 3, weights=str(other))
    with pytest.raises(EdgecnnError, match="weights file not found"):
        api.train(out=tmp_path / "run", arch="mobilenetv2-0.35", weights=str(tmp_path / "none.h5"))
    assert not (tmp_path / "run").exists()


def test_frozen_epochs_default_to_a_quarter_and_never_pass_the_epochs():
    config = TrainConfig(arch="mobilenetv2-0.35", weights="imagenet")
    assert config.settled(steps=40).frozen_epochs == 5 and config.settled(steps=3).frozen_epochs == 25
    short = TrainConfig(arch="mobilenetv2-0.35", weights="imagenet", epochs=4, frozen_epochs=9)
    assert short.settled(steps=3).frozen_epochs == 4
    assert TrainConfig(arch="mobilenetv2-0.35").settled(steps=40).frozen_epochs == 0  # no weights: nothing frozen


@pytest.mark.slow
def test_imagenet_weights_offline_name_the_file_to_pass(tmp_path):
    """Keras downloads into $KERAS_HOME; a proxy on a closed port stands in for a machine without a network."""
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "HTTPS_PROXY": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9"}
    done = run_subprocess(["train", "--arch", "mobilenetv2-0.35", "--weights", "imagenet", "--image-size", "96",
                           "--out", str(tmp_path / "run")], env=env)
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "cannot download mobilenetv2-0.35's ImageNet weights (no network?): fetch "
                          "https://storage.googleapis.com/", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96"
                          "_no_top.h5 where there is one, then pass the file with --weights FILE")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_transfer_trains_frozen_then_fine_tunes_resumes_exactly_and_exports_full_int8(tmp_path, monkeypatch):
    dataset = _colour_folders(tmp_path / "data")
    weights, saved = _pretrained_file(tmp_path, dataset)
    options = dict(dataset=dataset, image_size=SIDE, arch="mobilenetv2-0.35", weights=str(weights), epochs=2,
                   frozen_epochs=1, patience=5, batch_size=8)
    whole = api.train(out=tmp_path / "whole", **options)
    assert whole["source"]["training"]["frozen_epochs"] == 1 and whole["source"]["training"]["weights"] == str(weights)
    save_checkpoint = Checkpoints.on_epoch_end

    def killed_after_the_frozen_epoch(self, epoch, logs=None):
        save_checkpoint(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoints, "on_epoch_end", killed_after_the_frozen_epoch)
    with pytest.raises(KeyboardInterrupt):
        api.train(out=tmp_path / "split", **options)
    frozen = load_model(tmp_path / "split" / "checkpoints" / LAST).get_layer(BACKBONE).get_weights()
    for after, before in zip(frozen, saved, strict=True):  # the frozen epoch trained the head alone
        np.testing.assert_array_equal(after, before)
    monkeypatch.setattr(Checkpoints, "on_epoch_end", save_checkpoint)
    api.train(out=tmp_path / "split", resume=True)
    for file in ("model.keras", f"checkpoints/{LAST}"):  # the kept (best) weights and the last epoch's
        resumed, uninterrupted = (load_model(tmp_path / run / file) for run in ("split", "whole"))
        for kept, other in zip(resumed.get_weights(), uninterrupted.get_weights(), strict=True):
            np.testing.assert_array_equal(kept, other)
    backbone = uninterrupted.get_layer(BACKBONE)
    changed = {v.path for v, before in zip(backbone.weights, saved, strict=True) if not np.array_equal(v, before)}
    norms = {v.path for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
             for v in layer.weights}
    assert changed and not changed & norms  # fine-tuning moved the convolutions, not the BatchNorm statistics

    entries = api.export(tmp_path / "whole", precisions=("int8",))
    assert {(e.format, e.precision) for e in entries} == {("tflite", "int8"), ("onnx", "int8")}
    info = inspect_artifact(tmp_path / "whole" / "model_int8.tflite")
    assert info["inputs"][0]["dtype"] == "int8" and info["operators"]["DEPTHWISE_CONV_2D"] == 17
    assert not {"DEQUANTIZE", "QUANTIZE"} & set(info["operators"])  # int8 from end to end
    assert all(e.verification["n"] > 0 and 0 <= e.verification["agreement"] <= 100 for e in entries)


def test_train_help_shows_the_transfer_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert run_cli(["train", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--weights" in shown and "--frozen-epochs" in shown and "mobilenetv3s-0.75" in shown
