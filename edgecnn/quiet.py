"""Mute native output around noisy calls, and import TensorFlow and Keras quietly.

TensorFlow's C++ code, the TFLite converter and LiteRT ("Created TensorFlow Lite XNNPACK delegate") write
straight to file descriptors 1 and 2, around Python's logging. The CLI mutes those descriptors during imports,
conversions and model loads, unless ``EDGECNN_DEBUG=1`` (set by ``edgecnn --debug``)::

    tf, keras = import_tf()
    with native_output_muted():
        tflite_bytes = converter.convert()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_output_muted() -> Iterator[None]:
    """Send fds 1 and 2 to /dev/null for the duration of the block (no-op when EDGECNN_DEBUG=1)."""
    if os.environ.get("EDGECNN_DEBUG") == "1":
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def import_tf():
    """Return ``(tensorflow, keras)``, imported quietly with the TensorFlow backend."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with native_output_muted():
        import keras
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    return tf, keras
