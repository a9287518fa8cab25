"""edgecnn doctor: per-tensor int8 error in both formats, the flipped images, and what it refuses."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgecnn.api import doctor
from edgecnn.api import export as export_run
from edgecnn.common.errors import EdgecnnError
from edgecnn.common.tensor_names import layer_name
from edgecnn.runtime.manifest import Manifest, sha256_file
from edgecnn.workstation.models import load_model
from tests.broken_int8 import broken_copy
from tests.conftest import assert_one_error_line, run_cli

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="session")
def broken_run(run_dir, tmp_path_factory) -> Path:
    """The digits run with one outlier channel after block2_bn, exported again in fp32 and int8."""
    run = broken_copy(run_dir, tmp_path_factory.mktemp("doctor") / "broken")
    export_run(run, precisions=("fp32", "int8"))
    return run


def test_the_outlier_channel_leaves_float_alone_and_breaks_plain_int8(run_dir, broken_run, digits):
    x = digits.inputs("val")
    original, broken = load_model(run_dir / "model.keras"), load_model(broken_run / "model.keras")
    assert np.abs(original.predict(x, verbose=0) - broken.predict(x, verbose=0)).max() < 1e-4
    manifest = Manifest.load(broken_run)
    float_accuracy = manifest.entry("model_fp32.tflite").verification["accuracy"]
    for fmt in ("tflite", "onnx"):
        assert float_accuracy - manifest.entry(f"model_int8.{fmt}").verification["accuracy"] >= 3.0, fmt


def test_doctor_ranks_the_broken_tensor_first_in_both_formats(broken_run, tmp_path):
    report = doctor(broken_run, out=tmp_path / "doctor")
    assert set(report["artifacts"]) == {"model_int8.tflite", "model_int8.onnx"}
    for file, record in report["artifacts"].items():
        worst, second = record["tensors"][:2]
        assert worst["display"] == "block2_relu/Relu", (file, worst)
        assert worst["local_snr_db"] < 10 and second["local_snr_db"] > worst["local_snr_db"] + 5
        assert worst["channel_snr_db"] < 10 < worst["snr_db"]  # the whole-tensor SNR hides the outlier channel
        assert record["int8_accuracy"] < record["float_accuracy"] - 3
        flips = record["flips"]
        assert len(flips) == round(report["images"] * (100 - record["agreement"]) / 100)
        assert all(f["int8"]["label"] != f["float"]["label"] for f in flips)
        sheet = cv2.imread(record["contact_sheet"])
        assert sheet is not None and sheet.shape[1] == 8 * 96
    saved = json.loads((tmp_path / "doctor" / "doctor.json").read_text())
    assert saved["artifacts"]["model_int8.onnx"]["tensors"][0]["display"] == "block2_relu/Relu"


def test_doctor_cli_prints_the_worst_tensors_and_writes_its_report(broken_run, tmp_path, capsys):
    assert run_cli(["doctor", str(broken_run / "model_int8.onnx"), "--top", "3", "--out", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "model_int8.onnx" in shown and "block2_relu/Relu" in shown and "model_int8.tflite" not in shown
    assert "validation images change their top-1 in int8" in shown
    assert (tmp_path / "doctor.json").is_file()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_shipped_onnx_files_name_tensors_after_keras_layers_in_both_precisions(name):
    for precision in ("fp32", "int8"):
        graph = onnx.load(str(MODELS / name / f"model_{precision}.onnx")).graph
        outputs = [n.output[0] for n in graph.node]
        assert all(n.name == n.output[0] for n in graph.node)
        assert "stem_relu/Relu" in outputs if name == "fashion_mnist" else "block1a_relu/Relu" in outputs
        assert not any(o.startswith("t") and o[1:].isdigit() for o in outputs)
    fp32 = {o for n in onnx.load(str(MODELS / name / "model_fp32.onnx")).graph.node for o in n.output}
    int8 = onnx.load(str(MODELS / name / "model_int8.onnx")).graph
    outputs = {v.name for v in (*int8.input, *int8.output)}
    quantized = [n.input[0] for n in int8.node if n.op_type == "QuantizeLinear"
                 and n.input[0] not in outputs and n.input[0].split("/")[0] not in outputs]
    assert len(quantized) >= 5 and set(quantized) <= fp32  # the doctor matches them by name


def test_layer_names_drop_counters_and_call_suffixes():
    assert layer_name("tta_1/resnet8_wide_1/stack1_b_bn_1/batchnorm/mul_1__9:0") == "stack1_b_bn/batchnorm/mul_1"
    assert layer_name("edge_vgg_1/block1a_relu_1/Relu;edge_vgg_1/block1a_conv_1/convolution") == "block1a_relu/Relu"
    assert layer_name("tta_1/strided_slice") == "tta/strided_slice"
    assert layer_name("Conv__54:0") is None and layer_name("image") is None


def test_a_float_only_run_has_nothing_to_diagnose(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    record = json.loads((run / "manifest.json").read_text())
    record["artifacts"] = [a for a in record["artifacts"] if a["precision"] != "int8"]
    (run / "manifest.json").write_text(json.dumps(record))
    assert run_cli(["doctor", str(run)]) == 1
    assert_one_error_line(capsys.readouterr().err, "has no int8 artifact", "export --quantize int8")
    assert not (run / "doctor").exists()


def test_an_artifact_without_manifest_is_refused(run_dir, tmp_path, capsys):
    shutil.copy(run_dir / "model_int8.tflite", tmp_path / "model_int8.tflite")
    assert run_cli(["doctor", str(tmp_path / "model_int8.tflite")]) == 1
    assert_one_error_line(capsys.readouterr().err, "no manifest")


def test_files_of_two_models_cannot_be_matched(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    shutil.copy(MODELS / "fashion_mnist" / "model_fp32.onnx", run / "model_fp32.onnx")  # another model's float file
    manifest = Manifest.load(run)
    manifest.add_artifact(run / "model_fp32.onnx", "onnx", "fp32")
    manifest.save(run)
    assert manifest.entry("model_fp32.onnx").sha256 == sha256_file(MODELS / "fashion_mnist" / "model_fp32.onnx")
    with pytest.raises(EdgecnnError, match="share no quantized tensor names past the input"):
        doctor(run / "model_int8.onnx")


@pytest.mark.slow
def test_max_drop_brings_both_formats_within_the_bound_and_writes_the_same_bytes_twice(broken_run, digits, tmp_path,
                                                                                        monkeypatch):
    from edgecnn.deploy.bench import accuracy_percent
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.workstation import recipes

    runs = []
    for name in ("first", "second"):
        run = tmp_path / name
        shutil.copytree(broken_run, run)
        export_run(run, precisions=("fp32", "int8"), max_drop=0.5)
        runs.append(run)
        chosen = {fmt: Manifest.load(run).entry(f"model_int8.{fmt}").recipe["setting"] for fmt in ("tflite", "onnx")}
        # the second export sweeps the chosen settings alone (and the first ONNX one, the 16-bit search's base):
        # the same choices must give the same bytes
        monkeypatch.setattr(recipes, "TFLITE_SETTINGS", (chosen["tflite"],))
        monkeypatch.setattr(recipes, "ONNX_SETTINGS", tuple({json.dumps(s, sort_keys=True): s for s in (
            recipes.ONNX_SETTINGS[0], chosen["onnx"])}.values()))
    manifest = Manifest.load(runs[0])
    float_test = accuracy_percent(digits.split("test").labels,
                                  load_model(runs[0] / "model.keras").predict(digits.inputs("test"), verbose=0))
    float_val = manifest.entry("model_fp32.tflite").verification["accuracy"]
    for fmt in ("tflite", "onnx"):
        entry = manifest.entry(f"model_int8.{fmt}")
        recipe = entry.recipe
        assert recipe["max_drop"] == 0.5 and recipe["validation_drop"] <= 0.5
        assert float_val - entry.verification["accuracy"] <= 0.5
        with Classifier(runs[0] / entry.file) as clf:
            test = accuracy_percent(digits.split("test").labels, clf.predict_proba(digits.split("test").images))
        assert float_test - test <= 0.5, (fmt, float_test, test)
        assert len(recipe["sweep"]) == (6 if fmt == "tflite" else 12)
        again = Manifest.load(runs[1]).entry(entry.file).recipe
        assert again["setting"] == recipe["setting"] and again["int16_tensors"] == recipe["int16_tensors"]
        assert sha256_file(runs[0] / entry.file) == sha256_file(runs[1] / entry.file)  # deterministic
    assert manifest.entry("model_int8.tflite").recipe["setting"]["activations"] == "int16"  # 16x8: int8 fails
    onnx_recipe = manifest.entry("model_int8.onnx").recipe
    assert onnx_recipe["int16_tensors"] == ["block2_relu/Relu"]  # the tensor the doctor ranks worst
    assert (runs[0] / "model_int8.onnx").stat().st_size < 1.1 * (broken_run / "model_int8.onnx").stat().st_size


@pytest.mark.slow
def test_max_drop_that_no_setting_meets_writes_nothing(broken_run, tmp_path, monkeypatch, capsys):
    from edgecnn.workstation import recipes

    run = tmp_path / "run"
    shutil.copytree(broken_run, run)
    before = {p.name: sha256_file(p) for p in run.iterdir() if p.is_file()}
    monkeypatch.setattr(recipes, "TFLITE_SETTINGS", recipes.TFLITE_SETTINGS[:2])  # int8 alone, no 16x8
    assert run_cli(["export", str(run), "--format", "tflite", "--quantize", "int8", "--max-drop", "0.5"]) == 1
    assert_one_error_line(capsys.readouterr().err, "no TFLite int8 or 16x8 setting is within --max-drop 0.5",
                          "best drop ", "points): nothing written")
    assert {p.name: sha256_file(p) for p in run.iterdir() if p.is_file()} == before
    assert not [p for p in run.iterdir() if p.name.startswith(".export-")]


def test_model_explorer_node_data_keys_name_the_tflite_graphs_tensors(broken_run, tmp_path):
    pytest.importorskip("model_explorer", reason="needs ai-edge-model-explorer (pip install -e '.[check]')")
    from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter

    record = doctor(broken_run / "model_int8.tflite", out=tmp_path)["artifacts"]["model_int8.tflite"]
    data = json.loads(Path(record["model_explorer"]).read_text())
    results = data["main"]["results"]
    graph = BuiltinTfliteFlatbufferAdapter().convert(str(broken_run / "model_int8.tflite"), {})
    names = {attr["value"] for collection in graph["graphCollections"] for g in collection.graphs
             for node in g["nodes"] for meta in node.get("outputsMetadata", []) for attr in meta["attrs"]
             if attr["key"] == "tensor_name"}
    assert results and set(results) <= names  # each value lands on a node of Model Explorer's own graph
    worst = record["tensors"][0]
    assert results[worst["name"]]["value"] == worst["local_snr_db"] == min(r["value"] for r in results.values())
