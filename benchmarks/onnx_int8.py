"""Does ONNX Runtime run a run's int8 ONNX file as quantized kernels, and how fast against its fp32 file?

    python benchmarks/onnx_int8.py models/mnist models/fashion_mnist --min-time 3 --out benchmarks/results

Per model: the operators ONNX Runtime runs after its graph optimizations (QLinearConv and QLinearAdd where it fused a
DequantizeLinear / Conv or Add / QuantizeLinear group; a float Conv or Add left over is a layer run in float), and
the median latency of the fp32 and int8 files at batch 1 on 1 thread, timed in interleaved rounds in one process.
Target (issue "Artifacts that run anywhere"): int8 at most 0.6x fp32 on the Fashion-MNIST model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgecnn.deploy.bench import time_interleaved
from edgecnn.deploy.targets import cpu_info


def session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    if optimized:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fused_ops(path: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:
        optimized = Path(work) / "optimized.onnx"
        session(path, optimized)
        ops = Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)
    return {op: ops[op] for op in ("QLinearConv", "QLinearAdd", "Conv", "Add", "DequantizeLinear") if ops[op]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds each file is timed for, at least")
    parser.add_argument("--out", type=Path, help="folder for onnx_int8.json and onnx_int8.md")
    args = parser.parse_args()
    rows = []
    for folder in args.runs:
        fp32, int8 = folder / "model_fp32.onnx", folder / "model_int8.onnx"
        sessions = [session(fp32), session(int8)]
        x = np.random.default_rng(0).random((1, *[d for d in sessions[0].get_inputs()[0].shape[1:]]), np.float32)
        calls = [lambda s=s, x=x: s.run(None, {s.get_inputs()[0].name: x}) for s in sessions]
        fp32_ms, int8_ms = (float(np.median(t)) for t in time_interleaved(calls, warmup=50, min_time_s=args.min_time,
                                                                           rounds=100))
        rows.append({"model": folder.name, "fp32_us": round(fp32_ms * 1e3, 1), "int8_us": round(int8_ms * 1e3, 1),
                     "ratio": round(int8_ms / fp32_ms, 3), "int8_ops": fused_ops(int8),
                     "fp32_convs": sum(n.op_type == "Conv" for n in onnx.load(str(fp32)).graph.node)})
    cpu = cpu_info()
    cpu = f"{cpu['model']}; int8 instructions: {', '.join(cpu['int8']) or 'none'}"
    lines = [f"# ONNX Runtime {ort.__version__}: int8 against fp32, batch 1, 1 thread ({cpu})", "",
             "| model | fp32 (us) | int8 (us) | int8 / fp32 | convs in fp32 file | int8 ops after fusion |",
             "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r['model']} | {r['fp32_us']} | {r['int8_us']} | {r['ratio']:.2f} | {r['fp32_convs']} | "
              f"{', '.join(f'{k} {v}' for k, v in r['int8_ops'].items())} |" for r in rows]
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        document = {"onnxruntime": ort.__version__, "cpu": cpu, "rows": rows}
        (args.out / "onnx_int8.json").write_text(json.dumps(document, indent=2))
        (args.out / "onnx_int8.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
