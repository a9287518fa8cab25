"""End to end: `edgecnn pipeline` on the built-in digits, then every verb as a user types it."""

import io
import json
import os
import shutil

import cv2
import pytest
import typer
from rich.console import Console

from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, sha256_file
from tools.make_video import to_frame

from .conftest import assert_one_error_line, run_cli, run_in_terminal, run_subprocess

ARTIFACTS = ["model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx", "model_int8.onnx"]


def test_pipeline_writes_loadable_artifacts_with_a_faithful_manifest(run_dir):
    manifest = Manifest.load(run_dir)
    assert sorted(a.file for a in manifest.artifacts) == sorted(ARTIFACTS)
    for entry in manifest.artifacts:
        path = run_dir / entry.file
        assert sha256_file(path) == entry.sha256 and path.stat().st_size == entry.bytes
        assert Classifier(path).input_shape == (28, 28, 1)
    assert manifest.source["sha256"] == sha256_file(run_dir / "model.keras")
    assert manifest.command.startswith("edgecnn pipeline --out")
    assert manifest.preprocessing.to_dict()["normalization"] == "x = (pixel * scale - mean) / std"


def test_int8_is_small_and_accurate(run_dir, report):
    assert (run_dir / "model_fp32.tflite").stat().st_size >= 2.5 * (run_dir / "model_int8.tflite").stat().st_size
    rows = {r["artifact"]: r for r in report["rows"]}
    float_accuracy = rows["model.keras"]["accuracy"]
    for name in ("model_int8.tflite", "model_int8.onnx"):
        assert rows[name]["accuracy"] >= float_accuracy - 2.0
    assert rows["model_int8.tflite"]["accuracy"] >= 95.0
    assert all(r["p50_ms"] <= r["p90_ms"] for r in report["rows"])
    assert report["target"]["name"] == "cpu" and report["latency"]["runs"] == 30


def test_predict_reads_images_without_tensorflow(run_dir, digits, tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"digit{i}.png")
        cv2.imwrite(str(paths[-1]), to_frame(digits.split("test").images[i]))
    script = ("import sys; from edgecnn.cli import main\n"
              "try: main(sys.argv[1:])\n"
              "except SystemExit as e: print('tensorflow' in sys.modules, file=sys.stderr); raise")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script, "predict", str(run_dir / "model_int8.tflite"),
                          *map(str, paths), "--json", "--top-k", "2"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "False"
    results = json.loads(out.stdout)
    assert [r["top"][0]["label"] for r in results] == [str(y) for y in digits.split("test").labels[:3]]
    assert all(len(r["top"]) == 2 for r in results)


def test_predict_top_k_beyond_the_classes_shows_each_class_once(run_dir, digits, tmp_path):
    image = tmp_path / "digit.png"
    cv2.imwrite(str(image), to_frame(digits.split("test").images[0]))
    out = run_subprocess(["predict", str(run_dir / "model_int8.tflite"), str(image), "--top-k", "20"])
    assert out.returncode == 0
    header = next(line for line in out.stdout.splitlines() if "#1" in line)
    assert "#10" in header and "#11" not in header  # no empty columns for classes that do not exist
    top = json.loads(run_subprocess(["predict", str(run_dir / "model_int8.tflite"), str(image), "--top-k", "20",
                                     "--json"]).stdout)[0]["top"]
    assert sorted(t["label"] for t in top) == sorted(Manifest.load(run_dir).labels)


def test_live_summary_counts_in_words(run_dir, digits, tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), to_frame(digits.split("test").images[0]))
    (tmp_path / "1.png").write_bytes(b"not an image")
    out = run_subprocess(["live", str(run_dir / "model_int8.tflite"), "--source", str(tmp_path), "--no-display"])
    assert out.returncode == 0
    assert out.stdout.startswith("1 frame, ") and out.stdout.rstrip().endswith(" 0 dropped, 0 reconnects")
    assert out.stderr.startswith(f"warning: skipped 1 image of {tmp_path} that OpenCV could not decode")


