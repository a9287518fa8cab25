"""edgecnn capture: a video's frames into class folders by timeline, the window's keys, a Pi camera stand-in, bad
input, and the loop from a camera to a model that classifies what it saw."""

import json
import sys
import types

import cv2
import numpy as np
import pytest

from edgecnn.api import capture
from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.capture import Keys, parse_labels, read_timeline
from edgecnn.deploy.live import PicameraSource, open_source
from tests.conftest import assert_one_error_line, run_cli, run_subprocess
from tests.shapes_video import BACKGROUND, SHAPES, write_timeline, write_video

LABELS = [*SHAPES, BACKGROUND]


PER_CLASS = 10


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    rows = write_video(folder / "shapes.mp4", PER_CLASS, seed=0)
    return folder / "shapes.mp4", write_timeline(folder / "timeline.csv", rows), rows


def test_a_timeline_records_its_frames_into_class_folders(video, tmp_path):
    path, timeline, rows = video
    summary = capture(str(path), out=tmp_path / "data", labels=LABELS, timeline=timeline, display=False)
    assert summary["frames"] == summary["saved"] == 4 * PER_CLASS and summary["skipped"] == 0
    for label in LABELS:
        files = sorted((tmp_path / "data" / label).iterdir())
        assert len(files) == PER_CLASS and summary["classes"][label] == {"saved": PER_CLASS, "total": PER_CLASS}
        image = cv2.imread(str(files[0]))
        assert image.shape == (480, 480, 3)  # the centred square live classifies
    assert summary["warnings"] == [f"{label} has {PER_CLASS} images; training needs at least 20 a class, more is "
                                   "better" for label in LABELS]
    # a second capture adds its own files, never overwriting the first's
    again = capture(str(path), out=tmp_path / "data", labels=LABELS, timeline=timeline, display=False)
    assert again["session"] != summary["session"]
    assert all(again["classes"][label] == {"saved": PER_CLASS, "total": 2 * PER_CLASS} for label in LABELS)


