"""Does an artifact run in the runtimes a user already has? Each one that is installed loads the file through its
own public API and classifies the same images::

    rows = check_run("models/mnist", limit=1000)
    rows[0]   # {'artifact': 'model_fp32.tflite', 'runtime': 'litert', 'status': 'ok', 'accuracy': 99.4, ...}

Runtimes: LiteRT and ONNX Runtime (the references: LiteRT for ``.tflite``, ONNX Runtime for ``.onnx``), OpenVINO
and OpenCV DNN (both formats), TFLite Micro (``.tflite``; with the smallest tensor arena that runs the model, found
by bisection, and the flash the model takes) and MediaPipe Tasks' ``ImageClassifier`` (the ``--mediapipe`` files).
MediaPipe pulls in a second OpenCV build, so it runs in its own Python: ``$EDGECNN_MEDIAPIPE_PYTHON`` (or this one,
where ``mediapipe`` imports here).

Per row: ``agreement``, top-1 agreement with the format's reference runtime on the same file; ``float_agreement``,
with the run's fp32 file of the format in its reference runtime; ``accuracy`` against the labels.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.common.native_logs import native_output_muted
from edgecnn.runtime.manifest import Manifest, sha256_file
from edgecnn.runtime.preprocess import Preprocessing, resized

RUNTIMES = ("litert", "onnxruntime", "openvino", "opencv", "tflite-micro", "mediapipe")
REFERENCE = {"tflite": "litert", "onnx": "onnxruntime", "mediapipe": "litert"}
RUNS = {  # which kinds of file each runtime is asked to run
    "litert": ("tflite", "mediapipe"), "onnxruntime": ("onnx",), "openvino": ("tflite", "onnx"),
    "opencv": ("tflite", "onnx"), "tflite-micro": ("tflite",), "mediapipe": ("mediapipe",),
}
MODULES = {"litert": "ai_edge_litert", "onnxruntime": "onnxruntime", "openvino": "openvino", "opencv": "cv2",
           "tflite-micro": "tflite_micro", "mediapipe": "mediapipe"}
PACKAGES = {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime", "openvino": "openvino",
            "opencv": "opencv-python", "tflite-micro": "tflite-micro", "mediapipe": "mediapipe"}
MEDIAPIPE_PYTHON_ENV = "EDGECNN_MEDIAPIPE_PYTHON"
CHECK_LIMIT = 1000  # test images per artifact and runtime (0: the whole split): TFLite Micro's kernels are slow
ARENA_MIN, ARENA_MAX = 1024, 256 * 2**20
ARENA_STEP = 256  # bytes: the bisection stops within this of the smallest arena that runs
OK, LOAD_FAILED, RUN_FAILED, MISSING = "ok", "does not load", "fails to run", "not installed"


def error_line(exc: BaseException) -> str:
    """A runtime's error in one line, without OpenCV's "OpenCV(5.1.0) /path/file.cpp:123: error: (-215:...)"
    prefix or OpenVINO's "Exception from src/...cpp:117:" header line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not re.fullmatch(r"Exception from \S+:\d+:", line)] or [type(exc).__name__]
    return re.sub(r"^OpenCV\([^)]*\) \S+:\d+: error: \([^)]*\) ", "", lines[0])


def installed(runtime: str) -> bool:
    if runtime == "mediapipe" and os.environ.get(MEDIAPIPE_PYTHON_ENV):
        return True
    return importlib.util.find_spec(MODULES[runtime]) is not None


def _litert(path: Path) -> Callable:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    feed, fetch = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def run(x):
        interpreter.set_tensor(feed, x)
        interpreter.invoke()
        return interpreter.get_tensor(fetch)
    return run


def _onnxruntime(path: Path) -> Callable:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _openvino(path: Path) -> Callable:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU")
    request, output = compiled.create_infer_request(), compiled.output(0)
    return lambda x: request.infer({0: x})[output].copy()


def _opencv(path: Path) -> Callable:
    net = cv2.dnn.readNet(str(path))
    nchw = path.suffix == ".tflite"  # OpenCV's TFLite importer lays tensors out as NCHW; its ONNX one keeps NHWC

    def run(x):
        net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if nchw else x)
        return net.forward().copy()
    return run


def _tflite_micro(path: Path, arena: int) -> Callable:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=arena)

    def run(x):
        interpreter.set_input(x, 0)
        interpreter.invoke()
        return interpreter.get_output(0).copy()
    return run


