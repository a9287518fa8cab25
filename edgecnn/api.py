"""The Python API: one function per CLI verb, each returning what the verb prints.

    import edgecnn

    summary = edgecnn.train(out="runs/demo", epochs=20)          # per-class metrics and the model's record
    entries = edgecnn.export("runs/demo", precisions=("int8",))  # the artifacts written, each verified
    result = edgecnn.bench("runs/demo", target="cpu")            # rows, the JSON document, the table's title
    edgecnn.predict("runs/demo/model_int8.tflite", ["digit.png"])
    edgecnn.inspect("runs/demo/model_int8.tflite")
    edgecnn.live("runs/demo/model_int8.tflite", source="digits.mp4", display=False)
    edgecnn.pipeline(out="runs/demo")                            # train, export, bench: the demo

Every option is a keyword; training options are the fields of :class:`edgecnn.workstation.config.TrainConfig`
and export options those of :class:`edgecnn.workstation.config.ExportOptions`, whose defaults are the only ones.
A run directory holds ``model.keras``, the artifacts and ``manifest.json`` (labels, preprocessing, dataset,
source model, and each artifact's format, precision and sha256).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from edgecnn.common.atomic import check_writable, write_json_atomic
from edgecnn.common.errors import EdgecnnError, ImageReadError, one_or_many
from edgecnn.common.native_logs import native_output_muted
from edgecnn.deploy.bench import KERAS_FILE, MIN_TIME_S, WARMUP, BenchRow, indistinct, int8_slower_note
from edgecnn.deploy.remote import RemoteOptions
from edgecnn.runtime.manifest import MANIFEST_NAME, ArtifactEntry, Manifest, sha256_file
from edgecnn.workstation.config import ExportOptions, TrainConfig

REPORT_FILE = "report.json"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
CHECKPOINTS = "checkpoints"
DATASET, IMAGE_SIZE, CALIB_SAMPLES = "digits", 28, 300
FORMATS, PRECISIONS = ("tflite", "onnx"), ("fp32", "int8")
TOP_K = 3


def run_folder(out: str | Path) -> Path:
    """``out`` as a Path, refused if it is a file or cannot be written (a file where a parent folder should be, no
    permission); it is created later, once the inputs have been checked."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgecnnError(f"output path {out} exists and is not a folder")
    check_writable(out / MANIFEST_NAME)
    return out


