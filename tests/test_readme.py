"""README.md's Python API example runs as it stands and does what its comments say."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tools.make_video import to_frame

ROOT = Path(__file__).resolve().parents[1]


def python_block(heading: str) -> str:
    """The first ```python block of README.md's section ``heading``."""
    section = ROOT.joinpath("README.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_python_api_example_trains_exports_benches_and_classifies(tmp_path, digits):
    image, label = digits.split("test").images[0], digits.split("test").labels[0]
    cv2.imwrite(str(tmp_path / "digit.png"), to_frame(image))
    code = python_block("Python API") + (
        "import json\n"
        "open('document.json', 'w').write(json.dumps(result.document))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    manifest = json.loads((tmp_path / "runs/api/manifest.json").read_text())
    files = sorted(a["file"] for a in manifest["artifacts"])
    assert files == ["model_fp32.onnx", "model_fp32.tflite", "model_int8.onnx", "model_int8.tflite"]
    assert all((tmp_path / "runs/api" / f).is_file() for f in [*files, "model.keras", "metrics.json"])
    lines = out.stdout.strip().splitlines()
    assert str(manifest["source"]["test_accuracy"]) in lines  # print(manifest.source["test_accuracy"])
    document = json.loads((tmp_path / "document.json").read_text())
    rows = document["rows"]
    assert [r["artifact"] for r in rows] == ["model.keras", *sorted(files, key=lambda f: ("onnx" in f, "int8" in f))]
    assert document["target"]["threads"] == 1 and document["latency"]["runs"] == 100
    assert all(r["runs"] == 100 for r in rows if r["status"] == "passed")
    passed = [r for r in rows if r["status"] == "passed"]
    fastest = min(passed, key=lambda r: r["p50_ms"])
    artifact, accuracy, p50 = lines[-2].split()
    assert (artifact, float(accuracy), float(p50)) == (fastest["artifact"], fastest["accuracy"], fastest["p50_ms"])
    assert all(r["accuracy"] > 80 for r in passed)  # 5 epochs on the digits: about 97%
    top = eval(lines[-1])  # print(clf.predict("digit.png")): three (label, score) pairs, best first
    assert len(top) == 3 and top[0][0] == str(label) and top[0][1] >= top[1][1] >= top[2][1]
