"""Fuzz the runtime wrapper with corrupted model files and hostile inputs: every case must end cleanly.

    python tools/fuzz.py models/mnist/model_int8.tflite --cases 1000              # mutated copies, manifest beside
    python tools/fuzz.py models/mnist/model_int8.onnx --cases 1000 --no-manifest  # mutated copies, nothing to check
    python tools/fuzz.py models/mnist/model_int8.tflite --inputs --cases 1000     # hostile arrays and image bytes
    python tools/fuzz.py models/mnist/model_int8.tflite --cases 5000 --seconds 120 --json fuzz.json
    python tools/fuzz.py models/mnist/model_int8.tflite --cases 1000 --no-manifest --batch 32  # past the probe's 1-2

Model cases (``--inputs`` off) copy the artifact with one mutation each: flipped bytes, a truncation, appended
bytes or a zeroed range (never the original bytes), and open it with ``Classifier`` (its manifest copied beside it
unless ``--no-manifest``), then classify a zero batch of ``--batch`` images (1 by default). Without the
manifest, ``Classifier`` opens each copy in a throwaway process first (``runtime.probe``), about 0.25 s a case: a
copy that aborts the runtime is refused, as is one whose probabilities come out NaN. Input cases keep the model
intact and feed ``predict`` arrays of random shapes and dtypes (NaN, infinities, empty, huge frames, Python
objects) and PNG/JPEG files with flipped, truncated or appended bytes, read the way ``edgecnn predict`` reads images.

Outcomes: ``refused`` (an EdgecnnError: a clean one-line error), ``ran`` (finite probabilities of the right
shape, a row per image), ``nonfinite`` (ran, with NaN or infinite output, or the wrong shape), ``unclean`` (any
other exception) and ``crash`` (the process died). Cases run in a worker process that is restarted after a crash,
so one crash costs one case. Case ``i`` depends only on ``--seed`` and ``i``. Exit status 0 when no case crashed
or ended unclean, and with ``--expect-refused`` only when every case was refused. (``EDGECNN_FUZZ_ABORT_AT=N``
makes the worker abort at case N: the tests use it to check that a crash is counted and the run goes on.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

OUTCOMES = ("refused", "ran", "nonfinite", "unclean", "crash")
MUTATIONS = ("flip", "truncate", "append", "zero")
DTYPES = ("uint8", "int8", "uint16", "int32", "int64", "float16", "float32", "float64", "bool", "complex64",
          "object", "str")


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One changed copy of ``data`` and the kind of change."""
    kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    buf = bytearray(data)
    if kind == "truncate":
        return kind, bytes(buf[: int(rng.integers(len(buf)))])
    if kind == "append":
        return kind, bytes(buf) + rng.bytes(int(rng.integers(1, 4097)))
    if kind == "zero":
        start = int(rng.integers(len(buf)))
        end = min(len(buf), start + int(rng.integers(1, 1025)))
        if any(buf[start:end]):
            buf[start:end] = bytes(end - start)
            return kind, bytes(buf)
        kind = "flip"  # the range was zero already: flip instead, so the copy always differs
    for pos in rng.integers(len(buf), size=int(rng.integers(1, 17))):
        buf[pos] ^= int(rng.integers(1, 256))
    return kind, bytes(buf)


def hostile_input(rng: np.random.Generator, shape: tuple[int, ...], image_bytes: dict[str, bytes]):
    """One hostile input for a model taking ``shape`` (H, W, C): (kind, value, is_image_bytes)."""
    roll = int(rng.integers(10))
    if roll < 3:  # an encoded image, damaged
        fmt = ("png", "jpg")[int(rng.integers(2))]
        return f"{fmt}-" + (kind := mutate(image_bytes[fmt], rng))[0], kind[1], True
    if roll == 3:  # Python objects that are not arrays
        values = [None, "7", {"image": 1}, [[1, 2], [3]], [], 3.5, b"\x00" * 10]
        value = values[int(rng.integers(len(values)))]
        return f"object-{type(value).__name__}", value, False
    if roll == 4:  # a huge frame, up to 4096 x 4096 x 3
        side = int(rng.integers(1024, 4097))
        return "huge-frame", np.full((side, side, 3), 128, np.uint8), False
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    ndim = int(rng.integers(0, 6))
    dims = [int(d) for d in rng.integers(0, 48, size=ndim)]
    if roll == 5 and len(shape) == 3:  # right shape, maybe batched, wrong or right dtype
        dims = [int(rng.integers(0, 4)), *shape] if rng.integers(2) else list(shape)
    size = int(np.prod(dims)) if dims else 1
    values = rng.normal(0, 1e3, size=size)
    if dtype.startswith("float") or dtype == "complex64":
        values[rng.random(size) < 0.1] = (np.nan, np.inf, -np.inf)[int(rng.integers(3))]
    if dtype == "str":
        array = np.array(values.astype(str)).reshape(dims)
    elif dtype == "object":
        array = np.array(values.astype(object)).reshape(dims)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            array = values.astype(dtype).reshape(dims)
    return f"array-{dtype}-{ndim}d", array, False


def _outcome(run, rows: int | None = None) -> tuple[str, str]:
    from edgecnn.common.errors import EdgecnnError

    try:
        probs = run()
    except EdgecnnError as exc:
        return "refused", str(exc)
    except Exception as exc:  # what the fuzzer hunts: an error edgecnn did not turn into its own
        return "unclean", f"{type(exc).__name__}: {exc}"
    probs = np.asarray(probs)
    if probs.ndim != 2 or (rows and len(probs) != rows) or not np.isfinite(probs).all():
        return "nonfinite", f"output shape {probs.shape}"
    return "ran", ""


