"""The stages chained over a run directory; the CLI verbs are thin wrappers over these functions.

    train_run("runs/demo", "digits", TrainConfig(epochs=20))   # model.keras, manifest.json, metrics, checkpoints
    export_run("runs/demo", precisions=("fp32", "int8"))        # .tflite and .onnx artifacts, in the manifest
    rows = bench_paths(["runs/demo"], resolve_target("cpu"))    # see edgecnn.bench
    run_pipeline("runs/demo")                                   # all of it, plus report.json

A run directory holds ``model.keras``, the artifacts and ``manifest.json`` (labels, preprocessing, dataset,
source model, and each artifact's format, precision and sha256).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.text import Text

from edgecnn.atomic import check_writable, write_json_atomic
from edgecnn.bench import KERAS_FILE, bench_paths, int8_slower_note
from edgecnn.bench_output import print_table, report
from edgecnn.errors import EdgecnnError, one_or_many
from edgecnn.manifest import MANIFEST_NAME, ArtifactEntry, Manifest, sha256_file
from edgecnn.progress import artifact_progress
from edgecnn.targets import resolve_target

REPORT_FILE = "report.json"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
CHECKPOINTS = "checkpoints"


def run_folder(out: str | Path) -> Path:
    """``out`` as a Path, refused if it is a file or cannot be written (a file where a parent folder should be, no
    permission); it is created later, once the inputs have been checked."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgecnnError(f"output path {out} exists and is not a folder")
    check_writable(out / MANIFEST_NAME)
    return out


def train_run(out, dataset: str = "digits", config=None, image_size: int = 28, command: str = "",
              console: Console | None = None, data_dir=None, resume: bool = False) -> Manifest:
    """Train on ``dataset`` (``config``: an :class:`edgecnn.train.TrainConfig`); write ``model.keras``,
    ``manifest.json``, ``metrics.json`` and ``confusion_matrix.png`` into ``out``, checkpoints into
    ``out/checkpoints``. ``resume=True`` continues from the last checkpoint with the settings it was started with."""
    from edgecnn.data import load_dataset
    from edgecnn.evaluate import class_metrics, save_confusion_png
    from edgecnn.train import TrainConfig, read_state, save_model, train

    out = run_folder(out)
    checkpoints = out / CHECKPOINTS
    if resume:
        state = read_state(checkpoints)
        config = TrainConfig(**{**state["config"], **({"epochs": config.epochs} if config else {})})
        dataset, image_size = state["run"].get("dataset"), state["run"].get("image_size")  # load_dataset checks them
    config = config or TrainConfig()
    config.check()
    ds = load_dataset(dataset, image_size=image_size, seed=config.seed, data_dir=data_dir)
    created = not out.exists()
    try:  # only now: a bad dataset, setting or architecture leaves nothing behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # no permission, a file where a parent folder should be, a read-only disk
        raise EdgecnnError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    try:
        result = train(ds, config, checkpoints, resume=resume, console=console,
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
    return manifest


def export_run(run_dir, formats=("tflite", "onnx"), precisions=("fp32", "int8"), calib_samples: int = 300,
               seed: int = 0, command: str = "", on_done=None, data_dir=None, options=None,
               console: Console | None = None, on_start=None) -> list[ArtifactEntry]:
    """Export the run's ``model.keras`` to each of ``formats`` in each of ``precisions`` (tuples, or one name each),
    calibrating int8 on ``calib_samples`` training images and verifying every artifact on the validation split
    (``options``: an :class:`edgecnn.export.ExportOptions`; ``on_start`` and ``on_done`` as
    :func:`edgecnn.export.export_artifacts` takes them)."""
    from edgecnn.data import load_dataset
    from edgecnn.export import MIN_CALIBRATION, ExportOptions, check_plan, export_artifacts, resolve_tta
    from edgecnn.models import load_model

    notes = console or Console(stderr=True)  # warnings and notes, off stdout when no console is given
    run_dir = Path(run_dir)
    if run_dir.suffix == ".keras":
        run_dir = run_dir.parent
    manifest = Manifest.load(run_dir)
    formats, precisions = one_or_many(formats), one_or_many(precisions)
    check_plan(formats, precisions)
    options = options or ExportOptions()
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
    return export_artifacts(model, run_dir, manifest, calibration, validation, formats, precisions,
                            options, on_done, on_start)


def run_pipeline(out, dataset: str = "digits", config=None, target: str = "cpu", threads: int | None = None,
                 calib_samples: int = 300, warmup: int = 20, runs: int = 200, command: str = "",
                 console: Console | None = None, data_dir=None, image_size: int = 28) -> dict:
    """Train, export every format and precision, benchmark on ``target``; print the table, write report.json."""
    console = console or Console()
    from edgecnn.data import check_dataset_name, loaded_once
    from edgecnn.train import TrainConfig

    # fail before anything prints when --out is a file, the target is unusable, or a name is unknown
    run_folder(out)
    bench_target = resolve_target(target, threads)
    check_dataset_name(dataset)
    config = config or TrainConfig()
    config.check()
    with loaded_once():  # the three stages read the dataset once
        console.rule(Text(f"[1/3] train {config.arch} on {dataset}"))  # Text: a folder named "[x]" stays
        manifest = train_run(out, dataset, config, image_size, command, console, data_dir)
        src = manifest.source
        console.print(f"{src['params']:,} parameters, {src['epochs_run']} epochs in {src['train_seconds']:.1f} s, "
                      f"test accuracy {src['test_accuracy']:.2f}%")
        console.rule(Text("[2/3] export"))
        with artifact_progress("export", console) as on_start:
            export_run(out, calib_samples=calib_samples, seed=config.seed, command=command, data_dir=data_dir,
                       on_done=lambda e: console.print(f"wrote {e.file} ({e.bytes / 1024:.1f} KB)"), on_start=on_start)
        console.rule(Text(f"[3/3] bench on {bench_target.label}"))
        for note in bench_target.notes:
            console.print(f"note: {note}", markup=False)
        with artifact_progress("bench", console) as on_start:
            rows = bench_paths([out], bench_target, warmup, runs, data_dir, on_start=on_start)
        document = report(rows, bench_target, warmup, runs)
        write_json_atomic(Path(out) / REPORT_FILE, document)
        print_table(rows, title=f"{dataset} on {bench_target.label}", console=console)
        note = int8_slower_note(rows, bench_target)
        if note:
            console.print(f"note: {note}", markup=False)
        console.print(f"report: {Path(out) / REPORT_FILE}", markup=False)
    return document