def train(*, out: str | Path = "runs/train", dataset: str = DATASET, data_dir=None, image_size: int = IMAGE_SIZE,
          resume: bool = False, command: str = "", console: Console | None = None, **options) -> dict:
    """Train a model and write its run directory.

    Args:
        out: the run directory: ``model.keras``, ``manifest.json``, ``metrics.json``, ``confusion_matrix.png`` and
            ``checkpoints/`` are written there.
        dataset: "digits" (built in), "mnist", "fashion_mnist", "cifar10" or "folder:PATH".
        data_dir: where dataset files are looked up (else ``$EDGECNN_DATA_DIR``, then Keras' cache).
        image_size: the model's input height and width.
        resume: continue ``out``'s last checkpoint with the settings it was started with (``epochs`` may change).
        command: the command line recorded in the manifest.
        console: where progress goes (None: a console on stdout).
        **options: :class:`TrainConfig` fields: ``arch``, ``epochs``, ``batch_size``, ``learning_rate``,
            ``schedule``, ``augment``, ``seed``, ``patience``, ``strategy``, ``deterministic``, ``weights``
            ("imagenet" or a weights file, for the mobilenet architectures), ``frozen_epochs``.

    Returns:
        ``{"run_dir", "dataset", "source", "metrics"}``: the manifest's record of the model (parameters, epochs,
        validation and test accuracy, seconds) and the test split's per-class metrics.

    Raises:
        EdgecnnError: a bad option, dataset or output folder, or training that diverged.

    Example:
        >>> edgecnn.train(out="runs/digits", epochs=20)["source"]["test_accuracy"]   # doctest: +SKIP
        99.72
    """
    from edgecnn.workstation.data import load_dataset
    from edgecnn.workstation.evaluate import class_metrics, save_confusion_png
    from edgecnn.workstation.training import read_state, save_model
    from edgecnn.workstation.training import train as fit

    out = run_folder(out)
    checkpoints = out / CHECKPOINTS
    if resume:
        if set(options) - {"epochs"}:
            raise EdgecnnError(f"a resumed run keeps its settings; only epochs may change, not "
                               f"{', '.join(sorted(set(options) - {'epochs'}))}")
        state = read_state(checkpoints)
        config = TrainConfig(**{**state["config"], **{k: v for k, v in options.items() if v is not None}})
        dataset, image_size = state["run"].get("dataset"), state["run"].get("image_size")  # load_dataset checks them
    else:
        config = TrainConfig(**options)
    config.check()
    ds = load_dataset(dataset, image_size=image_size, seed=config.seed, data_dir=data_dir)
    created = not out.exists()
    try:  # only now: a bad dataset, setting or architecture leaves nothing behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # no permission, a file where a parent folder should be, a read-only disk
        raise EdgecnnError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    try:
        result = fit(ds, config, checkpoints, resume=resume, console=console,
                     meta={"dataset": dataset, "image_size": image_size, "command": command})
    except EdgecnnError:  # e.g. diverged in its first epoch: a folder made for this run, with no checkpoint, goes
        if created and not any(checkpoints.glob("*")):
            shutil.rmtree(out)
        raise
    metrics = class_metrics(ds.labels, ds.split("test").labels,
                            result.model.predict(ds.inputs("test"), batch_size=256, verbose=0))
    write_json_atomic(out / METRICS_FILE, metrics)
    save_confusion_png(out / CONFUSION_FILE, ds.labels, metrics["confusion"],
                       f"{config.arch} on {dataset} test split: {metrics['accuracy']:.2f}%")
    model_path = save_model(result.model, out / KERAS_FILE)
    manifest = Manifest(labels=ds.labels, preprocessing=ds.preprocessing, dataset=ds.record, command=command)
    manifest.source = {
        "file": KERAS_FILE, "sha256": sha256_file(model_path), "arch": config.arch, "command": command,
        "params": int(result.model.count_params()), "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2), "val_accuracy": round(100 * result.val_accuracy, 2),
        "test_accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "training": {k: v for k, v in asdict(result.config).items() if k not in ("arch", "seed")}
        | {"augmentation": result.augmentation, "seed": config.seed, "replicas": result.replicas},
    }
    manifest.save(out)
    return {"run_dir": str(out), "dataset": dataset, "source": manifest.source, "metrics": metrics}


