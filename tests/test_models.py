import json

import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.inspection import inspect_artifact
from edgecnn.workstation.export import export_onnx, export_tflite, quantize_onnx
from edgecnn.workstation.models import ARCHS, TRANSFER, TRANSFER_MIN_SIDE, build_model, keras, keras_macs, load_model
from edgecnn.workstation.training import save_model

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


@pytest.mark.parametrize("arch", [a if a == "edge-cnn" else pytest.param(a, marks=pytest.mark.slow)
                                  for a in sorted(ARCHS)])  # the default in the fast tier, all in the slow one
def test_every_architecture_exports_full_int8_tflite_and_onnx(arch, tmp_path):
    shape = (TRANSFER_MIN_SIDE, TRANSFER_MIN_SIDE, 1) if arch in TRANSFER else (28, 28, 1)  # grayscale into RGB
    model = build_model(arch, shape, 10)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    calibration = np.random.default_rng(0).random((32, *shape)).astype(np.float32)
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


@pytest.mark.slow
def test_models_lists_every_architecture_with_params_and_macs():
    done = run_subprocess(["models", "--json"])
    rows = {r["arch"]: r for r in json.loads(done.stdout)}
    assert set(rows) == set(ARCHS)
    for arch, row in rows.items():
        if arch not in TRANSFER:  # they take 32x32 and up
            model = build_model(arch, (28, 28, 1), 10)
            assert row["params"] == model.count_params() and row["macs"] == keras_macs(model) > 0
    assert rows["edge-cnn"]["macs"] == 1_924_992 and rows["resnet8"]["params"] == 78_138
    done = run_subprocess(["models", "--image-size", "32", "--channels", "3"])
    assert done.returncode == 0 and "resnet8" in done.stdout and "12,501,632" in done.stdout  # MLPerf Tiny's 12.5M
    done = run_subprocess(["models", "--image-size", "32", "--channels", "3", "--classes", "4", "--json"])
    rows = {r["arch"]: r for r in json.loads(done.stdout)}
    for arch in TRANSFER:  # the backbone's layers counted too
        model = build_model(arch, (32, 32, 3), 4)
        assert rows[arch]["params"] == model.count_params() and rows[arch]["macs"] == keras_macs(model) > 500_000


def test_an_input_too_small_for_an_architecture_names_the_smallest_it_takes():
    """seed-cnn's valid 3x3 convolutions and 2x2 pools: 18 -> 16 -> 8 -> 6 -> 3 -> 1; 17 ends at 0."""
    with pytest.raises(EdgecnnError, match="seed-cnn needs an input of at least 18x18: .* shrink 17x17 below"):
        build_model("seed-cnn", (17, 17, 1), 10)
    assert build_model("seed-cnn", (18, 18, 1), 10).output.shape == (None, 10)


@pytest.mark.slow
def test_models_lists_every_architecture_and_marks_one_an_input_is_too_small_for():
    done = run_subprocess(["models", "--image-size", "9", "--json"])
    assert done.returncode == 0, done.stderr
    rows = {r["arch"]: r for r in json.loads(done.stdout)}
    assert set(rows) == set(ARCHS)
    assert rows["seed-cnn"]["params"] is None and "at least 18x18" in rows["seed-cnn"]["error"]
    assert all("at least 32x32" in rows[a]["error"] for a in TRANSFER)
    assert all(r["error"] is None and r["params"] > 0 for a, r in rows.items() if a != "seed-cnn" and a not in TRANSFER)


def _onnx_conv(path, input_type, extra_op: str = ""):
    """A uint8- or float-input ONNX model: Cast, one 3x3 Conv (4 filters), and optionally an operator from a domain
    no runtime implements."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["xf", "w"], ["conv"])]
    opsets = [helper.make_opsetid("", 17)]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["conv"], ["y"], domain="com.example"))
        opsets.append(helper.make_opsetid("com.example", 1))
    else:
        nodes.append(helper.make_node("Relu", ["conv"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", input_type, ["N", 1, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], [weights])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def test_onnx_macs_come_from_a_run_in_the_input_dtype_and_are_unknown_where_it_cannot_run(tmp_path):
    from onnx import TensorProto

    for input_type in (TensorProto.UINT8, TensorProto.FLOAT):
        assert inspect_artifact(_onnx_conv(tmp_path / "m.onnx", input_type))["macs"] == 4 * 8 * 8 * 9
    path = _onnx_conv(tmp_path / "custom.onnx", TensorProto.FLOAT, extra_op="Sharpen")
    assert inspect_artifact(path)["macs"] is None
    out = run_subprocess(["inspect", str(path)])
    assert "MACs unknown (ONNX Runtime cannot run it here)" in " ".join(out.stdout.split())


def test_inspect_shows_a_files_names_as_text_not_markup(tmp_path):
    """Operator names come from the (untrusted) file: "[/]" is shown as it is, not parsed as rich markup."""
    from onnx import TensorProto

    out = run_subprocess(["inspect", str(_onnx_conv(tmp_path / "[bold]m.onnx", TensorProto.FLOAT, extra_op="[/]Op"))])
    assert out.returncode == 0, out.stderr
    assert "[/]Op" in out.stdout and "[bold]m.onnx onnx" in out.stdout
    assert "precision unknown, manifest: none" in " ".join(out.stdout.split())  # no manifest to say
