"""Artifacts that run in other runtimes: ONNX int8 that ONNX Runtime fuses, MediaPipe files, C arrays, and
`edgecnn check` across LiteRT, ONNX Runtime, OpenVINO, OpenCV DNN, TFLite Micro and MediaPipe Tasks."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgecnn.api import check
from edgecnn.api import export as export_run
from edgecnn.deploy.inspection import inspect_artifact
from edgecnn.deploy.portability import REFERENCE
from edgecnn.deploy.runtimes import MEDIAPIPE_PYTHON_ENV, error_line, smallest_arena
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, sha256_file
from edgecnn.workstation.portable import write_c_array
from edgecnn.workstation.tflite_metadata import METADATA_NAME, attached_labels, with_classifier_metadata
from tests.conftest import assert_one_error_line, run_cli, run_subprocess

MODELS = Path(__file__).resolve().parents[1] / "models"
MEDIAPIPE_PIN = "mediapipe==1.2.3"
MEDIAPIPE_VENV = Path(__file__).resolve().parents[1] / ".venv-mediapipe"


def optimized_ops(path: Path) -> Counter:
    """The operators ONNX Runtime runs for ``path`` after its graph optimizations (what it fused)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as work:
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(Path(work) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return Counter(node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_shipped_int8_onnx_runs_every_conv_and_add_quantized_on_onnx_runtime(name):
    path = MODELS / name / "model_int8.onnx"
    model = onnx.load(str(path))
    source = Counter(node.op_type for node in onnx.load(str(MODELS / name / "model_fp32.onnx")).graph.node)
    ops = optimized_ops(path)
    assert ops["QLinearConv"] == source["Conv"]
    assert not ops.keys() & {"Conv", "Add", "Gemm", "MatMul"}  # none left in float
    assert ops["QuantizeLinear"] == ops["DequantizeLinear"] == 1  # the input in, the scores out
    # no unused opset imports: only the domains its nodes use
    assert {o.domain for o in model.opset_import} == {node.domain for node in model.graph.node} | {""}
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    manifest = Manifest.load(MODELS / name)
    assert props["edgecnn.labels"] == manifest.labels
    assert props["edgecnn.preprocessing"]["height"] == 28 and props["edgecnn.tta"]["name"] == manifest.tta


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_the_weight_range_is_stated_in_the_manifest_and_found_by_inspect(name):
    manifest = Manifest.load(MODELS / name)
    for fmt, expected in (("onnx", "7-bit (reduce_range)"), ("tflite", "full")):
        entry = manifest.entry(f"model_int8.{fmt}")
        info = inspect_artifact(MODELS / name / entry.file)
        assert entry.recipe["weight_range"] == info["weights"]["range"] == expected
        assert info["weights"]["max_abs_code"] == (64 if fmt == "onnx" else 127)
        assert info["recipe"] == entry.recipe
    assert inspect_artifact(MODELS / name / "model_fp32.onnx")["weights"] is None
    assert manifest.entry("model_fp32.onnx").recipe is None


def test_inspect_prints_the_weight_range_and_recipe(capsys):
    assert run_cli(["inspect", str(MODELS / "mnist" / "model_int8.onnx")]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # as one line, wherever the terminal wrapped it
    assert "weights: int8 in 6 layers, 7-bit (reduce_range) range (largest |code| 64)" in shown
    assert "recipe: weights int8, per-channel, weight_range 7-bit (reduce_range), activations uint8" in shown


def test_int8_activations_stay_available_and_are_recorded(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    [entry] = export_run(run, formats=("onnx",), precisions=("int8",), onnx_activations="int8")
    graph = onnx.load(str(run / "model_int8.onnx")).graph
    types = {i.name: i.data_type for i in graph.initializer}
    assert {types[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear"} == {onnx.TensorProto.INT8}
    assert entry.recipe["activations"] == "int8"


def test_classifier_metadata_attaches_labels_and_leaves_the_model_as_it_runs(tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    original = (MODELS / "mnist" / "model_fp32.tflite").read_bytes()
    labels = [f"class {i}" for i in range(10)]
    data = with_classifier_metadata(original, labels=labels, float_input=True, name="digits")
    assert attached_labels(data) == labels and attached_labels(original) is None
    model = schema.Model.GetRootAs(data, 0)
    [entry] = [model.Metadata(i) for i in range(model.MetadataLength())
               if model.Metadata(i).Name() == b"TFLITE_METADATA"]
    assert METADATA_NAME == "TFLITE_METADATA"
    record = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert record[4:8] == b"M001" and b"labels.txt" in record and b"1.0.0" in record
    (tmp_path / "with.tflite").write_bytes(data)
    x = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
    with Classifier(MODELS / "mnist" / "model_fp32.tflite") as plain:
        expected = plain.predict_proba(x)
    from edgecnn.runtime.backends import TFLiteBackend

    np.testing.assert_array_equal(TFLiteBackend(tmp_path / "with.tflite").run(x), expected)


def test_c_array_holds_the_model_bytes_and_compiles(tmp_path):
    source = MODELS / "mnist" / "model_int8.tflite"
    c_path, h_path = write_c_array(source, tmp_path / "digits-model")
    assert (c_path.name, h_path.name) == ("digits-model.c", "digits-model.h")
    text = c_path.read_text()
    body = text[text.index("{") + 1 : text.index("};")]
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body)) == source.read_bytes()
    assert f"digits_model_len = {source.stat().st_size};" in text
    assert sha256_file(source) in h_path.read_text()
    if not shutil.which("gcc"):
        pytest.skip("needs gcc (the C compiler) to compile the array")
    for flags in (["-std=c99"], ["-std=c11", "-Wall", "-Wextra", "-Werror"]):
        done = subprocess.run(["gcc", *flags, "-c", str(c_path), "-o", str(tmp_path / "m.o")], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    if shutil.which("g++"):  # the header from C++, as a TFLite Micro app includes it
        (tmp_path / "app.cc").write_text('#include "digits-model.h"\nsize_t size() { return digits_model_len; }\n')
        done = subprocess.run(["g++", "-c", str(tmp_path / "app.cc"), "-o", str(tmp_path / "app.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, fragments", [
    (["--format", "c"], ("--format c writes the TFLite files as C arrays: add tflite to --format",)),
    (["--format", "onnx", "--mediapipe"], ("--mediapipe makes MediaPipe files of the TFLite ones",)),
])
def test_files_for_other_runtimes_need_their_tflite_file(run_dir, args, fragments, capsys):
    before = sorted(p.name for p in run_dir.iterdir())
    assert run_cli(["export", str(run_dir), *args]) == 1
    assert_one_error_line(capsys.readouterr().err, *fragments)
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.slow
def test_export_writes_c_arrays_and_mediapipe_files_and_records_them(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    done = run_subprocess(["export", str(run), "--format", "tflite,c", "--quantize", "int8", "--mediapipe"])
    assert done.returncode == 0, done.stderr
    assert "also model_int8_mediapipe.tflite" in done.stdout and "also model_int8.c" in done.stdout
    extras = {e["file"]: e for e in Manifest.load(run).extras}
    assert set(extras) == {"model_int8.c", "model_int8.h", "model_int8_mediapipe.tflite"}
    for name, extra in extras.items():
        assert extra["of"] == "model_int8.tflite" and extra["sha256"] == sha256_file(run / name)
    assert extras["model_int8_mediapipe.tflite"]["verification"]["agreement"] >= 99.0
    data = (run / "model_int8_mediapipe.tflite").read_bytes()
    assert attached_labels(data) == Manifest.load(run).labels
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(run / "model_int8_mediapipe.tflite"))
    [image], [scores] = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(image["shape"]) == [1, 28, 28, 3] and image["dtype"] == np.uint8  # what MediaPipe feeds
    assert list(scores["shape"]) == [1, 10] and scores["dtype"] == np.float32


def test_error_lines_drop_the_runtimes_source_locations():
    opencv = RuntimeError("OpenCV(5.1.0) /io/opencv/modules/dnn/src/tflite/tflite_importer.cpp:1829: error: "
                          "(-213:The function/feature is not implemented) Lookup table for RELU in function 'x'")
    assert error_line(opencv) == "Lookup table for RELU in function 'x'"
    openvino = RuntimeError("Exception from src/inference/src/cpp/core.cpp:117:\nUnsupported opset domain\n")
    assert error_line(openvino) == "Unsupported opset domain"
    assert error_line(RuntimeError("")) == "RuntimeError"


@pytest.mark.skipif(importlib.util.find_spec("tflite_micro") is None, reason="needs tflite-micro")
def test_the_smallest_arena_is_the_edge_where_tflite_micro_runs(tmp_path):
    from tflite_micro.python.tflite_micro import runtime

    path = MODELS / "mnist" / "model_int8.tflite"
    sample = np.zeros((1, 28, 28, 1), np.int8)
    arena = smallest_arena(path, sample)
    assert 10_000 < arena < 200_000
    runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=arena).invoke()
    with pytest.raises((RuntimeError, ValueError)):
        interpreter = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=arena - 512)
        interpreter.set_input(sample, 0)
        interpreter.invoke()


@pytest.mark.parametrize("args, fragments", [
    (["--runtime", "coreml"], ("unknown runtime 'coreml'",)),
    (["--limit", "-1"], ("--limit",)),
])
def test_bad_check_requests(args, fragments):
    done = run_subprocess(["check", str(MODELS / "mnist"), *args])
    assert done.returncode in (1, 2)
    if done.returncode == 1:
        assert_one_error_line(done.stderr, *fragments)
    else:
        assert fragments[0] in done.stderr


def test_check_refuses_an_altered_file_and_a_folder_without_manifest(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(MODELS / "mnist", run)
    with open(run / "model_int8_mediapipe.tflite", "ab") as fh:
        fh.write(b"x")
    done = run_subprocess(["check", str(run)])
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "model_int8_mediapipe.tflite", "altered or corrupted")
    done = run_subprocess(["check", str(tmp_path)])
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "no manifest")


@pytest.fixture(scope="session")
def mediapipe_python() -> str | None:
    """A Python with MediaPipe, which brings its own OpenCV build and so lives in an environment of its own:
    $EDGECNN_MEDIAPIPE_PYTHON, or .venv-mediapipe, made here where pip can reach the package index."""
    if os.environ.get(MEDIAPIPE_PYTHON_ENV):
        return os.environ[MEDIAPIPE_PYTHON_ENV]
    python = MEDIAPIPE_VENV / "bin" / "python"
    if not python.is_file():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(MEDIAPIPE_VENV)], check=True, timeout=120)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", MEDIAPIPE_PIN], check=True,
                           timeout=900, capture_output=True)
        except (subprocess.SubprocessError, OSError):
            shutil.rmtree(MEDIAPIPE_VENV, ignore_errors=True)
            return None
    return str(python)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EDGECNN_DATA_DIR"), reason="needs the MNIST files ($EDGECNN_DATA_DIR)")
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_shipped_models_run_alike_in_every_runtime(name, mediapipe_python, monkeypatch):
    """Every shipped file loads and agrees with its format's reference runtime (>= 99.5% top-1) in each runtime, on
    the first 300 test images (the full test sets: docs/portability.md); OpenCV's TFLite importer has no int8
    kernels, so int8 .tflite rows there are listed, not required."""
    if mediapipe_python is None:
        pytest.skip(f"needs {MEDIAPIPE_PIN} in an environment of its own, and pip could not install it")
    monkeypatch.setenv(MEDIAPIPE_PYTHON_ENV, mediapipe_python)
    for module in ("openvino", "tflite_micro"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module} (pip install -e '.[check]')")
    rows = check(MODELS / name, limit=300)
    seen = {(r["artifact"], r["runtime"]) for r in rows}
    manifest = Manifest.load(MODELS / name)
    for entry in manifest.artifacts:
        others = {"openvino", "opencv"} | ({"tflite-micro"} if entry.format == "tflite" else set())
        assert {(entry.file, runtime) for runtime in others | {REFERENCE[entry.format]}} <= seen
    for r in rows:
        if r["runtime"] == "opencv" and r["artifact"] == "model_int8.tflite":
            assert r["status"] == "does not load"  # reported, not required (see the docstring)
            continue
        assert r["status"] == "ok", r
        assert r["agreement"] >= 99.5 and r["n"] == 300, r
        if r["runtime"] == "tflite-micro":
            assert 0 < r["arena_bytes"] < 512 * 1024
            assert r["flash_bytes"] == (MODELS / name / r["artifact"]).stat().st_size
    assert {r["artifact"] for r in rows if r["runtime"] == "mediapipe"} == {
        e["file"] for e in manifest.extras if e["file"].endswith("_mediapipe.tflite")}


def test_the_micro_target_runs_one_image_at_a_time_on_tflite_files():
    from edgecnn.deploy.targets import resolve_target

    target = resolve_target("micro", batch=8, machine="x86_64")
    assert (target.batch, target.threads, target.formats) == (1, 1, ("tflite",))
    assert target.notes == ("batch 8 asked, 1 used: a microcontroller runs one image per call",)
    assert "RAM and ROM are a device's, times are this host's" in target.label


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tflite_micro") is None, reason="needs tflite-micro")
def test_bench_micro_rows_give_ram_and_rom_and_skip_onnx(tmp_path):
    from edgecnn.deploy.bench import PASSED, SKIPPED, bench_paths
    from edgecnn.deploy.targets import resolve_target

    run = tmp_path / "run"
    run.mkdir()
    for name in ("manifest.json", "model_int8.tflite", "model_int8.onnx"):
        shutil.copy(MODELS / "mnist" / name, run / name)
    record = json.loads((run / "manifest.json").read_text())
    record["artifacts"] = [a for a in record["artifacts"] if a["file"] in ("model_int8.tflite", "model_int8.onnx")]
    (run / "manifest.json").write_text(json.dumps(record))
    rows = {r.artifact: r for r in bench_paths([run], resolve_target("micro"), warmup=1, runs=5,
                                               data_dir=tmp_path / "no-data")}
    micro, onnx_row = rows["model_int8.tflite"], rows["model_int8.onnx"]
    assert micro.status == PASSED and micro.device == "TFLite Micro" and micro.p50_ms > 0
    assert micro.rom_kb == pytest.approx((run / "model_int8.tflite").stat().st_size / 1024)
    assert micro.ram_kb == pytest.approx(smallest_arena(run / "model_int8.tflite", np.zeros((1, 28, 28, 1), np.int8))
                                         / 1024)
    assert "RAM" in micro.note and "ROM" in micro.note and micro.peak_rss_mb is None
    assert onnx_row.status == SKIPPED and "onnx does not run on the micro target" in onnx_row.note
