"""Atomic file writes: a temporary file in the destination folder, then ``os.replace``.

A crash or a kill mid-write leaves the old file (or none), never a half-written one; the hidden temporary file a
kill leaves behind (``.NAME.XXXX``) is removed by the next write of the same file::

    with atomic_output("runs/a/model.tflite") as tmp:
        tmp.write_bytes(data)          # or any writer that takes a path
    write_json_atomic("runs/a/manifest.json", {"labels": [...]})
    check_writable("reports/bench.csv")    # before a long job whose result goes there
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgecnn.common.errors import EdgecnnError

FILE_IN_THE_WAY = "a file stands where its folder should be"
_UMASK = os.umask(0)  # read the process umask (the only way is to set it), then put it back
os.umask(_UMASK)


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` sets the temporary file's extension, for writers that insist on one (Keras wants ``.keras``).
    """
    path = Path(path)
    with _named_failure(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*"):  # left by a writer killed mid-write (edgecnn writes alone)
            stale.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with _named_failure(path):
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the permissions a plain open() would
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> None:
    """The EdgecnnError a write of ``path`` would meet, raised before the long work that produces it: a folder at
    the path, a file where a folder should be, a folder without write permission."""
    path = Path(path)
    if path.is_dir():
        raise EdgecnnError(f"cannot write {path}: Is a directory")
    folder = path.parent
    while not folder.exists():  # the nearest folder that is there; write makes the rest
        folder = folder.parent
    if not folder.is_dir():
        raise EdgecnnError(f"cannot write {path}: {FILE_IN_THE_WAY}")
    if not os.access(folder, os.W_OK):
        raise EdgecnnError(f"cannot write {path}: Permission denied")


@contextmanager
def _named_failure(path: Path) -> Iterator[None]:
    """An OSError (no such folder, no permission, a folder in the way) as one EdgecnnError naming ``path``."""
    try:
        yield
    except FileExistsError:  # mkdir(parents=True) meeting a file where a folder should be
        raise EdgecnnError(f"cannot write {path}: {FILE_IN_THE_WAY}") from None
    except OSError as exc:
        raise EdgecnnError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())
