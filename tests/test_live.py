import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy import live
from edgecnn.deploy.live import LatestFrameReader, open_source, parse_roi, run_live
from edgecnn.runtime.classifier import Classifier
from tools.make_video import make_video, to_frame

from .conftest import run_subprocess


@pytest.fixture(scope="module")
def digit_video(tmp_path_factory, digits):
    """An mp4 of the 360 test digits, each held for 3 frames, and the true label of every frame."""
    path = tmp_path_factory.mktemp("video") / "digits.mp4"
    test = digits.split("test")
    truth = make_video(test.images, [str(y) for y in test.labels], path, frames_per_image=3)
    assert json.loads(path.with_suffix(".labels.json").read_text()) == truth
    return path, np.array(truth)


def run(run_dir, source, capsys, **kwargs):
    with Classifier(run_dir / "model_int8.tflite", threads=1) as clf:
        summary = run_live(clf, str(source), display=False, json_lines=True, **kwargs)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return summary, records


def frames_in(video) -> int:
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.read()[0]:
        count += 1
    return count


def test_headless_run_labels_the_video_frames(run_dir, digit_video, capsys):
    path, truth = digit_video
    progress = []
    summary, records = run(run_dir, path, capsys, on_frame=lambda *args: progress.append(args))
    assert summary["frames"] == len(truth) == len(records) == 1080
    # the progress display is told of every frame, with the video's length and the frame's top-k
    assert [(done, total) for done, total, _ in progress] == [(i + 1, 1080) for i in range(1080)]
    assert [[[label, round(score, 4)] for label, score in top] for *_, top in progress] == [r["top"] for r in records]
    predicted = np.array([r["top"][0][0] for r in records])
    assert np.mean(predicted == truth) >= 0.95
    assert [r["frame"] for r in records] == list(range(len(truth)))
    assert summary["mean_fps"] > 0 and summary["p50_ms"] > 0 and summary["dropped"] == 0


def test_make_video_takes_colour_datasets_and_names_a_bad_one_in_one_line(tmp_path):
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 0] = 200  # BGR: a colour image (CIFAR-10, image folders) keeps its channels
    assert to_frame(blue, 16).shape == (16, 16, 3) and to_frame(blue, 16)[..., 0].min() == 200
    assert to_frame(blue, 16)[..., 1:].max() == 0
    script = Path(__file__).resolve().parents[1] / "tools" / "make_video.py"
    out = subprocess.run([sys.executable, str(script), "--dataset", "imagenet", "--out", str(tmp_path / "v.mp4")],
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.startswith("error: unknown dataset 'imagenet'") and not out.stdout
    assert "Traceback" not in out.stderr and not any(tmp_path.iterdir())


def test_max_frames_stops_exactly_and_save_writes_every_frame(run_dir, digit_video, capsys, tmp_path):
    path, _ = digit_video
    saved = tmp_path / "annotated.mp4"
    totals = set()
    summary, records = run(run_dir, path, capsys, max_frames=17, save=saved,
                           on_frame=lambda done, total, top: totals.add(total))
    assert summary["frames"] == 17 and len(records) == 17 and totals == {17}
    assert frames_in(saved) == 17
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]


def test_image_folder_source_and_roi(run_dir, digits, capsys, tmp_path):
    for i in range(5):
        frame = np.full((100, 160, 3), 0, np.uint8)
        frame[10:74, 20:84] = to_frame(digits.split("test").images[i], 64)
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), frame)
    (tmp_path / "notes.txt").write_text("not an image")
    summary, records = run(run_dir, tmp_path, capsys, roi=parse_roi("20,10,64,64"))
    assert summary["frames"] == 5
    assert [r["top"][0][0] for r in records] == [str(y) for y in digits.split("test").labels[:5]]


