"""Open a model whose bytes nothing vouches for in a throwaway process first, so that a damaged or hostile file
cannot take the app down with it.

    require_survives(Path("downloaded.tflite"), "tflite")   # IntegrityError where running it kills a process
    python -m edgecnn.runtime.probe downloaded.tflite tflite        # the child: exit 0, or 1 with a Python error

A manifest's sha256 vouches for an exported file; without one (or with ``verify=False``) a few changed bytes can
reach the runtime's native code, where a failed check aborts the process and no Python exception can be caught:
a zeroed quantization scale in an int8 ``.tflite`` makes LiteRT abort in ``QuantizeMultiplierSmallerThanOneExp``
while it allocates tensors (docs/reliability.md). The
child opens the file as :class:`~edgecnn.runtime.Classifier` and ``edgecnn inspect`` do, on one thread, and runs
it on zeros at batch 1 and 2. Only a child killed by a signal, or one that hangs, refuses the model: any error the
child raises is raised again, as the same clean error, when the caller opens the file. A frozen app (no Python
interpreter to start) opens the model unprobed. Cost: one process start, about 0.2 s on a desktop.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from edgecnn.common.errors import IntegrityError

RUNTIMES = {"tflite": "the TFLite interpreter", "onnx": "ONNX Runtime"}
TIMEOUT_S = 120  # a small board imports numpy, OpenCV and LiteRT in a few seconds; a hang is refused


def require_survives(path: Path, backend: str) -> None:
    """IntegrityError where opening ``path`` with ``backend`` ("tflite" or "onnx") and running it kills a fresh
    process or hangs it."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return
    try:
        done = subprocess.run([sys.executable, "-m", "edgecnn.runtime.probe", str(path), backend], capture_output=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise IntegrityError(f"{path.name} did not open and run within {TIMEOUT_S} s in a test process: "
                             "not loaded") from None
    except OSError:  # no process can be started here: the model is opened unprobed, as in a frozen app
        return
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name if -done.returncode in signal.valid_signals() else "a signal"
        raise IntegrityError(f"{path.name} crashed {RUNTIMES[backend]} ({name}) when a test process opened and ran "
                             "it: a damaged or hostile model, not loaded")


def _open_and_run(path: Path, backend: str) -> None:
    import numpy as np

    from edgecnn.runtime.backends import OnnxBackend, TFLiteBackend

    if backend == "onnx":
        opened = [OnnxBackend(path, threads=1)]
    else:  # XNNPACK, as a Classifier runs it, and the built-in kernels, as `edgecnn inspect` does
        opened = [TFLiteBackend(path, threads=1), TFLiteBackend(path, threads=1, xnnpack=False)]
    for model in opened:
        for batch in (1, 2):  # a second size: LiteRT prepares every operator again after a resize
            for dtype in {model.input_dtype, np.dtype(np.float32)}:  # an int8 model's codes, and floats
                model.run(np.zeros((batch, *(max(d, 1) for d in model.input_shape)), dtype))


if __name__ == "__main__":
    _open_and_run(Path(sys.argv[1]), sys.argv[2])
