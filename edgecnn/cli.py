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
from rich.table import Table
from rich.text import Text

from edgecnn import __version__
from edgecnn.errors import EdgecnnError, ImageReadError, counted
from edgecnn.quiet import mute_opencv_logs, native_output_muted

app = typer.Typer(
    help="Train a compact CNN, quantize it to int8, export TFLite and ONNX, benchmark it and run it live.\n\n"
    "Example: edgecnn pipeline --out runs/demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 200)  # logs and CI get the whole table
EXISTING = {"exists": True, "resolve_path": False}
DATA_DIR_HELP = "Folder with dataset files (else $EDGECNN_DATA_DIR, then ~/.keras/datasets)."


class TargetName(StrEnum):
    cpu = "cpu"
    gpu = "gpu"
    rpi = "rpi"


_invocation: list[str] = []  # the arguments main() was given, for the manifest's "command"


def _command() -> str:
    return shlex.join(["edgecnn", *_invocation])


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _to_stderr(lines) -> None:
    """Print each line on stderr, as it is: warnings ("warning: ...") and notes ("note: ...") stay off stdout."""
    for line in lines:
        Console(stderr=True).print(line, markup=False, soft_wrap=True)


def _open_classifier(path: Path, threads: int | None):
    """A Classifier, with LiteRT's banner muted and a warning when no manifest vouches for the file."""
    from edgecnn.runtime import Classifier

    with native_output_muted():
        clf = Classifier(path, threads=threads)
    if clf.manifest is None:
        _to_stderr([f"warning: {path.name} has no manifest beside it: its integrity is not checked and its labels "
                    "are class indices"])
    return clf


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


ARCH_HELP = "Architecture: edge-cnn, edge-vgg, seed-cnn, seed-bn, dscnn, resnet8 or resnet8-wide ('edgecnn models')."
DATASET_HELP = "digits (built in), mnist, fashion_mnist, cifar10 or folder:PATH (class sub-folders)."
AUGMENT_HELP = ("Training augmentation: auto (the dataset's), none, shift (handwriting), flip-shift (objects) or "
                "flip-shift-erase (flip-shift plus random erasing).")


EPOCHS_HELP = ("Training epochs: 20, or more on a small dataset, enough for 300 optimizer steps (early stopping "
               "may end sooner).")
DETERMINISTIC_HELP = ("The same seed gives the same weights on one machine (TensorFlow's op determinism); "
                      "--no-deterministic where a GPU kernel has no deterministic version.")


def _train_config(arch, epochs, batch_size, learning_rate, schedule, augment, patience, seed, strategy, cpu_devices,
                  deterministic):
    from edgecnn.train import TrainConfig, split_cpu

    if cpu_devices:
        split_cpu(cpu_devices)
    return TrainConfig(arch, epochs, batch_size, learning_rate, schedule, augment, seed, patience, strategy,
                       deterministic)


@app.command()
def pipeline(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory to write."),
    dataset: str = typer.Option("digits", help=DATASET_HELP),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    arch: str = typer.Option("edge-cnn", help=ARCH_HELP),
    epochs: int = typer.Option(None, min=1, help=EPOCHS_HELP),
    augment: str = typer.Option("auto", help=AUGMENT_HELP),
    image_size: int = typer.Option(28, min=8, max=512, help="Model input height and width."),
    target: TargetName = typer.Option(TargetName.cpu, help="Where to benchmark."),
    threads: int = typer.Option(None, min=1, help="Inference threads (default: the target's)."),
    calib_samples: int = typer.Option(300, min=1, help="Calibration images for int8."),
    runs: int = typer.Option(200, min=1, help="Timed batch-1 runs per artifact."),
    warmup: int = typer.Option(20, min=0, help="Untimed runs before timing."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed for the split, training and calibration."),
    deterministic: bool = typer.Option(True, help=DETERMINISTIC_HELP),
) -> None:
    """Train, export TFLite and ONNX in fp32 and int8, then benchmark every artifact.

    Example: edgecnn pipeline --out runs/demo --epochs 20 --target cpu
    """
    from edgecnn.pipeline import run_pipeline

    config = _train_config(arch, epochs, 32, 1e-3, "cosine", augment, None, seed, "default", None, deterministic)
    document = run_pipeline(out, dataset, config, target.value, threads, calib_samples, warmup, runs,
                            command=_command(), console=console, data_dir=data_dir, image_size=image_size)
    _exit_if_failed(document)


@app.command()
def train(
    out: Path = typer.Option(Path("runs/train"), help="Run directory to write."),
    dataset: str = typer.Option("digits", help=DATASET_HELP),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
    arch: str = typer.Option("edge-cnn", help=ARCH_HELP),
    epochs: int = typer.Option(None, min=1, help=EPOCHS_HELP + " Resuming: the run's own."),
    batch_size: int = typer.Option(32, min=1, help="Training batch size (global, across devices)."),
    learning_rate: float = typer.Option(1e-3, min=1e-7, help="Adam's (initial) learning rate."),
    schedule: str = typer.Option("cosine", help="Learning-rate schedule: cosine (decay to 1%) or constant."),
    augment: str = typer.Option("auto", help=AUGMENT_HELP),
    patience: int = typer.Option(None, min=1, help="Stop this many epochs after the best validation accuracy "
                                 "(ties: the lower validation loss): 5, or more on a small dataset, enough for 75 "
                                 "optimizer steps."),
    image_size: int = typer.Option(28, min=8, max=512, help="Model input height and width."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed for the split and training."),
    deterministic: bool = typer.Option(True, help=DETERMINISTIC_HELP),
    strategy: str = typer.Option("default", help="tf.distribute strategy: default, mirrored or multi-worker."),
    cpu_devices: int = typer.Option(None, min=2, help="Split the CPU into N logical devices (for mirrored "
                                    "training without GPUs)."),
    resume: bool = typer.Option(False, help="Continue OUT's last checkpoint with the settings it started with."),
) -> None:
    """Train a model; write model.keras, manifest.json, metrics.json, confusion_matrix.png and checkpoints/.

    Examples:
      edgecnn train --dataset digits --epochs 20 --out runs/digits
      edgecnn train --dataset mnist --data-dir DIR --arch dscnn --out runs/mnist
      edgecnn train --out runs/mnist --resume          # after an interruption
    """
    from edgecnn.pipeline import METRICS_FILE, train_run
    from edgecnn.train import TrainConfig

    config = _train_config(arch, epochs, batch_size, learning_rate, schedule, augment, patience, seed, strategy,
                           cpu_devices, deterministic)
    if resume:
        config = TrainConfig(epochs=epochs) if epochs else None
    manifest = train_run(out, dataset, config, image_size, _command(), console, data_dir, resume)
    src = manifest.source
    metrics = json.loads((out / METRICS_FILE).read_text())
    table = Table(title=_title(f"{src['arch']} on {manifest.dataset['name']}: test split, per class"))
    for name in ("Class", "Precision (%)", "Recall (%)", "F1 (%)", "Support"):
        table.add_column(name, justify="left" if name == "Class" else "right")
    for c in metrics["classes"]:
        table.add_row(Text(c["label"]), *(f"{c[k]:.2f}" for k in ("precision", "recall", "f1")), str(c["support"]))
    console.print(table)
    console.print(f"{out / src['file']}: {src['params']:,} parameters, best epoch {src['best_epoch']} of "
                  f"{src['epochs_run']}, val {src['val_accuracy']:.2f}%, test {src['test_accuracy']:.2f}%, "
                  f"{src['train_seconds']:.1f} s", markup=False)


@app.command()
def models(
    image_size: int = typer.Option(28, min=8, max=512, help="Input height and width."),
    channels: int = typer.Option(1, min=1, max=3, help="1 (grayscale) or 3 (colour)."),
    classes: int = typer.Option(10, min=2, help="Number of classes."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the architectures with parameters and multiply-accumulates per image.

    Example: edgecnn models --image-size 32 --channels 3
    """
    from edgecnn.models import describe_models

    rows = describe_models((image_size, image_size, channels), classes)
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"architectures at {image_size}x{image_size}x{channels}, {classes} classes")
    # numbers whole and a two-line header, so that at 80 columns the description keeps the room to wrap in words
    for name in ("Arch", "Parameters", "MACs", "int8 weights\n(KB)"):
        table.add_column(name, justify="left" if name == "Arch" else "right", no_wrap=True)
    table.add_column("Description", overflow="fold")
    for r in rows:
        if r["error"]:
            table.add_row(r["arch"], "-", "-", "-", Text.assemble(f"{r['summary']} (", (r["error"], "red"), ")"))
        else:
            table.add_row(r["arch"], f"{r['params']:,}", f"{r['macs']:,}", f"{r['params'] / 1024:.1f}", r["summary"])
    console.print(table)


@app.command()
def export(
    model: Path = typer.Argument(..., **EXISTING, help="Run directory (or its model.keras)."),
    format: str = typer.Option("tflite,onnx", "--format", help="Comma-separated: tflite, onnx."),
    quantize: str = typer.Option("none,int8", help="Comma-separated: none (fp32), fp16, dynamic, int8 "
                                 "(fp16 and dynamic are TFLite only)."),
    calib_samples: int = typer.Option(300, min=1, help="Training images used to calibrate int8."),
    int8_io: bool = typer.Option(
        True, "--int8-io/--float-io",
        help="Full-int8 TFLite input/output type: int8 for integer-only devices; float quantizes inside the graph, "
             "faster from Python."),
    opset: int = typer.Option(None, min=13, help="ONNX opset (default: the exporter's)."),
    calibration: str = typer.Option("minmax", help="ONNX calibration: minmax, entropy or percentile."),
    onnx_activations: str = typer.Option("int8", help="ONNX int8 activations: int8 (S8S8) or uint8 (U8S8, "
                                         "faster on x86 CPUs without VNNI)."),
    min_agreement: float = typer.Option(None, min=0, max=100, help="Fail below this top-1 agreement (%) "
                                        "with the float model on the validation split."),
    tta: str = typer.Option(None, help="Test-time augmentation built into every artifact: none, or flip "
                            "(average the predictions on each image and its mirror: 2x compute, same size; for "
                            "data trained with flips, not digits). Default: the run's (none for a new run)."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed for drawing calibration images."),
    data_dir: Path = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Export TFLite and ONNX artifacts, verify each against the float model, record them in the manifest.

    Examples:
      edgecnn export runs/demo --format tflite,onnx --quantize int8
      edgecnn export runs/demo --quantize int8 --min-agreement 99.5
      edgecnn export runs/fashion --tta flip   # average with the mirror image
    """
    from edgecnn.export import ExportOptions
    from edgecnn.pipeline import export_run
    from edgecnn.progress import artifact_progress

    precisions = tuple("fp32" if q == "none" else q for q in _csv(quantize))
    options = ExportOptions(int8_io, opset, calibration, min_agreement, onnx_activations, tta)
    with artifact_progress("export") as on_start:
        entries = export_run(model, _csv(format), precisions, calib_samples, seed, _command(), data_dir=data_dir,
                             options=options, console=console, on_start=on_start)
    table = Table(title=_title(f"exported to {model if model.is_dir() else model.parent}"))
    # two-line headers: the table fits 80 columns with every file name whole
    for name in ("Artifact", "Precision", "Input", "Size\n(KB)", "Agree\n(%)", "Max\n|diff|", "Val acc\n(%)"):
        table.add_column(name, justify="left" if name in ("Artifact", "Precision", "Input") else "right",
                         no_wrap=name == "Artifact")
    for e in entries:
        v = e.verification
        table.add_row(e.file, e.precision, e.input_dtype, f"{e.bytes / 1024:.1f}", f"{v['agreement']:.2f}",
                      f"{v['max_abs_diff']:.4f}", f"{v['accuracy']:.2f}")
    console.print(table)


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
    from edgecnn.atomic import check_writable

    if path is not None and str(path) != "-":
        with _as_usage_error():
            check_writable(path)
    return path


def _check_plot(path: Path | None) -> Path | None:
    """--plot's format and folder are checked before the benchmark runs, as every output is."""
    from edgecnn.bench_output import plot_suffix

    if path is not None:
        with _as_usage_error():
            plot_suffix(path)
    return _check_output(path)


def _check_hosts(hosts: list[str] | None) -> list[str] | None:
    """--host specs are checked before anything runs: a bad one is a usage error (exit 2)."""
    from edgecnn.remote import Host

    for spec in hosts or []:
        with _as_usage_error():
            Host.parse(spec)
    return hosts


@app.command()
def bench(
    paths: list[Path] = typer.Argument(..., **EXISTING, help="Run directories and/or .keras/.tflite/.onnx files."),
    target: TargetName = typer.Option(TargetName.cpu, help="cpu, gpu (CUDA) or rpi (native or emulated)."),
    threads: int = typer.Option(None, min=1, help="Inference threads (default: the target's)."),
    runs: int = typer.Option(200, min=1, help="Timed runs per artifact."),
    warmup: int = typer.Option(20, min=0, help="Untimed runs before timing."),
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
    remote_python: str = typer.Option("python3", help="The hosts' interpreter that has edgecnn (runtime extra)."),
    timeout: float = typer.Option(600.0, min=1, help="Seconds allowed for each step on a host."),
) -> None:
    """Accuracy on the test split, agreement with the Keras model, load time, first call, latency percentiles,
    FPS, GMAC/s and memory of every artifact, as a table.

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
    from edgecnn.bench_output import print_table, report, write_csv, write_markdown, write_output, write_plot
    from edgecnn.progress import artifact_progress

    to_stdout = [name for name, value in (("--json", json_out), ("--csv", csv_out), ("--md", md_out))
                 if value is not None and str(value) == "-"]
    if len(to_stdout) > 1:
        raise typer.BadParameter(f"only one output can go to stdout ('-'), not {' and '.join(to_stdout)}")
    if host:
        rows, document, title = _bench_remote(host, paths, target.value, threads, warmup, runs, batch, data_dir,
                                              ssh_config, remote_python, timeout)
        hint = None
    else:
        from edgecnn.bench import bench_paths, int8_slower_note
        from edgecnn.targets import resolve_target

        bench_target = resolve_target(target.value, threads, batch=batch)
        _to_stderr(f"note: {note}" for note in bench_target.notes)
        with artifact_progress("bench") as on_start:
            rows = bench_paths(paths, bench_target, warmup, runs, data_dir, on_start=on_start,
                               on_note=lambda line: _to_stderr([f"note: {line}"]))
        document = report(rows, bench_target, warmup, runs)
        title = f"edgecnn bench on {bench_target.label}, batch {bench_target.batch}"
        hint = int8_slower_note(rows, bench_target)  # after the table
    if plot:
        write_plot(rows, plot, title)
    if csv_out:
        write_csv(rows, csv_out)
    if md_out:
        write_markdown(rows, md_out, title)
    if json_out:
        write_output(json_out, json.dumps(document, indent=2) + "\n")
    if not to_stdout:
        print_table(rows, title=title, console=console)
    if hint:
        _to_stderr([f"note: {hint}"])
    failed = [h["host"] for h in document.get("hosts", []) if h["error"]]
    if failed:
        raise EdgecnnError(f"{len(failed)} of {len(host)} hosts failed: {', '.join(failed)} (see the table)")
    _exit_if_failed(document)


def _exit_if_failed(document: dict) -> None:
    """After the table: exit 1 with one line where an artifact failed or could not be evaluated."""
    from edgecnn.bench import failure_summary

    problem = failure_summary(document["rows"])
    if problem:
        raise EdgecnnError(problem)


def _bench_remote(hosts, paths, target, threads, warmup, runs, batch, data_dir, ssh_config, python, timeout):
    """`bench --host`: rows from every host, the JSON report and the title. One host that fails is an error;
    in a fleet, failed hosts show as failed rows and the verb exits 1 after the table."""
    from edgecnn.bench_output import report
    from edgecnn.progress import host_progress
    from edgecnn.remote import RemoteOptions, bench_hosts, result_rows

    options = RemoteOptions(target, threads, warmup, runs, batch, python, ssh_config and str(ssh_config), timeout)
    with host_progress(hosts) as on_step:
        results = bench_hosts(hosts, paths, options, data_dir, on_step)
    _to_stderr(f"note: {r.host}: {note}" for r in results if r.target for note in r.target.get("notes", ()))
    if len(results) == 1 and results[0].error:
        raise EdgecnnError(results[0].error)
    summary = [{"host": r.host, "target": r.target, "versions": r.versions, "error": r.error} for r in results]
    labels = ", ".join(f"{r.host} ({r.target['label'] if r.target else 'failed'})" for r in results)
    rows = result_rows(results)
    ran = {row.batch for r in results for row in r.rows}  # an x86 host on --target rpi emulates a Pi: batch 1
    batch = ran.pop() if len(ran) == 1 else batch
    document = report(rows, {"name": target}, warmup, runs, summary, batch)
    return rows, document, f"edgecnn bench over SSH on {labels}, batch {batch}"


@app.command()
def predict(
    artifact: Path = typer.Argument(..., **EXISTING, dir_okay=False, help="A .tflite or .onnx model."),
    images: list[Path] = typer.Argument(..., **EXISTING,
                                        help="Image files OpenCV can read, or folders of them (name order)."),
    top_k: int = typer.Option(3, min=1, help="How many labels to show per image."),
    threads: int = typer.Option(None, min=1, help="Inference threads."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Top-k labels with scores for each image, using the manifest beside the model (no TensorFlow).

    An image that cannot be read is marked in the table (an "error" entry with --json) and the others are still
    classified; then the verb exits 1 with one line naming the unreadable files.

    Example: edgecnn predict runs/demo/model_int8.tflite digit.png photos/
    """
    from edgecnn.preprocess import image_files, read_image
    from edgecnn.progress import map_on_cores

    files = [file for path in images for file in (image_files(path) if path.is_dir() else [path])]
    results = {}  # image -> top-k pairs, or the ImageReadError, in file order
    with _open_classifier(artifact, threads) as clf:
        def prepared(path: Path):
            """On a worker thread: decoding and resizing release the GIL, so a folder of photos reads on every
            core; the model itself runs on this thread only (a Classifier is not thread-safe)."""
            try:
                image = read_image(path)
            except ImageReadError as exc:
                return exc
            return clf.preprocessing(image)[0] if clf.preprocessing else image

        for path, x in zip(files, map_on_cores(prepared, files, "classifying"), strict=True):
            results[str(path)] = x if isinstance(x, ImageReadError) else clf.predict(x, top_k=top_k)
    unreadable = [r for r in results.values() if isinstance(r, ImageReadError)]
    if len(unreadable) == len(results):
        raise unreadable[0] if len(results) == 1 else EdgecnnError(_unreadable_summary(unreadable, len(results)))
    if json_out:
        doc = [{"image": k, "error": v.reason} if isinstance(v, ImageReadError) else
               {"image": k, "top": [{"label": lbl, "score": s} for lbl, s in v]} for k, v in results.items()]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        table = Table(title=_title(artifact.name))
        table.add_column("Image", overflow="fold")  # a long path wraps, and keeps the file name that tells rows apart
        ranks = max(len(top) for top in results.values() if not isinstance(top, ImageReadError))  # <= classes
        for rank in range(1, ranks + 1):
            table.add_column(f"#{rank}")
        for image, top in results.items():
            cells = ([Text(f"unreadable: {top.reason}", "red")] if isinstance(top, ImageReadError) else
                     [Text(f"{label} ({score:.3f})") for label, score in top])
            table.add_row(Text(image), *cells)
        console.print(table)
    if unreadable:
        raise EdgecnnError(_unreadable_summary(unreadable, len(results)))


def _title(text: str) -> Text:
    """A table title in the theme's style, as text: wherever the user's names show (a folder, class or file called
    "[x]"), they are never read as rich markup."""
    return Text(text, style="table.title")


def _unreadable_summary(unreadable: list, total: int) -> str:
    """One line naming the images that could not be read (the first three, then a count)."""
    named = ", ".join(f"{e.path} ({e.reason})" for e in unreadable[:3])
    more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
    return f"cannot read {len(unreadable)} of {total} images: {named}{more}"


@app.command()
def inspect(
    artifact: Path = typer.Argument(..., **EXISTING, dir_okay=False, help="A .tflite or .onnx model."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Operators, input/output tensors (dtype, shape, quantization), parameters and size of an artifact.

    Example: edgecnn inspect runs/demo/model_int8.tflite
    """
    from edgecnn.inspection import info_tables, inspect_artifact

    with native_output_muted():
        info = inspect_artifact(artifact)
    if json_out:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    macs = "MACs unknown (ONNX Runtime cannot run it here)" if info["macs"] is None else f"{info['macs']:,} MACs"
    views = " (the image and its mirror, averaged)" if info["tta"] == "flip" else ""
    precision = info["precision"] or "unknown"  # the manifest says; without one, nothing does
    console.print(Text.assemble((info["file"], "bold"), f" {info['format']}, {info['bytes'] / 1024:.1f} KB, "
                                f"{info['parameters']:,} parameters, {macs}{views}, precision {precision}, "
                                f"manifest: {info['manifest']}"))
    console.print(*info_tables(info))


@app.command()
def live(
    model: Path = typer.Argument(..., **EXISTING, dir_okay=False, help="A .tflite or .onnx model."),
    source: str = typer.Option("0", help="Camera index, video file, rtsp:// URL or image folder."),
    roi: str = typer.Option(None, help="Region of interest X,Y,W,H (default: centred square)."),
    invert: bool = typer.Option(False, help="Invert the region (dark ink on white paper)."),
    top_k: int = typer.Option(3, min=1, help="Labels shown per frame."),
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
    from edgecnn.live import parse_roi, run_live
    from edgecnn.progress import frame_progress

    # JSON lines own the terminal; otherwise a bar on stderr counts the frames
    with _open_classifier(model, threads) as clf, nullcontext() if json_lines else frame_progress() as on_frame:
        summary = run_live(clf, source, parse_roi(roi), invert, top_k, display, json_lines, save, max_frames,
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