def test_an_image_folder_of_mixed_sizes_saves_every_frame_and_names_each_file(run_dir, digits, capsys, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    images, labels = digits.split("test").images[:3], digits.split("test").labels[:3]
    for i, side in enumerate((64, 96, 48)):  # three sizes: a video writer takes only the first one's
        cv2.imwrite(str(folder / f"{i}.png"), to_frame(images[i], side))
    (folder / "1b.png").write_bytes(b"not an image")  # read between 1.png and 2.png
    saved = tmp_path / "out.mp4"
    progress = []
    summary, records = run(run_dir, folder, capsys, save=saved,
                           on_frame=lambda done, total, top: progress.append((done, total)))
    assert progress == [(1, 4), (2, 4), (3, 3)]  # four image files, until 1b.png turns out unreadable
    assert [r["file"] for r in records] == [str(folder / f"{i}.png") for i in range(3)]
    assert [r["top"][0][0] for r in records] == [str(y) for y in labels]
    assert summary["frames"] == 3 and summary["unreadable"] == [str(folder / "1b.png")]
    assert frames_in(saved) == 3


class FakeCamera:
    """A capture that yields numbered frames every ``period_s``, then fails after ``count`` of them."""

    def __init__(self, count: int, period_s: float = 0.0):
        self.count, self.period_s, self.index, self.released = count, period_s, 0, False

    def read(self):
        time.sleep(self.period_s)
        if self.index >= self.count:
            return False, None
        self.index += 1
        return True, np.full((32, 32, 3), self.index % 256, np.uint8)

    def get(self, prop):
        return 30.0

    def release(self):
        self.released = True


def test_latest_frame_reader_drops_stale_frames_instead_of_queueing():
    camera = FakeCamera(count=250, period_s=0.0005)  # frame numbers fit in a uint8 pixel
    reader = LatestFrameReader(camera)
    seen = []
    while True:
        ok, frame = reader.read()
        if not ok:
            break
        seen.append(int(frame[0, 0, 0]))
        time.sleep(0.005)  # a slow model: ten camera frames per inference
    reader.release()
    assert camera.released and seen == sorted(seen) and len(seen) < 125
    assert reader.dropped > 125 and len(seen) + reader.dropped <= 250
    assert threading.active_count() < 50  # the capture thread ended with the source


def test_reconnect_reopens_a_dropped_stream(run_dir, monkeypatch, capsys):
    opened = []

    def fake_open(source):
        if len(opened) == 3:
            raise EdgecnnError("camera unplugged for good")
        opened.append(LatestFrameReader(FakeCamera(count=5, period_s=0.002)))
        return opened[-1]

    monkeypatch.setattr(live, "open_source", fake_open)
    summary, records = run(run_dir, "0", capsys, reconnect=True, retries=2, retry_delay_s=0.01)
    assert summary["reconnects"] == 2 and summary["source_lost"] is True
    assert 3 <= summary["frames"] == len(records) <= 15
    monkeypatch.setattr(live, "open_source", lambda source: LatestFrameReader(FakeCamera(count=5, period_s=0.002)))
    summary, _ = run(run_dir, "0", capsys)  # without --reconnect a drop ends the run
    assert summary["reconnects"] == 0 and summary["source_lost"] is False and summary["frames"] <= 5


def test_sources_that_cannot_open(tmp_path):
    with pytest.raises(EdgecnnError, match="cannot open video source '9': no camera 9 here"):
        open_source("9")  # no camera at index 9
    with pytest.raises(EdgecnnError, match="cannot open video source 'rtsp://127.0.0.1:9/cam': the stream did not "
                                           "answer .check the URL"):
        open_source("rtsp://127.0.0.1:9/cam")  # the discard port: nothing listens, the connection is refused
    with pytest.raises(EdgecnnError, match="no such video file"):
        open_source(str(tmp_path / "none.mp4"))
    with pytest.raises(EdgecnnError, match="no images"):
        open_source(str(tmp_path))


def test_a_source_that_gives_no_frame_is_an_error_and_saves_nothing(run_dir, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not an image")
    with pytest.raises(EdgecnnError, match="no frame could be read from"):
        run_live(Classifier(run_dir / "model_int8.tflite"), str(folder), display=False, save=tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no video, empty or half-written


def test_display_needs_a_screen(run_dir, digit_video, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    clf = Classifier(run_dir / "model_int8.tflite")
    with pytest.raises(EdgecnnError, match="--no-display"):
        run_live(clf, str(digit_video[0]), display=True)
    with pytest.raises(EdgecnnError, match="no such video file"):  # a missing file is said first
        run_live(clf, str(tmp_path / "none.mp4"), display=True)


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs a screen: Xvfb (Debian package xvfb) is absent")
def test_windowed_mode_on_a_virtual_screen(run_dir, digit_video, tmp_path):
    screen = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "640x480x24"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        env = {**os.environ, "DISPLAY": ":97"}
        out = run_subprocess(["live", str(run_dir / "model_int8.tflite"), "--source", str(digit_video[0]),
                              "--max-frames", "30"], env=env, cwd=tmp_path)
    finally:
        screen.terminate()
        screen.wait()
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("30 frames,")


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "-1,0,10,10", "0,0,0,5"])
def test_bad_roi(text):
    with pytest.raises(EdgecnnError, match="--roi"):
        parse_roi(text)


def test_keys_s_saves_a_snapshot_and_q_quits(run_dir, digit_video, monkeypatch, tmp_path):
    keys = iter([ord("x"), ord("s"), ord("q")])
    shown = []
    monkeypatch.setenv("DISPLAY", ":stub")
    monkeypatch.setattr(cv2, "imshow", lambda name, frame: shown.append(frame.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    monkeypatch.chdir(tmp_path)
    summary = run_live(Classifier(run_dir / "model_int8.tflite"), str(digit_video[0]), display=True)
    assert summary["frames"] == 3 and len(shown) == 3  # q on the third frame
    snapshot = cv2.imread(str(tmp_path / "edgecnn-snapshot-000002.png"))
    assert snapshot is not None and snapshot.shape == (96, 96, 3)


class InterruptedCamera(FakeCamera):
    """A camera whose user presses Ctrl-C while frame ``count + 1`` is awaited."""

    def read(self):
        if self.index == self.count:
            raise KeyboardInterrupt
        return super().read()


def test_ctrl_c_ends_the_run_with_its_summary_and_keeps_the_saved_video(run_dir, monkeypatch, capsys, tmp_path):
    camera = InterruptedCamera(count=7)
    monkeypatch.setattr(live, "open_source", lambda source: camera)
    saved = tmp_path / "session.mp4"
    summary, records = run(run_dir, "0", capsys, save=saved)
    assert summary["interrupted"] is True and summary["frames"] == len(records) == 7 and camera.released
    assert frames_in(saved) == 7 and [p.name for p in tmp_path.iterdir()] == ["session.mp4"]
    early = InterruptedCamera(count=0)  # Ctrl-C before the first frame: an interruption, and no file left behind
    monkeypatch.setattr(live, "open_source", lambda source: early)
    with pytest.raises(KeyboardInterrupt):
        run(run_dir, "0", capsys, save=tmp_path / "none.mp4")
    assert early.released and [p.name for p in tmp_path.iterdir()] == ["session.mp4"]
