"""What a user's call to the runtime wrapper costs, against the same work written by hand on the runtimes' public
APIs. Question: does ``Classifier`` add more than 10% to a call, or more than 1 ms to opening a model?

    python benchmarks/runtime_cost.py models/mnist models/fashion_mnist --min-time 3 --out benchmarks/results

Rows, each a median ratio from one process that times both sides in 100 interleaved rounds (1 thread, batch 1):

- ``raw image``: ``clf.predict_proba(img)`` on a uint8 image at the model's input size, against a bare
  set_tensor / invoke / get_tensor loop (ONNX Runtime: ``session.run``) given input already quantized
  (or already normalized, for ONNX).
- ``640x480 frame``: ``clf.predict(frame)`` on a BGR camera frame, against a hand-written loop of ``cv2.resize``
  (INTER_AREA) to the input size, grey conversion, quantize, invoke, dequantize and top-3.
- ``open``: ``Classifier(path)`` (manifest read, sha256 checked) against opening the interpreter or session alone;
  the difference in ms.
- ``open, signed``: ``Classifier(path, trusted_keys=KEY)`` on a signed copy of the run against ``Classifier(path)``
  on the same copy: what checking the signature adds (a fresh process also pays for importing cryptography once,
  measured apart as ``first signed open``).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

from edgecnn.deploy.bench import load_test_split, time_interleaved
from edgecnn.runtime import Classifier
from edgecnn.runtime.manifest import Manifest


def test_images(folder: Path, shape: tuple, count: int = 64) -> np.ndarray:
    """Test-split images where the dataset is found here, else random ones (latency does not depend on them)."""
    try:
        images = load_test_split(Manifest.load(folder).dataset, folder=folder)[0][:count]
    except Exception:
        images = np.random.default_rng(0).integers(0, 256, (count, *shape[:2]), dtype=np.uint8)
    return images


def cycle(count: int):
    """A function that returns 1, 2, ... count - 1, 0, 1, ...: each call takes the next image."""
    state = {"i": 0}

    def next_index() -> int:
        state["i"] = (state["i"] + 1) % count
        return state["i"]

    return next_index


def by_hand(frame: np.ndarray, pre) -> np.ndarray:
    """A BGR frame as a hand-written loop would make the model's input: one-step area resize, grey, normalize."""
    small = cv2.resize(frame, (pre.width, pre.height), interpolation=cv2.INTER_AREA)
    return (cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32) * pre.scale - pre.mean) / pre.std


def tflite_sides(path: Path, images: np.ndarray, frames: list) -> dict:
    clf = Classifier(path, threads=1)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    feed, fetch = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = feed["quantization"], fetch["quantization"]
    pre = clf.preprocessing
    floats = [pre(img) for img in images]
    codes = [np.clip(np.rint(x / in_scale + in_zero), -128, 127).astype(np.int8) for x in floats]
    next_index = cycle(len(images))

    def bare():
        interpreter.set_tensor(feed["index"], codes[next_index()])
        interpreter.invoke()
        return interpreter.get_tensor(fetch["index"])

    def wrapped():
        return clf.predict_proba(images[next_index()])

    def hand_frame():
        x = by_hand(frames[next_index()], pre)
        q = np.clip(np.rint(x / in_scale + in_zero), -128, 127).astype(np.int8).reshape(feed["shape"])
        interpreter.set_tensor(feed["index"], q)
        interpreter.invoke()
        probs = (interpreter.get_tensor(fetch["index"]).astype(np.float32) - out_zero) * out_scale
        return np.argsort(-probs[0])[:3]

    def wrapped_frame():
        return clf.predict(frames[next_index()])

    def open_bare():
        Interpreter(model_path=str(path), num_threads=1).allocate_tensors()

    return {"raw image": (wrapped, bare), "640x480 frame": (wrapped_frame, hand_frame),
            "open": (lambda: Classifier(path, threads=1), open_bare)}


def onnx_sides(path: Path, images: np.ndarray, frames: list) -> dict:
    clf = Classifier(path, threads=1)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    pre = clf.preprocessing
    floats = [pre(img) for img in images]
    next_index = cycle(len(images))

    def bare():
        return session.run([output], {name: floats[next_index()]})[0]

    def wrapped():
        return clf.predict_proba(images[next_index()])

    def hand_frame():
        x = by_hand(frames[next_index()], pre).reshape(1, pre.height, pre.width, 1)
        probs = session.run([output], {name: x})[0]
        return np.argsort(-probs[0])[:3]

    def wrapped_frame():
        return clf.predict(frames[next_index()])

    def open_bare():
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return {"raw image": (wrapped, bare), "640x480 frame": (wrapped_frame, hand_frame),
            "open": (lambda: Classifier(path, threads=1), open_bare)}


