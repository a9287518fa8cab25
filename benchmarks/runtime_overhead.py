"""How much `Classifier.predict_proba` adds over a bare runtime loop, at batch 1 on preprocessed input.

    python benchmarks/runtime_overhead.py runs/demo models/mnist --threads 1 --runs 3000

For each artifact it times, on the same model, threads and input: the bare loop (LiteRT: its own interpreter of the
file as it is, set_tensor / invoke / get_tensor with an input quantized for free; ONNX Runtime: session.run), the
wrapper (which, for int8 LiteRT models, quantizes inside the graph: edgecnn.float_io), and for int8 LiteRT models
the inline loop: the bare loop plus the finite check, OpenCV quantizing and a dequantizing lookup written inline, as
an app without the wrapper would (and as the wrapper did before), and the wrapper handed the bare loop's own input,
int8 codes (`predict_proba(codes)`). Calls alternate one by one, the order rotating, so a slow
spell of this noisy host hits all alike (rounds of 300 calls each gave ratios of 1.08 and 1.28 for one model in
two runs a minute apart), and each artifact is measured in a few fresh processes. Writes
benchmarks/results/runtime_overhead.{json,md}. Target (issue #5): wrapper median <= 1.05 x bare median.

With --float-io, each run's int8 TFLite model is also exported with float input and output (`edgecnn export
--float-io`: the same int8 kernels, quantizing and dequantizing inside the graph) into a scratch copy of the run,
and measured the same way, the int8-I/O model's wrapper joining its rounds: how much an app gains end to end.
The export calibrates on the run's dataset (300 training images, seed 0), so MNIST and Fashion-MNIST runs need
$EDGECNN_DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.native_logs import native_output_muted
from edgecnn.deploy.bench import KERAS_FILE
from edgecnn.deploy.targets import cpu_info
from edgecnn.runtime.classifier import Classifier, Quantizer, quantization_params, tflite_interpreter_class
from edgecnn.runtime.manifest import MANIFEST_NAME, Manifest, tool_versions
from edgecnn.runtime.preprocess import MAX_ABS_SUM

RESULTS = Path(__file__).parent / "results"


def file_interpreter(path: Path, threads: int):
    """A LiteRT interpreter of the file as it is, the way an app without the wrapper would open it."""
    interpreter = tflite_interpreter_class()(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter, interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def ready_input(detail: dict, sample: np.ndarray) -> np.ndarray:
    """``sample`` as the tensor takes it: quantized by numpy (round half to even, saturated) for an int8 tensor."""
    params = quantization_params(detail)
    if params is None:
        return sample
    info = np.iinfo(detail["dtype"])
    return np.clip(np.rint(sample / params[0]) + params[1], info.min, info.max).astype(detail["dtype"])


def bare_call(clf: Classifier, sample: np.ndarray, threads: int):
    backend = clf.backend
    if backend.name == "onnx":
        session, feed, outputs = backend.session, {backend.input_name: sample}, [backend.output_name]
        return lambda: session.run(outputs, feed)
    interpreter, inp, out = file_interpreter(clf.path, threads)
    ready = ready_input(inp, sample)  # the bare loop gets its input ready-made

    def call():
        interpreter.set_tensor(inp["index"], ready)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return call


def inline_call(clf: Classifier, sample: np.ndarray, threads: int):
    """For a LiteRT model with int8 input and output, the bare loop plus the three steps an app without the wrapper
    must add, made in OpenCV and numpy as the wrapper made them until it moved quantizing into the graph
    (cv2.norm, cv2.addWeighted, a table lookup), inline. None for other models."""
    if clf.backend.name != "tflite":
        return None
    interpreter, inp, out = file_interpreter(clf.path, threads)
    quantizer, dequantizer = Quantizer.of(inp), Quantizer.of(out)
    if quantizer is None or dequantizer is None:
        return None
    codes, take = np.empty(inp["shape"], inp["dtype"]), dequantizer.table.take
    scale, zero_point, cv_type = quantizer.inverse_scale, quantizer.zero_point, quantizer._cv_type

    def call():
        if not cv2.norm(sample, cv2.NORM_L1) <= MAX_ABS_SUM:
            raise ValueError("NaN")
        interpreter.set_tensor(inp["index"], cv2.addWeighted(sample, scale, sample, 0.0, zero_point, codes, cv_type))
        interpreter.invoke()
        return take(interpreter.get_tensor(out["index"]))

    return call


def interleaved_times(calls: list, runs: int, warmup: int = 50) -> np.ndarray:
    """Milliseconds, shape (runs, len(calls)): in each round every call runs once, back to back, the order
    rotating from round to round."""
    for _ in range(warmup):
        for call in calls:
            call()
    times = np.empty((runs, len(calls)))
    clock = time.perf_counter
    for i in range(runs):
        for k in range(len(calls)):
            j = (i + k) % len(calls)
            start = clock()
            calls[j]()
            times[i, j] = (clock() - start) * 1e3
    return times


def measure(path: Path, threads: int, runs: int, versus: Path | None = None) -> dict:
    """One process's medians for one artifact, in ms; ``inline`` None where the model is not int8 LiteRT;
    ``versus`` None, or the wrapper's median on that other model, timed in the same rounds."""
    with native_output_muted():
        clf = Classifier(path, threads=threads)
        other = Classifier(versus, threads=threads) if versus else None
    sample = np.random.default_rng(0).random((1, *clf.input_shape), dtype=np.float32)
    calls = [bare_call(clf, sample, threads), lambda: clf.predict_proba(sample)]
    codes = ready_input(clf.backend.input, sample) if clf.backend.input_dtype == np.int8 else None
    extra = {"inline": inline_call(clf, sample, threads),
             "versus": (lambda: other.predict_proba(sample)) if other else None,
             "codes": (lambda: clf.predict_proba(codes)) if codes is not None else None}
    for name in ("inline", "codes"):
        if extra[name]:
            np.testing.assert_array_equal(extra[name](), calls[1]())  # the same work, the same answer
    calls += [call for call in extra.values() if call]
    times = iter(np.median(interleaved_times(calls, runs), axis=0).tolist())
    return {"backend": clf.backend.name, "bare": next(times), "wrapper": next(times),
            **{name: next(times) if call else None for name, call in extra.items()}}


