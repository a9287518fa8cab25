"""Where int8 pays off on this CPU: every int8 path against its fp32 twin, per model and per conv shape.

    python benchmarks/int8_speed.py runs/demo models/mnist --runs 2000

Issue #6 asks for int8 >= 1.5x faster than fp32 at batch 1 for the default model and int8 p50 within 3x of its
compute roofline. This script tries each path and writes benchmarks/results/int8_speed.{json,md}:

1. Whole models, batch 1 and 32, 1 and 2 threads: LiteRT with XNNPACK (its default delegate, QS8 kernels for
   int8), LiteRT's built-in kernels without XNNPACK, and ONNX Runtime with several static-quantization layouts
   (QDQ S8S8 as exported, QDQ U8S8, QOperator U8S8; per-channel, 7-bit weights as exported) made here from the
   fp32 ONNX with random calibration (timing does not depend on calibration); and, where TensorFlow is
   installed, LiteRT + XNNPACK on a dynamic-range model made here from model.keras (int8 weights, activations
   quantized on the fly by XNNPACK's QD8 kernels), against the same fp32 model.
2. Single Conv2D layers through LiteRT + XNNPACK, fp32 and int8, to see which shapes int8 wins on.
3. The roofline: the best MAC rate the int8 kernels reach on any layer above (a measured ceiling for this CPU and
   these kernels), and each int8 model's p50 against MACs / that rate.
Each p50 is the median of ``runs`` calls after 200 warm-up calls, on an input of zeros of the right dtype.

``--models-only`` keeps part 1 alone, without the dynamic-range rows (they and parts 2 and 3 need TensorFlow),
for a runtime-only machine such as a second CPU to compare with; ``--out DIR`` writes the results there instead.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecnn.deploy.targets import cpu_info

RESULTS = Path(__file__).parent / "results"
CONV_SHAPES = [  # (height = width, input channels, output channels, kernel)
    (28, 1, 32, 3), (28, 4, 32, 3), (28, 8, 32, 3), (28, 16, 32, 3), (14, 32, 32, 3), (14, 64, 64, 3),
    (7, 128, 128, 3), (14, 64, 64, 1),
]


def p50_us(call, runs: int) -> float:
    for _ in range(200):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e6)


def litert_call(model, threads: int, batch: int, xnnpack: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    source = {"model_path": str(model)} if isinstance(model, Path) else {"model_content": model}
    interpreter = Interpreter(**source, num_threads=threads, experimental_op_resolver_type=resolver)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    interpreter.allocate_tensors()
    x = np.zeros([batch, *inp["shape"][1:]], inp["dtype"])

    def call():
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()

    return call


def ort_call(path: Path, threads: int, batch: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    feed = {first.name: np.zeros([batch, *first.shape[1:]], np.float32)}
    return lambda: session.run(None, feed)


def ort_variants(fp32: Path, folder: Path) -> dict[str, Path]:
    """Static int8 layouts of ``fp32`` to compare; the name says format, activation/weight types."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    first = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0]
    samples = np.random.default_rng(0).random((32, 1, *first.shape[1:]), dtype=np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(samples)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {first.name: item}

    pre = folder / "pre.onnx"
    quant_pre_process(str(fp32), str(pre))
    layouts = {"QDQ S8S8 (as exported)": (QuantFormat.QDQ, QuantType.QInt8),
               "QDQ U8S8": (QuantFormat.QDQ, QuantType.QUInt8),
               "QOperator U8S8": (QuantFormat.QOperator, QuantType.QUInt8)}
    paths = {}
    for name, (fmt, activations) in layouts.items():
        paths[name] = folder / f"{len(paths)}.onnx"
        quantize_static(str(pre), str(paths[name]), Reader(), quant_format=fmt, activation_type=activations,
                        weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    return paths


def dynamic_range_model(run_dir: Path, folder: Path) -> Path:
    """The run's model.keras as a dynamic-range TFLite model (int8 weights, float input and activations), with the
    test-time augmentation of the run's other artifacts, so that it does the same work as they do."""
    from edgecnn.runtime.manifest import Manifest
    from edgecnn.workstation.export import export_tflite
    from edgecnn.workstation.models import load_model, with_tta

    path = folder / "dynamic.tflite"
    export_tflite(with_tta(load_model(run_dir / "model.keras"), Manifest.load(run_dir).tta), path, "dynamic")
    return path


def model_rows(run_dir: Path, runs: int, dynamic_range: bool) -> list[dict]:
    from edgecnn.deploy.inspection import inspect_artifact

    macs = inspect_artifact(run_dir / "model_fp32.tflite")["macs"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        variants = ort_variants(run_dir / "model_fp32.onnx", Path(tmp))
        dynamic = dynamic_range_model(run_dir, Path(tmp)) if dynamic_range else None
        for threads in (1, 2):
            for batch in (1, 32):
                n = runs if batch == 1 else max(runs // 16, 50)
                paths = [("LiteRT + XNNPACK", True), ("LiteRT built-in kernels", False)]
                for name, xnnpack in paths:
                    fp32 = p50_us(litert_call(run_dir / "model_fp32.tflite", threads, batch, xnnpack), n)
                    int8 = p50_us(litert_call(run_dir / "model_int8.tflite", threads, batch, xnnpack), n)
                    rows.append(_row(run_dir, name, threads, batch, fp32, int8, macs))
                    if xnnpack and dynamic:
                        int8 = p50_us(litert_call(dynamic, threads, batch, True), n)
                        rows.append(_row(run_dir, "LiteRT + XNNPACK, dynamic-range int8", threads, batch, fp32, int8,
                                         macs))
                fp32 = p50_us(ort_call(run_dir / "model_fp32.onnx", threads, batch), n)
                for name, path in variants.items():
                    int8 = p50_us(ort_call(path, threads, batch), n)
                    rows.append(_row(run_dir, f"ONNX Runtime, {name}", threads, batch, fp32, int8, macs))
                print(f"{run_dir} {threads} threads, batch {batch}: done", flush=True)
    return rows


def _row(run_dir, path, threads, batch, fp32, int8, macs) -> dict:
    return {"model": str(run_dir), "path": path, "threads": threads, "batch": batch, "macs": macs,
            "fp32_p50_us": round(fp32, 1), "int8_p50_us": round(int8, 1), "speedup": round(fp32 / int8, 2)}


def tflite_bytes(model, precision: str) -> bytes:
    """A Keras model as fp32 or full-int8 TFLite (int8 in and out), calibrated on uniform random input: timing does
    not depend on the calibration."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        samples = np.random.default_rng(0).random((16, 1, *model.input_shape[1:]), np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def conv_rows(runs: int) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    rows = []
    for size, cin, cout, kernel in CONV_SHAPES:
        model = keras.Sequential([keras.Input((size, size, cin)),
                                  keras.layers.Conv2D(cout, kernel, padding="same", activation="relu")])
        times = {precision: p50_us(litert_call(tflite_bytes(model, precision), 1, 1, True), runs)
                 for precision in ("fp32", "int8")}
        macs = size * size * cin * cout * kernel * kernel
        rows.append({"layer": f"{size}x{size}x{cin} -> {cout}, {kernel}x{kernel}", "macs": macs,
                     "fp32_p50_us": round(times["fp32"], 1), "int8_p50_us": round(times["int8"], 1),
                     "fp32_gmacs": round(macs / times["fp32"] / 1e3, 1),
                     "int8_gmacs": round(macs / times["int8"] / 1e3, 1),
                     "speedup": round(times["fp32"] / times["int8"], 2)})
        print(f"conv {rows[-1]['layer']}: done", flush=True)
    return rows


def write_markdown(document: dict, path: Path) -> None:
    instructions = ", ".join(document["int8_instructions"]) or "none listed"
    lines = ["# int8 against fp32 on this CPU", "", f"CPU: {document['cpu']} (int8 instructions: {instructions}). "
             f"Command: `{document['command']}`.", "",
             "## Whole models (p50 in microseconds; speed-up = fp32 / int8)", "",
             "| Model | Path | Threads | Batch | fp32 | int8 | Speed-up |", "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['path']} | {r['threads']} | {r['batch']} | {r['fp32_p50_us']} | "
              f"{r['int8_p50_us']} | {r['speedup']} |" for r in document["models"]]
    if not document["layers"]:
        path.write_text("\n".join(lines) + "\n")
        return
    lines += ["", "## Single Conv2D layers, LiteRT + XNNPACK, 1 thread, batch 1", "",
              "| Layer | MMAC | fp32 (us) | int8 (us) | fp32 GMAC/s | int8 GMAC/s | Speed-up |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['layer']} | {r['macs'] / 1e6:.2f} | {r['fp32_p50_us']} | {r['int8_p50_us']} | "
              f"{r['fp32_gmacs']} | {r['int8_gmacs']} | {r['speedup']} |" for r in document["layers"]]
    lines += ["", "## Roofline", "", f"Measured int8 ceiling: {document['int8_peak_gmacs']} GMAC/s (best layer above); "
              f"fp32: {document['fp32_peak_gmacs']} GMAC/s.", "",
              "| Model | MACs | int8 p50, 1 thread, XNNPACK (us) | roofline (us) | p50 / roofline |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['macs']:,} | {r['int8_p50_us']} | {r['roofline_us']} | {r['ratio']} |"
              for r in document["roofline"]]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    import shlex
    import sys

    from edgecnn.runtime.manifest import tool_versions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="run directories with fp32 and int8 artifacts")
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per batch-1 measurement")
    parser.add_argument("--models-only", action="store_true", help="whole models only: no TensorFlow needed")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for int8_speed.{json,md}")
    args = parser.parse_args()
    cpu = cpu_info()
    models = [row for run_dir in args.run_dirs for row in model_rows(run_dir, args.runs, not args.models_only)]
    layers = [] if args.models_only else conv_rows(args.runs)
    int8_peak = max((r["int8_gmacs"] for r in layers), default=None)
    fp32_peak = max((r["fp32_gmacs"] for r in layers), default=None)
    roofline = []
    for r in models:
        if layers and r["path"] == "LiteRT + XNNPACK" and r["threads"] == 1 and r["batch"] == 1:
            floor = r["macs"] / int8_peak / 1e3
            roofline.append({"model": r["model"], "macs": r["macs"], "int8_p50_us": r["int8_p50_us"],
                             "roofline_us": round(floor, 1), "ratio": round(r["int8_p50_us"] / floor, 2)})
    document = {"command": shlex.join(["python", "benchmarks/int8_speed.py", *sys.argv[1:]]), "cpu": cpu["model"],
                "int8_instructions": cpu["int8"],
                "models": models, "layers": layers, "int8_peak_gmacs": int8_peak, "fp32_peak_gmacs": fp32_peak,
                "roofline": roofline, "versions": tool_versions()}
    args.out.mkdir(exist_ok=True)
    (args.out / "int8_speed.json").write_text(json.dumps(document, indent=2) + "\n")
    write_markdown(document, args.out / "int8_speed.md")
    print((args.out / "int8_speed.md").read_text())


if __name__ == "__main__":
    main()
