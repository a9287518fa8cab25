"""Record training images from a camera or a video into class folders, as ``edgecnn train --dataset folder:DIR``
reads them.

    summary = run_capture("0", "data/desk", ["cup", "pen", "background"])            # a window: keys 1-9 record
    summary = run_capture("desk.mp4", "data/desk", ["cup", "pen"], timeline=spans)   # headless, by frame ranges
    summary["classes"]                                        # {'cup': {'saved': 40, 'total': 120}, ...}

Each saved image is the region of interest ``edgecnn live`` classifies (the largest centred square unless ``roi``
is given), written atomically as PNG under a name no later capture reuses (``<session>_<n>.png``). With
``min_change``, a frame whose mean absolute difference from the last one saved to its class (grey, 32x32, in
grey levels) is below it is skipped.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.atomic import atomic_output
from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.live import QUIT_KEYS, frame_box, open_source
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES

MIN_PER_CLASS = 20  # fewer images than this in a class: training will not learn it (a warning says so)
BURST = 10  # frames a key press records
RATE_FPS = 5.0  # continuous capture (space), frames a second
MAX_CLASSES = 9  # keys 1-9
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}")  # a folder name on every file system


def parse_labels(text: str) -> list[str]:
    """Class names from "cup,pen,background"; EdgecnnError for one that is not a portable folder name, a repeat,
    or more than 9."""
    labels = [label.strip() for label in text.split(",")]
    for label in labels:
        if not LABEL.fullmatch(label) or label.endswith((".", " ")):
            raise EdgecnnError(f"label {label!r} is not a valid folder name: letters, digits, space, _ . + -, "
                               "starting with a letter or digit, at most 64 characters")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise EdgecnnError(f"label {repeated[0]!r} is named twice")
    if len(labels) > MAX_CLASSES:
        raise EdgecnnError(f"{len(labels)} labels, but keys 1-9 record at most {MAX_CLASSES} classes")
    return labels


@dataclass(frozen=True)
class Span:
    start: int  # first frame, counted from 0
    end: int  # one past the last frame
    label: str


def read_timeline(path: str | Path, labels: list[str]) -> list[Span]:
    """A CSV of ``start,end,label`` rows (frame indices, end exclusive; a header row is allowed); EdgecnnError for
    a row that does not parse, a label not among ``labels``, or spans that overlap."""
    path = Path(path)
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgecnnError(f"cannot read timeline {path}: {exc}") from None
    spans = []
    for number, row in enumerate(rows, 1):
        if not row or (number == 1 and row[0].strip().lower() == "start"):
            continue
        try:
            start, end, label = int(row[0]), int(row[1]), row[2].strip()
        except (ValueError, IndexError):
            raise EdgecnnError(f"{path}:{number}: expected start,end,label (frame numbers), got {','.join(row)!r}") \
                from None
        if not 0 <= start < end:
            raise EdgecnnError(f"{path}:{number}: frames {start}..{end} are not a range (0 <= start < end)")
        if label not in labels:
            raise EdgecnnError(f"{path}:{number}: label {label!r} is not among --labels ({', '.join(labels)})")
        spans.append(Span(start, end, label))
    spans.sort(key=lambda s: s.start)
    for before, after in zip(spans, spans[1:], strict=False):
        if after.start < before.end:
            raise EdgecnnError(f"{path}: frames {after.start}..{before.end - 1} are in two spans")
    if not spans:
        raise EdgecnnError(f"{path} names no frame ranges")
    return spans


def prepare_folder(out: str | Path, labels: list[str]) -> Path:
    """``out`` with a folder per label, created where missing; EdgecnnError where ``out`` holds files or folders of
    its own (a capture adds to class folders, never mixes with other data) or cannot be written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgecnnError(f"--out {out} is a file, not a folder")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and not (p.is_dir() and (
            p.name in labels or all(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir() if f.is_file()))))
        if others:
            raise EdgecnnError(f"--out {out} holds {', '.join(others[:3])}, which are not class folders of images: "
                               "capture into an empty folder or one made by capture")
    try:
        for label in labels:
            (out / label).mkdir(parents=True, exist_ok=True)
        probe = out / labels[0] / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EdgecnnError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def _signature(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class _Writer:
    """Saves crops into class folders under this session's names, skipping near-duplicates."""

    out: Path
    labels: list[str]
    min_change: float | None
    session: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-"
                         + secrets.token_hex(3))
    saved: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    last: dict[str, np.ndarray] = field(default_factory=dict)
    count: int = 0

    def save(self, label: str, image: np.ndarray) -> bool:
        signature = _signature(image) if self.min_change is not None else None
        if signature is not None and label in self.last and \
                float(np.mean(np.abs(signature - self.last[label]))) < self.min_change:
            self.skipped += 1
            return False
        self.count += 1
        path = self.out / label / f"{self.session}_{self.count:06d}.png"
        with atomic_output(path, suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), image):
                raise EdgecnnError(f"cannot write {path}")
        self.saved[label] = self.saved.get(label, 0) + 1
        if signature is not None:
            self.last[label] = signature
        return True


