"""The stages chained over a run directory; the CLI verbs are thin wrappers over these functions.

    train_run("runs/demo", dataset="digits", epochs=20)        # model.keras + manifest.json
    export_run("runs/demo", precisions=("fp32", "int8"))        # .tflite and .onnx artifacts, in the manifest
    rows = bench_paths(["runs/demo"], resolve_target("cpu"))    # see edgecnn.bench
    run_pipeline("runs/demo")                                   # all of it, plus report.json

A run directory holds ``model.keras``, the artifacts and ``manifest.json`` (labels, preprocessing, dataset,
source model, and each artifact's format, precision and sha256).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from edgecnn.atomic import write_json_atomic
from edgecnn.bench import KERAS_FILE, bench_paths, print_table, report
from edgecnn.errors import EdgecnnError
from edgecnn.manifest import ArtifactEntry, Manifest, sha256_file
from edgecnn.targets import resolve_target

REPORT_FILE = "report.json"


def run_folder(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgecnnError(f"output path {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_run(out, dataset: str = "digits", arch: str = "edge-cnn", epochs: int = 20, batch_size: int = 32,
              seed: int = 0, image_size: int = 28, command: str = "", console: Console | None = None,
              data_dir=None) -> Manifest:
    """Train on ``dataset``; write ``model.keras`` and a manifest (no artifacts yet) into ``out``."""
    from edgecnn.bench import accuracy_percent
    from edgecnn.data import load_dataset
    from edgecnn.train import save_model, train

    ds = load_dataset(dataset, image_size=image_size, seed=seed, data_dir=data_dir)
    out = run_folder(out)
    result = train(ds, arch=arch, epochs=epochs, batch_size=batch_size, seed=seed, console=console)
    test_probs = result.model.predict(ds.inputs("test"), batch_size=256, verbose=0)
    model_path = save_model(result.model, out / KERAS_FILE)
    manifest = Manifest(labels=ds.labels, preprocessing=ds.preprocessing, dataset=ds.record, command=command)
    manifest.source = {
        "file": KERAS_FILE, "sha256": sha256_file(model_path), "arch": arch, "command": command,
        "params": int(result.model.count_params()), "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 2), "val_accuracy": round(100 * result.val_accuracy, 2),
        "test_accuracy": round(accuracy_percent(ds.split("test").labels, test_probs), 2),
    }
    manifest.save(out)
    return manifest


def export_run(run_dir, formats=("tflite", "onnx"), precisions=("fp32", "int8"), calib_samples: int = 300,
               seed: int = 0, command: str = "", on_done=None, data_dir=None, options=None,
               console: Console | None = None) -> list[ArtifactEntry]:
    """Export the run's ``model.keras``, calibrating int8 on ``calib_samples`` training images and verifying every
    artifact on the validation split (``options``: an :class:`edgecnn.export.ExportOptions`)."""
    from edgecnn.data import load_dataset
    from edgecnn.export import MIN_CALIBRATION, ExportOptions, export_artifacts
    from edgecnn.train import load_model

    run_dir = Path(run_dir)
    if run_dir.suffix == ".keras":
        run_dir = run_dir.parent
    manifest = Manifest.load(run_dir)
    model = load_model(run_dir / KERAS_FILE)
    record = manifest.dataset
    ds = load_dataset(record["name"], image_size=record["image_size"], seed=record["seed"], data_dir=data_dir)
    calibration = None
    if "int8" in precisions:
        if calib_samples < 1:
            raise EdgecnnError("--calib-samples must be at least 1 for int8 quantization")
        calibration = ds.calibration(calib_samples, seed=seed)
        if len(calibration) < MIN_CALIBRATION:
            (console or Console(stderr=True)).print(
                f"warning: int8 calibration on {len(calibration)} images; {MIN_CALIBRATION} or more are recommended")
        manifest.dataset = {**record, "calibration": f"{len(calibration)} training images, seed {seed}"}
    if command:
        manifest.command = command
    validation = (ds.inputs("val"), ds.split("val").labels)
    return export_artifacts(model, run_dir, manifest, calibration, validation, tuple(formats), tuple(precisions),
                            options or ExportOptions(), on_done)


def run_pipeline(out, dataset: str = "digits", arch: str = "edge-cnn", epochs: int = 20, target: str = "cpu",
                 threads: int | None = None, calib_samples: int = 300, warmup: int = 20, runs: int = 200,
                 seed: int = 0, command: str = "", console: Console | None = None, data_dir=None) -> dict:
    """Train, export every format and precision, benchmark on ``target``; print the table, write report.json."""
    console = console or Console()
    bench_target = resolve_target(target, threads)  # fail before training when the target is unusable
    console.rule(f"[1/3] train {arch} on {dataset}")
    manifest = train_run(out, dataset, arch, epochs, seed=seed, command=command, console=console, data_dir=data_dir)
    src = manifest.source
    console.print(f"{src['params']:,} parameters, {src['epochs_run']} epochs in {src['train_seconds']:.1f} s, "
                  f"test accuracy {src['test_accuracy']:.2f}%")
    console.rule("[2/3] export")
    export_run(out, calib_samples=calib_samples, seed=seed, command=command, data_dir=data_dir,
               on_done=lambda e: console.print(f"wrote {e.file} ({e.bytes / 1024:.1f} KB)"))
    console.rule(f"[3/3] bench on {bench_target.label}")
    rows = bench_paths([out], bench_target, warmup, runs, data_dir)
    document = report(rows, bench_target, warmup, runs)
    write_json_atomic(Path(out) / REPORT_FILE, document)
    print_table(rows, title=f"{dataset} test split on {bench_target.label}", console=console)
    console.print(f"report: {Path(out) / REPORT_FILE}")
    return document
