"""The pretrained models in models/: intact, runnable without training, and as accurate as their manifests say."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgecnn.deploy.bench import accuracy_percent, load_test_split
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, sha256_file

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = {"mnist": 99.0, "fashion_mnist": 90.0}  # int8 TFLite test accuracy they must keep (percent)
FILES = {"model.keras", "model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx", "model_int8.onnx"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_models_are_intact_and_recorded(name):
    folder = MODELS / name
    manifest = Manifest.load(folder)
    assert {a.file for a in manifest.artifacts} | {manifest.source["file"]} == FILES
    for entry in manifest.artifacts:
        assert sha256_file(folder / entry.file) == entry.sha256
    assert {e["file"] for e in manifest.extras} == {"model_fp32_mediapipe.tflite", "model_int8_mediapipe.tflite"}
    for extra in manifest.extras:
        assert sha256_file(folder / extra["file"]) == extra["sha256"]
    assert manifest.source["sha256"] == sha256_file(folder / "model.keras")
    assert manifest.source["command"].startswith("edgecnn train ")
    assert manifest.command.startswith(f"edgecnn export models/{name}")
    assert (folder / "confusion_matrix.png").is_file()
    assert json.loads((folder / "metrics.json").read_text())["accuracy"] == manifest.source["test_accuracy"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_int8_models_classify_without_training(name):
    with Classifier(MODELS / name / "model_int8.tflite") as clf:
        frame = np.zeros((60, 80, 3), np.uint8)
        top = clf.predict(frame, top_k=10)
        assert sorted(label for label, _ in top) == sorted(clf.labels) and len(clf.labels) == 10
        assert sum(score for _, score in top) == pytest.approx(1.0, abs=0.02)


@pytest.mark.skipif(not os.environ.get("EDGECNN_DATA_DIR"), reason="needs the MNIST files ($EDGECNN_DATA_DIR)")
@pytest.mark.parametrize("name", [n if n == "mnist" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(SHIPPED)])
def test_shipped_int8_models_keep_their_accuracy(name):
    manifest = Manifest.load(MODELS / name)
    images, labels = load_test_split(manifest.dataset)
    for artifact, max_drop in (("model_int8.tflite", 0.3), ("model_int8.onnx", 0.5)):  # points below float
        with Classifier(MODELS / name / artifact) as clf:
            accuracy = accuracy_percent(labels, clf.predict_proba(images))
        assert accuracy >= SHIPPED[name], artifact
        assert manifest.source["test_accuracy"] - accuracy <= max_drop, artifact


@pytest.mark.parametrize("name, tta", [("fashion_mnist", "flip"), ("mnist", "none")])
def test_shipped_models_average_mirrors_where_their_manifest_says(name, tta):
    """With --tta flip a model gives an image and its mirror the same probabilities; without, it does not."""
    assert Manifest.load(MODELS / name).tta == tta
    x = np.random.default_rng(0).random((8, 28, 28, 1), np.float32)
    for artifact in ("model_int8.tflite", "model_fp32.onnx"):
        with Classifier(MODELS / name / artifact) as clf:
            gap = np.abs(clf.predict_proba(x) - clf.predict_proba(x[:, :, ::-1])).max()
        assert (gap < 1e-5) if tta == "flip" else (gap > 0.01), (artifact, gap)


def test_the_mirror_averaging_model_has_consistent_shapes_and_common_ops():
    """The Fashion-MNIST files average each image and its mirror: the .tflite files are exported at batch 1, where
    the converter stores every tensor at the size it holds, and the mirror is a slice with step -1 (STRIDED_SLICE,
    ONNX Slice), which runtimes without REVERSE_V2 or ReverseSequence have."""
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.deploy.inspection import tflite_operators
    from edgecnn.runtime.manifest import Manifest

    folder = MODELS / "fashion_mnist"
    manifest = Manifest.load(folder)
    for entry in manifest.artifacts:
        path = folder / entry.file
        if entry.format == "onnx":
            ops = {node.op_type for node in onnx.load(str(path)).graph.node}
            assert "Slice" in ops and not ops & {"ReverseSequence", "Shape", "Gather"} and entry.batch is None
            continue
        assert entry.batch == 1
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        shapes = {d["index"]: d["shape"] for d in interpreter.get_tensor_details()}
        ops = tflite_operators(path.read_bytes())
        assert {op["op_name"] for op in ops} >= {"STRIDED_SLICE", "CONCATENATION"}
        assert "REVERSE_V2" not in {op["op_name"] for op in ops}
        for op in ops:
            sizes_in = [int(np.prod(shapes[t])) for t in op["inputs"] if t >= 0]
            size_out = int(np.prod(shapes[op["outputs"][0]]))
            if op["op_name"] == "CONCATENATION":
                assert sum(sizes_in) == size_out
            if op["op_name"] == "RESHAPE":
                assert sizes_in[0] == size_out


def test_a_batch_to_a_batch_one_file_runs_image_by_image():
    from edgecnn.runtime import Classifier

    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    with Classifier(MODELS / "fashion_mnist" / "model_int8.tflite", threads=1) as clf:
        assert clf.backend.fixed_batch == 1
        batch = clf.predict_proba(images)
        singles = np.concatenate([clf.predict_proba(image) for image in images])
    assert batch.shape == (5, 10)
    np.testing.assert_array_equal(batch, singles)
