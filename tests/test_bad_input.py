"""Issue #8: every verb with each bad-input class the issues name: one line on stderr, exit 2 for usage errors and
1 for the rest, no traceback, and nothing written."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest

from tests.conftest import assert_one_error_line, run_cli, run_subprocess


@pytest.fixture(scope="module")
def bad(run_dir, tmp_path_factory):
    """A folder of hostile files: each name says what it is."""
    root = tmp_path_factory.mktemp("bad")
    for name in ("text.tflite", "text.onnx", "text.keras"):
        (root / name).write_text("not a model\n")
    altered = root / "altered"
    altered.mkdir()
    for name in ("manifest.json", "model_int8.tflite", "model_int8.onnx", "model.keras"):
        shutil.copy(run_dir / name, altered / name)
    for name in ("model_int8.tflite", "model_int8.onnx", "model.keras"):
        data = bytearray((altered / name).read_bytes())
        data[len(data) // 2] ^= 0x55
        (altered / name).write_bytes(bytes(data))
    orphan = root / "orphan"
    orphan.mkdir()
    shutil.copy(run_dir / "model_int8.tflite", orphan / "model_int8.tflite")
    png = cv2.imencode(".png", np.full((28, 28), 200, np.uint8))[1].tobytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("not an image\n")
    (root / "a_file").write_text("a file where a folder should be\n")
    (root / "empty_folder").mkdir()
    one_class = root / "one_class" / "cat"
    one_class.mkdir(parents=True)
    for i in range(12):
        cv2.imwrite(str(one_class / f"{i}.png"), np.full((16, 16), i * 10, np.uint8))
    unreadable = root / "unreadable"
    for label in ("a", "b"):
        (unreadable / label).mkdir(parents=True)
        for i in range(12):
            (unreadable / label / f"{i}.png").write_text("not an image\n")
    (root / "no_data").mkdir()
    copy = root / "run_copy"  # export writes into its run directory: a copy, so that any write would show
    shutil.copytree(run_dir, copy)
    return root


def snapshot(folder) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


USAGE, RUNTIME = 2, 1
CASES = [  # verb, arguments, exit code, part of the one-line message
    # a path that does not exist
    ("predict", ["{bad}/missing.tflite", "{bad}/truncated.png"], USAGE, "does not exist"),
    ("inspect", ["{bad}/missing.onnx"], USAGE, "does not exist"),
    ("live", ["{bad}/missing.tflite", "--no-display"], USAGE, "does not exist"),
    ("export", ["{bad}/missing_run"], USAGE, "does not exist"),
    ("bench", ["{bad}/missing_run"], USAGE, "does not exist"),
    ("train", ["--dataset", "folder:{bad}/missing_folder", "--out", "{out}"], RUNTIME, "missing_folder"),
    # a file that is not a model
    ("predict", ["{bad}/text.tflite", "{bad}/truncated.png"], RUNTIME, "not a loadable TFLite model"),
    ("inspect", ["{bad}/text.onnx"], RUNTIME, "text.onnx"),
    ("live", ["{bad}/text.onnx", "--no-display"], RUNTIME, "not a loadable ONNX model"),
    ("export", ["{bad}/text.keras"], RUNTIME, "no manifest"),
    ("inspect", ["{bad}/truncated.png"], RUNTIME, "cannot inspect truncated.png: expected .tflite or .onnx"),
    ("bench", ["{run}/manifest.json"], RUNTIME, "manifest.json is not a model: bench takes .keras, .tflite, .onnx"),
    # a model altered after export (sha256 differs from the manifest)
    ("predict", ["{bad}/altered/model_int8.tflite", "{bad}/truncated.png"], RUNTIME, "does not match its manifest"),
    ("live", ["{bad}/altered/model_int8.onnx", "--no-display"], RUNTIME, "does not match its manifest"),
    ("inspect", ["{bad}/altered/model_int8.tflite"], RUNTIME, "does not match its manifest"),
    ("export", ["{bad}/altered"], RUNTIME, "model.keras"),
    # images that are not images
    ("predict", ["{run}/model_int8.tflite", "{bad}/truncated.png"], RUNTIME, "cannot read image"),
    ("predict", ["{run}/model.keras", "{bad}/truncated.png"], RUNTIME, "from a .keras model: edgecnn export RUN_DIR"),
    ("predict", ["{run}/model_int8.tflite", "{bad}/empty.png"], RUNTIME, "cannot read image"),
    ("predict", ["{run}/model_int8.onnx", "{bad}/text.jpg"], RUNTIME, "cannot read image"),
    ("live", ["{run}/model_int8.tflite", "--source", "{bad}/empty_folder", "--no-display"], RUNTIME, "no images"),
    ("predict", ["{run}/model_int8.tflite", "{bad}/empty_folder"], RUNTIME, "no images in"),
    ("predict", ["{run}/model_int8.tflite", "{bad}/unreadable"], RUNTIME,
     "unreadable: it holds folders (a, b), pass those"),  # the parent of class folders
    # unknown names
    ("train", ["--dataset", "imagenet", "--out", "{out}"], RUNTIME, "unknown dataset 'imagenet'"),
    ("pipeline", ["--dataset", "imagenet", "--out", "{out}"], RUNTIME, "unknown dataset 'imagenet'"),
    ("train", ["--arch", "vgg99", "--out", "{out}"], RUNTIME, "unknown architecture 'vgg99'"),
    ("pipeline", ["--arch", "vgg99", "--out", "{out}"], RUNTIME, "unknown architecture 'vgg99'"),
    ("models", ["--image-size", "0"], USAGE, "--image-size"),
    ("export", ["{bad}/run_copy", "--format", "coreml"], RUNTIME, "unknown format 'coreml'"),
    ("export", ["{bad}/run_copy", "--quantize", "int4"], RUNTIME, "unknown precision 'int4'"),
    ("export", ["{bad}/run_copy", "--format", "onnx", "--quantize", "fp16"], RUNTIME, "fp16 is a TFLite precision"),
    ("bench", ["{run}", "--target", "tpu"], USAGE, "'tpu' is not one of"),
    ("pipeline", ["--target", "tpu", "--out", "{out}"], USAGE, "'tpu' is not one of"),
    ("frobnicate", [], USAGE, "No such command"),
    # numbers out of range
    ("train", ["--epochs", "0", "--out", "{out}"], USAGE, "--epochs"),
    ("export", ["{bad}/run_copy", "--calib-samples", "0"], USAGE, "--calib-samples"),
    ("bench", ["{run}", "--runs", "0"], USAGE, "--runs"),
    ("train", ["--seed", "-1", "--out", "{out}"], USAGE, "--seed"),  # scikit-learn's and numpy's seeds are 32-bit
    ("export", ["{bad}/run_copy", "--seed", str(2**32)], USAGE, "--seed"),
    ("predict", ["{run}/model_int8.tflite", "{bad}/truncated.png", "--top-k", "0"], USAGE, "--top-k"),
    ("live", ["{run}/model_int8.tflite", "--roi", "1,2,3", "--no-display"], RUNTIME, "roi"),
    # outputs that cannot be written: refused before the work
    ("live", ["{run}/model_int8.tflite", "--source", "{bad}/one_class/cat", "--no-display",
              "--save", "{out}.txt"], RUNTIME, "cannot write video"),
    ("live", ["{run}/model_int8.tflite", "--source", "{bad}/one_class/cat", "--no-display",
              "--save", "{bad}/a_file/v.mp4"], RUNTIME, "a file stands where its folder should be"),
    ("bench", ["{run}", "--csv", "{bad}/a_file/b.csv"], USAGE, "a file stands where its folder should be"),
    ("bench", ["{run}", "--json", "{bad}"], USAGE, "Is a directory"),
    ("bench", ["{run}", "--plot", "{bad}/a_file/p.png"], USAGE, "a file stands where its folder should be"),
    # outputs that are files
    ("train", ["--out", "{bad}/a_file"], RUNTIME, "exists and is not a folder"),
    ("pipeline", ["--out", "{bad}/a_file"], RUNTIME, "exists and is not a folder"),
    ("train", ["--out", "{bad}/a_file/run"], RUNTIME, "a file stands where its folder should be"),
    ("pipeline", ["--out", "{bad}/a_file/run"], RUNTIME, "a file stands where its folder should be"),
    ("export", ["{bad}/a_file"], RUNTIME, "a_file"),
    # data a user brings
    ("train", ["--dataset", "folder:{bad}/empty_folder", "--out", "{out}"], RUNTIME, "empty_folder"),
    ("train", ["--dataset", "folder:{bad}/one_class", "--out", "{out}"], RUNTIME, "at least 2 class sub-folders"),
    ("train", ["--dataset", "folder:{bad}/unreadable", "--out", "{out}"], RUNTIME, "unreadable"),
    ("train", ["--dataset", "mnist", "--data-dir", "{bad}/no_data", "--out", "{out}"], RUNTIME,
     "train-images-idx3-ubyte.gz"),
    # targets and hosts
    ("bench", ["{run}", "--target", "gpu"], RUNTIME, "no GPU visible"),
    ("bench", ["{run}", "--host", "pi@x;reboot"], USAGE, "invalid --host"),
    ("live", ["{run}/model_int8.tflite", "--source", "9", "--no-display"], RUNTIME, "cannot open video source '9'"),
]


@pytest.mark.parametrize("verb, args, code, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_verb_refuses_bad_input_in_one_line(run_dir, bad, tmp_path, capfd, monkeypatch, verb, args, code,
                                                  message):
    monkeypatch.delenv("EDGECNN_DATA_DIR", raising=False)  # no fallback to real dataset files...
    monkeypatch.setenv("HOME", str(tmp_path))  # ...nor to Keras' cache
    out = tmp_path / "out"
    args = [a.format(bad=bad, run=run_dir, out=out) for a in args]
    before = snapshot(bad), snapshot(run_dir)
    assert run_cli([verb, *args]) == code
    captured = capfd.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    assert "Traceback" not in captured.err and not captured.out  # stdout is for results (JSON with --json -)
    assert not out.exists() and (snapshot(bad), snapshot(run_dir)) == before  # nothing written anywhere


def test_bench_marks_an_altered_artifact_and_one_without_manifest(run_dir, bad, capsys):
    """Every row is benched and reported; then the altered one makes the verb exit 1, in one line."""
    import json

    assert run_cli(["bench", f"{bad}/altered/model_int8.tflite", f"{bad}/orphan/model_int8.tflite",
                    "--runs", "3", "--warmup", "0", "--json", "-"]) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["rows"]
    assert rows[0]["status"] == "failed" and "does not match its manifest" in rows[0]["note"]
    assert rows[1]["status"] == "passed" and rows[1]["accuracy"] is None and "no manifest" in rows[1]["note"]
    assert_one_error_line(captured.err, "1 of 2", "altered/model_int8.tflite (failed)")


def test_bench_with_every_artifact_passing_exits_0(bad, capsys):
    assert run_cli(["bench", f"{bad}/orphan/model_int8.tflite", "--runs", "3", "--warmup", "0"]) == 0
    assert capsys.readouterr().err == ""


def test_pipeline_exits_1_after_its_table_when_an_artifact_fails(monkeypatch, tmp_path, capsys):
    """The pipeline's own exit rule, on a report whose ONNX int8 row failed (the run itself is not repeated)."""
    import edgecnn.api

    rows = [{"artifact": "model_int8.tflite", "status": "passed", "host": ""},
            {"artifact": "model_int8.onnx", "status": "failed", "host": ""}]
    monkeypatch.setattr(edgecnn.api, "pipeline", lambda *args, **kwargs: {"rows": rows})
    assert run_cli(["pipeline", "--out", str(tmp_path / "run")]) == 1
    assert_one_error_line(capsys.readouterr().err, "1 of 2", "model_int8.onnx (failed)")