def signed_sides(path: Path, scratch: Path) -> dict:
    from edgecnn.workstation.signing import keygen, sign_run

    run = scratch / "run"
    shutil.copytree(path.parent, run, ignore=shutil.ignore_patterns("*.keras", "*.png", "checkpoints"))
    private, public = keygen(scratch / "key")
    sign_run(run, private)
    model = run / path.name
    return {"open, signed": (lambda: Classifier(model, threads=1, trusted_keys=public),
                             lambda: Classifier(model, threads=1))}, model, public


def first_signed_open_ms(model: Path, public: Path) -> float:
    """Extra ms of the first signed open in a fresh process, cryptography's import included (median of 5)."""
    code = ("import time; from edgecnn.runtime import Classifier; Classifier({m!r}, threads=1); "
            "t = time.perf_counter(); Classifier({m!r}, threads=1, trusted_keys={k!r}); "
            "print((time.perf_counter() - t) * 1e3)")
    signed = [float(subprocess.run([sys.executable, "-c", code.format(m=str(model), k=str(public))],
                                   capture_output=True, text=True, check=True).stdout.split()[-1]) for _ in range(5)]
    code = ("import time; from edgecnn.runtime import Classifier; Classifier({m!r}, threads=1); "
            "t = time.perf_counter(); Classifier({m!r}, threads=1); print((time.perf_counter() - t) * 1e3)")
    plain = [float(subprocess.run([sys.executable, "-c", code.format(m=str(model))],
                                  capture_output=True, text=True, check=True).stdout.split()[-1]) for _ in range(5)]
    return float(np.median(signed) - np.median(plain))


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="Run folders with int8 .tflite and .onnx artifacts.")
    parser.add_argument("--min-time", type=float, default=2.0, help="Seconds of timing per side and row.")
    parser.add_argument("--out", type=Path, help="Folder for runtime_cost.json and runtime_cost.md.")
    args = parser.parse_args()
    rows = []
    for folder in args.folders:
        for artifact, sides in (("model_int8.tflite", tflite_sides), ("model_int8.onnx", onnx_sides)):
            path = folder / artifact
            clf = Classifier(path)
            images = test_images(folder, clf.preprocessing.input_shape)
            frames = [cv2.resize(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), (640, 480)) for img in images]
            for case, (wrapped, bare) in sides(path, images, frames).items():
                min_time = args.min_time / 4 if case == "open" else args.min_time
                ms_wrapped, ms_bare = time_interleaved([wrapped, bare], warmup=5, min_time_s=min_time, rounds=100)
                a, b = float(np.median(ms_wrapped)), float(np.median(ms_bare))
                rows.append({"model": f"{folder.name}/{artifact}", "case": case, "edgecnn_ms": round(a, 4),
                             "by_hand_ms": round(b, 4), "ratio": round(a / b, 3), "extra_ms": round(a - b, 4),
                             "runs": len(ms_wrapped)})
                print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.folders[-1] / "model_int8.tflite"
        sides, model, public = signed_sides(path, Path(scratch))
        (wrapped, bare), = sides.values()
        ms_wrapped, ms_bare = time_interleaved([wrapped, bare], warmup=5, min_time_s=args.min_time / 4)
        a, b = float(np.median(ms_wrapped)), float(np.median(ms_bare))
        rows.append({"model": f"{args.folders[-1].name}/{path.name}", "case": "open, signed",
                     "edgecnn_ms": round(a, 4), "by_hand_ms": round(b, 4), "ratio": round(a / b, 3),
                     "extra_ms": round(a - b, 4), "runs": len(ms_wrapped)})
        extra = first_signed_open_ms(model, public)
        rows.append({"model": f"{args.folders[-1].name}/{path.name}", "case": "first signed open", "edgecnn_ms": None,
                     "by_hand_ms": None, "ratio": None, "extra_ms": round(extra, 4), "runs": 5})
        print(rows[-2], rows[-1], flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    document = {"cpu": cpu, "threads": 1, "batch": 1, "rows": rows}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "runtime_cost.json").write_text(json.dumps(document, indent=2) + "\n")
        lines = [f"# Runtime cost ({cpu}, 1 thread, batch 1)", "",
                 f"`python benchmarks/runtime_cost.py {' '.join(map(str, args.folders))} --min-time {args.min_time} "
                 f"--out {args.out}`", "",
                 "| Model | Case | edgecnn (ms) | by hand (ms) | ratio | extra (ms) |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['model']} | {r['case']} | {fmt(r['edgecnn_ms'], '.4f')} | {fmt(r['by_hand_ms'], '.4f')} | "
                  f"{fmt(r['ratio'], '.3f')} | {r['extra_ms']:.4f} |" for r in rows]
        (args.out / "runtime_cost.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