def test_inspect_reports_tensors_operators_and_parameters(run_dir):
    out = run_subprocess(["inspect", str(run_dir / "model_int8.tflite"), "--json"])
    info = json.loads(out.stdout)
    assert info["inputs"][0]["dtype"] == "int8" and info["inputs"][0]["quantization"][0] > 0
    assert info["operators"]["CONV_2D"] == 3 and info["precision"] == "int8"
    fp32_info = json.loads(run_subprocess(["inspect", str(run_dir / "model_fp32.tflite"), "--json"]).stdout)
    assert [t["quantization"] for t in fp32_info["inputs"] + fp32_info["outputs"]] == [None, None]  # not [0.0, 0]
    assert info["manifest"] == "sha256 verified" and info["tta"] == "none"
    params = Manifest.load(run_dir).source["params"]
    assert 0.95 * params < info["parameters"] <= params  # BatchNorm folded into the convolutions
    onnx_info = json.loads(run_subprocess(["inspect", str(run_dir / "model_int8.onnx"), "--json"]).stdout)
    assert onnx_info["operators"]["QuantizeLinear"] > 0 and onnx_info["inputs"][0]["dtype"] == "float32"
    assert 0.95 * params < onnx_info["parameters"] <= params
    assert json.loads(onnx_info["metadata"]["edgecnn.labels"]) == Manifest.load(run_dir).labels
    # edge-cnn at 28x28: three 3x3 convs (16, 32, 64 filters, pooled between) and a 3*3*64 -> 10 dense layer
    macs = 28 * 28 * 16 * 9 * 1 + 14 * 14 * 32 * 9 * 16 + 7 * 7 * 64 * 9 * 32 + 3 * 3 * 64 * 10
    assert info["macs"] == onnx_info["macs"] == macs
    assert "INFO" not in run_subprocess(["inspect", str(run_dir / "model_int8.tflite")]).stderr


@pytest.mark.slow
def test_predict_and_models_fit_80_columns_with_nothing_cut(run_dir, digits, tmp_path):
    folder = tmp_path / "a_folder_with_a_long_name_as_photo_folders_have"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"camera_capture_{i}.png"), to_frame(digits.split("test").images[i], 64))
    shown, code = run_in_terminal(["predict", str(run_dir / "model_int8.tflite"), str(folder)])
    assert code == 0 and "…" not in shown and max(map(len, shown.splitlines())) <= 80
    assert "classifying" in shown and "3/3" in shown  # the bar over the images, gone before the table
    paths = "".join(line.split("│")[1].strip() for line in shown.splitlines() if line.count("│") == 5)
    for i in range(3):  # each path wraps onto more lines, whole: the file names tell the rows apart
        assert f"camera_capture_{i}.png" in paths
    shown, code = run_in_terminal(["models"])
    assert code == 0 and "…" not in shown and max(map(len, shown.splitlines())) <= 80
    assert "11,812,464" in shown  # numbers whole, the descriptions wrap in words


def test_inspect_tables_fit_80_columns_with_whole_names_and_short_scales(run_dir):
    from edgecnn.deploy.inspection import inspect_artifact
    from edgecnn.tables import info_tables

    screen = Console(file=io.StringIO(), width=80)
    screen.print(*info_tables(inspect_artifact(run_dir / "model_int8.tflite")))
    text = screen.file.getvalue()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    assert "0.00392157, -128" in text and "0.00390625, -128" in text  # six digits, not LiteRT's float32 noise
    names = "".join(line.split("│")[2].strip() for line in text.splitlines() if line.count("│") == 6)
    assert "serving_default_image:0" in names  # folded across lines, every character kept


def test_export_and_bench_verbs_on_a_run_directory(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "model_fp32.tflite").unlink()
    assert run_cli(["export", str(copy), "--format", "tflite", "--quantize", "none"]) == 0
    manifest = Manifest.load(copy)
    assert manifest.entry("model_fp32.tflite").sha256 == sha256_file(copy / "model_fp32.tflite")
    assert manifest.command.startswith("edgecnn export") and len(manifest.artifacts) == 4
    assert manifest.source["command"].startswith("edgecnn pipeline")  # how the model was trained stays

    out = run_subprocess(["bench", str(copy / "model_int8.tflite"), "--runs", "5", "--warmup", "1",
                          "--target", "rpi", "--threads", "64", "--json", "-"])
    document = json.loads(out.stdout)
    assert document["target"]["emulated"] is True and document["target"]["threads"] == min(4, os.cpu_count())
    note = f"64 threads asked, {document['target']['threads']} used: a Raspberry Pi has 4 cores"
    assert document["target"]["notes"][0].startswith(note) and f"note: {note}" in out.stderr
    assert document["rows"][0]["accuracy"] >= 95.0 and document["rows"][0]["n"] == 360


