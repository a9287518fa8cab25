"""Errors that edgecnn reports to users as one line (the CLI prints them without a traceback).

    >>> from edgecnn.common.errors import EdgecnnError
    >>> raise EdgecnnError("model not found: runs/x/model.keras")
"""

import numbers
from pathlib import PurePath


class EdgecnnError(Exception):
    """A failure the user can act on: bad input, a missing file, an unavailable device."""


class InputError(EdgecnnError, ValueError):
    """An input array or image that a model cannot take (wrong shape, dtype, NaN, empty batch)."""


class ImageReadError(InputError):
    """An image file that cannot be read or decoded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path, reason: str):
        super().__init__(f"cannot read image {path}: {reason}")
        self.path, self.reason = path, reason


class IntegrityError(EdgecnnError, ValueError):
    """A model file whose sha256 differs from its manifest, or a manifest that is not valid."""


def check_choice(kind: str, value: str, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a one-line EdgecnnError listing them."""
    if value not in allowed:
        raise EdgecnnError(f"unknown {kind} {value!r}; choose from: {', '.join(allowed)}")
    return value


def is_whole(n) -> bool:
    """Whether ``n`` is a whole number for a count, size or seed: Python's and numpy's integers, not True or 2.0."""
    return isinstance(n, numbers.Integral) and not isinstance(n, bool)


def one_or_many(value) -> tuple:
    """An argument that takes several names (formats, precisions, paths) as a tuple, one name standing for itself:
    ``one_or_many("tflite")`` is ("tflite",), not six letters."""
    return (value,) if isinstance(value, str | PurePath) else tuple(value)


def counted(n: int, noun: str) -> str:
    """A count for a message: ``counted(1, "frame")`` is "1 frame", ``counted(3, "frame")`` "3 frames"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
