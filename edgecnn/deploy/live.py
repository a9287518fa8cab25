"""Live classification from a camera, a video file, a stream or an image folder, with OpenCV.

    with Classifier("models/mnist/model_int8.tflite") as clf:
        summary = run_live(clf, "0")                      # webcam 0, a window; q or ESC quits, s saves a frame
        summary = run_live(clf, "digits.mp4", display=False, json_lines=True, max_frames=100)
        summary["mean_fps"], summary["p50_ms"]

Each frame is cropped to a region of interest (the largest centred square unless ``roi`` is given), optionally
inverted (dark ink on white paper, for models trained on MNIST's white on black), and classified through the
runtime wrapper, which applies the manifest's preprocessing.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.atomic import atomic_output, check_writable
from edgecnn.common.errors import EdgecnnError, ImageReadError
from edgecnn.common.progress import OnFrame
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.preprocess import image_files, read_image

QUIT_KEYS = (ord("q"), 27)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")  # containers the mp4v writer fills (OpenCV 5, FFmpeg)


class FolderSource:
    """Images of a folder in name order, read like a ``cv2.VideoCapture``; ``current`` is the file of the last
    frame read, ``skipped`` the files OpenCV could not decode."""

    def __init__(self, folder: Path):
        self.files = image_files(folder)
        self.index = 0
        self.current: Path | None = None
        self.skipped: list[Path] = []

    def read(self):
        while self.index < len(self.files):
            path = self.files[self.index]
            self.index += 1
            try:
                frame = read_image(path)  # as predict reads it, and training read it
            except ImageReadError:
                self.skipped.append(path)
                continue
            self.current = path
            return True, frame
        return False, None

    def get(self, prop):
        return float(len(self.files)) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def release(self):
        pass


class LatestFrameReader:
    """Reads a live camera or stream in its own thread; ``read()`` returns the newest frame, dropping older ones.

    A slow model therefore never falls behind the camera, and no queue grows. ``dropped`` counts skipped frames.
    """

    def __init__(self, capture, timeout_s: float = 5.0):
        self.capture, self.timeout_s = capture, timeout_s
        self.cond = threading.Condition()
        self.frame, self.sequence, self.taken, self.dropped = None, 0, 0, 0
        self.ended = self.stopped = False
        self.thread = threading.Thread(target=self._run, name="edgecnn-capture", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            ok, frame = self.capture.read()
            with self.cond:
                if not ok:
                    self.ended = True
                else:
                    self.frame, self.sequence = frame, self.sequence + 1
                self.cond.notify_all()
            if not ok:
                return

    def read(self):
        """``(True, newest frame)``, or ``(False, None)`` once the source ended or sent nothing for timeout_s."""
        with self.cond:
            self.cond.wait_for(lambda: self.sequence > self.taken or self.ended, timeout=self.timeout_s)
            if self.sequence == self.taken:
                return False, None
            self.dropped += self.sequence - self.taken - 1
            self.taken = self.sequence
            return True, self.frame

    def get(self, prop):
        return self.capture.get(prop)

    def release(self) -> None:
        self.stopped = True
        self.thread.join(timeout=self.timeout_s)
        self.capture.release()


PICAMERA = "picamera"  # --source picamera: a Raspberry Pi camera through picamera2 (OpenCV cannot open libcamera)


class PicameraSource:
    """A Raspberry Pi camera (libcamera) through ``picamera2``, read like a ``cv2.VideoCapture``: BGR frames.
    ``camera``: a Picamera2-like object (tests pass a stand-in); default the first camera."""

    def __init__(self, camera=None, size: tuple[int, int] = (640, 480)):
        if camera is None:
            try:
                from picamera2 import Picamera2
            except ImportError:
                raise EdgecnnError("--source picamera reads a Raspberry Pi camera through picamera2, which is not "
                                   "installed here (on Raspberry Pi OS: sudo apt install python3-picamera2)") from None
            try:
                camera = Picamera2()
            except (RuntimeError, IndexError) as exc:  # no camera attached or enabled
                raise EdgecnnError(f"cannot open the Raspberry Pi camera: {exc}") from None
        # libcamera's "RGB888" is stored B, G, R in memory: OpenCV's order
        camera.configure(camera.create_video_configuration(main={"format": "RGB888", "size": size}))
        camera.start()
        self.camera = camera

    def read(self):
        frame = self.camera.capture_array()
        return (frame is not None), (frame[..., :3] if frame is not None else None)

    def get(self, prop):
        return 0.0

    def release(self):
        self.camera.stop()
        self.camera.close()


def is_live(source: str) -> bool:
    """Cameras and network streams are live (read in a thread, latest frame wins); files and folders are not."""
    return source.isdigit() or "://" in source or source == PICAMERA


def check_source(source: str) -> None:
    """EdgecnnError for a video file or folder that is not there (a camera or stream shows only when opened)."""
    if not is_live(source) and not Path(source).is_file() and not Path(source).is_dir():
        raise EdgecnnError(f"no such video file or folder: {source} (a camera is --source 0, 1, ..., a Raspberry Pi "
                           "camera --source picamera)")


def open_source(source: str):
    """A camera index ("0"), a video file, a stream URL or an image folder; EdgecnnError if it cannot open."""
    if source == PICAMERA:
        return LatestFrameReader(PicameraSource())
    check_source(source)
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
    elif Path(source).is_dir():
        return FolderSource(Path(source))
    else:
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        if Path(source).is_file():
            raise EdgecnnError(f"cannot open video source {source!r}: not a video OpenCV can read")
        if source.isdigit():
            raise EdgecnnError(f"cannot open video source {source!r}: no camera {source} here (a camera is --source 0, "
                               "1, ...)")
        raise EdgecnnError(f"cannot open video source {source!r}: the stream did not answer (check the URL, and that "
                           "the camera or server is up and reachable)")
    return LatestFrameReader(capture) if is_live(source) else capture


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """``"X,Y,W,H"`` to a tuple of ints (None stays None)."""
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise EdgecnnError(f"--roi takes X,Y,W,H in pixels, got {text!r}") from None
    if min(x, y) < 0 or min(w, h) < 1:
        raise EdgecnnError(f"--roi needs X,Y >= 0 and W,H >= 1, got {text!r}")
    return x, y, w, h


def centred_square(height: int, width: int) -> tuple[int, int, int, int]:
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


def annotate(frame: np.ndarray, roi, top, fps: float, latency_ms: float) -> None:
    """Draw the region of interest, the top-k labels with scores, FPS and latency onto ``frame``."""
    x, y, w, h = roi
    cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 1)
    lines = [f"{label}: {score:.2f}" for label, score in top] + [f"{fps:.0f} FPS  {latency_ms:.2f} ms"]
    scale = max(frame.shape[0] / 480, 0.3)
    for i, text in enumerate(lines):
        org = (4, int((i + 1) * 22 * scale))
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), 1, cv2.LINE_AA)


def run_live(clf: Classifier, source: str, roi=None, invert: bool = False, top_k: int = 3,
             display: bool = True, json_lines: bool = False, save: str | Path | None = None,
             max_frames: int | None = None, out=None, reconnect: bool = False, retries: int = 5,
             retry_delay_s: float = 1.0, on_frame: OnFrame | None = None) -> dict:
    """Classify frames until the source ends, ``max_frames`` is reached or the user quits; return a summary.

    With ``reconnect``, each time a live source drops it is reopened, trying ``retries`` times ``retry_delay_s``
    apart; when it stays lost the run ends with its summary, marked ``source_lost``. Ctrl-C ends a run as q does:
    the summary is marked ``interrupted`` and a video being saved keeps every frame written so far. From an image
    folder, each JSON line names its ``file``, the summary lists the ``unreadable`` ones, and a saved video scales
    every image to the first one's size. ``on_frame(frames done, frames in all or None, top)`` is called after
    each frame, for a progress display (the total of a video file or folder, less the folder's undecodable files met
    so far, capped at ``max_frames``).
    """
    out = out or sys.stdout
    check_source(source)  # a missing file is the first thing to say
    if save:
        check_video_path(save)
    if display and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise EdgecnnError("no display to show frames on: run with --no-display")
    if max_frames is not None and max_frames < 1:
        raise EdgecnnError(f"--max-frames must be at least 1, got {max_frames}")
    feed = _Feed(source, reconnect, retries, retry_delay_s)
    count = feed.frame_count()

    def total() -> int | None:  # for on_frame: None while a camera runs without --max-frames
        known = [n for n in (count and count - len(feed.skipped), max_frames) if n]  # a folder's bad files drop out
        return min(known) if known else None

    latencies, start, writer, interrupted = [], time.perf_counter(), None, False
    try:
        with atomic_output(save, suffix=Path(save).suffix) if save else nullcontext() as save_tmp:
            try:
                while max_frames is None or len(latencies) < max_frames:
                    ok, frame = feed.read()
                    if not ok:
                        break
                    box = frame_box(roi, frame.shape)
                    tick = time.perf_counter()
                    top = clf.predict(_crop(frame, box, invert), top_k=top_k)
                    latency_ms = (time.perf_counter() - tick) * 1e3
                    if json_lines:
                        record = {"frame": len(latencies), "time_s": round(time.perf_counter() - start, 4),
                                  "top": [[label, round(score, 4)] for label, score in top],
                                  "latency_ms": round(latency_ms, 3)}
                        out.write(json.dumps(record | ({"file": feed.file} if feed.file else {})) + "\n")
                    if display or save_tmp:
                        annotate(frame, box, top, (len(latencies) + 1) / max(time.perf_counter() - start, 1e-9),
                                 latency_ms)
                    if save_tmp:
                        if writer is None:
                            writer, size = _writer(save_tmp, save, feed.fps(), frame), frame.shape[1::-1]
                        # a video has one frame size: images of a folder that differ are scaled to the first's
                        writer.write(frame if frame.shape[1::-1] == size else cv2.resize(frame, size))
                    latencies.append(latency_ms)  # a frame counts once it is written out: Ctrl-C may come anywhere
                    if on_frame:
                        on_frame(len(latencies), total(), top)
                    if display and _show(frame, len(latencies)):
                        break
            except KeyboardInterrupt:  # Ctrl-C ends a headless run as q ends a shown one: the video so far is kept
                interrupted = True
            if not latencies and interrupted:  # stopped before the first frame: nothing to sum up or keep
                raise KeyboardInterrupt
            if not latencies:  # a source that opened but gave nothing: no summary to print, no video to save
                raise EdgecnnError(f"no frame could be read from {source}")
            if writer:
                writer.release()
    finally:
        feed.release()
        if display:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - start
    return {"frames": len(latencies), "seconds": round(seconds, 3), "dropped": feed.dropped,
            "unreadable": [str(p) for p in feed.skipped], "reconnects": feed.reconnects, "source_lost": feed.lost,
            "interrupted": interrupted,
            "mean_fps": round(len(latencies) / seconds, 1), "p50_ms": round(float(np.median(latencies)), 3)}


class _Feed:
    """``source``'s frames one by one. With ``reconnect``, a live source that ends is reopened (``retries`` tries
    ``delay_s`` apart) and read on; ``reconnects``, ``dropped`` (frames a slow model skipped) and ``lost`` (it
    stayed gone) count what happened."""

    def __init__(self, source: str, reconnect: bool, retries: int, delay_s: float):
        self.source, self.retries, self.delay_s = source, retries, delay_s
        self.reconnect = reconnect and is_live(source)
        self.capture = open_source(source)
        self.reconnects = self.dropped = 0
        self.lost = False
        self.skipped = getattr(self.capture, "skipped", [])  # an image folder's undecodable files, as they are met

    def read(self):
        ok, frame = self.capture.read()
        while not ok and self.reconnect and not self.lost:
            self._close()
            capture = _reopen(self.source, self.retries, self.delay_s)
            if capture is None:
                self.lost = True
            else:
                self.capture, self.reconnects = capture, self.reconnects + 1
                ok, frame = self.capture.read()
        return ok, frame

    @property
    def file(self) -> str | None:
        """For an image folder, the file of the frame just read; None for other sources."""
        current = getattr(self.capture, "current", None)
        return str(current) if current else None

    def fps(self) -> float:
        return self.capture.get(cv2.CAP_PROP_FPS) if self.capture else 0.0

    def frame_count(self) -> int | None:
        """How many frames a video file or image folder holds (as its container says); None for a live source."""
        count = 0 if is_live(self.source) else int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 else None

    def release(self) -> None:
        if self.capture:
            self._close()

    def _close(self) -> None:
        self.dropped += getattr(self.capture, "dropped", 0)
        self.capture.release()
        self.capture = None


def _crop(frame: np.ndarray, box, invert: bool) -> np.ndarray:
    x, y, w, h = box
    crop = frame[y: y + h, x: x + w]
    return 255 - crop if invert else crop


def _reopen(source: str, attempts: int, delay_s: float):
    """``source`` opened again within ``attempts`` tries ``delay_s`` apart, or None."""
    for _ in range(attempts):
        time.sleep(delay_s)
        try:
            return open_source(source)
        except EdgecnnError:
            continue
    return None


def _show(frame: np.ndarray, index: int) -> bool:
    """Show the frame; True when the user asked to quit. ``s`` saves a snapshot PNG."""
    cv2.imshow("edgecnn live", frame)
    key = cv2.waitKey(1) & 0xFF
    if key == ord("s"):
        cv2.imwrite(f"edgecnn-snapshot-{index:06d}.png", frame)
    return key in QUIT_KEYS


def frame_box(roi, shape) -> tuple[int, int, int, int]:
    """The region of a frame of ``shape`` the model sees: ``roi`` (x, y, w, h) clipped to the frame, or the largest
    centred square; EdgecnnError for an ``roi`` outside the frame."""
    x, y, w, h = roi or centred_square(*shape[:2])
    if x >= shape[1] or y >= shape[0]:
        raise EdgecnnError(f"--roi {roi} lies outside the {shape[1]}x{shape[0]} frame")
    return x, y, min(w, shape[1] - x), min(h, shape[0] - y)


def check_video_path(path) -> None:
    """EdgecnnError for a --save path OpenCV cannot write MPEG-4 into, or that cannot be written at all."""
    if Path(path).suffix.lower() not in VIDEO_SUFFIXES:
        raise EdgecnnError(f"cannot write video {path}: OpenCV writes MPEG-4 into {', '.join(VIDEO_SUFFIXES)} files")
    check_writable(path)


def _writer(tmp: Path, save, fps: float, frame: np.ndarray) -> cv2.VideoWriter:
    """An MPEG-4 writer into ``tmp``, the temporary file that becomes ``save``, at the source's ``fps`` (or 30)."""
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps or 30.0, (frame.shape[1], frame.shape[0]))
    if not writer.isOpened():
        raise EdgecnnError(f"cannot write video {save}: OpenCV could not open an MPEG-4 writer for it")
    return writer
