"""How much `Classifier.predict_proba` adds over a bare runtime loop, at batch 1 on preprocessed input.

    python benchmarks/runtime_overhead.py runs/demo models/mnist --threads 1 --runs 3000

For each artifact, in one process and interleaved in rounds (so machine noise hits both sides alike), it
times the bare loop (LiteRT: set_tensor / invoke / get_tensor with an already quantized input; ONNX Runtime:
session.run) and the wrapper on the same model, threads and input. Writes
benchmarks/results/runtime_overhead.{json,md}. Target (issue #5): wrapper median <= 1.05 x bare median.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgecnn.bench import time_calls
from edgecnn.manifest import Manifest, tool_versions
from edgecnn.quiet import native_output_muted
from edgecnn.runtime import Classifier

RESULTS = Path(__file__).parent / "results"


def bare_call(clf: Classifier, sample: np.ndarray):
    backend = clf.backend
    if backend.name == "onnx":
        session, feed, outputs = backend.session, {backend.input_name: sample}, [backend.output_name]
        return lambda: session.run(outputs, feed)
    interpreter, inp, out = backend.interpreter, backend.input["index"], backend.output["index"]
    quantizer = backend._quantizer
    quantized = quantizer.quantize(sample) if quantizer else sample  # the bare loop gets its input ready-made

    def call():
        interpreter.set_tensor(inp, quantized)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    return call


def measure(path: Path, threads: int, runs: int, rounds: int) -> dict:
    with native_output_muted():
        clf = Classifier(path, threads=threads)
    sample = np.random.default_rng(0).random((1, *clf.input_shape), dtype=np.float32)
    bare, wrapped = bare_call(clf, sample), lambda: clf.predict_proba(sample)
    bare_ms, wrapped_ms = [], []
    for _ in range(rounds):
        bare_ms.append(time_calls(bare, warmup=20, runs=runs // rounds))
        wrapped_ms.append(time_calls(wrapped, warmup=20, runs=runs // rounds))
    bare_p50, wrapped_p50 = np.median(np.concatenate(bare_ms)), np.median(np.concatenate(wrapped_ms))
    return {"artifact": path.name, "backend": clf.backend.name, "bare_p50_ms": round(float(bare_p50), 4),
            "wrapper_p50_ms": round(float(wrapped_p50), 4), "ratio": round(float(wrapped_p50 / bare_p50), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    rows = [{"run": str(run_dir), **measure(run_dir / a.file, args.threads, args.runs, args.rounds)}
            for run_dir in args.run_dirs for a in Manifest.load(run_dir).artifacts]
    document = {"threads": args.threads, "runs": args.runs, "batch": 1, "target_ratio": 1.05, "rows": rows,
                "versions": tool_versions()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runtime_overhead.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["| run | artifact | backend | bare p50 (ms) | wrapper p50 (ms) | ratio |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['artifact']} | {r['backend']} | {r['bare_p50_ms']} | {r['wrapper_p50_ms']} | "
              f"{r['ratio']} |" for r in rows]
    (RESULTS / "runtime_overhead.md").write_text(
        f"# Runtime wrapper overhead, batch 1, {args.threads} thread(s), {args.runs} runs\n\n"
        f"Command: `python benchmarks/runtime_overhead.py {' '.join(map(str, args.run_dirs))}`\n\n"
        + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