SLOW = pytest.mark.slow  # these start TensorFlow in a process; test_bad_input.py checks them in this one


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["predict", "missing.tflite", "x.png"], 2, "does not exist"),
        (["bench", ".", "--target", "tpu"], 2, "for '--target': 'tpu' is not one of"),
        (["train", "--epochs", "0"], 2, "--epochs"),
        pytest.param(["train", "--dataset", "imagenet", "--out", "{tmp}/t"], 1, "unknown dataset 'imagenet'",
                     marks=SLOW),
        pytest.param(["export", "{tmp}", "--format", "tflite"], 1, "no manifest", marks=SLOW),
        (["bench", "{tmp}", "--target", "gpu"], 1, "no GPU visible"),
        (["predict", "{run}/model_int8.tflite", "{run}/manifest.json"], 1, "cannot read image"),
        (["live", "{run}/model_int8.tflite", "--source", "{tmp}/none.mp4", "--no-display"], 1, "no such video"),
        (["frobnicate"], 2, "No such command"),
        pytest.param(["train", "--out", "{run}/manifest.json"], 1, "exists and is not a folder", marks=SLOW),
        pytest.param(["export", "{run}", "--quantize", "int4"], 1, "unknown precision 'int4'", marks=SLOW),
        (["export", "{run}", "--calib-samples", "0"], 2, "--calib-samples"),
    ],
)
def test_bad_input_gives_one_line_and_an_exit_code(run_dir, tmp_path, args, code, message):
    args = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(run_dir)) for a in args]
    out = run_subprocess(args)
    assert out.returncode == code
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_help_has_an_example_for_every_verb():
    for verb in ("train", "export", "bench", "predict", "inspect", "live", "pipeline"):
        out = run_subprocess([verb, "--help"])
        assert out.returncode == 0 and f"edgecnn {verb}" in out.stdout, verb


def test_help_prose_wraps_to_the_terminal_and_examples_keep_their_lines():
    """typer keeps a docstring's single line breaks, which cut sentences short in a wide terminal."""
    from edgecnn.cli import app

    commands = typer.main.get_command(app).commands
    predict = commands["predict"].help.split("\n\n")
    assert predict[1].startswith("An image that cannot be read is marked") and predict[1].endswith("unreadable files.")
    for name, command in commands.items():
        for paragraph in command.help.split("\n\n"):
            if paragraph.startswith("Example"):
                assert paragraph.count("\n") >= 1 or paragraph.count("edgecnn ") == 1, name
            else:
                assert "\n" not in paragraph, (name, paragraph)


def test_help_examples_fit_an_80_column_terminal():
    """An example that wraps cannot be copied: the break pastes as a newline and runs half a command."""
    from edgecnn.cli import app

    commands = typer.main.get_command(app).commands
    for name, command in commands.items():
        examples = [line.strip().removeprefix("Example: ") for paragraph in command.help.split("\n\n")
                    if paragraph.startswith("Example") for line in paragraph.splitlines() if "edgecnn " in line]
        assert examples, name
        shown, code = run_in_terminal([name, "--help"], columns=80)
        lines = [line.strip() for line in shown.splitlines()]
        assert code == 0
        for example in examples:
            assert any(line.endswith(example) for line in lines), (name, example, shown)


def test_predict_warns_about_a_model_without_manifest(run_dir, digits, tmp_path):
    shutil.copy(run_dir / "model_fp32.onnx", tmp_path / "alone.onnx")
    image = tmp_path / "digit.png"
    cv2.imwrite(str(image), to_frame(digits.split("test").images[0]))
    out = run_subprocess(["predict", str(tmp_path / "alone.onnx"), str(image)])
    assert out.returncode == 1  # it cannot preprocess images without the manifest...
    assert out.stderr.startswith("warning: alone.onnx has no manifest beside it")  # ...and says why first
    assert "error: alone.onnx has no manifest beside it, so edgecnn cannot preprocess" in out.stderr


def test_training_writes_per_class_metrics_and_a_confusion_matrix(run_dir):
    import numpy as np

    metrics = json.loads((run_dir / "metrics.json").read_text())
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 360
    assert metrics["accuracy"] == round(100 * np.trace(confusion) / 360, 2)
    assert metrics["accuracy"] == Manifest.load(run_dir).source["test_accuracy"]
    for i, row in enumerate(metrics["classes"]):
        assert row["support"] == confusion[i].sum()
        assert row["recall"] == round(100 * confusion[i, i] / confusion[i].sum(), 2)
    png = cv2.imread(str(run_dir / "confusion_matrix.png"))
    assert png is not None and min(png.shape[:2]) >= 400


