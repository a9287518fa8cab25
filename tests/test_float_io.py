"""edgecnn.float_io: an int8-I/O LiteRT model given float32 input and output inside its graph, and the runtime's use
of it: the same answers as the file's own graph fed codes quantized in numpy."""

import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.float_io import with_float_io
from edgecnn.runtime import Classifier, TFLiteBackend, _invoker, tflite_interpreter_class

SHIPPED = Path(__file__).parent.parent / "models"


def open_interpreter(**source):
    interpreter = tflite_interpreter_class()(num_threads=1, **source)
    interpreter.allocate_tensors()
    return interpreter


def quantized(x: np.ndarray, detail: dict) -> np.ndarray:
    """The reference: x times 1/scale in float32, rounded half to even, plus the zero point, saturated."""
    scale, zero_point = detail["quantization"]
    return np.clip(np.rint(x * np.float32(1 / scale)) + zero_point, -128, 127).astype(np.int8)


def file_graph_probs(interpreter, x: np.ndarray) -> np.ndarray:
    """The file's own graph, one image at a time, fed numpy's codes; its output dequantized."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = out["quantization"]
    rows = []
    for image in x:
        interpreter.set_tensor(inp["index"], quantized(image[None], inp))
        interpreter.invoke()
        rows.append((interpreter.get_tensor(out["index"]).astype(np.float32) - zero_point) * scale)
    return np.concatenate(rows)


@pytest.mark.parametrize("model", ["run", "mnist", "fashion_mnist"])
def test_the_float_graph_answers_as_the_file_does_on_numpy_codes(run_dir, digits, model):
    """On test images, on values beyond the input's range (saturation) and on values half-way between two codes
    (where rounding rules differ), for the default model and the shipped ones (Fashion-MNIST's with its flip)."""
    path = run_dir / "model_int8.tflite" if model == "run" else SHIPPED / model / "model_int8.tflite"
    original = open_interpreter(model_path=str(path))
    rewritten = open_interpreter(model_content=with_float_io(path.read_bytes()))
    for detail in (rewritten.get_input_details()[0], rewritten.get_output_details()[0]):
        assert np.dtype(detail["dtype"]) == np.float32 and detail["quantization"] == (0.0, 0)
    shape = tuple(original.get_input_details()[0]["shape"][1:])
    scale, zero_point = original.get_input_details()[0]["quantization"]
    rng = np.random.default_rng(0)
    halfway = (rng.integers(-140, 140, (4, *shape)) - zero_point + 0.5) * scale
    x = np.concatenate([Classifier(run_dir / "model_int8.tflite").prepare(digits.split("test").images[:4])[0]
                        if model == "run" else rng.random((4, *shape)),
                        rng.uniform(-2, 3, (4, *shape)), halfway]).astype(np.float32)
    assert (quantized(x, original.get_input_details()[0]) == -128).any()  # saturation was exercised
    runner = rewritten.get_signature_runner()  # the signature names the float tensors too
    (name,) = runner.get_input_details()
    got = np.concatenate([next(iter(runner(**{name: image[None]}).values())) for image in x])
    np.testing.assert_array_equal(got, file_graph_probs(original, x))


def test_only_a_model_with_quantized_io_that_parses_is_rewritten(run_dir):
    content = (run_dir / "model_int8.tflite").read_bytes()
    assert with_float_io((run_dir / "model_fp32.tflite").read_bytes()) is None  # nothing to rewrite
    assert with_float_io(content[: len(content) // 2]) is None  # truncated: runs (or fails) as it is
    assert with_float_io(b"not a flatbuffer") is None
    assert len(with_float_io(content)) > len(content)


def test_the_classifier_runs_the_float_graph_and_falls_back_to_opencv(run_dir, digits, monkeypatch):
    """With ai-edge-litert's schema the wrapper quantizes in the graph; without it (tflite-runtime) in OpenCV. Both
    give the same answers on camera images, batches of any size and the model's own codes."""
    images = digits.split("test").images[:9]
    with Classifier(run_dir / "model_int8.tflite", threads=1) as clf:
        assert clf.backend.float_io and clf.backend.input_dtype == np.int8  # the file's tensors, as before
        x = clf.prepare(images)[0]
        in_graph = clf.predict_proba(images)
        codes = quantized(x, clf.backend.input)
        np.testing.assert_array_equal(clf.predict_proba(codes), in_graph)  # through the file's own graph
        np.testing.assert_array_equal(clf.predict_proba(x[:1]), in_graph[:1])  # back to the float graph
    np.testing.assert_array_equal(in_graph, file_graph_probs(open_interpreter(
        model_path=str(run_dir / "model_int8.tflite")), x))
    monkeypatch.setitem(sys.modules, "edgecnn.float_io", None)  # import edgecnn.float_io: ImportError
    with Classifier(run_dir / "model_int8.tflite", threads=1) as clf:
        assert not clf.backend.float_io
        np.testing.assert_array_equal(clf.predict_proba(images), in_graph)
        np.testing.assert_array_equal(clf.predict_proba(codes[:3]), in_graph[:3])
    assert not TFLiteBackend(run_dir / "model_fp32.tflite").float_io  # nothing to quantize


def test_an_interpreter_without_a_native_wrapper_runs_through_its_public_methods(run_dir, digits):
    """The invoker calls LiteRT's native methods where the interpreter has them; an interpreter that does not (a
    future LiteRT, or a stand-in) runs through set_tensor / invoke / get_tensor, with the same answer."""
    interpreter = open_interpreter(model_path=str(run_dir / "model_fp32.tflite"))
    feed, fetch = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    class PublicOnly:  # the public methods, and no _interpreter
        calls = []

        def __getattr__(self, name):
            self.calls.append(name)
            if name.startswith("_"):
                raise AttributeError(name)
            return getattr(interpreter, name)

    x = Classifier(run_dir / "model_fp32.tflite").prepare(digits.split("test").images[:1])[0]
    public = PublicOnly()
    got = _invoker(public, feed, fetch)(x)
    assert public.calls == ["_interpreter", "set_tensor", "invoke", "get_tensor"]
    np.testing.assert_array_equal(got, _invoker(interpreter, feed, fetch)(x))
    interpreter.invoke()  # the native path kept no reference that would fail LiteRT's own safety check


def test_the_hot_path_calls_the_interpreter_straight_only_at_batch_one(run_dir, digits):
    """One float32 image goes straight to the invoke while the graph sits at batch 1 and takes floats; after a batch
    resized it, through run (which resizes back), with the same answers."""
    clf = Classifier(run_dir / "model_int8.tflite", threads=1)
    x = clf.prepare(digits.split("test").images[:5])[0]
    first = clf.predict_proba(x[:1])
    assert clf.backend.run_one != clf.backend.run
    batch = clf.predict_proba(x)
    assert clf.backend.run_one == clf.backend.run  # batch 5 now: a single image must resize first
    np.testing.assert_array_equal(clf.predict_proba(x[:1]), first)
    assert clf.backend.run_one != clf.backend.run
    np.testing.assert_array_equal(batch[:1], first)
    without = TFLiteBackend(run_dir / "model_int8.tflite", threads=1, float_io=False)  # int8 in: quantize first
    assert without.run_one == without.run
    np.testing.assert_array_equal(without.run_one(x[:1]), first)