def run_worker(args) -> None:
    """Run cases [start, end) and append one JSON line per case to ``args.results``."""
    import cv2

    from edgecnn.common.native_logs import native_output_muted
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.preprocess import decode_image

    source = Path(args.artifact)
    original = source.read_bytes()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-fuzz-"))
    if args.inputs:  # the intact model, and a real PNG and JPEG to damage
        with native_output_muted():
            reference = Classifier(source)
        frame = (np.random.default_rng(0).random((28, 28, 3)) * 255).astype(np.uint8)
        images = {fmt: cv2.imencode(f".{fmt}", frame)[1].tobytes() for fmt in ("png", "jpg")}
    elif not args.no_manifest:
        shutil.copy(source.parent / "manifest.json", work / "manifest.json")
    try:
        with open(args.results, "a") as results:
            for i in range(args.start, args.end):
                if time.time() > args.deadline:
                    break
                rng = np.random.default_rng([args.seed, i])
                if args.inputs:
                    kind, value, is_bytes = hostile_input(rng, reference.input_shape, images)

                    def run(value=value, is_bytes=is_bytes):
                        return reference.predict_proba(decode_image(value) if is_bytes else value)
                else:
                    kind, data = mutate(original, rng)
                    (work / source.name).write_bytes(data)

                    def run():
                        with native_output_muted(), Classifier(work / source.name) as clf:
                            return clf.predict_proba(np.zeros((args.batch, *clf.input_shape), np.float32))
                if i == int(os.environ.get("EDGECNN_FUZZ_ABORT_AT", -1)):
                    os.abort()  # lets the tests check that a crash is counted and the worker restarted
                outcome, message = _outcome(run, None if args.inputs else args.batch)
                message = message.replace(str(work), "<copy>")[:200]
                results.write(json.dumps({"case": i, "kind": kind, "outcome": outcome, "message": message}) + "\n")
                results.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fuzz(artifact: Path, cases: int, seconds: float, seed: int = 0, inputs: bool = False,
         no_manifest: bool = False, batch: int = 1) -> dict:
    """Run the cases in worker processes (one restart per crash); return the report."""
    deadline = time.time() + seconds
    done: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-fuzz-") as tmp:
        results = Path(tmp) / "results.jsonl"
        results.touch()
        start = 0
        while start < cases and time.time() < deadline:
            command = [sys.executable, __file__, str(artifact), "--worker", "--start", str(start), "--end",
                       str(cases), "--seed", str(seed), "--deadline", str(deadline), "--results", str(results),
                       "--batch", str(batch)]
            command += ["--inputs"] * inputs + ["--no-manifest"] * no_manifest
            worker = subprocess.run(command, capture_output=True, text=True)
            for line in results.read_text().splitlines():
                record = json.loads(line)
                done[record["case"]] = record
            start = max(done, default=-1) + 1
            if worker.returncode != 0 and start < cases and time.time() < deadline:
                reason = f"exit status {worker.returncode}: {worker.stderr.strip()[-200:]}"
                done[start] = {"case": start, "kind": "?", "outcome": "crash", "message": reason}
                start += 1
    counts = Counter(r["outcome"] for r in done.values())
    by_kind: dict[str, Counter] = {}
    for record in done.values():
        by_kind.setdefault(record["kind"], Counter())[record["outcome"]] += 1
    bad = [r for r in done.values() if r["outcome"] in ("unclean", "crash")]
    messages = Counter(re.sub(r"[0-9a-f]{8,}", "<hex>", r["message"].split(":")[0])[:80]
                       for r in done.values() if r["outcome"] == "refused")
    return {"artifact": str(artifact), "mode": "inputs" if inputs else ("no manifest" if no_manifest else "manifest"),
            "seed": seed, "batch": None if inputs else batch, "cases": len(done),
            "outcomes": {o: counts.get(o, 0) for o in OUTCOMES},
            "refused_share": round(counts.get("refused", 0) / max(len(done), 1), 4),
            "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "top_refusals": dict(messages.most_common(8)), "failures": bad[:20]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path, help="a .tflite or .onnx file, with its manifest beside it")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long, whatever the count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inputs", action="store_true", help="fuzz inputs instead of the model file")
    parser.add_argument("--no-manifest", action="store_true", help="mutated models without their manifest")
    parser.add_argument("--batch", type=int, default=1, help="images per call in model cases (default 1)")
    parser.add_argument("--expect-refused", action="store_true", help="fail unless every case is refused")
    parser.add_argument("--json", type=Path, help="write the report here")
    for hidden in ("--start", "--end", "--deadline", "--results"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.start, args.end, args.deadline = int(args.start), int(args.end), float(args.deadline)
        run_worker(args)
        return 0
    if not args.artifact.is_file():
        parser.error(f"no such artifact: {args.artifact}")
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, not {args.batch}")
    if args.artifact.suffix.lower() not in (".tflite", ".onnx"):
        parser.error(f"{args.artifact} is not a .tflite or .onnx model")
    if not (args.no_manifest or (args.artifact.parent / "manifest.json").is_file()):
        parser.error(f"no manifest.json beside {args.artifact}: fuzz it with --no-manifest")
    report = fuzz(args.artifact, args.cases, args.seconds, args.seed, args.inputs, args.no_manifest, args.batch)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    outcomes = report["outcomes"]
    ok = outcomes["unclean"] == 0 and outcomes["crash"] == 0
    return 0 if ok and (not args.expect_refused or report["refused_share"] == 1.0) else 1


if __name__ == "__main__":
    sys.exit(main())
