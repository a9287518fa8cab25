"""A model nothing vouches for (no manifest, or verify=False) is opened in a throwaway process first (runtime.probe):
one that aborts the runtime's native code is refused in one line instead of killing the caller. Its probabilities
are checked too: a damaged weight can make them NaN."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.deploy.bench import bench_paths
from edgecnn.deploy.targets import resolve_target
from edgecnn.runtime import probe
from edgecnn.runtime.backends import tflite_interpreter_class
from edgecnn.runtime.classifier import Classifier
from tests.conftest import run_subprocess

FASHION = Path(__file__).resolve().parents[1] / "models" / "fashion_mnist"


@pytest.fixture(scope="module")
def zeroed_scale(tmp_path_factory) -> Path:
    """The shipped Fashion-MNIST int8 model with its first ADD's output scale zeroed, and no manifest beside it:
    LiteRT aborts in QuantizeMultiplierSmallerThanOneExp when it allocates tensors (tools/fuzz.py found such copies)."""
    source = FASHION / "model_int8.tflite"
    interpreter = tflite_interpreter_class()(model_path=str(source))
    add = next(op for op in interpreter._get_ops_details() if op["op_name"] == "ADD")
    scale = interpreter.get_tensor_details()[add["outputs"][0]]["quantization_parameters"]["scales"][0]
    data, packed = source.read_bytes(), struct.pack("<f", scale)
    assert data.count(packed) == 1
    copy = tmp_path_factory.mktemp("probe") / "zeroed_scale.tflite"
    copy.write_bytes(data.replace(packed, bytes(4)))
    return copy


def test_the_zeroed_scale_kills_a_process_that_opens_it_unprobed(zeroed_scale):
    code = f"from edgecnn.runtime.classifier import Classifier; Classifier({str(zeroed_scale)!r}, probe=False)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == -6  # SIGABRT: what the probe keeps away from the caller


def test_a_model_that_aborts_the_runtime_is_refused_and_the_caller_lives(zeroed_scale):
    with pytest.raises(IntegrityError, match=r"zeroed_scale.tflite crashed the TFLite interpreter \(SIGABRT\)"):
        Classifier(zeroed_scale)
    with pytest.raises(IntegrityError, match="SIGABRT"):
        Classifier(zeroed_scale, probe=True)


@pytest.mark.parametrize("verb", [["inspect"], ["predict"], ["live", "--no-display", "--source"]])
def test_verbs_refuse_it_in_one_line(zeroed_scale, verb):
    image = zeroed_scale.parent / "blank.png"
    shutil.copy(FASHION / "confusion_matrix.png", image)
    args = [verb[0], str(zeroed_scale), *verb[1:]] + ([str(image)] if verb[0] != "inspect" else [])
    done = run_subprocess(args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {zeroed_scale.name} crashed the TFLite interpreter (SIGABRT) "
                                                "when a test process opened and ran it: a damaged or hostile model, "
                                                "not loaded"]


def test_bench_marks_its_row_failed_and_benches_the_rest(zeroed_scale):
    rows = bench_paths([zeroed_scale, FASHION / "model_int8.tflite"], resolve_target("cpu", 1), warmup=1, runs=3)
    assert [row.status for row in rows] == ["failed", "passed"]
    assert "crashed the TFLite interpreter (SIGABRT)" in rows[0].note


def test_only_unvouched_models_are_probed(monkeypatch, tmp_path):
    probed = []
    monkeypatch.setattr("edgecnn.runtime.classifier.require_survives",
                        lambda path, backend: probed.append((path.name, backend)))
    Classifier(FASHION / "model_int8.tflite")  # its manifest's sha256 vouches for it
    assert probed == []
    Classifier(FASHION / "model_int8.onnx", verify=False)
    lone = tmp_path / "lone.tflite"
    shutil.copy(FASHION / "model_int8.tflite", lone)
    Classifier(lone)
    Classifier(lone, probe=False)
    assert probed == [("model_int8.onnx", "onnx"), ("lone.tflite", "tflite")]


def test_a_python_error_in_the_child_is_left_to_the_caller(tmp_path):
    """A file the runtime refuses cleanly is not the probe's to refuse: the caller gets the usual message."""
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes((FASHION / "model_int8.tflite").read_bytes()[:5000])
    probe.require_survives(truncated, "tflite")  # the child exits 1: no refusal
    with pytest.raises(IntegrityError, match="is not a loadable TFLite model"):
        Classifier(truncated)


def test_a_child_that_hangs_is_refused(monkeypatch, tmp_path):
    sleeper = tmp_path / "python"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    monkeypatch.setattr(probe.sys, "executable", str(sleeper))
    monkeypatch.setattr(probe, "TIMEOUT_S", 0.5)
    with pytest.raises(IntegrityError, match=r"lone.onnx did not open and run within 0.5 s"):
        probe.require_survives(tmp_path / "lone.onnx", "onnx")


def test_nan_probabilities_of_an_unvouched_model_are_refused(tmp_path):
    model = onnx.load(FASHION / "model_fp32.onnx")
    weight = next(w for w in model.graph.initializer if w.data_type == onnx.TensorProto.FLOAT and len(w.dims) == 4)
    weight.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(weight), np.nan), weight.name))
    onnx.save(model, tmp_path / "nan_weights.onnx")
    x = np.zeros((1, 28, 28, 1), np.float32)
    with Classifier(tmp_path / "nan_weights.onnx") as clf, pytest.raises(
            EdgecnnError, match="nan_weights.onnx gave NaN or infinite probabilities: nothing vouches for the file"):
        clf.predict_proba(x)
    with Classifier(FASHION / "model_fp32.onnx") as clf:  # vouched for: the same call gives finite probabilities
        assert np.isfinite(clf.predict_proba(x)).all()
