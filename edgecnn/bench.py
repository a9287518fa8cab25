"""Accuracy and batch-1 latency of every artifact on a target, as a table and as JSON.

    rows = bench_paths(["runs/demo"], resolve_target("cpu"))
    print_table(rows, title="cpu")
    write_json_atomic("runs/demo/report.json", report(rows, target, warmup=20, runs=200))

Latency: ``warmup`` calls, then ``runs`` timed calls of ``predict_proba`` on one preprocessed image; p50 and
p90 are percentiles of those, FPS is 1000 / p50. Accuracy: every test-split image through the runtime wrapper,
with the manifest's preprocessing, as a device would run it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgecnn.errors import EdgecnnError
from edgecnn.manifest import Manifest, tool_versions
from edgecnn.quiet import native_output_muted
from edgecnn.runtime import Classifier
from edgecnn.targets import Target

KERAS_FILE = "model.keras"


@dataclass
class BenchRow:
    artifact: str
    format: str
    precision: str
    size_kb: float
    status: str = "ok"  # ok | skipped | failed
    note: str = ""
    accuracy: float | None = None  # percent
    n: int = 0  # test images behind the accuracy
    p50_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    fps: float | None = None


def time_calls(fn, warmup: int, runs: int) -> np.ndarray:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; return each timed call in milliseconds."""
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        times[i] = (time.perf_counter() - start) * 1e3
    return times


def latency_stats(ms: np.ndarray) -> dict[str, float]:
    p50, p90 = np.percentile(ms, [50, 90])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "mean_ms": float(ms.mean()), "fps": float(1e3 / p50)}


def accuracy_percent(y_true: np.ndarray, probs: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return 100.0 * float(accuracy_score(y_true, probs.argmax(axis=1)))


def test_split(record: dict, data_dir=None):
    """Rebuild the test split a manifest's dataset record describes: (raw images, labels)."""
    from edgecnn.data import load_dataset

    ds = load_dataset(record["name"], image_size=record["image_size"], seed=record["seed"], data_dir=data_dir)
    return ds.split("test").images, ds.split("test").labels


def bench_artifact(path: Path, target: Target, test, warmup: int, runs: int) -> BenchRow:
    """One row for a .tflite or .onnx file; ``test`` is (images, labels) or None to skip accuracy."""
    fmt = path.suffix.lstrip(".").lower()
    row = BenchRow(path.name, fmt, "?", path.stat().st_size / 1024 if path.is_file() else 0.0)
    if fmt not in target.formats:
        row.status, row.note = "skipped", f"{fmt} does not run on the {target.name} target"
        return row
    try:
        with native_output_muted():
            clf = Classifier(path, threads=target.threads, providers=list(target.providers))
        entry = clf.manifest.entry(path.name) if clf.manifest else None
        row.precision = entry.precision if entry else "?"
        if clf.manifest is not None and test:
            row.accuracy, row.n = accuracy_percent(test[1], clf.predict_proba(test[0])), len(test[1])
            sample = clf.prepare(test[0][:1])[0]
        else:
            row.note = "no manifest: accuracy skipped" if clf.manifest is None else "no test split: accuracy skipped"
            sample = np.zeros((1, *clf.input_shape), np.float32)
        _fill_latency(row, time_calls(lambda: clf.predict_proba(sample), warmup, runs))
    except EdgecnnError as exc:
        row.status, row.note = "failed", str(exc)
    return row


def bench_keras(path: Path, manifest: Manifest, test, warmup: int, runs: int) -> BenchRow:
    """The Keras model as the float reference (skipped where TensorFlow is not installed)."""
    row = BenchRow(path.name, "keras", "fp32", path.stat().st_size / 1024, note="reference")
    try:
        from edgecnn.train import load_model
    except ImportError:
        row.status, row.note = "skipped", "TensorFlow is not installed (pip install 'edgecnn[train]')"
        return row
    try:
        model = load_model(path)
        if test:
            x = manifest.preprocessing(test[0])
            row.accuracy, row.n = accuracy_percent(test[1], model.predict(x, batch_size=256, verbose=0)), len(x)
        sample = np.zeros((1, *manifest.preprocessing.input_shape), np.float32)
        _fill_latency(row, time_calls(lambda: model.predict_on_batch(sample), warmup, runs))
    except EdgecnnError as exc:
        row.status, row.note = "failed", str(exc)
    return row


def expand(paths: list[str | Path], target: Target) -> list[tuple[Path, Manifest | None]]:
    """Run directories become their manifest's artifacts (and the Keras reference where the target wants it)."""
    items = []
    for path in map(Path, paths):
        if path.is_dir():
            manifest = Manifest.load(path)
            if target.keras_reference and (path / KERAS_FILE).is_file():
                items.append((path / KERAS_FILE, manifest))
            items += [(path / a.file, manifest) for a in manifest.artifacts]
        elif path.is_file():
            items.append((path, Manifest.beside(path)))
        else:
            raise EdgecnnError(f"no such run directory or artifact: {path}")
    if not items:
        raise EdgecnnError("nothing to benchmark: the run directory lists no artifacts (run `edgecnn export`)")
    return items


def bench_paths(paths, target: Target, warmup: int = 20, runs: int = 200, data_dir=None) -> list[BenchRow]:
    """Benchmark run directories and/or artifact files on ``target``; ``data_dir`` holds the dataset files."""
    if warmup < 0 or runs < 1:
        raise EdgecnnError("runs must be at least 1 and warmup at least 0")
    splits: dict[str, tuple] = {}
    rows = []
    for path, manifest in expand(paths, target):
        test = None
        if manifest and manifest.dataset:
            key = repr(sorted(manifest.dataset.items()))
            if key not in splits:
                try:
                    splits[key] = test_split(manifest.dataset, data_dir)
                except (ImportError, EdgecnnError, KeyError):  # runtime-only device, or a dataset unknown here
                    splits[key] = None
            test = splits[key]
        if path.suffix == ".keras":
            row = bench_keras(path, manifest, test, warmup, runs)
        else:
            row = bench_artifact(path, target, test, warmup, runs)
        rows.append(row)
    return rows


def print_table(rows: list[BenchRow], title: str, console: Console | None = None) -> None:
    table = Table(title=title)
    for name in ("Artifact", "Format", "Precision", "Size (KB)", "Accuracy (%)", "p50 (ms)", "p90 (ms)", "FPS"):
        table.add_column(name, justify="left" if name in ("Artifact", "Format", "Precision") else "right")
    table.add_column("Status")
    for r in rows:
        table.add_row(
            r.artifact, r.format, r.precision, f"{r.size_kb:.1f}", _fmt(r.accuracy, ".2f"),
            _fmt(r.p50_ms, ".3f"), _fmt(r.p90_ms, ".3f"), _fmt(r.fps, ".0f"),
            r.status + (f": {r.note}" if r.note else ""),
        )
    (console or Console()).print(table)


def report(rows: list[BenchRow], target: Target, warmup: int, runs: int) -> dict:
    """The JSON document `edgecnn bench --json` writes and the pipeline saves as report.json."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": target.to_dict(),
        "latency": {"batch": 1, "warmup": warmup, "runs": runs, "fps": "1000 / p50_ms"},
        "rows": [asdict(r) for r in rows],
        "versions": tool_versions(),
    }


def _fill_latency(row: BenchRow, ms: np.ndarray) -> None:
    for key, value in latency_stats(ms).items():
        setattr(row, key, value)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