def export(run_dir: str | Path, *, formats=FORMATS, precisions=PRECISIONS, calib_samples: int = CALIB_SAMPLES,
           seed: int = 0, data_dir=None, sign_key: str | Path | None = None, command: str = "",
           console: Console | None = None, on_start: Callable | None = None, on_done: Callable | None = None,
           **options) -> list[ArtifactEntry]:
    """Export a run's ``model.keras`` to TFLite and ONNX, verify each artifact, record them in the manifest.

    Args:
        run_dir: the run directory (or its ``model.keras``).
        formats: "tflite" and/or "onnx" (a tuple, or one name); "c" adds each TFLite file as a C array.
        precisions: "fp32", "fp16", "dynamic" and/or "int8" (fp16 and dynamic are TFLite only).
        calib_samples: training images that calibrate int8.
        seed: draws the calibration images.
        data_dir: where the dataset files are (export calibrates and verifies on the run's own dataset).
        sign_key: an Ed25519 private key: sign the run once it is written (:func:`sign`). Without it, a
            signature the export makes stale is removed, with a warning.
        command: the command line recorded in the manifest.
        console: where warnings go (None: stderr).
        on_start: ``on_start(index, total, file)`` before each artifact, for a progress display.
        on_done: ``on_done(entry)`` after each artifact is written.
        **options: :class:`ExportOptions` fields: ``int8_io``, ``opset``, ``calibration_method``,
            ``min_agreement``, ``onnx_activations``, ``tta``, ``mediapipe`` (also a MediaPipe Tasks file of each
            TFLite artifact), ``max_drop`` (int8 within this many points of float on the validation split: the
            smallest setting of a calibration sweep that is, else 16-bit activations for the worst tensors; the
            choice and the sweep go
            into the entry's ``recipe``).

    Returns:
        One :class:`ArtifactEntry` per file written, with its size, sha256 and verification (agreement with the
        Keras model, max difference, validation accuracy).

    Raises:
        EdgecnnError: a bad option, a missing run or dataset, or an artifact below ``min_agreement`` (nothing of it
        is written).

    Example:
        >>> [e.file for e in edgecnn.export("runs/demo", precisions="int8")]   # doctest: +SKIP
        ['model_int8.tflite', 'model_int8.onnx']
    """
    from edgecnn.runtime.signing import SIGNATURE_NAME
    from edgecnn.workstation.config import MIN_CALIBRATION
    from edgecnn.workstation.data import load_dataset
    from edgecnn.workstation.export import check_plan, export_artifacts, resolve_tta
    from edgecnn.workstation.models import load_model
    from edgecnn.workstation.signing import load_private_key, sign_run

    notes = console or Console(stderr=True)  # warnings and notes, off stdout when no console is given
    run_dir = Path(run_dir)
    if run_dir.suffix == ".keras":
        run_dir = run_dir.parent
    if sign_key is not None:
        load_private_key(sign_key)  # a key that cannot sign fails now, not after the export
    formats, precisions = one_or_many(formats), one_or_many(precisions)
    options = ExportOptions(**options)
    check_plan(formats, precisions, options.mediapipe)
    if options.max_drop is not None and "int8" not in precisions:
        raise EdgecnnError("--max-drop chooses how to quantize int8: add int8 to --quantize")
    manifest = Manifest.load(run_dir)
    training = manifest.source.get("training")
    policy = str(training.get("augmentation", "")) if isinstance(training, dict) else ""
    if resolve_tta(manifest, options.tta, formats, precisions) == "flip" and "flip" not in policy:
        notes.print(
            f"warning: {run_dir} was trained without flips (augmentation {policy or 'unknown'}): mirror averaging "
            "may lower its accuracy; compare the validation accuracy below with an export with --tta none",
            markup=False, soft_wrap=True)
    model = load_model(run_dir / KERAS_FILE)
    record = manifest.dataset
    if not all(key in record for key in ("name", "image_size", "seed")):
        raise EdgecnnError(f"{run_dir / MANIFEST_NAME} names no dataset (name, image_size, seed): export calibrates "
                           "and verifies on the data the model was trained on")
    ds = load_dataset(record["name"], image_size=record["image_size"], seed=record["seed"], data_dir=data_dir)
    calibration = None
    if "int8" in precisions:
        if calib_samples < 1:
            raise EdgecnnError("--calib-samples must be at least 1 for int8 quantization")
        calibration = ds.calibration(calib_samples, seed=seed)
        if len(calibration) < calib_samples:
            notes.print(
                f"note: --calib-samples {calib_samples}, but the training split has {len(calibration)} images: "
                "calibrating on all of them", soft_wrap=True)
        if len(calibration) < MIN_CALIBRATION:
            notes.print(
                f"warning: int8 calibration on {len(calibration)} images; {MIN_CALIBRATION} or more are recommended",
                soft_wrap=True)
        manifest.dataset = {**record, "calibration": f"{len(calibration)} training images, seed {seed}"}
    if command:
        manifest.command = command
    validation = (ds.inputs("val"), ds.split("val").labels)
    entries = export_artifacts(model, run_dir, manifest, calibration, validation, formats, precisions,
                               options, on_done, on_start, calibrate=lambda n: ds.calibration(n, seed=seed))
    if sign_key is not None:
        sign_run(run_dir, sign_key)
    elif (run_dir / SIGNATURE_NAME).is_file():  # it signs the manifest and artifacts this export replaced
        (run_dir / SIGNATURE_NAME).unlink()
        notes.print(f"warning: removed {run_dir / SIGNATURE_NAME}, which signed the run before this export: "
                    f"sign it again (edgecnn sign {run_dir} --key KEY)", markup=False, soft_wrap=True)
    return entries


