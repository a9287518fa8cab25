import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError, ImageReadError, InputError, IntegrityError
from edgecnn.deploy.inspection import inspect_artifact
from edgecnn.runtime.backends import GPU_PROVIDERS, Quantizer, TFLiteBackend
from edgecnn.runtime.classifier import Classifier
from edgecnn.workstation.models import load_model
from tools.make_video import to_frame

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keras_probs(run_dir, digits):
    return load_model(run_dir / "model.keras").predict(digits.inputs("test"), verbose=0)


@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_fp32.onnx"])
def test_fp32_artifacts_reproduce_keras(run_dir, digits, keras_probs, name):
    with Classifier(run_dir / name) as clf:
        probs = clf.predict_proba(digits.split("test").images)  # raw uint8 images, manifest preprocessing
    np.testing.assert_allclose(probs, keras_probs, atol=1e-4)


@pytest.mark.parametrize("name", ["model_int8.tflite", "model_int8.onnx"])
def test_int8_artifacts_agree_with_keras(run_dir, digits, keras_probs, name):
    with Classifier(run_dir / name) as clf:
        probs = clf.predict_proba(digits.split("test").images)
    assert probs.dtype == np.float32 and probs.shape == keras_probs.shape
    assert np.mean(probs.argmax(1) == keras_probs.argmax(1)) >= 0.97
    assert np.abs(probs - keras_probs).max() < 0.5


def test_int8_tflite_quantizes_its_input(run_dir):
    clf = Classifier(run_dir / "model_int8.tflite")
    assert clf.backend.input_dtype == np.int8
    scale, zero_point = clf.backend.input["quantization"]
    assert scale > 0 and -128 <= zero_point <= 127


def test_an_int8_input_model_takes_its_own_codes_as_they_are(run_dir, digits):
    """Codes an integer-only pipeline made (the tensor's scale and zero point) give what the floats they stand for
    give: one image, a batch, a non-contiguous view; a float-input model and a bad shape say what they expect."""
    x = digits.inputs("test")[:8]
    with Classifier(run_dir / "model_int8.tflite") as clf:
        scale, zero_point = clf.backend.input["quantization"]
        codes = np.clip(np.rint(x / scale + zero_point), -128, 127).astype(np.int8)
        np.testing.assert_array_equal(clf.predict_proba(codes), clf.predict_proba(x))
        np.testing.assert_array_equal(clf.predict_proba(codes[:1]), clf.predict_proba(x[:1]))  # the hot path
        np.testing.assert_array_equal(clf.predict_proba(codes[3]), clf.predict_proba(x[3:4]))
        np.testing.assert_array_equal(clf.predict_proba(codes[::2]), clf.predict_proba(x[::2]))
        assert clf.predict(codes[0], top_k=2) == clf.predict(x[0], top_k=2)
        for bad in (codes[:0], codes[:, :20], codes[0, :, :, 0]):
            with pytest.raises(InputError, match=r"expected int8 codes shaped \(28, 28, 1\)"):
                clf.predict_proba(bad)
    with Classifier(run_dir / "model_int8.onnx") as clf, pytest.raises(InputError, match="takes float32 input"):
        clf.predict_proba(codes)


@pytest.mark.parametrize("dtype, zero_point", [(np.int8, -3), (np.uint8, 131)])
def test_quantizer_rounds_and_saturates(dtype, zero_point):

    scale = 0.05
    quantizer = Quantizer(scale, zero_point, np.dtype(dtype))
    x = np.random.default_rng(0).normal(0, 4, (6, 28, 28, 1)).astype(np.float32)  # ~1% beyond the 8-bit range
    out = quantizer.quantize(x)
    assert out.dtype == dtype and out.shape == x.shape
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(x.astype(np.float64) / scale + zero_point), info.min, info.max)
    assert (expected == info.min).any() and (expected == info.max).any()  # saturation was exercised
    np.testing.assert_array_equal(out, expected.astype(dtype))
    np.testing.assert_allclose(quantizer.dequantize(out), (expected - zero_point) * scale, atol=1e-6)


