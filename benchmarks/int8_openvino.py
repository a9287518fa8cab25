"""OpenVINO's CPU plugin as one more int8 path: each run's exported ONNX files, fp32 against int8.

    pip install openvino      # not an edgecnn dependency: one more path tried for issue #6
    python benchmarks/int8_openvino.py runs/demo models/mnist models/fashion_mnist --runs 2000

OpenVINO reads the QDQ int8 ONNX file as exported and folds its quantize/dequantize pairs into int8 kernels; the
table gives the precision its CPU plugin ran the convolutions in (u8 or i8: int8 kernels). LiteRT + XNNPACK fp32,
the fastest fp32 path in int8_speed.md, is the bar to beat. Batch 1 and 32, 1 and 2 threads; the three calls
alternate one by one, the order rotating (this host's speed drifts by tens of percent within minutes), and each p50
is the median of ``runs`` rounds after 200 warm-up rounds on zeros (``runs // 16`` at batch 32). Writes
benchmarks/results/int8_openvino.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
from int8_speed import RESULTS, litert_call  # same folder
from runtime_overhead import interleaved_times


def openvino_call(path: Path, threads: int, batch: int):
    """OpenVINO's CPU inference on ``path`` at a fixed batch, and the precisions its convolutions run in."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    shape = [batch, *(d.get_length() for d in list(model.input(0).get_partial_shape())[1:])]
    model.reshape({model.input(0): shape})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(np.zeros(shape, np.float32)))
    layers = [op.get_rt_info() for op in compiled.get_runtime_model().get_ops()]
    precisions = {i["runtimePrecision"].astype(str) for i in layers if i["layerType"].astype(str) == "Convolution"}
    return request.infer, "/".join(sorted(precisions))


def rows_for(run_dir: Path, runs: int) -> list[dict]:
    rows = []
    for threads in (1, 2):
        for batch in (1, 32):
            n = runs if batch == 1 else max(runs // 16, 50)
            fp32_call, _ = openvino_call(run_dir / "model_fp32.onnx", threads, batch)
            int8_call, precision = openvino_call(run_dir / "model_int8.onnx", threads, batch)
            calls = [fp32_call, int8_call, litert_call(run_dir / "model_fp32.tflite", threads, batch, True)]
            fp32, int8, xnnpack = np.median(interleaved_times(calls, n, warmup=200), axis=0) * 1e3
            rows.append({"model": str(run_dir), "threads": threads, "batch": batch, "conv_precision": precision,
                         "openvino_fp32_p50_us": round(fp32, 1), "openvino_int8_p50_us": round(int8, 1),
                         "speedup": round(fp32 / int8, 2), "xnnpack_fp32_p50_us": round(xnnpack, 1),
                         "speedup_vs_xnnpack_fp32": round(xnnpack / int8, 2)})
            print(f"{run_dir} {threads} threads, batch {batch}: done", flush=True)
    return rows


def main() -> None:
    import openvino as ov

    from edgecnn.runtime.manifest import tool_versions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="run directories with fp32 and int8 ONNX files")
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per batch-1 measurement")
    args = parser.parse_args()
    rows = [row for run_dir in args.run_dirs for row in rows_for(run_dir, args.runs)]
    command = shlex.join(["python", "benchmarks/int8_openvino.py", *sys.argv[1:]])
    document = {"command": command, "rows": rows, "versions": {**tool_versions(), "openvino": ov.__version__}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_openvino.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [f"# OpenVINO {ov.__version__} CPU plugin, int8 against fp32", "", f"Command: `{command}`. p50 in "
             "microseconds; speed-up = fp32 / int8; the last column sets OpenVINO's int8 against LiteRT + XNNPACK "
             "fp32, the fastest fp32 path here.", "",
             "| Model | Threads | Batch | Conv precision | OpenVINO fp32 | OpenVINO int8 | Speed-up "
             "| XNNPACK fp32 | int8 vs XNNPACK fp32 |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['threads']} | {r['batch']} | {r['conv_precision']} | {r['openvino_fp32_p50_us']} "
              f"| {r['openvino_int8_p50_us']} | {r['speedup']} | {r['xnnpack_fp32_p50_us']} | "
              f"{r['speedup_vs_xnnpack_fp32']} |" for r in rows]
    (RESULTS / "int8_openvino.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
