
"""The runtime where TensorFlow cannot be imported, as on a device with only edgecnn[runtime]."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest

from tools.make_video import to_frame

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """
import sys
class Blocker:
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, Blocker({blocked!r}))
"""


def run_blocked(blocked: set[str], body: str, *args: str) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=blocked) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_embed_example_runs_without_tensorflow(run_dir, digits, tmp_path):
    images, labels = digits.split("test").images[:6], digits.split("test").labels[:6]
    for i, image in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{i}.png"), to_frame(image))
    (tmp_path / "readme.txt").write_text("skipped: not an image")
    out = run_blocked({"tensorflow", "keras", "sklearn"},
                      "import runpy; runpy.run_path('tools/embed_example.py', run_name='__main__')",
                      str(run_dir / "model_int8.tflite"), str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == [f"{i}.png" for i in range(6)]
    assert sum(r[1] == str(y) for r, y in zip(rows, labels, strict=True)) >= 5
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)


@pytest.mark.slow
def test_tflite_falls_back_to_tensorflow_lite_when_litert_is_missing(run_dir):
    body = f"""
        import numpy as np
        from edgecnn.runtime.classifier import Classifier
        clf = Classifier({str(run_dir / "model_int8.tflite")!r})
        probs = clf.predict_proba(np.full((8, 8), 200, np.uint8))
        print(type(clf.backend.interpreter).__module__, probs.shape, round(float(probs.sum()), 1))
    """
    out = run_blocked({"ai_edge_litert", "tflite_runtime"}, body)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0].startswith("tensorflow.lite")
    assert out.stdout.split()[1:] == ["(1,", "10)", "1.0"]
    out = run_blocked({"ai_edge_litert", "tflite_runtime", "tensorflow"}, body)
    assert out.returncode != 0 and "no TFLite interpreter installed: pip install ai-edge-litert" in out.stderr


@pytest.mark.slow
def test_bench_runs_the_keras_reference_on_jax_without_tensorflow(run_dir, report, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    body = f"""
        import sys
        from edgecnn.cli import main
        try:
            main(["bench", {str(run_dir)!r}, "--target", "cpu", "--threads", "1", "--runs", "3", "--warmup", "0",
                  "--json", {str(tmp_path / "bench.json")!r}])
        except SystemExit as exc:
            print("exit", exc.code, "tensorflow imported:", "tensorflow" in sys.modules)
    """
    out = run_blocked({"tensorflow"}, body)
    assert out.stdout.splitlines()[-1] == "exit 0 tensorflow imported: False", out.stderr
    document = json.loads((tmp_path / "bench.json").read_text())
    assert document["versions"]["keras-backend"] == "jax" and "jax" in document["versions"]
    keras, *artifacts = document["rows"]
    assert (keras["artifact"], keras["status"], keras["note"]) == ("model.keras", "passed", "reference, Keras on jax")
    assert keras["accuracy"] == report["rows"][0]["accuracy"]  # what the TensorFlow backend measured in the pipeline
    # each artifact's agreement, now with the JAX-run reference, is what it was with the TensorFlow-run one
    assert [a["agreement"] for a in artifacts] == [r["agreement"] for r in report["rows"][1:]]
    assert keras["macs"] == artifacts[0]["macs"] and keras["p50_ms"] > 0
