"""Every precision, verification against the float model, and what a failed export leaves behind."""

import io
import json
import shutil

import numpy as np
import onnx
import pytest
from rich.console import Console

from edgecnn.api import export as export_run
from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.bench import bench_paths
from edgecnn.deploy.inspection import inspect_artifact
from edgecnn.deploy.targets import resolve_target
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, sha256_file
from edgecnn.workstation.export import ExportOptions
from edgecnn.workstation.models import load_model


@pytest.fixture
def run_copy(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_every_tflite_precision_is_verified_and_recorded(run_copy):
    events = []
    entries = export_run(run_copy, formats=("tflite",), precisions=("fp32", "fp16", "dynamic", "int8"),
                         on_start=lambda *args: events.append(("start", *args)),
                         on_done=lambda entry: events.append(("done", entry.file)))
    names = [f"model_{p}.tflite" for p in ("fp32", "fp16", "dynamic", "int8")]
    assert events == [e for i, name in enumerate(names) for e in (("start", i, 4, name), ("done", name))]
    size = {e.precision: e.bytes for e in entries}
    assert size["fp32"] > 1.7 * size["fp16"] and size["fp16"] > 1.5 * size["dynamic"]
    assert size["fp32"] >= 2.5 * size["int8"]
    manifest = Manifest.load(run_copy)
    for e in entries:
        recorded = manifest.entry(e.file)
        assert recorded.sha256 == sha256_file(run_copy / e.file)
        assert recorded.verification["n"] == 180 and recorded.verification["agreement"] >= 97.0
        assert recorded.verification["max_abs_diff"] < (1e-6 if e.precision == "fp32" else 0.5)
    int8 = manifest.entry("model_int8.tflite")
    assert int8.input_dtype == "int8" and int8.quantization["input"][0] > 0
    assert int8.quantization["output"] == [pytest.approx(1 / 256), -128]  # softmax output range
    assert manifest.entry("model_fp16.tflite").quantization is None  # float in and out: nothing to record
    assert manifest.entry("model_dynamic.tflite").quantization is None


@pytest.mark.slow
def test_exporting_again_writes_the_same_bytes(run_copy):
    """The same weights and calibration give the same files, though the process traced more functions between."""
    def artifacts():
        export_run(run_copy, formats=("tflite", "onnx"), precisions=("fp32", "int8"))
        return {p.name: sha256_file(p) for p in run_copy.glob("model_*") if p.suffix in (".tflite", ".onnx")}

    first = artifacts()
    assert len(first) == 4 and artifacts() == first
    entries = export_run(run_copy, formats="onnx", precisions="int8")  # one name each, not letters
    assert [(e.file, e.format, e.precision) for e in entries] == [("model_int8.onnx", "onnx", "int8")]
    assert sha256_file(run_copy / "model_int8.onnx") == first["model_int8.onnx"]


def test_float_io_int8_and_onnx_opset(run_copy, digits):
    """--float-io moves quantizing into the graph: the same int8 model, the same answers, float in and out."""
    x = digits.inputs("test")[:200]
    with Classifier(run_copy / "model_int8.tflite") as clf:
        int8_io, step = clf.predict_proba(x), clf.backend.output["quantization"][0]
    export_run(run_copy, formats=("tflite", "onnx"), precisions=("int8",), int8_io=False)
    with Classifier(run_copy / "model_int8.tflite") as clf:
        assert clf.backend.input_dtype == "float32" and clf.backend.output["dtype"] == np.float32
        float_io = clf.predict_proba(x)
    assert np.abs(float_io - int8_io).max() <= step + 1e-6  # a rounding tie may fall the other way, no more
    assert (float_io.argmax(1) == int8_io.argmax(1)).mean() >= 0.99
    notes = {r.artifact: r.note for r in bench_paths([run_copy / "model_int8.tflite", run_copy / "model_int8.onnx",
                                                        run_copy / "model_fp32.tflite"], resolve_target("cpu", 1),
                                                       warmup=1, runs=3)}
    assert notes == {"model_int8.tflite": "float I/O", "model_int8.onnx": "", "model_fp32.tflite": ""}
    assert Manifest.load(run_copy).entry("model_int8.tflite").input_dtype == "float32"
    export_run(run_copy, formats=("onnx",), precisions=("fp32",), opset=17)
    opsets = {o.domain: o.version for o in onnx.load(str(run_copy / "model_fp32.onnx")).opset_import}
    assert opsets[""] == 17


def test_onnx_int8_quantizes_activations_unsigned_by_default_and_stays_faithful(run_copy):
    """U8S8: activations uint8, weights int8 (the layout whose every layer ONNX Runtime fuses)."""
    [entry] = export_run(run_copy, formats=("onnx",), precisions=("int8",))
    graph = onnx.load(str(run_copy / "model_int8.onnx")).graph
    types = {i.name: i.data_type for i in graph.initializer}
    activation_types = {types[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear"}
    stored_types = {types[n.input[0]] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in types}
    assert activation_types == {onnx.TensorProto.UINT8}
    assert onnx.TensorProto.INT8 in stored_types and onnx.TensorProto.UINT8 not in stored_types  # weights int8
    assert entry.verification["agreement"] >= 97.0
    with pytest.raises(EdgecnnError, match="unknown ONNX activation type 'int4'"):
        export_run(run_copy, formats=("onnx",), precisions=("int8",), onnx_activations="int4")


def test_failed_agreement_writes_nothing(run_copy):
    before = {p.name: sha256_file(p) for p in run_copy.iterdir() if p.is_file()}
    # Agreement cannot exceed 100%, so this threshold fails whatever the calibration: the test is of what a
    # failed export leaves on disk (even 5 calibration images reach 100% on this small validation split).
    with pytest.raises(EdgecnnError, match=r"below --min-agreement 100.5: nothing written \(try more --calib-samples"):
        export_run(run_copy, formats=("onnx",), precisions=("int8",), calib_samples=5,
                   min_agreement=100.5, console=Console(quiet=True))
    after = {p.name: sha256_file(p) for p in run_copy.iterdir() if p.is_file()}
    assert after == before and [p.name for p in run_copy.iterdir() if p.is_dir()] == ["checkpoints"]  # no staging


def test_few_calibration_images_warn(run_copy):
    console = Console(record=True, width=200)
    export_run(run_copy, formats=("tflite",), precisions=("int8",), calib_samples=20, console=console)
    assert "warning: int8 calibration on 20 images; 100 or more are recommended" in console.export_text()
    assert Manifest.load(run_copy).dataset["calibration"] == "20 training images, seed 0"


def test_asking_for_more_calibration_images_than_the_training_split_has_says_so(run_copy):
    console = Console(record=True, width=200)
    export_run(run_copy, formats=("tflite",), precisions=("int8",), calib_samples=100_000, console=console)
    train_size = int(Manifest.load(run_copy).dataset["calibration"].split()[0])
    assert 0 < train_size < 100_000
    assert (f"note: --calib-samples 100000, but the training split has {train_size} images: calibrating on all "
            "of them") in console.export_text()


@pytest.mark.parametrize("kwargs, message", [
    ({"formats": ("onnx",), "precisions": ("fp16",)}, "fp16 is a TFLite precision"),
    ({"precisions": ("int4",)}, "unknown precision 'int4'"),
    ({"formats": ("coreml",)}, "unknown format 'coreml'"),
    ({"formats": ()}, r"nothing to export: name at least one format \(tflite, onnx\)"),
    ({"precisions": ()}, r"nothing to export: name at least one precision \(fp32, fp16, dynamic, int8\)"),
])
def test_bad_export_requests(run_copy, kwargs, message):
    with pytest.raises(EdgecnnError, match=message):
        export_run(run_copy, **kwargs)


@pytest.mark.parametrize("field, value, message", [
    ("labels", ["zero", "one"], "the model scores 10 classes but its manifest names 2"),
    ("preprocessing", {"width": 32, "height": 32}, r"the model takes input \(28, 28, 1\) but its manifest says "
                                                   r"\(32, 32, 1\)"),
    ("dataset", {}, "names no dataset .name, image_size, seed.: export calibrates and verifies on the data"),
    ("dataset", {"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
])
def test_a_manifest_that_does_not_fit_the_model_exports_nothing(run_copy, field, value, message):
    record = json.loads((run_copy / "manifest.json").read_text())
    record[field] = {**record[field], **value} if value and isinstance(value, dict) else value
    (run_copy / "manifest.json").write_text(json.dumps(record))
    before = sorted(p.name for p in run_copy.iterdir())
    (run_copy / "model_fp32.tflite").unlink()
    with pytest.raises(EdgecnnError, match=message):
        export_run(run_copy, formats=("tflite",), precisions=("fp32",))
    assert not (run_copy / "model_fp32.tflite").exists()
    assert sorted(p.name for p in run_copy.iterdir()) == [n for n in before if n != "model_fp32.tflite"]


@pytest.mark.parametrize("option, value, message", [
    ("calibration_method", "kl", "unknown calibration method 'kl'"),
    ("onnx_activations", "int4", "unknown ONNX activation type 'int4'"),
    ("tta", "rotate", "unknown test-time augmentation 'rotate'; choose from: none, flip"),
])
def test_bad_export_options_fail_when_made(option, value, message):
    """Before export_run loads the dataset: the options object refuses them."""
    with pytest.raises(EdgecnnError, match=message):
        ExportOptions(**{option: value})


@pytest.mark.slow
def test_flip_tta_artifacts_average_each_image_and_its_mirror(run_copy, digits):
    plain_int8 = (run_copy / "model_int8.tflite").stat().st_size
    console = Console(record=True, width=300)
    entries = export_run(run_copy, tta="flip", console=console)
    assert Manifest.load(run_copy).tta == "flip" and len(entries) == 4
    assert f"warning: {run_copy} was trained without flips (augmentation shift)" in console.export_text()
    x = digits.inputs("test")[:64]
    model = load_model(run_copy / "model.keras")
    expected = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    plain = model.predict(x, verbose=0)
    assert np.abs(plain - expected).max() > 0.01  # the mirror changes these predictions: the check below has teeth
    for name in ("model_fp32.tflite", "model_fp32.onnx"):
        assert np.abs(Classifier(run_copy / name).predict_proba(x) - expected).max() < 1e-5, name
    for name in ("model_int8.tflite", "model_int8.onnx"):
        probs = Classifier(run_copy / name).predict_proba(x)
        assert np.abs(probs - expected).max() < 0.1 and (probs.argmax(1) == expected.argmax(1)).mean() >= 0.95
    # one batch of two views through the same layers: the weights are stored once, the MACs counted twice
    assert abs((run_copy / "model_int8.tflite").stat().st_size - plain_int8) < 0.05 * plain_int8
    for name in ("model_int8.tflite", "model_fp32.onnx"):
        info = inspect_artifact(run_copy / name)
        assert info["macs"] == 2 * 1_924_992 and info["tta"] == "flip"
    keras_row, *rows = bench_paths([run_copy], resolve_target("cpu", 1), warmup=1, runs=3)
    assert keras_row.format == "keras" and keras_row.macs == 2 * 1_924_992
    assert keras_row.note == "reference, image + mirror (--tta flip)"
    assert [r.note for r in rows] == ["image + mirror (--tta flip)"] * 4
    export_run(run_copy, formats=("onnx",), precisions=("int8",))  # no tta given: the run's is kept
    assert Manifest.load(run_copy).tta == "flip"
    assert inspect_artifact(run_copy / "model_int8.onnx")["macs"] == 2 * 1_924_992


def test_changing_tta_needs_every_artifact_exported_again(run_copy):
    before = {p.name: sha256_file(p) for p in run_copy.iterdir() if p.is_file()}
    with pytest.raises(EdgecnnError, match=r"^model_fp32.tflite, model_fp32.onnx, model_int8.onnx use --tta none: "
                                           r"export them with --tta flip too, or keep --tta none$"):
        export_run(run_copy, formats=("tflite",), precisions=("int8",), tta="flip")
    assert {p.name: sha256_file(p) for p in run_copy.iterdir() if p.is_file()} == before


def test_flip_tta_on_a_run_trained_with_flips_gives_no_warning(run_copy):
    manifest = Manifest.load(run_copy)
    manifest.source["training"]["augmentation"] = "flip-shift"
    manifest.artifacts = []
    manifest.save(run_copy)
    console = Console(record=True, width=300)
    export_run(run_copy, formats=("tflite",), precisions=("fp32",), tta="flip", console=console)
    assert "warning" not in console.export_text() and Manifest.load(run_copy).tta == "flip"


def test_export_can_sign_and_a_later_export_removes_the_stale_signature(run_copy, tmp_path):
    from edgecnn.runtime.signing import SIGNATURE_NAME, load_trusted_keys, verify_signed
    from edgecnn.workstation.signing import keygen

    private, public = keygen(tmp_path / "keys" / "owner")
    export_run(run_copy, formats="tflite", precisions="int8", sign_key=private)
    signed = verify_signed(run_copy, load_trusted_keys(public))
    assert set(signed) == {"manifest.json", *(a.file for a in Manifest.load(run_copy).artifacts)}
    console = Console(file=io.StringIO(), width=200)
    export_run(run_copy, formats="tflite", precisions="int8", console=console)
    assert not (run_copy / SIGNATURE_NAME).exists()
    assert f"warning: removed {run_copy / SIGNATURE_NAME}" in console.file.getvalue()
    loose = tmp_path / "loose.key"
    shutil.copy(private, loose)
    loose.chmod(0o640)
    before = sha256_file(run_copy / "manifest.json")
    with pytest.raises(EdgecnnError, match="readable by others"):  # before any work: nothing is exported
        export_run(run_copy, formats="tflite", precisions="int8", sign_key=loose)
    assert sha256_file(run_copy / "manifest.json") == before
