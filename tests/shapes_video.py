"""A colour video of distinct objects for capture and live tests: each class a shape of its own colour at a
jittered place, size and brightness on a noisy background, and the timeline that says which frames hold which."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHAPES = {"red_disc": (0, 0, 220), "blue_square": (220, 60, 0), "green_triangle": (0, 190, 40)}
BACKGROUND = "background"


def _frame(rng, label: str, texture: np.ndarray, size=(640, 480)) -> np.ndarray:
    width, height = size
    frame = np.roll(texture, (int(rng.integers(0, height)), int(rng.integers(0, width))), axis=(0, 1))
    cx, cy = width // 2 + int(rng.integers(-60, 61)), height // 2 + int(rng.integers(-50, 51))
    r = int(rng.integers(60, 110))
    scale = float(rng.uniform(0.75, 1.15))
    colour = tuple(int(min(255, c * scale)) for c in SHAPES.get(label, (0, 0, 0)))
    if label == "red_disc":
        cv2.circle(frame, (cx, cy), r, colour, -1)
    elif label == "blue_square":
        cv2.rectangle(frame, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    elif label == "green_triangle":
        points = np.array([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], np.int32)
        cv2.fillPoly(frame, [points], colour)
    return frame


def write_video(path: Path, frames_per_class: int, seed: int, labels=(*SHAPES, BACKGROUND)) -> list[tuple]:
    """Write ``path`` (mp4v, 640x480, 30 fps) with ``frames_per_class`` frames of each label in turn; return the
    timeline rows (start, end, label)."""
    rng = np.random.default_rng(seed)
    texture = np.clip(rng.normal(110, 25, (480, 640, 3)), 0, 255).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    timeline, frame_index = [], 0
    for label in labels:
        for _ in range(frames_per_class):
            writer.write(_frame(rng, label, texture))
        timeline.append((frame_index, frame_index + frames_per_class, label))
        frame_index += frames_per_class
    writer.release()
    return timeline


def write_timeline(path: Path, rows) -> Path:
    path.write_text("start,end,label\n" + "".join(f"{s},{e},{label}\n" for s, e, label in rows))
    return path
