"""Throughput of `edgecnn live` on a video file, headless: decode, preprocess and inference per frame.

    python benchmarks/live.py runs/demo --frames-per-image 3 --threads 1
    python benchmarks/live.py models/mnist --size 480 --name live_mnist_480   # camera-sized frames

Writes a video of the run's test images (tools/make_video.py; frames of --size x --size pixels), runs the live loop
on it with the int8 TFLite model, and compares the time per frame with the model's own batch-1 latency (median of
bare `backend.run` on a preprocessed input). Writes benchmarks/results/NAME.{json,md} (NAME: live).
Targets (issue #7): >= 500 frames/s; loop overhead (time per frame - model latency) <= 2 ms.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tools/

from edgecnn.common.native_logs import native_output_muted  # noqa: E402
from edgecnn.deploy.bench import load_test_split, time_calls  # noqa: E402
from edgecnn.deploy.live import run_live  # noqa: E402
from edgecnn.runtime.classifier import Classifier  # noqa: E402
from edgecnn.runtime.manifest import Manifest, tool_versions  # noqa: E402
from tools.make_video import make_video  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", default="model_int8.tflite")
    parser.add_argument("--frames-per-image", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--size", type=int, default=96, help="frame width and height in pixels")
    parser.add_argument("--name", default="live", help="results file name, without suffix")
    args = parser.parse_args()
    manifest = Manifest.load(args.run_dir)
    images, labels = load_test_split(manifest.dataset, args.data_dir)
    with native_output_muted():
        clf = Classifier(args.run_dir / args.model, threads=args.threads)
    sample = clf.prepare(images[:1])[0]
    model_ms = float(np.median(time_calls(lambda: clf.backend.run(sample), warmup=50, runs=2000)))
    with tempfile.TemporaryDirectory() as work:
        video = Path(work) / "test.mp4"
        truth = make_video(images, [manifest.labels[y] for y in labels], video, args.frames_per_image, args.size)
        summary = run_live(clf, str(video), display=False)
    per_frame_ms = 1e3 * summary["seconds"] / summary["frames"]
    result = {
        "model": args.model, "threads": args.threads, "frame_size": args.size, "frames": summary["frames"],
        "video_frames": len(truth),
        "fps": round(summary["frames"] / summary["seconds"], 1), "per_frame_ms": round(per_frame_ms, 3),
        "model_p50_ms": round(model_ms, 3), "loop_overhead_ms": round(per_frame_ms - model_ms, 3),
        "predict_p50_ms": summary["p50_ms"], "targets": {"fps": 500, "loop_overhead_ms": 2.0},
        "versions": tool_versions(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(
        "# edgecnn live on a video file, headless\n\n"
        f"Command: `{shlex.join(['python', 'benchmarks/live.py', *sys.argv[1:]])}`\n\n"
        "| model | threads | frame (px) | frames | FPS | ms per frame | model p50 (ms) | loop overhead (ms) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {args.model} | {args.threads} | {args.size}x{args.size} | {result['frames']} | {result['fps']} | "
        f"{result['per_frame_ms']} | {result['model_p50_ms']} | {result['loop_overhead_ms']} |\n")
    print(json.dumps({k: v for k, v in result.items() if k != "versions"}, indent=2))


if __name__ == "__main__":
    main()
