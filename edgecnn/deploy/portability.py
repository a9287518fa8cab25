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

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.common.native_logs import native_output_muted
from edgecnn.deploy.bench import load_test_split
from edgecnn.deploy.runtimes import (
    PACKAGES,
    error_line,
    installed,
    mediapipe_scores,
    native_inputs,
    open_runner,
    open_tflite_micro,
    rgb_pixels,
    scores_one_by_one,
    smallest_arena,
)
from edgecnn.runtime.manifest import Manifest, sha256_file

RUNTIMES = ("litert", "onnxruntime", "openvino", "opencv", "tflite-micro", "mediapipe")
REFERENCE = {"tflite": "litert", "onnx": "onnxruntime", "mediapipe": "litert"}
RUNS = {  # which kinds of file each runtime is asked to run
    "litert": ("tflite", "mediapipe"), "onnxruntime": ("onnx",), "openvino": ("tflite", "onnx"),
    "opencv": ("tflite", "onnx"), "tflite-micro": ("tflite",), "mediapipe": ("mediapipe",),
}
CHECK_LIMIT = 1000  # test images per artifact and runtime (0: the whole split): TFLite Micro's kernels are slow
OK, LOAD_FAILED, RUN_FAILED, MISSING = "ok", "does not load", "fails to run", "not installed"


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
                    run = open_tflite_micro(path, row["arena_bytes"])
                elif runtime != "mediapipe":
                    run = open_runner(runtime, path)
        except Exception as exc:  # each runtime raises its own types; the row reports the first line
            row["status"], row["error"] = LOAD_FAILED, error_line(exc)
            continue
        try:
            with native_output_muted():
                if runtime == "mediapipe":
                    scores = mediapipe_scores(path, rgb, classes)
                else:
                    scores = scores_one_by_one(run, inputs)
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
                run = open_runner(REFERENCE[fmt], folder / fp32.file)
                x = native_inputs(folder / fp32.file, fmt, floats, rgb)
                float_top1[fmt] = scores_one_by_one(run, x).argmax(1)
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