@dataclass
class BenchResult:
    """What :func:`bench` measured: ``rows`` (one per artifact), ``document`` (the JSON report), ``title`` (of the
    table) and ``notes`` (lines for under the table: rows that cannot be told apart, int8 slower than fp32)."""

    rows: list[BenchRow]
    document: dict
    title: str
    notes: list[str]


def bench(paths, *, target: str = "cpu", threads: int | None = None, batch: int = 1, warmup: int = WARMUP,
          runs: int | None = None, min_time_s: float = MIN_TIME_S, data_dir=None, hosts: list[str] | None = None,
          ssh_config: str | Path | None = None, remote_python: str = RemoteOptions.python,
          timeout_s: float = RemoteOptions.timeout,
          on_start: Callable | None = None, on_note: Callable[[str], None] | None = None,
          on_step: Callable | None = None) -> BenchResult:
    """Accuracy, agreement with the Keras model, load time, latency (median with its 95% interval), FPS and memory
    of every artifact, here or on SSH hosts.

    Args:
        paths: run directories and/or ``.keras``, ``.tflite`` and ``.onnx`` files (a list, or one path).
        target: "cpu", "gpu" (ONNX Runtime's CUDA provider) or "rpi" (native on a Pi, emulated elsewhere).
        threads: inference threads (None: the target's).
        batch: images per timed call.
        warmup: untimed calls before timing.
        runs: timed calls per artifact; None times each for at least ``min_time_s`` seconds.
        min_time_s: see ``runs``; the artifacts are timed in interleaved rounds either way.
        data_dir: where the test split's dataset files are.
        hosts: ``USER@HOST[:PORT]`` specs: bench there over SSH instead of here.
        ssh_config, remote_python, timeout_s: ``ssh -F`` file, the hosts' Python, seconds allowed per step.
        on_start: ``on_start(index, total, file)`` before each artifact; ``on_note(line)`` for notes;
            ``on_step(host, step)`` for each host's progress.

    Returns:
        A :class:`BenchResult`.

    Raises:
        EdgecnnError: a bad path or option, or (with one host) a host that fails.

    Example:
        >>> result = edgecnn.bench("runs/demo", threads=1)   # doctest: +SKIP
        >>> [(r.artifact, round(r.p50_ms, 3)) for r in result.rows]
    """
    from edgecnn.deploy.report import report

    note = on_note or (lambda line: None)
    if hosts:
        from edgecnn.deploy.remote import bench_hosts, result_rows

        options = RemoteOptions(target, threads, warmup, runs, batch, remote_python,
                                ssh_config and str(ssh_config), timeout_s)
        results = bench_hosts(hosts, one_or_many(paths), options, data_dir, on_step)
        for r in results:
            for line in (r.target or {}).get("notes", ()):
                note(f"{r.host}: {line}")
        if len(results) == 1 and results[0].error:
            raise EdgecnnError(results[0].error)
        summary = [{"host": r.host, "target": r.target, "versions": r.versions, "error": r.error} for r in results]
        labels = ", ".join(f"{r.host} ({r.target['label'] if r.target else 'failed'})" for r in results)
        rows = result_rows(results)
        ran = {row.batch for r in results for row in r.rows}  # an x86 host on --target rpi emulates a Pi: batch 1
        batch = ran.pop() if len(ran) == 1 else batch
        document = report(rows, {"name": target}, warmup, runs, summary, batch, min_time_s)
        return BenchResult(rows, document, f"edgecnn bench over SSH on {labels}, batch {batch}",
                           _tie_notes(rows))
    from edgecnn.deploy.bench import bench_paths
    from edgecnn.deploy.targets import resolve_target

    bench_target = resolve_target(target, threads, batch=batch)
    for line in bench_target.notes:
        note(line)
    rows = bench_paths(paths, bench_target, warmup, runs, data_dir, on_start=on_start, on_note=on_note,
                       min_time_s=min_time_s)
    document = report(rows, bench_target, warmup, runs, min_time_s=min_time_s)
    slower = int8_slower_note(rows, bench_target)
    return BenchResult(rows, document, f"edgecnn bench on {bench_target.label}, batch {bench_target.batch}",
                       _tie_notes(rows) + ([slower] if slower else []))