def test_predict_returns_sorted_top_k_labels(run_dir, digits):
    image, label = digits.split("test").images[0], digits.split("test").labels[0]
    clf = Classifier(run_dir / "model_int8.tflite")
    top = clf.predict(to_frame(image), top_k=3)  # an OpenCV BGR frame of another size
    assert len(top) == 3 and top[0][0] == str(label)
    assert top[0][1] >= top[1][1] >= top[2][1]
    batch = clf.predict(digits.split("test").images[:4], top_k=1)
    assert len(batch) == 4 and all(len(t) == 1 for t in batch)


def test_image_files_are_read_for_the_app(run_dir, digits, tmp_path):
    images = digits.split("test").images[:3]
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, image in zip(paths, images, strict=True):
        cv2.imwrite(str(path), to_frame(image))
    clf = Classifier(run_dir / "model_int8.tflite")
    frames = [cv2.imread(str(p)) for p in paths]
    assert clf.predict(str(paths[0])) == clf.predict(frames[0])  # a str, one image: one list of pairs
    assert clf.predict(paths[1], top_k=1) == clf.predict(frames[1], top_k=1)  # a Path
    np.testing.assert_array_equal(clf.predict_proba([str(paths[0]), frames[1], paths[2]]),
                                  clf.predict_proba(frames))  # a list: a batch, paths and frames mixed
    (tmp_path / "notes.txt").write_text("not an image")
    for bad, reason in ((tmp_path / "notes.txt", "not an image OpenCV can decode"),
                        (tmp_path / "missing.png", "No such file or directory")):
        with pytest.raises(ImageReadError, match=f"cannot read image {bad}: {reason}"):
            clf.predict([paths[0], bad])


@pytest.mark.parametrize("name", ["model_int8.tflite", "model_fp32.onnx"])
def test_batch_and_single_inference_agree(run_dir, digits, name):
    clf = Classifier(run_dir / name, threads=1)
    images = digits.split("test").images[:7]
    batch = clf.predict_proba(images)
    singles = np.concatenate([clf.predict_proba(img) for img in images])
    np.testing.assert_allclose(batch, singles, atol=1e-6)


@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite"])
def test_results_do_not_alias_the_interpreter_buffers(run_dir, digits, name):
    """The interpreter reuses its tensors from call to call: a later call must not change an earlier answer, and
    the interpreter must get the codes Quantizer.quantize gives float input."""
    backend = TFLiteBackend(run_dir / name, threads=1)
    pre = Classifier(run_dir / name).preprocessing
    first, other = (pre(image) for image in digits.split("test").images[:2])
    first_probs = backend.run(first)
    kept = first_probs.copy()
    other_probs = backend.run(other)
    assert not np.allclose(other_probs, kept)  # two different digits, two different answers
    np.testing.assert_array_equal(first_probs, kept)
    backend.run(first)
    quantizer = backend.input_quantizer
    np.testing.assert_array_equal(backend.interpreter.get_tensor(backend.input["index"]),
                                  quantizer.quantize(first) if quantizer else first)


@pytest.mark.parametrize("model", ["run", "mnist", "fashion_mnist"])
def test_int8_pixels_go_through_one_table_as_floats_would(run_dir, digits, model):
    """For an int8-input model, uint8 pixels become codes through a 256-entry table: the codes that normalizing
    and then quantizing give, and the same answers."""
    folder = run_dir if model == "run" else ROOT / "models" / model
    clf = Classifier(folder / "model_int8.tflite", threads=1)
    images = digits.split("test").images[:50]
    codes, _ = clf.prepare(images)
    floats = clf.preprocessing(images)
    assert codes.dtype == np.int8 and codes.shape == floats.shape
    expected = clf.backend.input_quantizer.quantize(floats)
    assert np.abs(codes.astype(int) - expected).max() <= 1  # a half-way value may round either way
    assert (codes == expected).mean() > 0.99
    np.testing.assert_array_equal(clf.predict_proba(images).argmax(1), clf.predict_proba(floats).argmax(1))


