"""Whether the transfer-learning backbones fit a Raspberry-Pi-class budget: size and latency of each in int8.

    python benchmarks/transfer.py --sizes 96 160 --min-time 2 --out benchmarks/results

For each ``keras.applications`` architecture of ``edgecnn.workstation.models.TRANSFER`` (and ``edge-cnn`` for
scale), at each input size with 3 channels and 4 classes: parameters, MACs, the fp32 and full-int8 TFLite and ONNX
files as ``edgecnn export`` writes them, and the median latency at batch 1 on one thread (LiteRT with XNNPACK, ONNX
Runtime), all files timed in interleaved rounds so they share the machine's state. Weights are random and
calibration images are noise: neither changes the work done per image. Accuracy needs the ImageNet weights, which
this offline machine cannot download: it is not measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from int8_speed import litert_call, ort_call  # a sibling script: python benchmarks/transfer.py puts it on the path

from edgecnn.deploy.targets import cpu_info

CLASSES = 4


def p50_us(call, seconds: float) -> float:
    """Median of repeated calls over ``seconds``."""
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def caller(path: Path):
    """One image through ``path`` on one thread, in LiteRT (XNNPACK) or ONNX Runtime, as int8_speed.py calls them."""
    if path.suffix == ".tflite":
        return litert_call(path, threads=1, batch=1, xnnpack=True)
    return ort_call(path, threads=1, batch=1)


def export_all(arch: str, size: int, folder: Path) -> tuple[dict, dict[str, Path]]:
    from edgecnn.workstation.export import export_onnx, export_tflite, quantize_onnx
    from edgecnn.workstation.models import build_model, keras_macs

    model = build_model(arch, (size, size, 3), CLASSES)
    calibration = np.random.default_rng(0).random((100, size, size, 3), dtype=np.float32)
    files = {name: folder / f"{arch}_{size}_{name}" for name in ("fp32.tflite", "int8.tflite", "fp32.onnx",
                                                                  "int8.onnx")}
    export_tflite(model, files["fp32.tflite"], "fp32")
    export_tflite(model, files["int8.tflite"], "int8", calibration)
    export_onnx(model, files["fp32.onnx"])
    quantize_onnx(files["fp32.onnx"], files["int8.onnx"], calibration)
    return {"arch": arch, "size": size, "params": int(model.count_params()), "macs": keras_macs(model)}, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 160])
    parser.add_argument("--archs", nargs="+", default=None, help="default: edge-cnn and every transfer architecture")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per file per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    from edgecnn.workstation.models import TRANSFER

    archs = args.archs or ["edge-cnn", *TRANSFER]
    rows, timings = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        calls = {}
        for arch in archs:
            for size in args.sizes:
                row, files = export_all(arch, size, Path(tmp))
                row["kb"] = {name: round(path.stat().st_size / 1024, 1) for name, path in files.items()}
                rows.append(row)
                for name, path in files.items():
                    calls[(arch, size, name)] = caller(path)
                    calls[(arch, size, name)]()  # warm up
        for _ in range(args.rounds):  # interleaved: every file once a round
            for key, call in calls.items():
                timings.setdefault(key, []).append(p50_us(call, args.min_time))
    for row in rows:
        row["p50_us"] = {name: round(float(np.median(timings[(row["arch"], row["size"], name)])), 1)
                         for name in row["kb"]}
    cpu = cpu_info()
    document = {"cpu": f"{cpu['model']}; int8 instructions: {', '.join(cpu['int8']) or 'none'}",
                "command": "python " + " ".join(sys.argv), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["# Transfer-learning backbones: size and latency at batch 1, one thread\n",
             f"CPU: {document['cpu']}. Command: `{document['command']}`. Random weights; 3 channels, {CLASSES} "
             "classes. Latency: median of the round medians, LiteRT (XNNPACK) and ONNX Runtime.\n",
             "| arch | px | parameters | MACs | TFLite int8 KB | TFLite fp32 / int8 us | ONNX int8 KB | "
             "ONNX fp32 / int8 us |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        kb, us = r["kb"], r["p50_us"]
        lines.append(f"| {r['arch']} | {r['size']} | {r['params']:,} | {r['macs']:,} | {kb['int8.tflite']:,} | "
                     f"{us['fp32.tflite']:,} / {us['int8.tflite']:,} | {kb['int8.onnx']:,} | "
                     f"{us['fp32.onnx']:,} / {us['int8.onnx']:,} |")
    (args.out / "transfer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