def _tie_notes(rows: list[BenchRow]) -> list[str]:
    pairs = indistinct(rows)
    if not pairs:
        return []
    return ["cannot be told apart (their medians' 95% intervals overlap): "
            + "; ".join(f"{a} and {b}" for a, b in pairs)]


def predict(model: str | Path, images, *, top_k: int = TOP_K, threads: int | None = None) -> list[dict]:
    """Top-k labels with scores for image files and folders of them, with the manifest beside the model.

    Args:
        model: a ``.tflite`` or ``.onnx`` file.
        images: image files OpenCV reads, or folders of them (name order); a list, or one path.
        top_k: labels per image.
        threads: inference threads.

    Returns:
        One dict per image, in order: ``{"image": path, "top": [{"label", "score"}, ...]}``, or
        ``{"image": path, "error": reason}`` for one that cannot be read (the others are still classified).

    Raises:
        EdgecnnError: the model cannot be opened, or no image can be read.

    Example:
        >>> edgecnn.predict("runs/demo/model_int8.tflite", "digit.png")[0]["top"][0]   # doctest: +SKIP
        {'label': '7', 'score': 0.98}
    """
    from edgecnn.common.progress import map_on_cores
    from edgecnn.runtime.preprocess import image_files, read_image

    paths = [Path(p) for p in one_or_many(images)]
    files = [file for path in paths for file in (image_files(path) if path.is_dir() else [path])]
    results = []
    with open_classifier(model, threads) as clf:
        def prepared(path: Path):
            """On a worker thread: decoding and resizing release the GIL, so a folder of photos reads on every
            core; the model itself runs on this thread only (a Classifier is not thread-safe)."""
            try:
                image = read_image(path)
            except ImageReadError as exc:
                return exc
            return clf.preprocessing(image)[0] if clf.preprocessing else image

        for path, x in zip(files, map_on_cores(prepared, files, "classifying"), strict=True):
            if isinstance(x, ImageReadError):
                results.append({"image": str(path), "error": x.reason})
            else:
                top = clf.predict(x, top_k=top_k)
                results.append({"image": str(path), "top": [{"label": k, "score": s} for k, s in top]})
    if all("error" in r for r in results):
        if len(results) == 1:
            raise ImageReadError(results[0]["image"], results[0]["error"])
        raise EdgecnnError(unreadable_summary(results))
    return results


