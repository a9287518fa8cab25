"""Preprocessing shared by training and the runtime, so a device reproduces it exactly.

A model's manifest stores a :class:`Preprocessing`; calling it turns whatever an app has into the model's
float32 NHWC input batch::

    pre = Preprocessing(height=28, width=28, channels=1)
    batch = pre(frame)          # an OpenCV BGR frame, a grayscale image, or a batch of either
    batch.shape                 # (1, 28, 28, 1), float32, x = (pixel * scale - mean) / std

Raw images are uint8 (OpenCV's BGR order for colour); a batch is an array of them or a list, whose images may
differ in size. A float array already shaped like the model input
(``(28, 28, 1)`` or ``(N, 28, 28, 1)``) is taken as preprocessed and passed through after a finiteness check.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.errors import ImageReadError, InputError
from edgecnn.common.json_records import from_json

LAYOUT = "NHWC"
FORMULA = "x = (pixel * scale - mean) / std"
RESIZE = ("cv2.INTER_AREA when shrinking (where a whole factor divides both sides and leaves 8x the model's size, "
          "first by the largest such factor), cv2.INTER_LINEAR when enlarging")
AREA_STEP_MARGIN = 8  # a two-step shrink keeps at least 8x the output's size after its first step
MIN_SIDE, MAX_SIDE = 8, 512  # the model input sizes datasets are loaded at (--image-size)


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become model input: colour, size, optional inversion, then normalization."""

    height: int
    width: int
    channels: int  # 1: grayscale, 3: RGB
    scale: float = 1.0 / 255.0
    mean: float = 0.0
    std: float = 1.0
    invert: bool = False  # 255 - pixel, before normalization

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        """The manifest's ``preprocessing`` record: fields plus a human-readable description."""
        return {
            **asdict(self),
            "layout": LAYOUT,
            "color": "gray" if self.channels == 1 else "rgb",
            "resize": RESIZE,
            "normalization": FORMULA,
        }

    @classmethod
    def from_dict(cls, record: dict) -> Preprocessing:
        """The preprocessing of a manifest's record; TypeError naming the first field that is missing, of the wrong
        type or out of range (sides from MIN_SIDE to MAX_SIDE, 1 or 3 channels, finite numbers, std not 0)."""
        pre = from_json(cls, record, "preprocessing")
        if not all(MIN_SIDE <= side <= MAX_SIDE for side in (pre.height, pre.width)):
            raise TypeError(f"preprocessing size {pre.height}x{pre.width} is not within {MIN_SIDE}..{MAX_SIDE}")
        if pre.channels not in (1, 3):
            raise TypeError(f"preprocessing channels {pre.channels} is neither 1 nor 3")
        if not (all(math.isfinite(v) for v in (pre.scale, pre.mean, pre.std)) and pre.std != 0):
            raise TypeError(f"preprocessing scale {pre.scale}, mean {pre.mean}, std {pre.std}: not finite, or std 0")
        return pre

    def __call__(self, x) -> np.ndarray:
        """Return a float32 NHWC batch for one image, a batch of images, or an already preprocessed array."""
        return self.batch(x)[0]

    def batch(self, x, pixel_table: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """Like calling the object, and also tell whether ``x`` was a single image (True) or a batch. A list of
        uint8 images may mix sizes and colours: each is converted on its own. ``pixel_table``: the model input for
        each of the 256 pixel values (an int8 model's codes of :attr:`pixel_values`), used for uint8 images instead
        of normalizing them."""
        if isinstance(x, list | tuple) and x and all(isinstance(i, np.ndarray) and i.dtype == np.uint8 for i in x):
            return self._convert(x, pixel_table), False
        try:
            x = np.asarray(x)
        except ValueError as exc:  # ragged nested lists
            raise InputError(f"input is not an array: {exc}") from None
        if x.size == 0:
            raise InputError(f"empty input {x.shape}: expected at least one image")
        if x.dtype.kind == "f" and x.shape[-3:] == self.input_shape and x.ndim in (3, 4):
            with np.errstate(over="ignore"):  # a float64 1e39 becomes a float32 inf, which the check refuses
                batch = x.reshape((-1, *self.input_shape)).astype(np.float32, copy=False)
            require_finite(batch)
            return batch, x.ndim == 3
        if x.dtype != np.uint8:
            raise InputError(
                f"expected uint8 image(s) (HxW gray, HxWx3 BGR, or a batch of them) or a float array shaped "
                f"{self.input_shape} or (N, {', '.join(map(str, self.input_shape))}); got {x.dtype} {x.shape}"
            )
        single = x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3, 4))
        if not single and x.ndim not in (3, 4):
            raise InputError(f"expected an image or a batch of images, got an array of shape {x.shape}")
        return self._convert([x] if single else list(x), pixel_table), single

    def _convert(self, images, pixel_table: np.ndarray | None) -> np.ndarray:
        """The model's input batch for uint8 images, each converted to the model's colour and size."""
        pixels = self.image(images[0])[None] if len(images) == 1 else np.stack([self.image(img) for img in images])
        return (self.pixel_values if pixel_table is None else pixel_table).take(pixels)

    def image(self, img: np.ndarray) -> np.ndarray:
        """Convert one uint8 image to the model's colour and size (and invert it if asked): H x W x C uint8."""
        if self.channels == 3:  # copying and swapping channels commutes with resizing: done on the smaller image
            img = self._color(resized(img, self.height, self.width))
        else:  # a grey level is a rounded weighted sum, which does not commute: converted first, as trained
            img = resized(self._color(img), self.height, self.width)
        if self.invert:
            img = 255 - img
        return img.reshape(self.input_shape)

    @functools.cached_property
    def pixel_values(self) -> np.ndarray:
        """``x = (pixel * scale - mean) / std`` for each pixel value 0..255, float32: every image is normalized by
        looking its pixels up here."""
        return ((np.arange(256, dtype=np.float32) * self.scale - self.mean) / self.std).astype(np.float32)

    def _color(self, img: np.ndarray) -> np.ndarray:
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        if img.ndim == 2:
            return img if self.channels == 1 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        if img.ndim != 3 or img.shape[-1] not in (3, 4):
            raise InputError(f"expected a gray, BGR or BGRA image, got shape {img.shape}")
        four = img.shape[-1] == 4
        if self.channels == 1:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if four else cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if four else cv2.COLOR_BGR2RGB)