@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx"])
def test_one_preprocessed_image_gets_the_same_checks_and_answer(run_dir, digits, name):
    """A (1, H, W, C) float32 array skips the general input checks (the hot path): same answer, same refusals."""
    clf = Classifier(run_dir / name, threads=1)
    x = clf.preprocessing(digits.split("test").images[:1])
    assert x.shape == (1, *clf.input_shape) and x.dtype == np.float32
    general = clf.predict_proba(x[0].astype(np.float64))  # another dtype and rank: the general path
    np.testing.assert_array_equal(clf.predict_proba(x), general)
    np.testing.assert_array_equal(clf.predict_proba(np.asfortranarray(x)), general)  # not C-contiguous
    for bad in (np.nan, np.inf, -np.inf):
        damaged = x.copy()
        damaged[0, 3, 4, 0] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            clf.predict_proba(damaged)
        clf.predict_proba(np.repeat(x, 3, axis=0))  # a batch: the next image finds the runtime sized for three
        with pytest.raises(InputError, match="NaN or infinite"):
            clf.predict_proba(damaged)
        np.testing.assert_array_equal(clf.predict_proba(x), general)
    with pytest.raises(InputError, match="NaN or infinite"):
        clf.predict_proba(np.full(x.shape, 1e39))  # finite in float64, inf once cast to the model's float32
    with pytest.raises(InputError, match="absurd"):  # finite, but float32 overflows inside the model: NaN out
        clf.predict_proba(np.full(x.shape, np.finfo(np.float32).max, np.float32))
    assert np.isfinite(clf.predict_proba(x * np.float32(1e15))).all()  # large, and still an answer


def test_altered_model_is_refused_before_inference(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    path = copy / "model_int8.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        Classifier(path)


def test_model_without_manifest_needs_preprocessed_input(run_dir, tmp_path, digits):
    alone = tmp_path / "alone.onnx"
    shutil.copy(run_dir / "model_fp32.onnx", alone)
    clf = Classifier(alone)
    assert clf.labels is None
    with pytest.raises(InputError, match="no manifest"):
        clf.predict(digits.split("test").images[0])
    top = clf.predict(digits.inputs("test")[0])
    assert top[0][0] == str(digits.split("test").labels[0])  # index labels


def test_bad_models_and_options(run_dir, tmp_path):
    with pytest.raises(EdgecnnError, match="model not found"):
        Classifier(tmp_path / "none.tflite")
    with pytest.raises(EdgecnnError, match="unknown backend 'tensorrt'"):
        Classifier(run_dir / "model_int8.tflite", backend="tensorrt")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(EdgecnnError, match=r"^cannot tell the backend of model.bin: expected .tflite or .onnx$"):
        Classifier(tmp_path / "model.bin")
    with pytest.raises(EdgecnnError, match=r"expected .tflite or .onnx \(export makes them from a .keras model"):
        Classifier(run_dir / "model.keras")
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(IntegrityError, match="not a loadable TFLite model"):
        Classifier(tmp_path / "junk.tflite")
    with pytest.raises(EdgecnnError, match="no CUDAExecutionProvider"):
        Classifier(run_dir / "model_fp32.onnx", providers=["CUDAExecutionProvider"])
    with pytest.raises(EdgecnnError, match="no CUDAExecutionProvider here"):  # one name, not 21 one-letter ones
        Classifier(run_dir / "model_fp32.onnx", providers="CUDAExecutionProvider")
    assert Classifier(run_dir / "model_fp32.onnx", providers="CPUExecutionProvider").backend.providers == [
        "CPUExecutionProvider"]
    with pytest.raises(EdgecnnError, match=f"^{run_dir} is a folder: pass one of its models "
                                           r"\(model_fp32.onnx, .*model_int8.tflite"):
        Classifier(run_dir)
    for top_k in (0, 1.5, "2", True):
        with pytest.raises(InputError, match=f"top_k must be a whole number of at least 1, got {top_k!r}"):
            Classifier(run_dir / "model_fp32.onnx").predict(np.zeros((8, 8), np.uint8), top_k=top_k)
    for name in ("model_int8.tflite", "model_int8.onnx"):  # LiteRT called 0 a bad model; ORT took -3 silently
        for threads in (0, -3, 1.5, "2", True):  # True used to pass as 1 thread
            with pytest.raises(EdgecnnError, match=f"threads must be a whole number of at least 1.*got {threads!r}"):
                Classifier(run_dir / name, threads=threads)
    image = np.zeros((8, 8), np.uint8)
    numpy_int = Classifier(run_dir / "model_int8.tflite", threads=np.int64(2))  # numpy's integers are whole numbers
    np.testing.assert_array_equal(numpy_int.predict_proba(image),
                                  Classifier(run_dir / "model_int8.tflite", threads=1).predict_proba(image))


@pytest.mark.parametrize("name", ["model_int8.tflite", "model_fp32.onnx"])
@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(labels=r["labels"][:9]), "scores 10 classes but its manifest names 9"),
    (lambda r: r["preprocessing"].update(height=32, width=32),
     r"takes input \(28, 28, 1\) but its manifest says \(32, 32, 1\)"),
])
def test_a_manifest_that_does_not_fit_its_model_is_refused(run_dir, tmp_path, name, change, message):
    """Nine labels for ten scores used to load, then fail in predict with an IndexError (or name the wrong class);
    inspect said "manifest: sha256 verified"."""
    shutil.copy(run_dir / name, tmp_path / name)
    record = json.loads((run_dir / "manifest.json").read_text())
    change(record)
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    for opens in (Classifier, inspect_artifact):
        with pytest.raises(IntegrityError, match=f"^{name} {message}$"):
            opens(tmp_path / name)