def unreadable_summary(results: list[dict]) -> str:
    """One line naming the images :func:`predict` could not read (the first three, then a count)."""
    bad = [r for r in results if "error" in r]
    named = ", ".join(f"{r['image']} ({r['error']})" for r in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return f"cannot read {len(bad)} of {len(results)} images: {named}{more}"


def inspect(artifact: str | Path) -> dict:
    """Operators, input and output tensors (dtype, shape, quantization), parameters, MACs and size of an artifact.

    Returns:
        The dict ``edgecnn inspect --json`` prints.

    Raises:
        EdgecnnError: not a model, or one whose bytes differ from its manifest's sha256.

    Example:
        >>> edgecnn.inspect("runs/demo/model_int8.tflite")["inputs"][0]["dtype"]   # doctest: +SKIP
        'int8'
    """
    from edgecnn.deploy.inspection import inspect_artifact

    with native_output_muted():
        return inspect_artifact(artifact)


def check(path: str | Path, *, data_dir=None, limit: int | None = None, runtimes=None,
          on_start: Callable[[str, str], None] | None = None) -> list[dict]:
    """Load each artifact of a run (or one artifact) in every installed runtime among LiteRT, ONNX Runtime,
    OpenVINO, OpenCV DNN, TFLite Micro and MediaPipe Tasks, and classify the test split's first images with each.

    Args:
        path: a run directory, or one artifact in it (its manifest says how to feed it).
        data_dir: where the test split's dataset files are.
        limit: test images per artifact and runtime (None: 1,000; 0: the whole split).
        runtimes: the runtimes to try (a tuple; None: all); each format's reference runtime always runs.
        on_start: ``on_start(runtime, file)`` before each row, for a progress display.

    Returns:
        One dict a row: artifact, runtime, status ("ok", "does not load", "fails to run", "not installed"), the
        runtime's error in one line, n, accuracy, top-1 agreement with the format's reference runtime and with the
        fp32 file, and for TFLite Micro the smallest tensor arena and the flash the model takes (bytes).

    Raises:
        EdgecnnError: no manifest, a file altered since its manifest, no test split, an unknown runtime.

    Example:
        >>> [r["status"] for r in edgecnn.check("models/mnist/model_int8.tflite", limit=100)]   # doctest: +SKIP
        ['ok', 'ok', 'does not load', 'ok']
    """
    from edgecnn.deploy.portability import CHECK_LIMIT, RUNTIMES, check_run

    return check_run(path, data_dir=data_dir, limit=CHECK_LIMIT if limit is None else limit,
                     runtimes=RUNTIMES if runtimes is None else one_or_many(runtimes), on_start=on_start)


def doctor(path: str | Path, *, data_dir=None, images: int | None = None, out: str | Path | None = None,
           on_start: Callable[[int, int, str], None] | None = None) -> dict:
    """Which tensor of each int8 artifact loses accuracy: the int8 and fp32 files of a run, tensor by tensor, on
    its validation images; and the images whose int8 answer differs from the float one.

    Args:
        path: a run directory, or one int8 artifact in it (its fp32 twin must be there too).
        data_dir: where the dataset files are (the validation split is rebuilt from the manifest's record).
        images: validation images to run (None: 200).
        out: a folder for ``doctor.json`` and a contact sheet of the flipped images per artifact (None: nothing
            written).
        on_start: ``on_start(index, total, file)`` before each artifact, for a progress display.

    Returns:
        ``{"run", "images", "split", "artifacts": {file: {"tensors", "flips", "agreement", "int8_accuracy",
        "float_accuracy", "contact_sheet"}}}``; ``tensors`` worst first by ``local_snr_db`` (the noise the tensor
        adds to its inputs'), each with ``snr_db``, ``channel_snr_db``, ``cosine``, ``max_abs_error``,
        ``codes_used`` and ``saturation`` (see :mod:`edgecnn.deploy.doctor`).

    Raises:
        EdgecnnError: no manifest, nothing quantized, no fp32 twin, files whose tensors cannot be matched, a file
        altered since export.

    Example:
        >>> report = edgecnn.doctor("models/fashion_mnist")                          # doctest: +SKIP
        >>> report["artifacts"]["model_int8.onnx"]["tensors"][0]["display"]          # doctest: +SKIP
        'stack1_relu/Relu'
    """
    from edgecnn.deploy.doctor import DOCTOR_IMAGES, diagnose_run

    with native_output_muted():
        return diagnose_run(path, data_dir=data_dir, images=DOCTOR_IMAGES if images is None else images, out=out,
                            on_start=on_start)


def live(model: str | Path, *, source: str = "0", roi: tuple[int, int, int, int] | None = None,
         invert: bool = False, top_k: int = TOP_K, threads: int | None = None, display: bool = True,
         json_lines: bool = False, save: str | Path | None = None, max_frames: int | None = None,
         reconnect: bool = False, on_frame: Callable | None = None) -> dict:
    """Classify a camera, video file, stream or image folder frame by frame.

    Args:
        model: a ``.tflite`` or ``.onnx`` file.
        source: a camera index ("0"), a video file, an rtsp:// URL or an image folder.
        roi: the region of interest (x, y, w, h); None: a centred square.
        invert: invert the region (dark ink on white paper).
        top_k: labels per frame.
        threads: inference threads.
        display: show a window (needs a screen).
        json_lines: print one JSON line per frame on stdout.
        save: write the annotated video here.
        max_frames: stop after this many frames.
        reconnect: reopen a camera or stream that drops.
        on_frame: ``on_frame(done, total, top)`` after each frame, for a progress display.

    Returns:
        The summary: frames, mean FPS, p50 latency, dropped frames, reconnects, and whether it was interrupted,
        lost its source or skipped unreadable images.

    Example:
        >>> edgecnn.live("runs/demo/model_int8.tflite", source="digits.mp4", display=False)["frames"]   # doctest: +SKIP
        360
    """
    from edgecnn.deploy.live import run_live

    with open_classifier(model, threads) as clf:
        return run_live(clf, source, roi, invert, top_k, display, json_lines, save, max_frames,
                        reconnect=reconnect, on_frame=on_frame)


def capture(source: str, *, out: str | Path, labels, roi: tuple[int, int, int, int] | None = None,
            timeline: str | Path | None = None, display: bool | None = None, burst: int | None = None,
            min_change: float | None = None, max_frames: int | None = None,
            on_frame: Callable | None = None) -> dict:
    """Record training images from a camera or video into ``out/<label>/``, for ``train --dataset folder:OUT``.

    Args:
        source: a camera index ("0"), "picamera" (a Raspberry Pi camera, through picamera2), a video file or URL.
        out: the dataset folder (created; one that holds anything but class folders of images is refused).
        labels: class names (a list, or "cup,pen,background"); keys 1-9 record them in this order.
        roi: the region saved (x, y, w, h); None: the centred square ``live`` classifies.
        timeline: a CSV of ``start,end,label`` frame ranges: record those frames without a window.
        display: show the preview window with the keys (needs a screen); None: only without a timeline.
        burst: frames a key press records (None: 10).
        min_change: skip a frame within this mean grey-level difference of the last one saved to its class.
        max_frames: stop after this many frames.
        on_frame: ``on_frame(done, total)`` after each frame.

    Returns:
        The summary: frames read, images saved and skipped, per class the images saved now and in the folder,
        frames a second, and warnings (a class with too few images, no background class).

    Raises:
        EdgecnnError: a bad label, source, timeline or folder; nothing is half-written.

    Example:
        >>> edgecnn.capture("desk.mp4", out="data/desk", labels="cup,pen,background",
        ...                 timeline="desk.csv", display=False)["saved"]             # doctest: +SKIP
        240
    """
    from edgecnn.deploy.capture import BURST, parse_labels, read_timeline, run_capture

    labels = parse_labels(labels if isinstance(labels, str) else ",".join(labels))
    spans = read_timeline(timeline, labels) if timeline is not None else None
    display = spans is None if display is None else display
    return run_capture(source, out, labels, roi=roi, timeline=spans, display=display,
                       burst=BURST if burst is None else burst, min_change=min_change, max_frames=max_frames,
                       on_frame=on_frame)


def keygen(out: str | Path) -> dict:
    """Make an Ed25519 key pair for signing runs.

    Args:
        out: the key's path without suffix: ``OUT.key`` (private, mode 0600) and ``OUT.pub`` are written.

    Returns:
        ``{"private": path, "public": path, "key_id": hex}``.

    Raises:
        EdgecnnError: a key exists there, or ``OUT`` lies in a run folder.

    Example:
        >>> edgecnn.keygen("keys/release")["public"]   # doctest: +SKIP
        'keys/release.pub'
    """
    from edgecnn.runtime.signing import key_id, load_public_key
    from edgecnn.workstation.signing import keygen as make_keys

    private, public = make_keys(out)
    return {"private": str(private), "public": str(public), "key_id": key_id(load_public_key(public))}


def sign(run_dir: str | Path, *, key: str | Path) -> dict:
    """Sign a run folder: ``model.sig`` over its manifest and every artifact it lists.

    Args:
        run_dir: the run folder.
        key: an Ed25519 private key file readable by its owner alone.

    Returns:
        ``{"signature": path, "key_id": hex, "files": [names]}``.

    Raises:
        EdgecnnError: a key readable by others, or an artifact that differs from its manifest.

    Example:
        >>> edgecnn.sign("runs/demo", key="keys/release.key")["files"]   # doctest: +SKIP
        ['manifest.json', 'model_fp32.onnx', 'model_fp32.tflite', 'model_int8.onnx', 'model_int8.tflite']
    """
    from edgecnn.workstation.signing import sign_run

    return sign_run(run_dir, key)


def verify(path: str | Path, *, trust=None) -> dict:
    """Check a run folder, or one artifact of it, against its signature and trusted public keys.

    Args:
        path: a run folder or an artifact in one.
        trust: public keys (a file, a folder of them, or a list); None: ``$EDGECNN_TRUSTED_KEYS``.

    Returns:
        ``{"path": path, "signed": {name: sha256}}``: the files the signature covers.

    Raises:
        EdgecnnError: no trusted key given; IntegrityError naming why the run is refused.

    Example:
        >>> edgecnn.verify("runs/demo", trust="keys/release.pub")["signed"].keys()   # doctest: +SKIP
    """
    from edgecnn.runtime.signing import TRUSTED_KEYS_ENV, load_trusted_keys, verify_signed

    keys = load_trusted_keys(trust)
    if not keys:
        raise EdgecnnError(f"no trusted keys: pass --trust PUBKEY or set {TRUSTED_KEYS_ENV}")
    return {"path": str(path), "signed": verify_signed(Path(path), keys)}


def open_classifier(path: str | Path, threads: int | None):
    """A Classifier, with LiteRT's banner muted and a warning on stderr when no manifest vouches for the file."""
    from edgecnn.runtime.classifier import Classifier

    with native_output_muted():
        clf = Classifier(path, threads=threads)
    if clf.manifest is None:
        Console(stderr=True).print(f"warning: {Path(path).name} has no manifest beside it: its integrity is not "
                                   "checked and its labels are class indices", markup=False, soft_wrap=True)
    return clf


def pipeline(*, out: str | Path = "runs/demo", dataset: str = DATASET, data_dir=None, image_size: int = IMAGE_SIZE,
             target: str = "cpu", threads: int | None = None, calib_samples: int = CALIB_SAMPLES,
             warmup: int = WARMUP, runs: int | None = None, min_time_s: float = MIN_TIME_S, command: str = "",
             console: Console | None = None, **options) -> dict:
    """Train, export TFLite and ONNX in fp32 and int8, benchmark every artifact; print the table, write
    ``report.json``.

    Args: as :func:`train` (``**options``: :class:`TrainConfig` fields) and :func:`bench`.

    Returns:
        The JSON report (also written to ``out/report.json``).

    Example:
        >>> edgecnn.pipeline(out="runs/demo")["rows"][0]["accuracy"]   # doctest: +SKIP
    """
    from edgecnn.common.progress import artifact_progress
    from edgecnn.deploy.report import print_table
    from edgecnn.deploy.targets import resolve_target
    from edgecnn.workstation.data import check_dataset_name, loaded_once

    console = console or Console()
    # fail before anything prints when --out is a file, the target is unusable, or a name is unknown
    run_folder(out)
    bench_target = resolve_target(target, threads)
    check_dataset_name(dataset)
    config = TrainConfig(**options)
    config.check()
    with loaded_once():  # the three stages read the dataset once
        console.rule(Text(f"[1/3] train {config.arch} on {dataset}"))  # Text: a folder named "[x]" stays
        src = train(out=out, dataset=dataset, data_dir=data_dir, image_size=image_size, command=command,
                    console=console, **options)["source"]
        console.print(f"{src['params']:,} parameters, {src['epochs_run']} epochs in {src['train_seconds']:.1f} s, "
                      f"test accuracy {src['test_accuracy']:.2f}%")
        console.rule(Text("[2/3] export"))
        with artifact_progress("export", console) as on_start:
            export(out, calib_samples=calib_samples, seed=config.seed, command=command, data_dir=data_dir,
                   on_done=lambda e: console.print(f"wrote {e.file} ({e.bytes / 1024:.1f} KB)"), on_start=on_start)
        console.rule(Text(f"[3/3] bench on {bench_target.label}"))
        with artifact_progress("bench", console) as on_start:
            result = bench(out, target=target, threads=threads, warmup=warmup, runs=runs, min_time_s=min_time_s,
                           data_dir=data_dir, on_start=on_start,
                           on_note=lambda line: console.print(f"note: {line}", markup=False))
        write_json_atomic(Path(out) / REPORT_FILE, result.document)
        print_table(result.rows, title=f"{dataset} on {bench_target.label}", console=console)
        for note in result.notes:
            console.print(f"note: {note}", markup=False, soft_wrap=True)
        console.print(f"report: {Path(out) / REPORT_FILE}", markup=False)
    return result.document
