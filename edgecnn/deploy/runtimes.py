"""Other runtimes, each through its own public API: open a file and get a call that classifies one input batch.

    run = open_runner("openvino", Path("models/mnist/model_int8.onnx"))
    scores = run(x)                                   # x: what the file takes (native_inputs)
    arena = smallest_arena(Path("models/mnist/model_int8.tflite"), x[:1])   # TFLite Micro's, in bytes

LiteRT, ONNX Runtime, OpenVINO and OpenCV DNN run here; TFLite Micro through its Python interpreter (reference
kernels); MediaPipe Tasks in a Python of its own (``$EDGECNN_MEDIAPIPE_PYTHON``, else this one), since it brings a
second OpenCV build. Used by ``edgecnn check`` (:mod:`edgecnn.deploy.portability`) and the micro bench target.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edgecnn.runtime.backends import Quantizer
from edgecnn.runtime.preprocess import Preprocessing, resized

MODULES = {"litert": "ai_edge_litert", "onnxruntime": "onnxruntime", "openvino": "openvino", "opencv": "cv2",
           "tflite-micro": "tflite_micro", "mediapipe": "mediapipe"}
PACKAGES = {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime", "openvino": "openvino",
            "opencv": "opencv-python", "tflite-micro": "tflite-micro", "mediapipe": "mediapipe"}
MEDIAPIPE_PYTHON_ENV = "EDGECNN_MEDIAPIPE_PYTHON"
ARENA_MIN, ARENA_MAX = 1024, 256 * 2**20
ARENA_STEP = 256  # bytes: the bisection stops within this of the smallest arena that runs


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


def open_tflite_micro(path: Path, arena: int) -> Callable:
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
            open_tflite_micro(path, arena)(sample)
            return True
        except (RuntimeError, ValueError):
            return False

    open_tflite_micro(path, ARENA_MAX)(sample)  # a model TFLite Micro cannot run at all fails here, with its reason
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


def scores_one_by_one(run: Callable, inputs: np.ndarray) -> np.ndarray:
    """``run`` on each input alone (batch 1: every runtime takes it, TFLite Micro no other), one row of scores each."""
    return np.concatenate([np.asarray(run(inputs[i : i + 1])).reshape(1, -1) for i in range(len(inputs))])


def open_runner(runtime: str, path: Path) -> Callable:
    opener = {"litert": _litert, "onnxruntime": _onnxruntime, "openvino": _openvino, "opencv": _opencv}[runtime]
    return opener(path)


def native_inputs(path: Path, kind: str, floats: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """What the file takes: a MediaPipe file the RGB pixels (uint8, or float32 0-255), the others the preprocessed
    batch ``floats``, quantized where the ``.tflite`` input is int8."""
    if kind == "mediapipe":
        return rgb.astype(_litert_input(path)["dtype"])
    quantizer = Quantizer.of(_litert_input(path)) if kind == "tflite" else None
    return quantizer.quantize(floats) if quantizer else floats  # as the runtime's Classifier quantizes


def _litert_input(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_input_details()[0]