@pytest.mark.parametrize("args, message", [(["--quantize", "int4"], "unknown precision 'int4'"),
                                           (["--format", "coreml"], "unknown format 'coreml'")])
def test_export_names_a_bad_choice_before_looking_for_the_dataset(tmp_path, monkeypatch, capsys, args, message):
    """The shipped MNIST run, with no MNIST files anywhere: the bad choice is the error, not the missing dataset."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "models" / "mnist"
    run = tmp_path / "mnist"
    run.mkdir()
    for name in ("model.keras", "manifest.json"):
        shutil.copy(shipped / name, run / name)
    monkeypatch.delenv("EDGECNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras cache either
    assert run_cli(["export", str(run), "--data-dir", str(tmp_path / "no_data"), *args]) == 1
    assert_one_error_line(capsys.readouterr().err, message, "fp32, fp16, dynamic, int8" if "precision" in message
                          else "tflite, onnx")


def test_a_keras_model_carrying_code_is_refused(tmp_path):
    """safe_mode=True: a Lambda layer's bytecode is never deserialized."""
    import keras

    from edgecnn.common.errors import EdgecnnError
    from edgecnn.workstation.models import load_model

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "lambda.keras")
    with pytest.raises(EdgecnnError, match="lambda.keras.*(unsafe|safe_mode)"):
        load_model(tmp_path / "lambda.keras")


