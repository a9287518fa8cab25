"""SIGKILL during `edgecnn train` and `edgecnn export`: what is on disk is always whole, and training resumes to the
weights it would have had without the kill."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from edgecnn.runtime.manifest import Manifest, sha256_file
from edgecnn.workstation.models import load_model

from .conftest import run_subprocess


def _start(args):
    return subprocess.Popen([sys.executable, "-m", "edgecnn", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _visible_files_are_whole(folder):
    """Every file a user sees is complete: JSON parses, .keras zips pass their CRC check."""
    for path in folder.rglob("*"):
        if path.is_dir() or path.name.startswith("."):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path


TRAIN = ["train", "--epochs", "4", "--batch-size", "128", "--patience", "10"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The weights of the same training run left alone."""
    out = tmp_path_factory.mktemp("uninterrupted")
    assert run_subprocess([*TRAIN, "--out", str(out)]).returncode == 0
    return load_model(out / "model.keras").get_weights()


@pytest.mark.slow
@pytest.mark.parametrize("when", ["while loading", "after the first checkpoint", "mid second epoch"])
def test_killed_training_leaves_whole_files_and_resumes(tmp_path, when, uninterrupted):
    out = tmp_path / "run"
    state = out / "checkpoints" / "state.json"
    process = _start([*TRAIN, "--out", str(out)])
    deadline = time.monotonic() + 240
    if when == "while loading":
        time.sleep(2.0)
    else:
        while not state.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.is_file(), "training wrote no checkpoint in time"
        if when == "mid second epoch":
            time.sleep(1.0)
    _kill(process)
    if out.exists():
        _visible_files_are_whole(out)
    assert not (out / "model.keras").exists()  # the final model is written only when training ends
    if when == "while loading":
        assert not state.exists()
        return
    done_before = json.loads(state.read_text())["epochs_done"]
    resumed = run_subprocess(["train", "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    source = Manifest.load(out).source
    assert source["epochs_run"] == 4 and done_before >= 1
    assert not [p.name for p in out.rglob(".*")]  # temporaries of the killed writer were cleaned up
    _visible_files_are_whole(out)
    for resumed_weights, weights in zip(load_model(out / "model.keras").get_weights(), uninterrupted, strict=True):
        np.testing.assert_array_equal(resumed_weights, weights)  # as if it had never been killed


@pytest.mark.slow
def test_killed_export_leaves_the_previous_artifacts_whole(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = {p.name: sha256_file(p) for p in copy.iterdir() if p.is_file()}
    for delay in (1.0, 4.0, 8.0):
        process = _start(["export", str(copy), "--quantize", "none,fp16,dynamic,int8"])
        time.sleep(delay)
        _kill(process)
        manifest = Manifest.load(copy)  # parses: never half-written
        for entry in manifest.artifacts:  # every listed artifact matches its recorded sha256
            assert sha256_file(copy / entry.file) == entry.sha256
        visible = {p.name for p in copy.iterdir() if p.is_file() and not p.name.startswith(".")}
        assert set(before) <= visible
    untouched = {k: v for k, v in before.items() if k != "manifest.json" and not k.startswith("model_")}
    assert {k: sha256_file(copy / k) for k in untouched} == untouched  # model.keras, metrics, report
    finished = run_subprocess(["export", str(copy), "--quantize", "int8"])
    assert finished.returncode == 0, finished.stderr
    assert not [p.name for p in copy.iterdir() if p.name.startswith(".")]  # stale staging and temporaries removed


@pytest.mark.slow
def test_killed_capture_leaves_only_whole_images(tmp_path):
    """Every PNG a user (or `train --dataset folder:`) sees decodes whole; a kill leaves at most a hidden temporary
    file, which training skips and the next capture of that class removes."""
    import cv2

    from tests.shapes_video import write_timeline, write_video

    rows = write_video(tmp_path / "long.mp4", 150, seed=3)
    timeline = write_timeline(tmp_path / "t.csv", rows)
    labels = ",".join(label for _, _, label in rows)
    seen = 0
    for delay in (1.5, 3.0):
        out = tmp_path / f"data{delay}"
        process = _start(["capture", "--source", str(tmp_path / "long.mp4"), "--timeline", str(timeline), "--out",
                          str(out), "--labels", labels])
        time.sleep(delay)
        _kill(process)
        images = [p for p in out.rglob("*.png") if not p.name.startswith(".")]
        for path in images:
            assert cv2.imread(str(path)) is not None, path
            data = path.read_bytes()
            assert data.endswith(b"IEND\xaeB`\x82"), path  # the PNG trailer: nothing cut short
        seen += len(images)
    assert seen > 0  # the kills landed while it was writing
