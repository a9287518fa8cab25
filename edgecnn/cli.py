"""The ``edgecnn`` command line: thin verbs over the library (see ``edgecnn --help``).

Errors are one line on stderr: exit 2 for usage errors (bad option, missing file argument), 1 for runtime
errors; ``--debug`` shows tracebacks and the native logs of TensorFlow and OpenCV. TensorFlow is imported only
by the verbs that train or export, so ``predict``, ``inspect``, ``live`` and ``bench`` of .tflite/.onnx artifacts
run without it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from inspect import cleandoc
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from edgecnn import api, tables
from edgecnn.common.errors import EdgecnnError, counted
from edgecnn.common.native_logs import mute_opencv_logs
from edgecnn.common.version import __version__
from edgecnn.deploy.bench import WARMUP
from edgecnn.deploy.remote import RemoteOptions
from edgecnn.workstation.config import ExportOptions, TrainConfig

app = typer.Typer(
    help="Train a compact CNN, quantize it to int8, export TFLite and ONNX, benchmark it and run it live.\n\n"
    "Example: edgecnn pipeline --out runs/demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 200)  # logs and CI get the whole table
EXISTING = {"exists": True, "resolve_path": False}
RUNS_HELP = "Timed runs per artifact (default: as many as fill a second, at least 100)."
DATA_DIR_HELP = "Folder with dataset files (else $EDGECNN_DATA_DIR, then ~/.keras/datasets)."


class TargetName(StrEnum):
    cpu = "cpu"
    gpu = "gpu"
    rpi = "rpi"
    micro = "micro"


_invocation: list[str] = []  # the arguments main() was given, for the manifest's "command"


def _command() -> str:
    return shlex.join(["edgecnn", *_invocation])


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _to_stderr(lines) -> None:
    """Print each line on stderr, as it is: warnings ("warning: ...") and notes ("note: ...") stay off stdout."""
    for line in lines:
        Console(stderr=True).print(line, markup=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug",
                               help="Show tracebacks and the native logs of TensorFlow and OpenCV."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """edgecnn: train, quantize, export, benchmark and run compact CNNs on edge devices."""
    if debug:
        os.environ["EDGECNN_DEBUG"] = "1"
    mute_opencv_logs()  # a camera that will not open, or a truncated PNG, gets OpenCV's warnings and our one line


ARCH_HELP = ("Architecture: edge-cnn, edge-vgg, seed-cnn, seed-bn, dscnn, resnet8, resnet8-wide, or for transfer "
             "learning mobilenetv2-0.35, mobilenetv2-0.5, mobilenetv3s-0.75, mobilenetv3s-1.0 or mobilenetv3s-min "
             "('edgecnn models').")
WEIGHTS_HELP = ("A mobilenet's backbone weights: imagenet (Keras downloads them once) or a weights file; it trains "
                "frozen first, then fine-tunes. Default: random.")
DATASET_HELP = "digits (built in), mnist, fashion_mnist, cifar10 or folder:PATH (class sub-folders)."
AUGMENT_HELP = ("Training augmentation: auto (the dataset's), none, shift (handwriting), flip-shift (objects) or "
                "flip-shift-erase (flip-shift plus random erasing).")


EPOCHS_HELP = ("Training epochs: 20, or more on a small dataset, enough for 300 optimizer steps (early stopping "
               "may end sooner).")
DETERMINISTIC_HELP = ("The same seed gives the same weights on one machine (TensorFlow's op determinism); "
                      "--no-deterministic where a GPU kernel has no deterministic version.")


def _train_options(cpu_devices: int | None = None, **options) -> dict:
    """The training options a user gave (None: TrainConfig's default), after splitting the CPU where asked."""
    if cpu_devices:
        from edgecnn.workstation.training import split_cpu

        split_cpu(cpu_devices)
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def pipeline(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory to write."),
    dataset: str = typer.Option(api.DATASET, help=DATASET_HELP),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    arch: str = typer.Option(TrainConfig.arch, help=ARCH_HELP),
    epochs: int = typer.Option(None, min=1, help=EPOCHS_HELP),
    augment: str = typer.Option(TrainConfig.augment, help=AUGMENT_HELP),
    image_size: int = typer.Option(api.IMAGE_SIZE, min=8, max=512, help="Model input height and width."),
    target: TargetName = typer.Option(TargetName.cpu, help="Where to benchmark."),
    threads: int = typer.Option(None, min=1, help="Inference threads (default: the target's)."),
    calib_samples: int = typer.Option(api.CALIB_SAMPLES, min=1, help="Calibration images for int8."),
    runs: int = typer.Option(None, min=1, help=RUNS_HELP),
    warmup: int = typer.Option(WARMUP, min=0, help="Untimed runs before timing."),
    seed: int = typer.Option(TrainConfig.seed, min=0, max=2**32 - 1, help="Seed for the split, training and "
                             "calibration."),
    deterministic: bool = typer.Option(TrainConfig.deterministic, help=DETERMINISTIC_HELP),
    weights: str = typer.Option(TrainConfig.weights, help=WEIGHTS_HELP),
) -> None:
    """Train, export TFLite and ONNX in fp32 and int8, then benchmark every artifact.

    Examples:
      edgecnn pipeline --out runs/demo
      edgecnn pipeline --dataset mnist --data-dir DIR --out runs/mnist --target cpu
    """
    document = api.pipeline(out=out, dataset=dataset, data_dir=data_dir, image_size=image_size, target=target.value,
                            threads=threads, calib_samples=calib_samples, warmup=warmup, runs=runs,
                            command=_command(), console=console,
                            **_train_options(arch=arch, epochs=epochs, augment=augment, seed=seed,
                                             deterministic=deterministic, weights=weights))
    _exit_if_failed(document)


@app.command()
def train(
    out: Path = typer.Option(Path("runs/train"), help="Run directory to write."),
    dataset: str = typer.Option(api.DATASET, help=DATASET_HELP),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    arch: str = typer.Option(TrainConfig.arch, help=ARCH_HELP),
    epochs: int = typer.Option(None, min=1, help=EPOCHS_HELP + " Resuming: the run's own."),
    batch_size: int = typer.Option(TrainConfig.batch_size, min=1, help="Training batch size (global, across "
                                   "devices)."),
    learning_rate: float = typer.Option(TrainConfig.learning_rate, min=1e-7, help="Adam's (initial) learning rate."),
    schedule: str = typer.Option(TrainConfig.schedule, help="Learning-rate schedule: cosine (decay to 1%) or "
                                 "constant."),
    augment: str = typer.Option(TrainConfig.augment, help=AUGMENT_HELP),
    patience: int = typer.Option(None, min=1, help="Stop this many epochs after the best validation accuracy "
                                 "(ties: the lower validation loss): 5, or more on a small dataset, enough for 75 "
                                 "optimizer steps."),
    image_size: int = typer.Option(api.IMAGE_SIZE, min=8, max=512, help="Model input height and width."),
    seed: int = typer.Option(TrainConfig.seed, min=0, max=2**32 - 1, help="Seed for the split and training."),
    deterministic: bool = typer.Option(TrainConfig.deterministic, help=DETERMINISTIC_HELP),
    strategy: str = typer.Option(TrainConfig.strategy, help="tf.distribute strategy: default, mirrored or "
                                 "multi-worker."),
    cpu_devices: int = typer.Option(None, min=2, help="Split the CPU into N logical devices (for mirrored "
                                    "training without GPUs)."),
    weights: str = typer.Option(TrainConfig.weights, help=WEIGHTS_HELP),
    frozen_epochs: int = typer.Option(None, min=0, help="With --weights: epochs that train the new head alone "
                                      "before the backbone fine-tunes at a tenth of the learning rate (default: a "
                                      "quarter of the epochs)."),
    resume: bool = typer.Option(False, help="Continue OUT's last checkpoint with the settings it started with."),
) -> None:
    """Train a model; write model.keras, manifest.json, metrics.json, confusion_matrix.png and checkpoints/.

    Examples:
      edgecnn train --dataset digits --epochs 20 --out runs/digits
      edgecnn train --dataset mnist --data-dir DIR --arch dscnn --out runs/mnist
      edgecnn train --dataset folder:data --image-size 96 \\
        --arch mobilenetv2-0.35 --weights imagenet --out runs/cups
      edgecnn train --out runs/mnist --resume          # after an interruption
    """
    options = _train_options(cpu_devices, epochs=epochs) if resume else _train_options(
        cpu_devices, arch=arch, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        schedule=schedule, augment=augment, patience=patience, seed=seed, strategy=strategy,
        deterministic=deterministic, weights=weights, frozen_epochs=frozen_epochs)
    summary = api.train(out=out, dataset=dataset, data_dir=data_dir, image_size=image_size, resume=resume,
                        command=_command(), console=console, **options)
    src = summary["source"]
    console.print(tables.train_table(summary))
    console.print(f"{out / src['file']}: {src['params']:,} parameters, best epoch {src['best_epoch']} of "
                  f"{src['epochs_run']}, val {src['val_accuracy']:.2f}%, test {src['test_accuracy']:.2f}%, "
                  f"{src['train_seconds']:.1f} s", markup=False)


@app.command()
def models(
    image_size: int = typer.Option(api.IMAGE_SIZE, min=8, max=512, help="Input height and width."),
    channels: int = typer.Option(1, min=1, max=3, help="1 (grayscale) or 3 (colour)."),
    classes: int = typer.Option(10, min=2, help="Number of classes."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the architectures with parameters and multiply-accumulates per image.

    Example: edgecnn models --image-size 32 --channels 3
    """
    from edgecnn.workstation.models import describe_models

    rows = describe_models((image_size, image_size, channels), classes)
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    console.print(tables.models_table(rows, f"architectures at {image_size}x{image_size}x{channels}, "
                                            f"{classes} classes"))


@app.command()
def export(
    model: Path = typer.Argument(..., **EXISTING, help="Run directory (or its model.keras)."),
    format: str = typer.Option(",".join(api.FORMATS), "--format", help="Comma-separated: tflite, onnx, c (each "
                              ".tflite also as a C array for TFLite Micro)."),
    quantize: str = typer.Option(",".join("none" if p == "fp32" else p for p in api.PRECISIONS),
                                 help="Comma-separated: none (fp32), fp16, dynamic, int8 (fp16 and dynamic are "
                                 "TFLite only)."),
    calib_samples: int = typer.Option(api.CALIB_SAMPLES, min=1, help="Training images used to calibrate int8."),
    int8_io: bool = typer.Option(
        ExportOptions.int8_io, "--int8-io/--float-io",
        help="Full-int8 TFLite input/output type: int8 for integer-only devices; float quantizes inside the graph."),
    opset: int = typer.Option(None, min=13, help="ONNX opset (default: the exporter's)."),
    calibration: str = typer.Option(ExportOptions.calibration_method, help="ONNX calibration: minmax, entropy or "
                                    "percentile."),
    onnx_activations: str = typer.Option(ExportOptions.onnx_activations, help="ONNX int8 activations: uint8 (U8S8, "
                                         "every conv and add fuses on ONNX Runtime) or int8 (S8S8)."),
    min_agreement: float = typer.Option(None, min=0, max=100, help="Fail below this top-1 agreement (%) "
                                        "with the float model on the validation split."),
    tta: str = typer.Option(None, help="Test-time augmentation built into every artifact: none, or flip "
                            "(average the predictions on each image and its mirror: 2x compute, same size; for "
                            "data trained with flips, not digits). Default: the run's (none for a new run)."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed for drawing calibration images."),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    sign_key: Path = typer.Option(None, "--sign", **EXISTING, dir_okay=False,
                                  help="Sign the run with this Ed25519 private key once it is written."),
    mediapipe: bool = typer.Option(ExportOptions.mediapipe, help="Also write each TFLite artifact as a file MediaPipe "
                                   "Tasks' ImageClassifier loads (RGB input, labels and normalization in metadata)."),
    max_drop: float = typer.Option(None, min=0, max=100, help="int8 within this many points of float accuracy on "
                                   "the validation split: the smallest setting of a calibration sweep that is, else "
                                   "16-bit activations for the worst tensors; nothing written where none is."),
) -> None:
    """Export TFLite and ONNX artifacts, verify each against the float model, record them in the manifest.

    Examples:
      edgecnn export runs/demo --format tflite,onnx --quantize int8
      edgecnn export runs/demo --quantize int8 --min-agreement 99.5
      edgecnn export runs/fashion --tta flip   # average with the mirror image
      edgecnn export runs/demo --sign keys/release.key
      edgecnn export runs/demo --format tflite,c --mediapipe   # MCU, MediaPipe
      edgecnn export runs/demo --max-drop 0.5   # int8 within 0.5 points of float
    """
    from edgecnn.common.progress import artifact_progress
    from edgecnn.runtime.manifest import Manifest

    precisions = tuple("fp32" if q == "none" else q for q in _csv(quantize))
    with artifact_progress("export") as on_start:
        entries = api.export(model, formats=_csv(format), precisions=precisions, calib_samples=calib_samples,
                             seed=seed, command=_command(), data_dir=data_dir, sign_key=sign_key, console=console,
                             on_start=on_start,
                             int8_io=int8_io, opset=opset, calibration_method=calibration,
                             min_agreement=min_agreement, onnx_activations=onnx_activations, tta=tta,
                             mediapipe=mediapipe, max_drop=max_drop)
    run_dir = model if model.is_dir() else model.parent
    for entry in entries:
        if entry.recipe and "sweep" in entry.recipe:
            console.print(tables.sweep_table(entry))
    console.print(tables.export_table(entries, f"exported to {run_dir}"))
    written = {e.file for e in entries}
    for extra in Manifest.load(run_dir).extras:
        if extra["of"] in written:
            agreement = f", {extra['verification']['agreement']:.2f}% agreement" if "verification" in extra else ""
            console.print(Text(f"also {extra['file']} ({extra['bytes'] / 1024:.1f} KB): {extra['for']}{agreement}"))


@contextmanager
def _as_usage_error() -> Iterator[None]:
    """For option callbacks: an EdgecnnError from a library check becomes typer's usage error (exit 2)."""
    try:
        yield
    except EdgecnnError as exc:
        raise typer.BadParameter(str(exc)) from None


def _check_output(path):
    """An output file (``-`` is stdout) is checked before the work that fills it: one that cannot be written is a
    usage error (exit 2), not a failure after a long benchmark."""
    from edgecnn.common.atomic import check_writable

    if path is not None and str(path) != "-":
        with _as_usage_error():
            check_writable(path)
    return path


def _check_plot(path: Path | None) -> Path | None:
    """--plot's format and folder are checked before the benchmark runs, as every output is."""
    from edgecnn.deploy.report import plot_suffix

    if path is not None:
        with _as_usage_error():
            plot_suffix(path)
    return _check_output(path)


def _check_hosts(hosts: list[str] | None) -> list[str] | None:
    """--host specs are checked before anything runs: a bad one is a usage error (exit 2)."""
    from edgecnn.deploy.remote import Host

    for spec in hosts or []:
        with _as_usage_error():
            Host.parse(spec)
    return hosts


@app.command()
def bench(
    paths: list[Path] = typer.Argument(..., **EXISTING, help="Run directories and/or .keras/.tflite/.onnx files."),
    target: TargetName = typer.Option(TargetName.cpu, help="cpu, gpu (CUDA), rpi (native or emulated) or "
                                    "micro (TFLite Micro: RAM and ROM of a microcontroller)."),
    threads: int = typer.Option(None, min=1, help="Inference threads (default: the target's)."),
    runs: int = typer.Option(None, min=1, help=RUNS_HELP),
    warmup: int = typer.Option(WARMUP, min=0, help="Untimed runs before timing."),
    batch: int = typer.Option(1, min=1, help="Images per timed call."),
    json_out: str = typer.Option(None, "--json", callback=_check_output,
                                 help="Write the JSON report to this file ('-': stdout, instead of the table)."),
    csv_out: Path = typer.Option(None, "--csv", callback=_check_output,
                                 help="Write the rows as CSV ('-': stdout, instead of the table)."),
    md_out: Path = typer.Option(None, "--md", callback=_check_output,
                                help="Write the table as Markdown ('-': stdout, instead of the table)."),
    plot: Path = typer.Option(None, callback=_check_plot,
                              help="Write a plot of latency against accuracy (.png, .svg or .pdf)."),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    host: list[str] = typer.Option(None, callback=_check_hosts,
                                   help="Bench on USER@HOST[:PORT] over SSH instead of here; repeat for a fleet."),
    ssh_config: Path = typer.Option(None, **EXISTING, dir_okay=False, help="ssh -F config for --host."),
    remote_python: str = typer.Option(RemoteOptions.python, help="The hosts' interpreter that has edgecnn (runtime "
                                      "extra)."),
    timeout: float = typer.Option(RemoteOptions.timeout, min=1, help="Seconds allowed for each step on a host."),
) -> None:
    """Accuracy on the test split, agreement with the Keras model, load time, first call, latency (median with its
    95% interval, percentiles), FPS, GMAC/s and memory of every artifact, as a table.

    Artifacts are timed in interleaved rounds, each for at least a second unless --runs fixes the count; a note
    under the table names rows whose medians cannot be told apart.

    With --host, the artifacts, manifests and test split are copied to each host,
    benched there with `python3 -m edgecnn bench ... --json -`, and shown in one table.

    A failed row leaves the others, the table and the JSON in place; the exit status is then 1.

    The Keras reference runs on the Keras backend that KERAS_BACKEND names
    (TensorFlow unless set; jax and torch run it without TensorFlow),
    on the GPU for --target gpu and on the CPU for cpu; rpi skips it.

    Examples:
      edgecnn bench runs/demo --threads 1 --json bench.json --plot bench.png
      KERAS_BACKEND=jax edgecnn bench models/mnist --target gpu --batch 256
      edgecnn bench models/mnist --batch 8 --csv b.csv --md b.md --plot b.png
      edgecnn bench models/mnist --target rpi --host pi@pi4 --host pi@pi5:2222
    """
    from edgecnn.common.progress import artifact_progress, host_progress
    from edgecnn.deploy.report import print_table, write_csv, write_markdown, write_output, write_plot

    to_stdout = [name for name, value in (("--json", json_out), ("--csv", csv_out), ("--md", md_out))
                 if value is not None and str(value) == "-"]
    if len(to_stdout) > 1:
        raise typer.BadParameter(f"only one output can go to stdout ('-'), not {' and '.join(to_stdout)}")
    progress = host_progress(host) if host else artifact_progress("bench")
    with progress as on_progress:
        result = api.bench(paths, target=target.value, threads=threads, batch=batch, warmup=warmup, runs=runs,
                           data_dir=data_dir, hosts=host, ssh_config=ssh_config, remote_python=remote_python,
                           timeout_s=timeout, on_start=None if host else on_progress,
                           on_step=on_progress if host else None, on_note=lambda line: _to_stderr([f"note: {line}"]))
    rows, document = result.rows, result.document
    if plot:
        write_plot(rows, plot, result.title)
    if csv_out:
        write_csv(rows, csv_out)
    if md_out:
        write_markdown(rows, md_out, result.title)
    if json_out:
        write_output(json_out, json.dumps(document, indent=2) + "\n")
    if not to_stdout:
        print_table(rows, title=result.title, console=console)
    _to_stderr(f"note: {note}" for note in result.notes)
    failed = [h["host"] for h in document.get("hosts", []) if h["error"]]
    if failed:
        raise EdgecnnError(f"{len(failed)} of {len(host)} hosts failed: {', '.join(failed)} (see the table)")
    _exit_if_failed(document)


def _exit_if_failed(document: dict) -> None:
    """After the table: exit 1 with one line where an artifact failed or could not be evaluated."""
    from edgecnn.deploy.bench import failure_summary

    problem = failure_summary(document["rows"])
    if problem:
        raise EdgecnnError(problem)


@app.command()
def predict(
    artifact: Path = typer.Argument(..., **EXISTING, dir_okay=False, help="A .tflite or .onnx model."),
    images: list[Path] = typer.Argument(..., **EXISTING,
                                        help="Image files OpenCV can read, or folders of them (name order)."),
    top_k: int = typer.Option(api.TOP_K, min=1, help="How many labels to show per image."),
    threads: int = typer.Option(None, min=1, help="Inference threads."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Top-k labels with scores for each image, using the manifest beside the model (no TensorFlow).

    An image that cannot be read is marked in the table (an "error" entry with --json) and the others are still
    classified; then the verb exits 1 with one line naming the unreadable files.

    Example: edgecnn predict runs/demo/model_int8.tflite digit.png photos/
    """
    results = api.predict(artifact, images, top_k=top_k, threads=threads)
    if json_out:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        console.print(tables.predict_table(results, artifact.name))
    if any("error" in r for r in results):
        raise EdgecnnError(api.unreadable_summary(results))


@app.command()
def inspect(
    artifact: Path = typer.Argument(..., **EXISTING, dir_okay=False, help="A .tflite or .onnx model."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Operators, input/output tensors (dtype, shape, quantization), parameters and size of an artifact.

    Example: edgecnn inspect runs/demo/model_int8.tflite
    """
    info = api.inspect(artifact)
    if json_out:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    macs = "MACs unknown (ONNX Runtime cannot run it here)" if info["macs"] is None else f"{info['macs']:,} MACs"
    views = " (the image and its mirror, averaged)" if info["tta"] == "flip" else ""
    precision = info["precision"] or "unknown"  # the manifest says; without one, nothing does
    console.print(Text.assemble((info["file"], "bold"), f" {info['format']}, {info['bytes'] / 1024:.1f} KB, "
                                f"{info['parameters']:,} parameters, {macs}{views}, precision {precision}, "
                                f"manifest: {info['manifest']}"))
    if info["weights"]:
        w = info["weights"]
        console.print(f"weights: {w['dtype']} in {w['layers']} layers, {w['range']} range (largest |code| "
                      f"{w['max_abs_code']})")
    if info["recipe"]:
        # Text, not markup: the manifest is untrusted input
        console.print(Text("recipe: " + ", ".join(f"{key} {value}" for key, value in info["recipe"].items())))
    console.print(*tables.info_tables(info))


@app.command()
def check(
    path: Path = typer.Argument(..., **EXISTING, help="A run directory, or one artifact in it."),
    limit: int = typer.Option(None, min=0, help="Test images per artifact and runtime (default 1000; 0: all)."),
    runtime: str = typer.Option(None, help="Comma-separated runtimes to try: litert, onnxruntime, openvino, opencv, "
                                "tflite-micro, mediapipe (default: all; those not installed are listed)."),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Load each artifact in every runtime installed here and compare their answers on the test split.

    LiteRT runs the .tflite files and ONNX Runtime the .onnx ones as references; OpenVINO, OpenCV DNN, TFLite
    Micro (with the smallest tensor arena that runs the model) and MediaPipe Tasks (the export --mediapipe files;
    in the Python $EDGECNN_MEDIAPIPE_PYTHON names, since it brings its own OpenCV) are compared with them.
    Exit status 1 where a file fails in its reference runtime; other runtimes' failures are listed.

    Examples:
      edgecnn check models/mnist
      edgecnn check runs/demo --runtime tflite-micro --limit 0
    """
    from edgecnn.common.progress import count_progress
    from edgecnn.deploy.portability import LOAD_FAILED, REFERENCE, RUN_FAILED

    with count_progress("check") as on_count:
        started = []

        def on_start(name: str, file: str) -> None:
            started.append(file)
            if on_count:
                on_count(len(started), None, f"{file} in {name}")

        rows = api.check(path, data_dir=data_dir, limit=limit, runtimes=_csv(runtime) if runtime else None,
                         on_start=on_start)
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        console.print(tables.check_table(rows, f"{path}: {rows[0]['n'] or 0} test images per runtime" if rows
                                         else f"{path}: nothing to check"))
    if any(r["status"] in (LOAD_FAILED, RUN_FAILED) and r["runtime"] == REFERENCE[r["kind"]] for r in rows):
        raise typer.Exit(1)


@app.command()
def doctor(
    path: Path = typer.Argument(..., **EXISTING, help="A run directory, or one int8 artifact in it."),
    images: int = typer.Option(None, min=1, help="Validation images to run (default 200)."),
    top: int = typer.Option(10, min=1, help="Tensors shown per artifact, worst first."),
    out: Path = typer.Option(None, file_okay=False, help="Folder for doctor.json and the flipped images' contact "
                             "sheets (default: RUN/doctor)."),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Find the tensors that lose accuracy in int8: each int8 artifact against its fp32 twin, tensor by tensor.

    Per quantized tensor: the noise it adds to its inputs' (local SNR, the ranking), its SNR over channels and
    whole, cosine similarity, largest error, the share of int8 codes used and of values clipped. Also the
    validation images whose int8 answer differs from the float one, with a contact sheet of them.

    Examples:
      edgecnn doctor models/fashion_mnist
      edgecnn doctor runs/demo/model_int8.onnx --images 500 --json
    """
    from edgecnn.common.progress import artifact_progress

    run_dir = path if path.is_dir() else path.parent
    with artifact_progress("doctor") as on_start:
        report = api.doctor(path, data_dir=data_dir, images=images, out=out or run_dir / "doctor", on_start=on_start)
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    for file, record in report["artifacts"].items():
        console.print(tables.doctor_table(file, record, top))
        flips = record["flips"]
        sheet = f"; contact sheet {record['contact_sheet']}" if record.get("contact_sheet") else ""
        console.print(Text(f"{len(flips)} of {report['images']} validation images change their top-1 in int8{sheet}"))
    console.print(Text(f"report: {(out or run_dir / 'doctor') / 'doctor.json'}"))


@app.command()
def capture(
    out: Path = typer.Option(..., "--out", help="Dataset folder: one sub-folder per label is made or added to."),
    labels: str = typer.Option(..., help="Comma-separated class names; keys 1-9 record them in this order."),
    source: str = typer.Option("0", help="Camera index, picamera (a Raspberry Pi camera), video file or URL."),
    roi: str = typer.Option(None, help="Region saved, X,Y,W,H (default: the centred square live classifies)."),
    timeline: Path = typer.Option(None, **EXISTING, dir_okay=False, help="CSV of start,end,label frame ranges: "
                                  "record those frames, no window needed."),
    display: bool = typer.Option(None, "--display/--no-display", help="Show the preview window (needs a screen; "
                                 "default: without --timeline)."),
    burst: int = typer.Option(None, min=1, help="Frames a key press records (default 10)."),
    min_change: float = typer.Option(None, min=0, help="Skip a frame within this mean grey-level difference of the "
                                     "last one saved to its class."),
    max_frames: int = typer.Option(None, min=1, help="Stop after this many frames."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Record training images from a camera or video into class folders, for train --dataset folder:OUT.

    In the window: 1-9 record a burst into that class, space starts or stops continuous capture into the last
    class chosen, q or ESC quits. With --timeline, the frames of each range are recorded without a window.

    Examples:
      edgecnn capture --out data/desk --labels cup,pen,background
      edgecnn capture --source v.mp4 --timeline t.csv --out data --labels a,b
      edgecnn capture --source picamera --out data/desk --labels cup,pen,none
    """
    from edgecnn.common.progress import count_progress
    from edgecnn.deploy.live import parse_roi

    with _as_usage_error():
        box = parse_roi(roi)
    with count_progress("capture") as on_count:
        summary = api.capture(source, out=out, labels=labels, roi=box, timeline=timeline, display=display,
                              burst=burst, min_change=min_change, max_frames=max_frames,
                              on_frame=(lambda done, total: on_count(done, total)) if on_count else None)
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    console.print(tables.capture_table(summary))
    for warning in summary["warnings"]:
        console.print(Text(f"warning: {warning}"), style="yellow")


@app.command()
def live(
    model: Path = typer.Argument(..., **EXISTING, dir_okay=False, help="A .tflite or .onnx model."),
    source: str = typer.Option("0", help="Camera index, picamera (a Raspberry Pi camera), video file, rtsp:// URL "
                                "or image folder."),
    roi: str = typer.Option(None, help="Region of interest X,Y,W,H (default: centred square)."),
    invert: bool = typer.Option(False, help="Invert the region (dark ink on white paper)."),
    top_k: int = typer.Option(api.TOP_K, min=1, help="Labels shown per frame."),
    threads: int = typer.Option(None, min=1, help="Inference threads."),
    display: bool = typer.Option(True, "--display/--no-display", help="Show a window (needs a screen)."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON line per frame, then a summary line."),
    save: Path = typer.Option(None, help="Write the annotated video here (.mp4, .avi, .mov or .mkv)."),
    max_frames: int = typer.Option(None, min=1, help="Stop after this many frames."),
    reconnect: bool = typer.Option(False, help="Reopen a camera or stream that drops (5 tries, 1 s apart)."),
) -> None:
    """Classify a camera, video, stream or image folder frame by frame.

    q or ESC in the window, or Ctrl-C, stops; the summary is printed and --save keeps the video so far.

    Examples:
      edgecnn live runs/demo/model_int8.tflite --source 0
      edgecnn live runs/demo/model_int8.tflite --source in.mp4 --no-display --json
    """
    from edgecnn.common.progress import frame_progress
    from edgecnn.deploy.live import parse_roi

    region = parse_roi(roi)
    # JSON lines own the terminal; otherwise a bar on stderr counts the frames
    with nullcontext() if json_lines else frame_progress() as on_frame:
        summary = api.live(model, source=source, roi=region, invert=invert, top_k=top_k, threads=threads,
                           display=display, json_lines=json_lines, save=save, max_frames=max_frames,
                           reconnect=reconnect, on_frame=on_frame)
    if json_lines:
        sys.stdout.write(json.dumps({"summary": summary}) + "\n")
    else:
        console.print(f"{counted(summary['frames'], 'frame')}, {summary['mean_fps']} FPS, "
                      f"p50 {summary['p50_ms']} ms, {summary['dropped']} dropped, "
                      f"{counted(summary['reconnects'], 'reconnect')}"
                      + (", stopped by Ctrl-C" if summary["interrupted"] else ""))
    if summary["source_lost"]:
        _to_stderr([f"warning: lost {source} and could not reopen it"])
    if summary["unreadable"]:
        _to_stderr([f"warning: skipped {counted(len(summary['unreadable']), 'image')} of {source} that OpenCV "
                    f"could not decode, e.g. {summary['unreadable'][0]}"])


@app.command()
def keygen(
    out: Path = typer.Argument(..., help="The key's path without suffix: OUT.key (private) and OUT.pub."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make an Ed25519 key pair for signing runs; the private key is written readable by you alone (0600).

    Keep the private key out of run folders (refused there) and copy the .pub file to devices.

    Example: edgecnn keygen keys/release
    """
    made = api.keygen(out)
    _result(made, json_out, f"private key {made['private']} (mode 0600), public key {made['public']}, key id "
                            f"{made['key_id'][:16]}")


@app.command()
def sign(
    run: Path = typer.Argument(..., **EXISTING, file_okay=False, help="The run folder to sign."),
    key: Path = typer.Option(..., **EXISTING, dir_okay=False, help="Ed25519 private key (edgecnn keygen)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sign a run: model.sig over manifest.json and every artifact it lists.

    A device with trusted keys (--trust, $EDGECNN_TRUSTED_KEYS, Classifier(trusted_keys=...)) then runs these files
    and refuses any other. Exporting again removes the signature; sign again after.

    Example: edgecnn sign runs/demo --key keys/release.key
    """
    signed = api.sign(run, key=key)
    _result(signed, json_out, f"signed {counted(len(signed['files']), 'file')} of {run} with key "
                              f"{signed['key_id'][:16]}: {signed['signature']}")


@app.command()
def verify(
    path: Path = typer.Argument(..., **EXISTING, help="A run folder or one of its artifacts."),
    trust: list[Path] = typer.Option(None, **EXISTING, help="Trusted public key or folder of them (repeatable; "
                                     "default: $EDGECNN_TRUSTED_KEYS)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check a run's signature against trusted public keys; exit 1 with the reason where it does not hold.

    Examples:
      edgecnn verify runs/demo --trust keys/release.pub
      EDGECNN_TRUSTED_KEYS=keys/ edgecnn verify runs/demo/model_int8.tflite
    """
    checked = api.verify(path, trust=trust or None)
    _result(checked, json_out, f"{path}: signature valid, {counted(len(checked['signed']), 'file')} as signed")


def _result(document: dict, json_out: bool, line: str) -> None:
    """A verb's result: its JSON document on stdout with --json, else one line."""
    if json_out:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        console.print(line, markup=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every failure into one line on stderr and an exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    _invocation[:] = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=argv, prog_name="edgecnn", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted", markup=False)
        code = 130
    except EdgecnnError as exc:
        err.print(f"error: {exc}", markup=False)
        code = 1
    except Exception as exc:
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # typer's usage errors (click's)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx else "edgecnn"
            # empty when the help was shown for a bare command; typer words a bad choice through pydantic, whose
            # "Value error, " prefix says nothing to a user
            message = exc.format_message().replace("Value error, ", "")
            if message:
                err.print(f"error: {message} (see '{where} --help')", markup=False)
            code = exc.exit_code
        elif os.environ.get("EDGECNN_DEBUG") == "1":
            raise
        else:
            err.print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", markup=False)
            code = 1
    sys.exit(code or 0)


def _reflow(doc: str) -> str:
    """A verb's docstring as --help text: typer keeps single line breaks, so each prose paragraph becomes one line
    for the terminal to wrap; the examples keep theirs."""
    paragraphs = cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith("Example") else " ".join(p.splitlines()) for p in paragraphs)


for _verb in app.registered_commands:
    _verb.help = _reflow(_verb.callback.__doc__ or "")
del _verb
