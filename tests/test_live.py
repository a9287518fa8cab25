import json

import cv2
import numpy as np
import pytest

from edgecnn.errors import EdgecnnError
from edgecnn.live import open_source, parse_roi, run_live
from edgecnn.runtime import Classifier

from .conftest import digit_frame

FRAMES_PER_DIGIT = 3


@pytest.fixture(scope="module")
def digit_video(tmp_path_factory, digits):
    """An mp4 of 40 test digits, each held for 3 frames, and the true label of every frame."""
    path = tmp_path_factory.mktemp("video") / "digits.mp4"
    images, labels = digits.split("test").images[:40], digits.split("test").labels[:40]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (96, 96))
    for image in images:
        for _ in range(FRAMES_PER_DIGIT):
            writer.write(digit_frame(image, 96))
    writer.release()
    return path, np.repeat(labels, FRAMES_PER_DIGIT)


def run(run_dir, source, capsys, **kwargs):
    with Classifier(run_dir / "model_int8.tflite", threads=1) as clf:
        summary = run_live(clf, str(source), display=False, json_lines=True, **kwargs)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return summary, records


def test_headless_run_labels_the_video_frames(run_dir, digit_video, capsys):
    path, truth = digit_video
    summary, records = run(run_dir, path, capsys)
    assert summary["frames"] == len(truth) == len(records)
    predicted = np.array([int(r["top"][0][0]) for r in records])
    assert np.mean(predicted == truth) >= 0.95
    assert [r["frame"] for r in records] == list(range(len(truth)))
    assert summary["mean_fps"] > 0 and summary["p50_ms"] > 0


def test_max_frames_stops_exactly_and_save_writes_every_frame(run_dir, digit_video, capsys, tmp_path):
    path, _ = digit_video
    saved = tmp_path / "annotated.mp4"
    summary, records = run(run_dir, path, capsys, max_frames=17, save=saved)
    assert summary["frames"] == 17 and len(records) == 17
    capture = cv2.VideoCapture(str(saved))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 17
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]


def test_image_folder_source_and_roi(run_dir, digits, capsys, tmp_path):
    for i in range(5):
        frame = np.full((100, 160, 3), 0, np.uint8)
        frame[10:74, 20:84] = digit_frame(digits.split("test").images[i])
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), frame)
    (tmp_path / "notes.txt").write_text("not an image")
    summary, records = run(run_dir, tmp_path, capsys, roi=parse_roi("20,10,64,64"))
    assert summary["frames"] == 5
    assert [r["top"][0][0] for r in records] == [str(y) for y in digits.split("test").labels[:5]]


def test_sources_that_cannot_open(tmp_path):
    with pytest.raises(EdgecnnError, match="cannot open video source '9'"):
        open_source("9")  # no camera at index 9
    with pytest.raises(EdgecnnError, match="no such video file"):
        open_source(str(tmp_path / "none.mp4"))
    with pytest.raises(EdgecnnError, match="no images"):
        open_source(str(tmp_path))


def test_display_needs_a_screen(run_dir, digit_video, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(EdgecnnError, match="--no-display"):
        run_live(Classifier(run_dir / "model_int8.tflite"), str(digit_video[0]), display=True)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "-1,0,10,10", "0,0,0,5"])
def test_bad_roi(text):
    with pytest.raises(EdgecnnError, match="--roi"):
        parse_roi(text)