def test_pipeline_refuses_a_file_as_its_output_before_announcing_training(bad, capsys):
    assert run_cli(["pipeline", "--out", str(bad / "a_file")]) == 1
    captured = capsys.readouterr()
    assert "exists and is not a folder" in captured.err and "train" not in captured.out


@pytest.mark.slow
@pytest.mark.parametrize("verb, args", [("train", ["--epochs", "1", "--out", "{out}"]), ("export", ["{run}"])])
def test_training_and_export_under_another_keras_backend_stop_in_one_line(run_dir, tmp_path, verb, args):
    """KERAS_BACKEND=jax loads and benches .keras models; train and export need TensorFlow and say so."""
    out = tmp_path / "out"
    before = snapshot(run_dir)
    result = run_subprocess([verb, *[a.format(run=run_dir, out=out) for a in args]],
                            env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "TensorFlow backend", "KERAS_BACKEND is 'jax'")
    assert not out.exists() and snapshot(run_dir) == before


def test_a_file_that_is_not_a_video_is_one_line_without_ffmpeg_logs(run_dir, tmp_path):
    """FFmpeg logs apart from OpenCV ("moov atom not found"), and reads its level when the first video opens: a
    fresh process, as a user runs it."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    result = run_subprocess(["live", str(run_dir / "model_int8.tflite"), "--source", str(junk), "--no-display"])
    assert result.returncode == 1 and result.stdout == ""
    assert_one_error_line(result.stderr, str(junk), "not a video")


def test_debug_shows_opencv_logs_that_the_cli_otherwise_mutes(run_dir):
    """Without --debug the camera that will not open is one line (the case above); with it, OpenCV's own log too."""
    result = run_subprocess(["--debug", "live", str(run_dir / "model_int8.tflite"), "--source", "9", "--no-display"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines[-1].startswith("error: cannot open video source '9'")
    assert any(line.startswith("[ WARN:") for line in lines[:-1]), result.stderr