def smallest_arena(path: Path, sample: np.ndarray) -> int:
    """The smallest TFLite Micro tensor arena (bytes, to ARENA_STEP) in which the model runs ``sample``. The
    interpreter reports the first arena too small when it allocates or when it runs; a model that fails in the
    largest arena raises that failure."""
    def runs(arena: int) -> bool:
        try:
            _tflite_micro(path, arena)(sample)
            return True
        except (RuntimeError, ValueError):
            return False

    _tflite_micro(path, ARENA_MAX)(sample)  # a model TFLite Micro cannot run at all fails here, with its reason
    low, high = ARENA_MIN, ARENA_MAX
    while high - low > ARENA_STEP:
        middle = (low + high) // 2
        low, high = (low, middle) if runs(middle) else (middle, high)
    return high


_MEDIAPIPE_SCRIPT = """
import sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision

model, images, out = sys.argv[1:4]
pixels = np.load(images)
options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=-1)
with vision.ImageClassifier.create_from_options(options) as classifier:
    scores = np.zeros((len(pixels), int(sys.argv[4])), np.float32)
    for i, image in enumerate(pixels):
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        for category in result.classifications[0].categories:
            scores[i, category.index] = category.score
np.save(out, scores)
"""


def mediapipe_scores(path: Path, rgb: np.ndarray, classes: int, timeout_s: float = 600) -> np.ndarray:
    """MediaPipe ImageClassifier's scores for RGB uint8 images, from its own Python process."""
    python = os.environ.get(MEDIAPIPE_PYTHON_ENV) or sys.executable
    with tempfile.TemporaryDirectory() as work:
        images, out = Path(work) / "images.npy", Path(work) / "scores.npy"
        np.save(images, rgb)
        done = subprocess.run([python, "-c", _MEDIAPIPE_SCRIPT, str(path), str(images), str(out), str(classes)],
                              capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not out.is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise RuntimeError(lines[-1] if lines else f"MediaPipe exited with status {done.returncode}")
        return np.load(out)


def rgb_pixels(images, pre: Preprocessing) -> np.ndarray:
    """Raw images as the RGB uint8 pixels a MediaPipe file takes, at the model's size (not inverted: its graph
    inverts, where the run does)."""
    out = []
    for img in images:
        img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
        rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB)
        out.append(resized(rgb, pre.height, pre.width))
    return np.stack(out)


def _runner(runtime: str, path: Path) -> Callable:
    opener = {"litert": _litert, "onnxruntime": _onnxruntime, "openvino": _openvino, "opencv": _opencv}[runtime]
    return opener(path)