@pytest.mark.slow
def test_train_verb_resumes_with_the_settings_it_started_with(tmp_path):
    out = tmp_path / "run"
    first = run_subprocess(["train", "--out", str(out), "--epochs", "1", "--batch-size", "128", "--arch", "seed-bn",
                            "--no-deterministic"])
    assert first.returncode == 0, first.stderr
    assert "Precision (%)" in first.stdout and "best epoch 1 of 1" in first.stdout
    again = run_subprocess(["train", "--out", str(out), "--resume", "--epochs", "2"])
    assert again.returncode == 0, again.stderr
    source = Manifest.load(out).source
    assert source["arch"] == "seed-bn" and source["epochs_run"] == 2 and source["training"]["batch_size"] == 128
    assert source["training"]["deterministic"] is False
    missing = run_subprocess(["train", "--out", str(tmp_path / "none"), "--resume"])
    assert missing.returncode == 1 and "nothing to resume" in missing.stderr


def test_predict_takes_folders_of_images_in_name_order(run_dir, digits, tmp_path, capsys):
    folder = tmp_path / "digits"
    folder.mkdir()
    test = digits.split("test")
    for i in (2, 0, 1):  # written out of order
        cv2.imwrite(str(folder / f"{i:02d}.png"), to_frame(test.images[i]))
    (folder / "notes.txt").write_text("not an image")
    single = tmp_path / "single.png"
    cv2.imwrite(str(single), to_frame(test.images[3]))
    assert run_cli(["predict", str(run_dir / "model_int8.tflite"), str(single), str(folder), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [str(single), *(str(folder / f"{i:02d}.png") for i in range(3))]
    assert [r["top"][0]["label"] for r in results] == [str(y) for y in test.labels[[3, 0, 1, 2]]]


def test_predict_classifies_the_readable_images_and_names_the_others(run_dir, digits, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    test = digits.split("test")
    for i in (0, 2):
        cv2.imwrite(str(folder / f"{i}.png"), to_frame(test.images[i]))
    (folder / "1.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")  # between the two in name order
    model = str(run_dir / "model_int8.tflite")
    assert run_cli(["predict", model, str(folder), "--json"]) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["image"] for r in results] == [str(folder / n) for n in ("0.png", "1.jpg", "2.png")]
    assert results[1] == {"image": str(folder / "1.jpg"), "error": "not an image OpenCV can decode"}
    assert [results[i]["top"][0]["label"] for i in (0, 2)] == [str(y) for y in test.labels[[0, 2]]]
    assert_one_error_line(captured.err, "1 of 3", str(folder / "1.jpg"))
    assert run_cli(["predict", model, str(folder)]) == 1  # the table marks the row
    table = capsys.readouterr().out
    assert "unreadable: not an image OpenCV can decode" in table and table.count(f"{folder}") == 3


def test_bench_writes_csv_or_markdown_to_stdout_in_place_of_the_table(run_dir, tmp_path, capsys, monkeypatch):
    import csv

    monkeypatch.chdir(tmp_path)  # where a file named "-" would land
    model = str(run_dir / "model_int8.tflite")
    assert run_cli(["bench", model, "--runs", "2", "--warmup", "0", "--csv", "-"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["artifact"] for r in rows] == ["model_int8.tflite"] and float(rows[0]["accuracy"]) >= 90
    assert run_cli(["bench", model, "--runs", "2", "--warmup", "0", "--md", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# edgecnn bench on cpu") and lines[4].startswith("| model_int8.tflite | tflite |")
    assert not any("┃" in line for line in lines) and list(tmp_path.iterdir()) == []
    assert run_cli(["bench", model, "--csv", "-", "--md", "-"]) == 2
    assert "only one output can go to stdout ('-'), not --csv and --md" in capsys.readouterr().err


@pytest.mark.parametrize("instructions, why", [(["avx2"], "this CPU has no VNNI"),
                                               (["avx2", "avx512_vnni"], "this CPU has AVX-512 VNNI, but a model")])
def test_bench_explains_int8_slower_than_fp32_after_the_table(run_dir, capsys, monkeypatch, instructions, why):
    from edgecnn.deploy import bench, targets
    from edgecnn.deploy.bench import BenchRow

    monkeypatch.setattr(targets, "cpu_info", lambda machine=None: {"model": "x", "int8": instructions})
    monkeypatch.setattr(targets.platform, "machine", lambda: "x86_64")
    rows = [BenchRow("model_fp32.tflite", "tflite", "fp32", 118.0, p50_ms=0.033),
            BenchRow("model_int8.tflite", "tflite", "int8", 37.0, p50_ms=0.054)]
    monkeypatch.setattr(bench, "bench_paths", lambda *args, **kwargs: rows)
    assert run_cli(["bench", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "model_int8.tflite" in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("note: int8 ran slower than fp32 here")]
    assert len(notes) == 1 and f"(model_int8.tflite): {why}" in notes[0] and "docs/performance.md" in notes[0]
