"""Peak resident memory of one model in a process of its own: what an app that embeds it needs.

    artifact_peak_rss_mb(Path("runs/demo/model_int8.tflite"), threads=2)   # 72.3 (MiB) on a 2-core x86 host
    python -m edgecnn.deploy.memory runs/demo/model_int8.tflite --threads 2   # the child: {"peak_rss_mb": 72.3}

``edgecnn bench`` measures each row this way. Its own high-water mark cannot tell the rows apart: the Keras reference
(TensorFlow) and the test split set it, for every row after them. The child imports what the file needs and no
more (``edgecnn.runtime``, so numpy, OpenCV and LiteRT or ONNX Runtime, for .tflite and .onnx; Keras for .keras),
loads the model, makes ``CALLS`` calls on a zero batch of the bench's size and reports its peak RSS, interpreter and
libraries included. Those dominate a model this small, so the figure says which runtime a device can afford.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

CALLS = 5
TIMEOUT_S = 300  # Keras on a small board can take a minute to import


def process_peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB. On Linux ``VmHWM``: ``ru_maxrss`` there keeps the
    parent's memory at fork across exec, so a child started by a 900 MiB process reads 900 MiB at least."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def artifact_peak_rss_mb(path: Path, threads: int | None = None, batch: int = 1, providers=(),
                         tta: str = "none", gpu: bool = False) -> float | None:
    """Peak RSS in MiB of a fresh Python process that loads ``path`` and runs it on ``batch`` images, with
    ``threads`` and ONNX Runtime ``providers`` as the bench uses them (``tta``: the Keras reference's test-time
    augmentation, as in its manifest). The process sees the machine's GPUs only with ``gpu``, so off the gpu target
    Keras runs on the CPU there too, without CUDA's libraries. None where it fails or takes over ``TIMEOUT_S``."""
    command = [sys.executable, "-m", "edgecnn.deploy.memory", str(path), "--batch", str(batch), "--tta", tta]
    if threads:
        command += ["--threads", str(threads)]
    for provider in providers:
        command += ["--provider", provider]
    # JAX and TensorFlow reserve most of a GPU's memory on start; the bench process has done so already
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    if not gpu:
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        return float(json.loads(done.stdout.splitlines()[-1])["peak_rss_mb"]) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, OSError, IndexError, ValueError, KeyError):
        return None


def _run(path: Path, threads: int | None, batch: int, providers: list[str], tta: str) -> float:
    import numpy as np

    if path.suffix == ".keras":
        from edgecnn.workstation.models import load_model, with_tta

        model = with_tta(load_model(path), tta)
        call = partial(model.predict_on_batch, np.zeros((batch, *model.inputs[0].shape[1:]), np.float32))
    else:
        from edgecnn.runtime.classifier import Classifier

        # the bench process opened this file before starting the child, probing it where nothing vouches for it
        classifier = Classifier(path, threads=threads, providers=providers or None, probe=False)
        call = partial(classifier.predict_proba, np.zeros((batch, *classifier.input_shape), np.float32))
    for _ in range(CALLS):
        call()
    return process_peak_rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m edgecnn.deploy.memory", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--provider", action="append", default=[], help="ONNX Runtime provider, in order")
    parser.add_argument("--tta", default="none")
    args = parser.parse_args()
    peak = _run(args.path, args.threads, args.batch, args.provider, args.tta)
    print(json.dumps({"peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