# what ONNX Runtime 1.31's CUDA provider raised on an H100 machine run with CUDA_VISIBLE_DEVICES="" (abridged)
CUDA_START_FAILURE = (
    "/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:154 std::conditional_t<THRW, void, "
    "onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, const char*, const char*, SUCCTYPE, const char*, "
    "const char*, int) [with ERRTYPE = cudaError; bool THRW = true; SUCCTYPE = cudaError] CUDA failure 100: no "
    "CUDA-capable device is detected ; GPU=-1 ; hostname=vm ; file=cuda_execution_provider.cc ; line=355 ; "
    "expr=cudaSetDevice(info_.device_id);"
)


def test_a_gpu_provider_that_fails_to_start_is_named_not_blamed_on_the_model(run_dir, tmp_path, monkeypatch):
    import onnxruntime as ort

    real_session = ort.InferenceSession

    def session(path, options=None, providers=None):
        if "CUDAExecutionProvider" in providers:
            raise RuntimeError(CUDA_START_FAILURE)
        return real_session(path, options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "preload_dlls", lambda: None, raising=False)
    monkeypatch.setattr(ort, "InferenceSession", session)
    gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(EdgecnnError) as failed:
        Classifier(run_dir / "model_fp32.onnx", providers=gpu)
    assert not isinstance(failed.value, IntegrityError)
    assert str(failed.value) == ("CUDAExecutionProvider could not start: "
                                 "CUDA failure 100: no CUDA-capable device is detected")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x01" * 32)
    with pytest.raises(IntegrityError, match="not a loadable ONNX model"):  # a bad file stays the file's fault
        Classifier(junk, providers=gpu)


