import json

import numpy as np
import pytest

from edgecnn.errors import EdgecnnError
from edgecnn.export import export_onnx, export_tflite, quantize_onnx
from edgecnn.inspection import inspect_artifact
from edgecnn.models import ARCHS, build_model, keras, keras_macs
from edgecnn.train import load_model, save_model

from .conftest import run_subprocess


def test_edge_cnn_outputs_probabilities_and_stays_compact():
    model = build_model("edge-cnn", (28, 28, 1), 10)
    probs = model.predict(np.random.default_rng(0).random((4, 28, 28, 1)), verbose=0)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert 10_000 < model.count_params() < 60_000
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


def test_unknown_architecture():
    with pytest.raises(EdgecnnError, match="unknown architecture 'vgg'"):
        build_model("vgg", (28, 28, 1), 10)


def test_save_and_load_round_trip_safely(tmp_path):
    model = build_model("edge-cnn", (16, 16, 1), 3)
    x = np.random.default_rng(1).random((2, 16, 16, 1)).astype(np.float32)
    path = save_model(model, tmp_path / "model.keras")
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_load_model_refuses_missing_and_garbage_files(tmp_path):
    with pytest.raises(EdgecnnError, match="model not found"):
        load_model(tmp_path / "none.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(EdgecnnError, match="not a loadable Keras model"):
        load_model(tmp_path / "bad.keras")


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_architecture_exports_full_int8_tflite_and_onnx(arch, tmp_path):
    model = build_model(arch, (28, 28, 1), 10)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    calibration = np.random.default_rng(0).random((32, 28, 28, 1)).astype(np.float32)
    export_tflite(model, tmp_path / "m.tflite", "int8", calibration)
    info = inspect_artifact(tmp_path / "m.tflite")
    assert info["inputs"][0]["dtype"] == "int8" and info["outputs"][0]["dtype"] == "int8"
    assert not {"BATCH_NORM", "DEQUANTIZE", "QUANTIZE"} & set(info["operators"])  # folded, int8 end to end
    assert info["macs"] == keras_macs(model)
    export_onnx(model, tmp_path / "m.onnx")
    onnx_info = inspect_artifact(tmp_path / "m.onnx")
    assert "BatchNormalization" not in onnx_info["operators"]
    assert onnx_info["macs"] == keras_macs(model)
    quantize_onnx(tmp_path / "m.onnx", tmp_path / "m8.onnx", calibration)
    assert inspect_artifact(tmp_path / "m8.onnx")["operators"]["QuantizeLinear"] >= 1


def test_models_lists_every_architecture_with_params_and_macs():
    done = run_subprocess(["models", "--json"])
    rows = {r["arch"]: r for r in json.loads(done.stdout)}
    assert set(rows) == set(ARCHS)
    for arch, row in rows.items():
        model = build_model(arch, (28, 28, 1), 10)
        assert row["params"] == model.count_params() and row["macs"] == keras_macs(model) > 0
    assert rows["edge-cnn"]["macs"] == 1_924_992 and rows["resnet8"]["params"] == 78_138
    done = run_subprocess(["models", "--image-size", "32", "--channels", "3"])
    assert done.returncode == 0 and "resnet8" in done.stdout and "12,501,632" in done.stdout  # MLPerf Tiny's 12.5M


def test_an_input_too_small_for_an_architecture_is_a_one_line_error():
    with pytest.raises(EdgecnnError, match="seed-cnn cannot take a"):
        build_model("seed-cnn", (8, 8, 1), 10)