def test_frames_that_do_not_change_are_skipped(tmp_path):
    still = tmp_path / "still.mp4"
    writer = cv2.VideoWriter(str(still), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    frame = np.full((240, 320, 3), 90, np.uint8)
    for _ in range(20):
        writer.write(frame)
    writer.release()
    timeline = write_timeline(tmp_path / "t.csv", [(0, 20, "wall")])
    summary = capture(str(still), out=tmp_path / "data", labels="wall", timeline=timeline, display=False,
                      min_change=2.0)
    assert summary["saved"] == 1 and summary["skipped"] == 19
    assert any("wall has 1 images" in w for w in summary["warnings"])
    assert any("no background class" in w for w in summary["warnings"])


def test_keys_record_bursts_and_continuous_capture():
    keys = Keys(["cup", "pen"], burst=3, rate_fps=2.0)
    assert keys.due(0.0) is None
    assert keys.press(ord("2"), 0.0)
    assert [keys.due(0.0) for _ in range(4)] == ["pen", "pen", "pen", None]
    assert keys.press(ord("9"), 0.0) and keys.current == "pen"  # no ninth class: ignored
    keys.press(ord(" "), 1.0)
    assert [keys.due(t) for t in (1.0, 1.2, 1.5, 1.6)] == ["pen", None, "pen", None]
    keys.press(ord(" "), 2.0)
    assert keys.due(5.0) is None
    assert not keys.press(ord("q"), 3.0) and not keys.press(27, 3.0)


def test_the_window_records_what_its_keys_say(video, tmp_path):
    path, _, _ = video
    pressed = iter([ord("1")] + [-1] * 12 + [ord("3")] + [-1] * 12 + [ord("q")])  # 27 of the 40 frames
    shown = []
    summary = capture_with_window(path, tmp_path / "data", shown, pressed)
    assert summary["classes"]["red_disc"]["saved"] == 10 and summary["classes"]["green_triangle"]["saved"] == 10
    assert len(shown) == summary["frames"] and shown[0].shape == (480, 640, 3)


def capture_with_window(path, out, shown, pressed):
    from edgecnn.deploy.capture import run_capture

    return run_capture(str(path), out, LABELS, display=True, window=(shown.append, lambda: next(pressed)))


@pytest.mark.parametrize("text, fragment", [
    ("cup,../x", "label '../x' is not a valid folder name"),
    ("cup,cup", "label 'cup' is named twice"),
    ("a,b,c,d,e,f,g,h,i,j", "10 labels, but keys 1-9 record at most 9 classes"),
    ("cup,", "label '' is not a valid folder name"),
])
def test_bad_labels(text, fragment):
    with pytest.raises(EdgecnnError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        parse_labels(text)


@pytest.mark.parametrize("content, fragment", [
    ("start,end,label\n0,10,cup\n5,20,pen\n", "frames 5..9 are in two spans"),
    ("0,10,mug\n", "label 'mug' is not among --labels"),
    ("10,5,cup\n", "frames 10..5 are not a range"),
    ("zero,ten,cup\n", "expected start,end,label"),
    ("start,end,label\n", "names no frame ranges"),
])
def test_bad_timelines(tmp_path, content, fragment):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(EdgecnnError, match=fragment):
        read_timeline(tmp_path / "t.csv", ["cup", "pen"])


def test_bad_sources_and_folders_fail_in_one_line(video, tmp_path, capsys):
    path, timeline, _ = video
    labels = ",".join(LABELS)
    cases = [
        (["--source", str(tmp_path / "none.mp4")], "no such video file or folder"),
        (["--source", str(timeline)], "not a video OpenCV can read"),
        (["--source", str(path)], "needs --timeline"),
    ]
    for args, fragment in cases:
        code = run_cli(["capture", "--out", str(tmp_path / "data"), "--labels", labels, "--no-display", *args]
                       + (["--timeline", str(timeline)] if "needs" not in fragment else []))
        assert code == 1
        assert_one_error_line(capsys.readouterr().err, fragment)
        assert not (tmp_path / "data").exists()  # nothing made
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "notes.txt").write_text("mine")
    assert run_cli(["capture", "--source", str(path), "--timeline", str(timeline), "--no-display", "--out",
                    str(tmp_path / "mixed"), "--labels", labels]) == 1
    assert_one_error_line(capsys.readouterr().err, "holds notes.txt, which are not class folders")
    assert sorted(p.name for p in (tmp_path / "mixed").iterdir()) == ["notes.txt"]  # nothing added
    (tmp_path / "file").write_text("")
    assert run_cli(["capture", "--source", str(path), "--timeline", str(timeline), "--no-display", "--out",
                    str(tmp_path / "file" / "data"), "--labels", labels]) == 1
    assert_one_error_line(capsys.readouterr().err, "cannot write to")


class StandInCamera:
    """Picamera2's methods that PicameraSource calls, giving numbered frames."""

    def __init__(self):
        self.frames, self.config, self.closed = 0, None, False

    def create_video_configuration(self, main):
        return {"main": main}

    def configure(self, config):
        self.config = config

    def start(self):
        pass

    def capture_array(self):
        self.frames += 1
        return np.full((480, 640, 4), self.frames % 256, np.uint8)  # XBGR8888-like: four channels

    def stop(self):
        pass

    def close(self):
        self.closed = True


def test_a_pi_camera_is_read_through_picamera2(tmp_path, monkeypatch):
    camera = StandInCamera()
    source = PicameraSource(camera)
    ok, frame = source.read()
    assert ok and frame.shape == (480, 640, 3) and camera.config == {"main": {"format": "RGB888", "size": (640, 480)}}
    source.release()
    assert camera.closed
    # open_source("picamera") goes through the picamera2 module: a stand-in module here
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInCamera
    monkeypatch.setitem(sys.modules, "picamera2", module)
    capture_source = open_source("picamera")
    ok, frame = capture_source.read()
    capture_source.release()
    assert ok and frame.shape == (480, 640, 3)  # the Pi camera hardware itself is not tested here


def test_without_picamera2_the_error_names_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # its import fails, as where it is not installed
    assert run_cli(["capture", "--source", "picamera", "--out", str(tmp_path / "d"), "--labels", "a,b",
                    "--no-display", "--timeline", str(write_timeline(tmp_path / "t.csv", [(0, 5, "a")]))]) == 1
    assert_one_error_line(capsys.readouterr().err, "picamera2, which is not installed here", "python3-picamera2")


@pytest.mark.slow
def test_capture_train_export_and_live_classify_held_out_frames(tmp_path):
    """The loop of docs/camera.md on a generated colour video: at least 90% of held-out frames right."""
    path = tmp_path / "shapes.mp4"
    timeline = write_timeline(tmp_path / "timeline.csv", write_video(path, 30, seed=0))
    held = tmp_path / "held.mp4"
    held_rows = write_video(held, 15, seed=1)
    data, run = tmp_path / "data", tmp_path / "run"
    steps = [
        ["capture", "--source", str(path), "--timeline", str(timeline), "--no-display", "--out", str(data),
         "--labels", ",".join(LABELS)],
        ["train", "--dataset", f"folder:{data}", "--image-size", "64", "--out", str(run)],
        ["export", str(run), "--format", "tflite", "--quantize", "int8"],
    ]
    for args in steps:
        done = run_subprocess(args)
        assert done.returncode == 0, (args[0], done.stderr[-2000:])
    done = run_subprocess(["live", str(run / "model_int8.tflite"), "--source", str(held), "--no-display", "--json"])
    assert done.returncode == 0, done.stderr
    frames = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"frame"')]
    truth = [label for start, end, label in held_rows for _ in range(start, end)]
    right = sum(frame["top"][0][0] == truth[frame["frame"]] for frame in frames)
    assert len(frames) == len(truth) and right >= 0.9 * len(truth), (right, len(truth))
