"""Shrinking camera frames to the model's input: OpenCV's area averaging in one step against `resized`'s two.

    python benchmarks/resize.py models/mnist models/fashion_mnist --images 3000

A camera frame must shrink to 28x28 before every call, and OpenCV's INTER_AREA takes its slow general path for a
factor that is not whole (640x480 to 28x28: 0.7 ms, against 0.02-0.1 ms for the int8 models). `edgecnn.runtime.preprocess
.resized` first shrinks by a whole factor that divides both sides (OpenCV's fast path), then does the rest. This
times both ways on frames of 640x480, 1280x720 and 1920x1080 (calls alternating, medians), and, to see what the
second step changes, shows each run's test images as such frames (the 28x28 image enlarged with INTER_CUBIC, as a
close-up camera would see it), shrinks them both ways and compares the pixels and the int8 TFLite model's answers
(accuracy, and agreement between the two ways). Needs $EDGECNN_DATA_DIR (or --data-dir) for the test splits.
Writes benchmarks/results/resize.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.native_logs import native_output_muted
from edgecnn.deploy.bench import load_test_split
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, tool_versions
from edgecnn.runtime.preprocess import area_step, resized

RESULTS = Path(__file__).parent / "results"
FRAMES = [(480, 640), (720, 1280), (1080, 1920)]  # rows, columns
SIDE = 28


def one_step(img: np.ndarray) -> np.ndarray:
    """What `resized` did before it took two steps."""
    return cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def two_steps(img: np.ndarray) -> np.ndarray:
    return resized(img, SIDE, SIDE)


def timing_rows(runs: int) -> list[dict]:
    """Median time of each way on a grey frame of each size, the calls alternating; grey, as a grey model's frame is
    converted before it shrinks."""
    rng = np.random.default_rng(0)
    rows = []
    for shape in FRAMES:
        frame = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 2)
        times = {one_step: [], two_steps: []}
        for _ in range(runs):
            for way in times:
                start = time.perf_counter()
                way(frame)
                times[way].append(time.perf_counter() - start)
        one, two = (float(np.median(t)) * 1e3 for t in times.values())
        rows.append({"frame": f"{shape[1]}x{shape[0]}", "first_step": area_step(*shape, SIDE, SIDE),
                     "one_step_ms": round(one, 3), "two_steps_ms": round(two, 3), "speedup": round(one / two, 2)})
        print(f"timing {rows[-1]}", flush=True)
    return rows


def model_rows(run_dir: Path, images: int, data_dir) -> list[dict]:
    manifest = Manifest.load(run_dir)
    test_images, labels = load_test_split(manifest.dataset, data_dir)
    test_images, labels = test_images[:images], labels[:images]
    with native_output_muted():
        clf = Classifier(run_dir / "model_int8.tflite", threads=1)
    rows = []
    for shape in FRAMES[:2]:
        small = {one_step: [], two_steps: []}
        for image in test_images:
            frame = cv2.resize(image.reshape(SIDE, SIDE), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
            for way in small:
                small[way].append(way(frame))
        answers = {way: clf.predict_proba(np.stack(s)[..., None]).argmax(axis=1) for way, s in small.items()}
        diff = np.abs(np.stack(small[one_step]).astype(int) - np.stack(small[two_steps]))
        rows.append({"run": str(run_dir), "frame": f"{shape[1]}x{shape[0]}", "images": len(labels),
                     "accuracy_one_step": round(100 * float(np.mean(answers[one_step] == labels)), 2),
                     "accuracy_two_steps": round(100 * float(np.mean(answers[two_steps] == labels)), 2),
                     "agreement": round(100 * float(np.mean(answers[one_step] == answers[two_steps])), 2),
                     "pixel_diff_max": int(diff.max()), "pixel_diff_mean": round(float(diff.mean()), 3),
                     "pixels_differing": round(100 * float(np.mean(diff > 0)), 2)})
        print(f"model {rows[-1]}", flush=True)
    return rows


def write_markdown(document: dict, path: Path) -> None:
    lines = ["# Shrinking camera frames to 28x28: one step against two", "",
             f"Command: `{document['command']}`", "",
             "## Time per grey frame (median, calls alternating)", "",
             "| frame | first step (whole factor) | one step (ms) | two steps (ms) | speed-up |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['frame']} | {r['first_step']} | {r['one_step_ms']} | {r['two_steps_ms']} | {r['speedup']} |"
              for r in document["timing"]]
    lines += ["", "## Test images shown as frames, the int8 TFLite model's answers", "",
              "| run | frame | images | accuracy, one step (%) | accuracy, two steps (%) | agreement (%) | "
              "pixels differing (%) | max difference (grey levels) | mean difference |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['frame']} | {r['images']} | {r['accuracy_one_step']} | {r['accuracy_two_steps']} | "
              f"{r['agreement']} | {r['pixels_differing']} | {r['pixel_diff_max']} | {r['pixel_diff_mean']} |"
              for r in document["models"]]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="28x28 grey runs with an int8 TFLite model")
    parser.add_argument("--images", type=int, default=3000, help="test images per run")
    parser.add_argument("--runs", type=int, default=300, help="timed calls per frame size and way")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    document = {"command": shlex.join(["python", "benchmarks/resize.py", *sys.argv[1:]]),
                "timing": timing_rows(args.runs),
                "models": [row for run_dir in args.run_dirs for row in model_rows(run_dir, args.images, args.data_dir)],
                "versions": tool_versions()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resize.json").write_text(json.dumps(document, indent=2) + "\n")
    write_markdown(document, RESULTS / "resize.md")
    print((RESULTS / "resize.md").read_text())


if __name__ == "__main__":
    main()
