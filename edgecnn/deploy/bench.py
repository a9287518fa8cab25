"""Accuracy and latency (batch 1 unless the target says more) of every artifact on a target, as a table and JSON.

    rows = bench_paths(["runs/demo"], resolve_target("cpu", batch=8))
    print_table(rows, title="cpu")                      # edgecnn.deploy.report: table, JSON, CSV, Markdown, plot

Per row: ``load_ms`` (opening the model, with its sha256 check, or without a manifest the probe's throwaway
process: :mod:`edgecnn.runtime.probe`), ``first_ms`` (the first call), then ``warmup`` untimed calls and ``runs``
timed calls of ``predict_proba`` on a preprocessed batch of ``batch`` images; p50/p90/p99 are percentiles of those,
FPS is ``batch`` * 1000 / p50, GMAC/s the model's MACs per image times FPS.
Accuracy: every test-split image through the runtime wrapper, with the manifest's preprocessing, as a device
would run it; agreement: top-1 agreement with the Keras model when it is benched in the same call.
``peak_rss_mb``: the peak RSS of a fresh process that loads just that model and runs it at the bench's batch
(:mod:`edgecnn.deploy.memory`), so each row shows what it needs, not what the rows before it left behind.
``device``: where the row ran: ONNX Runtime's provider as the session reports it (``CUDA``, ``Tensorrt``, ``CPU``),
``CPU`` for LiteRT, ``GPU`` or ``CPU`` for Keras (where its weights live; off the ``gpu`` target Keras is kept on
the CPU). ONNX Runtime drops a GPU provider that fails to start and runs on the CPU without a word, so on the
``gpu`` target such a row is marked failed rather than timed as if on the GPU.
Status: ``passed``; ``exported, evaluation failed`` (the model loads but accuracy could not be measured);
``failed`` (it does not load or run); ``skipped`` (not for this target).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError, one_or_many
from edgecnn.common.native_logs import native_output_muted
from edgecnn.common.progress import OnStart
from edgecnn.deploy.memory import artifact_peak_rss_mb
from edgecnn.deploy.targets import X86_INT8, Target
from edgecnn.runtime.backends import GPU_PROVIDERS
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import MANIFEST_NAME, TTA_VIEWS, Manifest

KERAS_FILE = "model.keras"
MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")
TWO_VIEWS = "image + mirror (--tta flip)"  # the note on rows whose model averages each image and its mirror
FLOAT_IO = "float I/O"  # the note on int8 TFLite rows that quantize inside the graph (export --float-io)
TEST_SPLIT_FILE = "test_split.npz"  # images and labels shipped beside a manifest to a remote device
PASSED, EVAL_FAILED, FAILED, SKIPPED = "passed", "exported, evaluation failed", "failed", "skipped"
STATUSES = (PASSED, EVAL_FAILED, FAILED, SKIPPED)
EVAL_CHUNK = 256  # test images per call when measuring accuracy: bounded memory on small devices
WARMUP = 20  # untimed calls before timing
MIN_TIME_S = 1.0  # by default each artifact is timed for at least this long, so small models get many runs
MIN_RUNS = 100
ROUNDS = 10  # interleaved rounds over the artifacts of one bench


@dataclass
class BenchRow:
    artifact: str
    format: str
    precision: str
    size_kb: float
    status: str = PASSED  # see STATUSES
    note: str = ""
    accuracy: float | None = None  # percent
    n: int = 0  # test images behind the accuracy
    agreement: float | None = None  # percent top-1 agreement with the Keras model
    batch: int = 1
    load_ms: float | None = None
    first_ms: float | None = None
    p50_ms: float | None = None
    p50_low_ms: float | None = None  # the 95% confidence interval of the median
    p50_high_ms: float | None = None
    runs: int = 0  # timed runs behind the latency figures
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    fps: float | None = None
    macs: int | None = None  # per image
    gmacs: float | None = None  # achieved, at p50
    peak_rss_mb: float | None = None
    host: str = ""  # the --host it ran on; empty: this machine
    device: str = ""  # CPU, CUDA, Tensorrt, GPU: see the module docstring
    ram_kb: float | None = None  # micro target: the smallest tensor arena that runs the model
    rom_kb: float | None = None  # micro target: the flash the model takes (its bytes)


def time_calls(fn, warmup: int, runs: int) -> np.ndarray:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; return each timed call in milliseconds."""
    return time_interleaved([fn], warmup, runs=runs)[0]