@pytest.mark.parametrize("asked, started, folds", [
    (["CPUExecutionProvider"], ["CPUExecutionProvider"], [False]),  # the CPU's int8 kernels come from QDQ fusion
    (["CUDAExecutionProvider", "CPUExecutionProvider"], None, [True]),
    (["TensorrtExecutionProvider", "CUDAExecutionProvider"], None, [False]),  # TensorRT reads the QDQ nodes
    (["TensorrtExecutionProvider", "CUDAExecutionProvider"], ["CUDAExecutionProvider"], [False, True]),
    (["TensorrtExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], [False]),  # no CUDA to fold for
])
def test_int8_weights_fold_into_constants_on_cuda_only(run_dir, monkeypatch, asked, started, folds):
    import onnxruntime as ort

    real_session, opened = ort.InferenceSession, []

    class Session:  # the real session on the CPU, reporting the providers a GPU machine would start
        def __init__(self, path, options=None, providers=None):
            self._real = real_session(path, options, providers=["CPUExecutionProvider"])
            try:
                opened.append(options.get_session_config_entry("session.disable_quant_qdq") == "1")
            except RuntimeError:  # no such entry
                opened.append(False)
            self._providers = started or providers

        def get_providers(self):
            return self._providers

        def __getattr__(self, name):
            return getattr(self._real, name)

    monkeypatch.setattr(ort, "get_available_providers", lambda: [*GPU_PROVIDERS, "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "preload_dlls", lambda: None, raising=False)
    monkeypatch.setattr(ort, "InferenceSession", Session)
    with Classifier(run_dir / "model_int8.onnx", providers=asked, probe=False) as clf:
        assert opened == folds and clf.backend.providers == (started or asked)
        assert clf.predict_proba(np.zeros((1, *clf.input_shape), np.float32)).shape == (1, 10)


@pytest.mark.parametrize("name, token", [("model_int8.tflite", b"serving_default_image"),
                                         ("model_int8.onnx", b"image")])
def test_tensor_names_that_are_not_utf8_are_refused_in_one_line(run_dir, tmp_path, name, token):
    """Found by tools/fuzz.py: a flipped byte in a tensor name made the runtime raise UnicodeDecodeError."""
    data = (run_dir / name).read_bytes()
    assert token in data
    (tmp_path / name).write_bytes(data.replace(token, b"\xff" + token[1:]))  # no manifest: nothing to check against
    with pytest.raises(IntegrityError, match="not a loadable .* model: 'utf-8' codec can't decode"):
        Classifier(tmp_path / name)


def test_inspect_refuses_an_inner_tensor_name_that_is_not_utf8(run_dir, tmp_path):
    from edgecnn.deploy.inspection import inspect_artifact

    data = (run_dir / "model_int8.tflite").read_bytes()
    inner = next(n for n in (b"block1_conv", b"stem_conv", b"conv1") if n in data)
    (tmp_path / "model.tflite").write_bytes(data.replace(inner, b"\xff" + inner[1:], 1))
    Classifier(tmp_path / "model.tflite")  # only the input and output names are read to run it
    with pytest.raises(IntegrityError, match="not a readable TFLite model"):
        inspect_artifact(tmp_path / "model.tflite")


def test_close_releases_the_backend(run_dir):
    with Classifier(run_dir / "model_fp32.tflite") as clf:
        assert clf.backend is not None
        preprocessed = np.zeros((1, *clf.input_shape), np.float32)  # the hot path's input
    assert clf.backend is None
    for x in (np.zeros((8, 8), np.uint8), preprocessed):
        with pytest.raises(EdgecnnError, match="is closed"):
            clf.predict_proba(x)


def test_runtime_imports_no_tensorflow(run_dir):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from edgecnn.runtime.classifier import Classifier
        for name in ("model_int8.tflite", "model_int8.onnx"):
            Classifier({str(run_dir)!r} + "/" + name).predict(np.zeros((8, 8), np.uint8))
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras", "sklearn", "typer"}})
        print(",".join(heavy) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("name", ["model_int8.tflite", "model_fp32.tflite", "model_int8.onnx"])
def test_a_grey_image_at_the_input_size_takes_the_lookup_alone_with_the_same_answer(run_dir, digits, tmp_path,
                                                                                   name, invert):
    """One uint8 image already at the model's size skips resizing and colour conversion: the answer is the one the
    general path (a list of images) gives, an inverted model's included."""
    shutil.copy(run_dir / name, tmp_path / name)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["preprocessing"]["invert"] = invert
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    clf = Classifier(tmp_path / name, threads=1)
    images = [cv2.resize(image, (28, 28), interpolation=cv2.INTER_AREA) for image in digits.split("test").images[:5]]
    for image in images:
        np.testing.assert_array_equal(clf.predict_proba(image), clf.predict_proba([image]))
        np.testing.assert_array_equal(clf.predict_proba(image[..., None]), clf.predict_proba([image]))
    assert not np.array_equal(clf.predict_proba(images[0]), clf.predict_proba(255 - images[0]))
