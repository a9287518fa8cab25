"""Mute native output around noisy calls, and import Keras (and TensorFlow) quietly.

TensorFlow's C++ code, the TFLite converter and LiteRT ("Created TensorFlow Lite XNNPACK delegate") write
straight to file descriptors 1 and 2, around Python's logging. The CLI mutes those descriptors during imports,
conversions and model loads, unless ``EDGECNN_DEBUG=1`` (set by ``edgecnn --debug``). OpenCV logs its own
warnings ("[ WARN:0@0.04] ... can't open camera by index") beside the CLI's one-line errors; the CLI mutes them::

    tf, keras = import_tf()
    keras = import_keras()      # Keras alone, on $KERAS_BACKEND (tensorflow unless set: jax and torch work too)
    with native_output_muted():
        tflite_bytes = converter.convert()
    mute_opencv_logs()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from edgecnn.common.errors import EdgecnnError


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


def mute_opencv_logs() -> None:
    """Turn OpenCV's log off for this process (no-op when EDGECNN_DEBUG=1). For apps that report failures their
    own way, as the CLI does: the library leaves OpenCV's logging as the app set it."""
    if os.environ.get("EDGECNN_DEBUG") != "1":
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        # FFmpeg logs apart ("moov atom not found"); OpenCV reads this when it first opens a video: AV_LOG_QUIET
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def import_keras():
    """Return ``keras``, imported quietly on ``$KERAS_BACKEND`` (TensorFlow unless the variable says otherwise).
    Training and export need TensorFlow; loading and running a ``.keras`` model works on any Keras backend."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow and JAX take (nearly) all GPU memory at start; bench shares the GPU with ONNX Runtime's CUDA provider
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    with native_output_muted():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
    return keras


def import_tf():
    """Return ``(tensorflow, keras)``, imported quietly. Training and export need Keras' TensorFlow backend:
    an EdgecnnError says so when ``$KERAS_BACKEND`` names another."""
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise EdgecnnError(f"training and export need Keras' TensorFlow backend, but KERAS_BACKEND is "
                           f"{keras.backend.backend()!r}: unset it (other backends can only bench .keras models)")
    import tensorflow as tf

    return tf, keras