def resized(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` at ``height`` x ``width``: area averaging where it shrinks on both sides, bilinear otherwise. Training
    (:mod:`edgecnn.workstation.image_folders`) and serving resize alike, so a model learns from the pixels it will
    be given.

    A large shrink goes in two steps: first by :func:`area_step`'s whole factor, which OpenCV averages on its fast
    path, then the rest (docs/performance.md, "Resizing camera frames")."""
    rows, cols = img.shape[:2]
    if (rows, cols) == (height, width):
        return img
    if rows < height or cols < width:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    step = area_step(rows, cols, height, width)
    if step > 1:
        img = cv2.resize(img, (cols // step, rows // step), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def area_step(rows: int, cols: int, height: int, width: int) -> int:
    """The largest whole factor that divides both sides of a ``rows`` x ``cols`` image and leaves at least
    AREA_STEP_MARGIN times ``height`` x ``width`` (1 where none does): 2 for 640x480 to 28x28, 15 for 1920x1080 to
    8x8. The margin bounds how far two steps stray from one (within one grey level at 8x)."""
    limit = min(rows // (AREA_STEP_MARGIN * height), cols // (AREA_STEP_MARGIN * width))
    common = math.gcd(rows, cols)
    return next((step for step in range(limit, 1, -1) if common % step == 0), 1)


# Preprocessed pixels are a few units each, so even a batch of a million images sums to about 1e9 in |x|; past
# MAX_ABS_SUM only garbage lies (and, near float32's 3.4e38, overflow inside the model: NaN probabilities out)
MAX_ABS_SUM = 1e19


def require_finite(x: np.ndarray) -> None:
    """InputError if the float32 array ``x`` holds NaN or infinite values, or absurd ones (sum of |x| > 1e19)."""
    # NaN and inf carry into the sum of |x|, which OpenCV adds up in float64 in one pass, and fail the comparison
    if not cv2.norm(x, cv2.NORM_L1) <= MAX_ABS_SUM:
        raise InputError(f"input contains NaN or infinite values, or absurd ones (sum of |x| > {MAX_ABS_SUM:g})")


def decode_image(data: bytes) -> np.ndarray:
    """A BGR uint8 frame from encoded bytes (PNG, JPEG or any format OpenCV reads); InputError if they are not one."""
    buffer = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None  # a float TIFF decodes only so
        if raw is not None:
            raise InputError(f"its samples are {raw.dtype}, which have no fixed range to scale: save it with 8- or "
                             "16-bit samples")
        raise InputError("not an image OpenCV can decode")
    return image


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


def image_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` (by suffix), in name order, not its sub-folders'; InputError if it holds none
    (naming its sub-folders, where a user passed the parent of class folders)."""
    entries = sorted(Path(folder).iterdir())
    files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not files:
        folders = [p.name for p in entries if p.is_dir() and not p.name.startswith(".")]
        shown = ", ".join(folders[:5]) + (", ..." if len(folders) > 5 else "")
        raise InputError(f"no images in {folder}" + (f": it holds folders ({shown}), pass those" if folders else ""))
    return files


def read_image(path: str | Path) -> np.ndarray:
    """The image file at ``path`` as a BGR uint8 frame, or an ImageReadError naming the file and the reason."""
    try:
        return decode_image(Path(path).read_bytes())
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from None
    except InputError as exc:
        raise ImageReadError(path, str(exc)) from None