def time_interleaved(calls: list[Callable[[], object]], warmup: int = WARMUP, runs: int | None = None,
                     min_time_s: float = MIN_TIME_S, rounds: int = ROUNDS) -> list[np.ndarray]:
    """Each call's timed runs in milliseconds, taken in ``rounds`` interleaved rounds so that a slow spell of the
    host hits every call alike. ``runs`` fixes the count per call; None times each for at least ``min_time_s``
    seconds and MIN_RUNS runs, from its warm-up speed."""
    if not calls:
        return []
    counts = []
    for fn in calls:
        start = time.perf_counter()
        for _ in range(warmup if runs is not None else max(warmup, 1)):  # the minimum time needs one call's speed
            fn()
        each_s = (time.perf_counter() - start) / max(warmup, 1)
        counts.append(runs if runs is not None else max(MIN_RUNS, math.ceil(min_time_s / max(each_s, 1e-7))))
    times = [np.empty(n) for n in counts]
    rounds = max(1, min(rounds, min(counts)))
    for r in range(rounds):
        for fn, n, out in zip(calls, counts, times, strict=True):
            for i in range(n * r // rounds, n * (r + 1) // rounds):
                start = time.perf_counter()
                fn()
                out[i] = (time.perf_counter() - start) * 1e3
    return times


def latency_stats(ms: np.ndarray, batch: int = 1) -> dict[str, float]:
    """Percentiles, mean, spread and FPS of timed runs, with the 95% confidence interval of the median (the order
    statistics that bound it, by the binomial distribution of the runs below it)."""
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    ordered, half = np.sort(ms), 1.96 * math.sqrt(len(ms)) / 2
    low = ordered[max(0, math.floor(len(ms) / 2 - half))]
    high = ordered[min(len(ms) - 1, math.ceil(len(ms) / 2 + half))]
    return {"p50_ms": float(p50), "p50_low_ms": float(low), "p50_high_ms": float(high), "p90_ms": float(p90),
            "p99_ms": float(p99), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
            "fps": float(batch * 1e3 / p50), "runs": len(ms)}


def accuracy_percent(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Top-1 accuracy in percent (numpy only: it runs on devices that have just ``edgecnn[runtime]``)."""
    return 100.0 * float(np.mean(np.asarray(y_true) == probs.argmax(axis=1)))


def load_test_split(record: dict, data_dir=None, folder: Path | None = None):
    """The test split a manifest's dataset record describes: (raw images, labels). ``folder/test_split.npz``
    (written there by ``edgecnn bench --host``) is used when present; otherwise the dataset is rebuilt."""
    npz = folder / TEST_SPLIT_FILE if folder else None
    if npz and npz.is_file():
        with np.load(npz, allow_pickle=False) as saved:
            return saved["images"], saved["labels"]
    from edgecnn.workstation.data import load_dataset

    ds = load_dataset(record["name"], image_size=record["image_size"], seed=record["seed"], data_dir=data_dir)
    return ds.split("test").images, ds.split("test").labels


def find_test_split(record: dict, data_dir=None, folder: Path | None = None) -> tuple[tuple | None, str]:
    """(:func:`load_test_split`, ""), or (None, why) where it cannot be had here: a runtime-only device, a dataset
    not on disk, a record that names no dataset."""
    try:
        return load_test_split(record, data_dir, folder), ""
    except ImportError as exc:
        return None, f"rebuilding the dataset needs {exc.name}, which is not installed"
    except KeyError as exc:
        return None, f"the manifest's dataset record has no {exc}"
    except EdgecnnError as exc:
        return None, str(exc)


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1e3


def bench_artifact(path: Path, target: Target, test, warmup: int = WARMUP, runs: int | None = None,
                   batch: int = 1, reference: np.ndarray | None = None) -> BenchRow:
    """One row for a .tflite or .onnx file; ``test`` is (images, labels) or None to skip accuracy;
    ``reference`` the Keras model's top-1 on the same images, for the agreement."""
    row, call = open_artifact(path, target, test, batch, reference)
    if call:
        fill_latency(row, time_interleaved([call], warmup, runs)[0])
    return row


def open_artifact(path: Path, target: Target, test, batch: int = 1,
                  reference: np.ndarray | None = None) -> tuple[BenchRow, Callable[[], object] | None]:
    """:func:`bench_artifact`'s row with all but the latency, and the call to time (None where it failed)."""
    fmt = path.suffix.lstrip(".").lower()
    row = BenchRow(path.name, fmt, "?", path.stat().st_size / 1024 if path.is_file() else 0.0, batch=batch)
    if fmt not in target.formats:
        row.status, row.note = SKIPPED, f"{fmt} does not run on the {target.name} target"
        return row, None
    try:
        with native_output_muted():
            clf, row.load_ms = _timed(lambda: Classifier(path, threads=target.threads,
                                                         providers=list(target.providers)))
        row.device = _require_gpu_if_asked(clf, target)
        entry = clf.manifest.entry(path.name) if clf.manifest else None
        row.precision = entry.precision if entry else "?"
        row.macs = artifact_macs(path, probe=False)  # the Classifier above probed it where nothing vouches for it
        sample = np.zeros((batch, *clf.input_shape), np.float32)
        _, row.first_ms = _timed(lambda: clf.predict_proba(sample))
        if clf.manifest is None or not test:
            row.note = "no manifest: accuracy skipped" if clf.manifest is None else "no test split: accuracy skipped"
        else:
            try:
                probs = np.concatenate([clf.predict_proba(test[0][i : i + EVAL_CHUNK])
                                        for i in range(0, len(test[0]), EVAL_CHUNK)])
                row.accuracy, row.n = accuracy_percent(test[1], probs), len(test[1])
                if reference is not None:
                    row.agreement = 100.0 * float(np.mean(probs.argmax(1) == reference))
                sample = clf.prepare(test[0][np.arange(batch) % len(test[0])])[0]  # cycles a short split
            except EdgecnnError as exc:
                row.status, row.note = EVAL_FAILED, str(exc)
        if row.status == PASSED:
            layout = [TWO_VIEWS] if clf.manifest and clf.manifest.tta == "flip" else []
            if (fmt, row.precision) == ("tflite", "int8") and clf.backend.input_dtype == np.float32:  # --float-io
                layout.append(FLOAT_IO)
            row.note = ", ".join(filter(None, [row.note, *layout]))
        return row, lambda: clf.predict_proba(sample)
    except EdgecnnError as exc:
        row.status, row.note = FAILED, str(exc)
    return row, None


def _require_gpu_if_asked(clf: Classifier, target: Target) -> str:
    """The device the model runs on; EdgecnnError where the target asked for a GPU provider and got the CPU."""
    ran = list(getattr(clf.backend, "providers", None) or ["CPUExecutionProvider"])  # LiteRT: the CPU
    wanted = [p for p in target.providers if p in GPU_PROVIDERS]
    if clf.backend.name == "onnx" and wanted and not set(wanted) & set(ran):
        raise EdgecnnError(f"{' and '.join(wanted)} did not start, so ONNX Runtime fell back to the CPU: "
                           "it needs the NVIDIA driver, CUDA 13 and cuDNN 9 (pip install 'edgecnn[gpu]')")
    return ran[0].removesuffix("ExecutionProvider")


def artifact_macs(path: Path, probe: bool = True) -> int | None:
    """Multiply-accumulates per image of a .tflite or .onnx file, or None where it cannot be parsed here (ONNX needs
    the onnx package, which a runtime-only device lacks). ``probe``: as :func:`inspect_artifact`'s."""
    from edgecnn.deploy.inspection import inspect_artifact

    try:
        with native_output_muted():
            return inspect_artifact(path, probe)["macs"]
    except Exception:  # MACs are a nicety: a model the runtime runs but the inspector cannot parse still benches
        return None


def bench_keras(path: Path, manifest: Manifest | None, test, warmup: int = WARMUP, runs: int | None = None,
                batch: int = 1, gpu: bool = False) -> tuple[BenchRow, np.ndarray | None]:
    """:func:`open_keras`'s row, timed, and its top-1 predictions."""
    row, top1, call = open_keras(path, manifest, test, batch, gpu)
    if call:
        fill_latency(row, time_interleaved([call], warmup, runs)[0])
    return row, top1


def open_keras(path: Path, manifest: Manifest | None, test, batch: int = 1,
               gpu: bool = False) -> tuple[BenchRow, np.ndarray | None, Callable[[], object] | None]:
    """The Keras model as the float reference, on whichever Keras backend ``$KERAS_BACKEND`` names (skipped where
    Keras or that backend is not installed), and its top-1 predictions on the test images (None without them).
    Without a manifest it is timed on the model's own input shape, with no test-time augmentation.
    ``gpu``: run where the backend puts it (its GPU where it sees one) and say on the row when that is the CPU, so a
    CPU time is not read as a GPU one; otherwise it runs on the CPU, as the other rows of a cpu or rpi bench do."""
    row = BenchRow(path.name, "keras", "fp32", path.stat().st_size / 1024, note="reference", batch=batch)
    try:
        from edgecnn.workstation.models import keras, keras_device, keras_macs, keras_placement, load_model, with_tta
    except ImportError as exc:
        row.status, row.note = SKIPPED, (f"Keras cannot start: no module {exc.name!r} (pip install 'edgecnn[train]', "
                                         "or keras plus jax or torch with KERAS_BACKEND set)")
        return row, None, None
    top1 = None
    try:
        with nullcontext() if gpu else keras.device("cpu"):  # "cpu:0" fails on PyTorch (Dropout)
            plain, row.load_ms = _timed(lambda: load_model(path))
            tta = manifest.tta if manifest else "none"
            model = with_tta(plain, tta)  # the reference computes what the artifacts compute
            backend = keras.backend.backend()
            if backend != "tensorflow":
                row.note += f", Keras on {backend}"
            if tta == "flip":
                row.note += f", {TWO_VIEWS}"
            if manifest is None:
                row.note += ", no manifest: accuracy skipped"
            row.device = keras_placement(plain)
            if gpu and row.device == "CPU":
                unseen = keras_device() == "CPU"
                row.note += ", on the CPU" + (f": Keras' {backend} backend sees no GPU" if unseen else "")
            row.macs = keras_macs(plain) * TTA_VIEWS[tta]
            shape = manifest.preprocessing.input_shape if manifest else tuple(plain.inputs[0].shape[1:])
            sample = np.zeros((batch, *shape), np.float32)
            _, row.first_ms = _timed(lambda: model.predict_on_batch(sample))
            if test:
                x = manifest.preprocessing(test[0])
                probs = np.asarray(model.predict(x, batch_size=256, verbose=0))
                row.accuracy, row.n, top1 = accuracy_percent(test[1], probs), len(x), probs.argmax(1)
                row.agreement = 100.0
    except EdgecnnError as exc:
        row.status, row.note = FAILED, str(exc)
        return row, None, None

    def call():
        with nullcontext() if gpu else keras.device("cpu"):
            return model.predict_on_batch(sample)

    return row, top1, call


def check_bench_path(path: Path) -> None:
    """EdgecnnError for what bench cannot take: a path that is not there, or a file that is not a model."""
    if not path.exists():
        raise EdgecnnError(f"no such run directory or artifact: {path}")
    if path.is_file() and path.suffix.lower() not in MODEL_SUFFIXES:
        raise EdgecnnError(f"{path} is not a model: bench takes {', '.join(MODEL_SUFFIXES)} files and run folders")


def manifest_for(path: Path) -> Manifest | None:
    """The manifest that describes a model file: its folder's where that lists the file, or where the file is the
    run's Keras reference (``model.keras``, which the manifest describes without listing); else None."""
    if path.name == KERAS_FILE and (path.parent / MANIFEST_NAME).is_file():
        return Manifest.load(path.parent)
    return Manifest.beside(path)


def expand(paths: list[str | Path] | str | Path, target: Target) -> list[tuple[Path, Manifest | None]]:
    """Run directories become their manifest's artifacts (and the Keras reference where the target wants it); a
    file named twice, or by its folder and by itself, is benched once."""
    items = []
    for path in map(Path, one_or_many(paths)):
        check_bench_path(path)
        if path.is_dir():
            manifest = Manifest.load(path)
            if target.keras_reference and (path / KERAS_FILE).is_file():
                items.append((path / KERAS_FILE, manifest))
            items += [(path / a.file, manifest) for a in manifest.artifacts]
        else:
            items.append((path, manifest_for(path)))
    if not items:
        raise EdgecnnError("nothing to benchmark: the run directory lists no artifacts (run `edgecnn export`)")
    unique: dict[Path, tuple[Path, Manifest | None]] = {}
    for path, manifest in items:
        unique.setdefault(path.resolve(), (path, manifest))  # in the order of first mention
    return list(unique.values())


def bench_paths(paths, target: Target, warmup: int = WARMUP, runs: int | None = None, data_dir=None,
                on_start: OnStart | None = None, on_note: Callable[[str], None] | None = None,
                min_time_s: float = MIN_TIME_S) -> list[BenchRow]:
    """Benchmark run directories and/or artifact files (a list, or one path) on ``target``, ``target.batch`` images
    per timed call (``resolve_target(..., batch=N)``); ``data_dir`` holds the dataset files. Every artifact is
    opened and evaluated first, then all are timed together in interleaved rounds (:func:`time_interleaved`): for
    ``runs`` calls each, or None for at least ``min_time_s`` seconds each. ``on_start(index, total, file name)``
    is called before each artifact, for a progress display; ``on_note(line)`` once for each folder whose test
    split cannot be had here, saying why (its rows say "no test split: accuracy skipped")."""
    batch = target.batch
    if warmup < 0 or (runs is not None and runs < 1) or batch < 1 or not min_time_s > 0:
        raise EdgecnnError("runs and batch must be at least 1, warmup at least 0 and the minimum time above 0")
    splits: dict[str, tuple] = {}
    references: dict[Path, np.ndarray] = {}  # run folder -> its Keras model's top-1 on the folder's test split
    rows, calls = [], {}
    items = expand(paths, target)
    several_folders = len({path.parent for path, _ in items}) > 1  # name rows "mnist/model_int8.onnx" then
    gpu = target.name == "gpu"  # Keras and the memory children may use the GPU
    for index, (path, manifest) in enumerate(items):
        if on_start:
            on_start(index, len(items), path.name)
        keras_skipped = path.suffix == ".keras" and not target.keras_reference  # a runtime-only target
        test = None
        if manifest and not keras_skipped:
            key = repr((sorted(manifest.dataset.items()), (path.parent / TEST_SPLIT_FILE).is_file()))
            if key not in splits:
                splits[key], why = find_test_split(manifest.dataset, data_dir, path.parent)
                if why and on_note:
                    on_note(f"accuracy skipped for {path.parent}: no test split here ({why})")
            test = splits[key]
        call = None
        if keras_skipped:
            row = BenchRow(path.name, "keras", "fp32", path.stat().st_size / 1024, status=SKIPPED,
                           note=f"keras does not run on the {target.name} target", batch=batch)
        elif path.suffix == ".keras":
            row, top1, call = open_keras(path, manifest, test, batch, gpu=gpu)
            if top1 is not None:
                references[path.parent.resolve()] = top1
        elif target.name == "micro":
            row, call = open_micro(path, manifest, test)
        else:
            row, call = open_artifact(path, target, test, batch, references.get(path.parent.resolve()))
        if call:
            calls[len(rows)] = call
        if several_folders:
            row.artifact = f"{path.parent.name}/{path.name}"
        rows.append(row)
    for index, ms in zip(calls, time_interleaved(list(calls.values()), warmup, runs, min_time_s), strict=True):
        fill_latency(rows[index], ms)
    for row, (path, manifest) in zip(rows, items, strict=True):
        # it loaded and ran here, so it can in a process of its own (the micro target's RAM is its arena)
        if row.status in (PASSED, EVAL_FAILED) and target.name != "micro":
            row.peak_rss_mb = artifact_peak_rss_mb(path, target.threads, batch, target.providers,
                                                   manifest.tta if manifest else "none", gpu=gpu)
    return rows


def indistinct(rows: list[BenchRow]) -> list[tuple[str, str]]:
    """Pairs of rows of one format and host whose medians cannot be told apart: their 95% intervals overlap."""
    timed = [r for r in rows if r.p50_low_ms is not None and r.format != "keras"]
    return [(a.artifact, b.artifact) for i, a in enumerate(timed) for b in timed[i + 1:]
            if (a.host, a.format) == (b.host, b.format)
            and a.p50_low_ms <= b.p50_high_ms and b.p50_low_ms <= a.p50_high_ms]


def failure_summary(report_rows: list[dict]) -> str | None:
    """One line naming the rows of a report (``bench_output.report(...)["rows"]``) that failed or could not be
    evaluated, or None where none did. ``bench`` and ``pipeline`` print the table and write the JSON first, then
    exit 1 with this line, so a script sees the failure that the table shows.

        failure_summary(document["rows"])   # "1 of 5 artifacts did not pass: model_int8.tflite (failed); ..."
    """
    bad = [row for row in report_rows if row["status"] in (FAILED, EVAL_FAILED)]
    if not bad:
        return None
    names = ", ".join(f"{row['host'] + ': ' if row['host'] else ''}{row['artifact']} ({row['status']})" for row in bad)
    return f"{len(bad)} of {len(report_rows)} artifacts did not pass: {names}; see the table"


def int8_slower_note(rows: list[BenchRow], target: Target) -> str | None:
    """A note for a table whose int8 TFLite rows ran slower than their fp32 twins on an x86 CPU, saying why: without
    VNNI or AMX its int8 kernels are no faster than its fp32 ones; with them, a model of a few million MACs is too
    small for int8 to pay (larger ones gain 2-3x). None elsewhere: on ARM int8 kernels gain even without the
    dot-product extension, and on the GPU it says nothing.

        int8_slower_note(rows, resolve_target("cpu"))  # "int8 ran slower than fp32 here (model_int8.tflite): ..."
    """
    instructions = set(target.cpu.get("int8", []))
    if target.name in ("gpu", "micro") or "avx2" not in instructions:  # micro: reference kernels, not XNNPACK
        return None
    fp32 = {(r.host, r.format, r.artifact): r.p50_ms for r in rows if r.precision == "fp32" and r.p50_ms}
    slower = [r.artifact for r in rows if r.precision == "int8" and r.format == "tflite" and r.p50_ms
              and r.p50_ms > fp32.get((r.host, r.format, r.artifact.replace("int8", "fp32")), float("inf"))]
    if not slower:
        return None
    better = [X86_INT8[flag] for flag in X86_INT8 if flag != "avx2" and flag in instructions]
    if not better:
        return (f"int8 ran slower than fp32 here ({', '.join(slower)}): this CPU has no VNNI, the int8 dot-product "
                "instructions, so its int8 kernels are no faster than its fp32 ones; on one with AVX-512 VNNI the "
                "default model ran 2.4x faster in int8 (docs/performance.md)")
    return (f"int8 ran slower than fp32 here ({', '.join(slower)}): this CPU has {', '.join(better)}, but a model "
            "this small leaves XNNPACK's int8 kernels too little work to pay off; the shipped MNIST and "
            "Fashion-MNIST models run 3x faster in int8 on such a CPU (docs/performance.md)")


def fill_latency(row: BenchRow, ms: np.ndarray) -> None:
    for key, value in latency_stats(ms, row.batch).items():
        setattr(row, key, value)
    fill_gmacs(row)


def fill_gmacs(row: BenchRow) -> None:
    """The row's achieved GMAC/s at p50, where its MACs and FPS are known."""
    if row.macs and row.fps:
        row.gmacs = row.macs * row.fps / 1e9


MICRO_EVAL_LIMIT = 1000  # test images behind a micro row's accuracy: TFLite Micro's kernels take 10-100 ms each


def open_micro(path: Path, manifest: Manifest | None, test, limit: int = MICRO_EVAL_LIMIT):
    """The bench row of a ``.tflite`` file in TFLite Micro (RAM: the smallest arena that runs it; ROM: its bytes;
    accuracy on the first ``limit`` test images) and the call to time, or a skipped or failed row and None."""
    from edgecnn.deploy import runtimes

    entry = manifest.entry(path.name) if manifest else None
    row = BenchRow(path.name, path.suffix.lstrip(".").lower(), entry.precision if entry else "?",
                   path.stat().st_size / 1024, device="TFLite Micro")
    if row.format != "tflite":
        row.status, row.note = SKIPPED, f"{row.format} does not run on the micro target"
        return row, None
    if not runtimes.installed("tflite-micro"):
        row.status, row.note = SKIPPED, ("TFLite Micro is not installed (pip install "
                                           f"{runtimes.PACKAGES['tflite-micro']})")
        return row, None
    if manifest is None:
        row.status, row.note = SKIPPED, "no manifest: the micro target needs its preprocessing"
        return row, None
    try:
        manifest.verify(path)
        pre = manifest.preprocessing
        with native_output_muted():
            if test:
                images, labels = test[0][:limit], test[1][:limit]
                x = runtimes.native_inputs(path, "tflite", np.stack([pre(img)[0] for img in images]), None)
            else:
                x = runtimes.native_inputs(path, "tflite", np.zeros((1, *pre.input_shape), np.float32), None)
            start = time.perf_counter()
            arena = runtimes.smallest_arena(path, x[:1])
            run = runtimes.open_tflite_micro(path, arena)
            row.load_ms = (time.perf_counter() - start) * 1e3
            row.ram_kb, row.rom_kb = arena / 1024, path.stat().st_size / 1024
            start = time.perf_counter()
            run(x[:1])
            row.first_ms = (time.perf_counter() - start) * 1e3
            if test:
                top1 = runtimes.scores_one_by_one(run, x).argmax(1)
                row.accuracy, row.n = 100 * float(np.mean(top1 == labels)), len(labels)
        row.note = ", ".join(filter(None, [f"RAM {row.ram_kb:.1f} KB (arena), ROM {row.rom_kb:.1f} KB",
                                           f"accuracy on the first {row.n} test images" if test else
                                           "no test split: accuracy skipped"]))
        sample = x[:1]
        return row, lambda: run(sample)
    except (EdgecnnError, RuntimeError, ValueError) as exc:
        row.status, row.note = FAILED, runtimes.error_line(exc)
        return row, None