def run_capture(source: str, out: str | Path, labels: list[str], *, roi=None, timeline: list[Span] | None = None,
                display: bool = True, burst: int = BURST, rate_fps: float = RATE_FPS,
                min_change: float | None = None, max_frames: int | None = None,
                on_frame: Callable[[int, int | None], None] | None = None, window=None) -> dict:
    """Record ``source``'s frames into ``out/<label>/``: by ``timeline`` (headless), or by keys in a window (1-9 a
    burst of ``burst`` frames into that class; space toggles continuous capture at ``rate_fps`` into the last class
    chosen; q or ESC quits). Returns the summary (see :func:`summary`). ``window``: the preview's show and key
    functions, for tests (default OpenCV's ``imshow`` / ``waitKey``)."""
    if timeline is None and not display:
        raise EdgecnnError("a capture without a window needs --timeline: nothing says which frames go where")
    capture = open_source(source)  # before the folders are made: a source that fails leaves nothing behind
    try:
        out = prepare_folder(out, labels)
    except EdgecnnError:
        capture.release()
        raise
    writer = _Writer(out, labels, min_change)
    start, frames = time.perf_counter(), 0
    state = Keys(labels, burst, rate_fps)
    spans = list(timeline or [])
    try:
        while max_frames is None or frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            box = frame_box(roi, frame.shape)
            x, y, w, h = box
            crop = frame[y : y + h, x : x + w]
            if timeline is not None:
                while spans and spans[0].end <= frames:
                    spans.pop(0)
                if spans and spans[0].start <= frames:
                    writer.save(spans[0].label, crop)
                if not spans:
                    frames += 1
                    break
            if display:
                label = state.due(time.perf_counter())
                if label is not None and timeline is None:
                    writer.save(label, crop)
                key = _preview(frame, box, state, writer, window)
                if not state.press(key, time.perf_counter()):
                    frames += 1
                    break
            frames += 1
            if on_frame:
                on_frame(frames, None)
    finally:
        capture.release()
        if display and window is None:
            cv2.destroyAllWindows()
    return summary(out, labels, writer, frames, time.perf_counter() - start)


class Keys:
    """The window's key state: a burst pending, continuous capture on or off, the class chosen last."""

    def __init__(self, labels: list[str], burst: int, rate_fps: float):
        self.labels, self.burst, self.interval = labels, burst, 1.0 / rate_fps
        self.pending, self.current, self.continuous, self.next_at = 0, None, False, 0.0

    def press(self, key: int, now: float) -> bool:
        """Apply a key (-1: none); False once the user quits."""
        if key in QUIT_KEYS:
            return False
        if ord("1") <= key <= ord("9") and key - ord("1") < len(self.labels):
            self.current, self.pending = self.labels[key - ord("1")], self.burst
        elif key == ord(" ") and self.current is not None:
            self.continuous, self.next_at = not self.continuous, now
        return True

    def due(self, now: float) -> str | None:
        """The class this frame is saved to, or None."""
        if self.pending:
            self.pending -= 1
            return self.current
        if self.continuous and now >= self.next_at:
            self.next_at = now + self.interval
            return self.current
        return None


def _preview(frame: np.ndarray, box, state: Keys, writer: _Writer, window) -> int:
    shown = frame.copy()
    x, y, w, h = box
    cv2.rectangle(shown, (x, y), (x + w, y + h), (0, 255, 0), 2)
    for i, label in enumerate(writer.labels):
        mark = ">" if label == state.current else " "
        text = f"{mark}{i + 1} {label}: {writer.saved.get(label, 0)}"
        cv2.putText(shown, text, (8, 22 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 255, 255), 1, cv2.LINE_AA)
    if state.continuous:
        cv2.putText(shown, "REC", (shown.shape[1] - 60, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
    show, wait = window or (lambda image: cv2.imshow("edgecnn capture", image), lambda: cv2.waitKey(1))
    show(shown)
    key = wait()
    return key & 0xFF if key != -1 else -1


def summary(out: Path, labels: list[str], writer: _Writer, frames: int, seconds: float) -> dict:
    """Images per class (saved now, and in the folder in all), skipped frames, frames read, the rate, warnings."""
    classes = {label: {"saved": writer.saved.get(label, 0),
                       "total": sum(1 for f in (out / label).iterdir()
                                    if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))}
               for label in labels}
    warnings = [f"{label} has {c['total']} images; training needs at least {MIN_PER_CLASS} a class, more is better"
                for label, c in classes.items() if c["total"] < MIN_PER_CLASS]
    if not any(label.lower() in ("background", "none", "nothing") for label in labels):
        warnings.append("no background class: add one (--labels ...,background) with frames of none of the objects, "
                        "or the model will name one of them for every frame")
    return {"out": str(out), "session": writer.session, "frames": frames, "saved": sum(writer.saved.values()),
            "skipped": writer.skipped, "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 1) if seconds > 0 else None, "classes": classes, "warnings": warnings}