def native_inputs(path: Path, kind: str, floats: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """What the file takes: a MediaPipe file the RGB pixels (uint8, or float32 0-255), the others the preprocessed
    batch ``floats``, quantized where the ``.tflite`` input is int8."""
    if kind == "mediapipe":
        return rgb.astype(_litert_input(path)["dtype"])
    if kind == "tflite":
        detail = _litert_input(path)
        scale, zero_point = detail["quantization"]
        if scale and np.dtype(detail["dtype"]) in (np.int8, np.uint8):
            info = np.iinfo(detail["dtype"])
            return np.clip(np.rint(floats / scale + zero_point), info.min, info.max).astype(detail["dtype"])
    return floats


def _litert_input(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_input_details()[0]


def check_artifact(path: Path, kind: str, inputs: np.ndarray, rgb: np.ndarray, labels: np.ndarray, classes: int,
                   runtimes, float_top1: np.ndarray | None, on_start: Callable | None = None) -> list[dict]:
    """One row per runtime in ``runtimes`` that runs ``kind`` files; the reference runtime's row first."""
    order = [REFERENCE[kind]] + [r for r in runtimes if r != REFERENCE[kind]]
    rows, reference = [], None
    for runtime in order:
        if kind not in RUNS[runtime] or (runtime not in runtimes and runtime != REFERENCE[kind]):
            continue
        if on_start:
            on_start(runtime, path.name)
        row = {"artifact": path.name, "kind": kind, "runtime": runtime, "status": OK, "error": None,
               "n": None, "accuracy": None, "agreement": None, "float_agreement": None, "arena_bytes": None,
               "flash_bytes": path.stat().st_size if runtime == "tflite-micro" else None, "seconds": None}
        rows.append(row)
        if not installed(runtime):
            row["status"], row["error"] = MISSING, f"pip install {PACKAGES[runtime]}"
            continue
        start = time.perf_counter()
        try:
            with native_output_muted():
                if runtime == "tflite-micro":
                    row["arena_bytes"] = smallest_arena(path, inputs[:1])
                    run = _tflite_micro(path, row["arena_bytes"])
                elif runtime != "mediapipe":
                    run = _runner(runtime, path)
        except Exception as exc:  # each runtime raises its own types; the row reports the first line
            row["status"], row["error"] = LOAD_FAILED, error_line(exc)
            continue
        try:
            with native_output_muted():
                if runtime == "mediapipe":
                    scores = mediapipe_scores(path, rgb, classes)
                else:
                    scores = np.concatenate([np.asarray(run(inputs[i : i + 1])).reshape(1, -1)
                                             for i in range(len(inputs))])
        except Exception as exc:
            row["status"], row["error"] = RUN_FAILED, error_line(exc)
            continue
        row["seconds"] = round(time.perf_counter() - start, 2)
        top1 = scores.argmax(1)  # int8 scores rank as their real values do: the scale is positive
        row["n"] = len(top1)
        row["accuracy"] = round(100 * float(np.mean(top1 == labels)), 2)
        if runtime == REFERENCE[kind]:
            reference = top1
        if reference is not None:
            row["agreement"] = round(100 * float(np.mean(top1 == reference)), 2)
        if float_top1 is not None:
            row["float_agreement"] = round(100 * float(np.mean(top1 == float_top1)), 2)
    return rows


def check_run(path: str | Path, *, data_dir=None, limit: int = CHECK_LIMIT, runtimes=RUNTIMES,
              on_start: Callable | None = None) -> list[dict]:
    """:func:`check_artifact` for one artifact (with the manifest beside it) or every artifact and MediaPipe file of
    a run directory, on its test split's first ``limit`` images (0: all)."""
    from edgecnn.deploy.bench import load_test_split

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise EdgecnnError(f"unknown runtime {unknown[0]!r}: choose from {', '.join(RUNTIMES)}")
    manifest = Manifest.load(folder)
    files = [(a.file, a.format) for a in manifest.artifacts] + [
        (e["file"], "mediapipe") for e in manifest.extras if str(e.get("for", "")).startswith("MediaPipe")]
    if not path.is_dir():
        files = [(name, kind) for name, kind in files if name == path.name]
        if not files:
            raise EdgecnnError(f"{path.name} is not listed in {folder / 'manifest.json'}")
    for name, _ in files:
        if not (folder / name).is_file():
            raise EdgecnnError(f"{folder / name} is listed in its manifest but missing")
        if manifest.entry(name):
            manifest.verify(folder / name)
        else:
            _verify_extra(manifest, folder / name)
    images, labels = load_test_split(manifest.dataset, data_dir, folder)
    if limit:
        images, labels = images[:limit], labels[:limit]
    pre = manifest.preprocessing
    floats = np.stack([pre(img)[0] for img in images])
    rgb = rgb_pixels(images, pre)
    float_top1 = {}
    for fmt in ("tflite", "onnx"):
        fp32 = manifest.entry(f"model_fp32.{fmt}")
        if fp32 is not None:
            with native_output_muted():
                run = _runner(REFERENCE[fmt], folder / fp32.file)
                x = native_inputs(folder / fp32.file, fmt, floats, rgb)
                float_top1[fmt] = np.concatenate([np.asarray(run(x[i : i + 1])).reshape(1, -1)
                                                  for i in range(len(x))]).argmax(1)
    float_top1["mediapipe"] = float_top1.get("tflite")
    rows = []
    for name, kind in files:
        file = folder / name
        inputs = native_inputs(file, kind, floats, rgb)
        rows += check_artifact(file, kind, inputs, rgb, labels, len(manifest.labels), runtimes, float_top1.get(kind),
                               on_start)
    return rows


def _verify_extra(manifest: Manifest, path: Path) -> None:
    extra = next(e for e in manifest.extras if e["file"] == path.name)
    if sha256_file(path) != extra.get("sha256"):
        raise IntegrityError(f"{path} does not match its manifest: the file was altered or corrupted")