def in_fresh_processes(fn, args: tuple, processes: int) -> list:
    """``fn(*args)`` in ``processes`` new Python processes, one after another: each measurement gets a fresh
    interpreter."""
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return [pool.apply(fn, args) for _ in range(processes)]


def measure_in_fresh_processes(path: Path, threads: int, runs: int, processes: int, versus: Path | None = None,
                               label: str | None = None) -> dict:
    """``measure`` in ``processes`` new processes, one after another: a process's medians can sit tens of
    percent above the next one's on this host, so the row gives medians over processes and the ratios' range."""
    results = in_fresh_processes(measure, (path, threads, runs, versus), processes)
    ratios = [r["wrapper"] / r["bare"] for r in results]
    row = {"artifact": label or path.name, "backend": results[0]["backend"],
           "bare_p50_ms": round(float(np.median([r["bare"] for r in results])), 4),
           "wrapper_p50_ms": round(float(np.median([r["wrapper"] for r in results])), 4),
           "ratio": round(float(np.median(ratios)), 3), "ratio_min": round(min(ratios), 3),
           "ratio_max": round(max(ratios), 3), "inline_ratio": None, "codes_ratio": None}
    for name in ("inline", "codes"):
        if results[0][name] is not None:
            row[f"{name}_ratio"] = round(float(np.median([r[name] / r["bare"] for r in results])), 3)
    if versus:
        row["versus_int8_io"] = round(float(np.median([r["wrapper"] / r["versus"] for r in results])), 3)
    return row


def float_io_row(run_dir: Path, scratch: Path, threads: int, runs: int, processes: int) -> dict:
    """Export ``run_dir``'s int8 TFLite model with float I/O into a copy of the run under ``scratch`` and measure
    it, the run's own (int8-I/O) model_int8.tflite timed alongside."""
    from edgecnn.api import export_run
    from edgecnn.workstation.export import ExportOptions  # TensorFlow, kept out of the processes that time

    copy = scratch / run_dir.name
    copy.mkdir()
    for name in (KERAS_FILE, MANIFEST_NAME):
        shutil.copy(run_dir / name, copy / name)
    with native_output_muted():
        export_run(copy, formats=("tflite",), precisions=("int8",), options=ExportOptions(int8_io=False))
    return measure_in_fresh_processes(copy / "model_int8.tflite", threads, runs, processes,
                                      versus=run_dir / "model_int8.tflite", label="model_int8.tflite, float I/O")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3000, help="timed rounds per process")
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per artifact")
    parser.add_argument("--float-io", action="store_true", help="also an int8 TFLite export with float I/O")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for runtime_overhead.{json,md}")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for run_dir in args.run_dirs:
            rows += [{"run": str(run_dir), **measure_in_fresh_processes(run_dir / a.file, args.threads, args.runs,
                                                                         args.processes)}
                     for a in Manifest.load(run_dir).artifacts]
            if args.float_io:
                rows.append({"run": str(run_dir),
                             **float_io_row(run_dir, Path(scratch), args.threads, args.runs, args.processes)})
    cpu = cpu_info()
    document = {"threads": args.threads, "runs": args.runs, "processes": args.processes, "batch": 1,
                "target_ratio": 1.05, "cpu": cpu["model"], "int8_instructions": cpu["int8"], "rows": rows,
                "versions": tool_versions()}
    args.out.mkdir(exist_ok=True)
    (args.out / "runtime_overhead.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["| run | artifact | backend | bare p50 (ms) | wrapper p50 (ms) | ratio | ratio range | inline ratio "
             "| ratio, int8 codes in | wrapper vs int8-I/O wrapper |", "|---|---|---|---:|---:|---:|---|" + "---:|" * 3]
    lines += [f"| {r['run']} | {r['artifact']} | {r['backend']} | {r['bare_p50_ms']} | {r['wrapper_p50_ms']} | "
              f"{r['ratio']} | {r['ratio_min']}-{r['ratio_max']} | {r['inline_ratio'] or '-'} | "
              f"{r['codes_ratio'] or '-'} | {r.get('versus_int8_io') or '-'} |" for r in rows]
    (args.out / "runtime_overhead.md").write_text(
        f"# Runtime wrapper overhead, batch 1, {args.threads} thread(s)\n\n"
        f"CPU: {cpu['model']} (int8 instructions: {', '.join(cpu['int8']) or 'none listed'}). "
        f"Command: `python benchmarks/runtime_overhead.py {' '.join(map(str, args.run_dirs))}"
        f"{' --float-io' if args.float_io else ''}"
        f"{'' if args.out == RESULTS else f' --out {args.out}'}`\n\n"
        f"Each artifact measured in {args.processes} fresh processes of {args.runs} rounds, the calls alternating "
        "one by one; medians over the processes, and the range of their ratios. Inline ratio (int8 LiteRT): the "
        "bare loop plus the finite check, OpenCV quantizing and dequantizing written inline, against the bare loop. "
        "Int8 codes in (int8-input LiteRT): the wrapper given the bare loop's own quantized input, against the bare "
        "loop. "
        "Float I/O rows (--float-io): the int8 model exported with float input and output, its wrapper's median "
        "over the int8-I/O model's wrapper in the same rounds in the last column.\n\n"
        + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
