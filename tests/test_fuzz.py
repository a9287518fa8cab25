"""Issue #8: 1,000 mutated copies of each int8 model with its manifest, 150 without (each of those is opened in a
throwaway process first, ~0.2 s: edgecnn.runtime.probe) and 30 more run at batch 5, and 1,000 hostile inputs, through
tools/fuzz.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models" / "mnist"
CASES = 1000
UNVOUCHED_CASES = 150
# the full campaigns in the slow tier; the same checks on fewer cases in the fast one
TIERS = [pytest.param(1, id="full", marks=pytest.mark.slow), pytest.param(10, id="quick")]


def fuzz(*args: str, env: dict | None = None) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz.py"), *args], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("artifact", ["model_int8.tflite", "model_int8.onnx"])
def test_every_mutated_model_is_refused_by_its_manifest_before_loading(artifact):
    code, report = fuzz(str(MODELS / artifact), "--cases", str(CASES), "--expect-refused")
    assert code == 0 and report["cases"] == CASES
    assert report["outcomes"]["refused"] == CASES and report["refused_share"] == 1.0
    [reason] = report["top_refusals"]  # one reason for all: the sha256 check, before the runtime sees the file
    assert reason.startswith(f"<copy>/{artifact} does not match its manifest (sha256 <hex>")
    assert all(sum(report["by_kind"][kind].values()) > CASES // 8 for kind in ("flip", "truncate", "append", "zero"))


@pytest.mark.parametrize("divide", TIERS)
@pytest.mark.parametrize("artifact", ["model_int8.tflite", "model_int8.onnx"])
def test_mutated_models_without_a_manifest_never_crash_or_raise_foreign_errors(artifact, divide):
    cases = UNVOUCHED_CASES // divide
    code, report = fuzz(str(MODELS / artifact), "--cases", str(cases), "--no-manifest")
    outcomes = report["outcomes"]
    assert code == 0 and report["cases"] == cases and report["failures"] == []
    assert outcomes["crash"] == 0 and outcomes["unclean"] == 0
    # with nothing to check against, some damaged copies load and run: that is why the manifest matters
    assert 0 < outcomes["refused"] < cases and outcomes["ran"] + outcomes["nonfinite"] > 0
    print(f"{artifact} without manifest: {report['refused_share']:.1%} refused, the rest ran")


@pytest.mark.slow
def test_damaged_models_run_at_a_batch_past_the_probes_or_are_refused():
    code, report = fuzz(str(MODELS / "model_int8.tflite"), "--cases", "30", "--no-manifest", "--batch", "5")
    outcomes = report["outcomes"]
    assert code == 0 and report["batch"] == 5 and report["cases"] == 30
    # "ran" means five finite rows; an unvouched model's NaN is refused, so nothing else may come back
    assert outcomes["ran"] > 0 and outcomes["refused"] > 0 and outcomes["ran"] + outcomes["refused"] == 30


@pytest.mark.parametrize("divide", TIERS)
def test_hostile_inputs_end_in_a_clean_error_or_a_finite_answer(divide):
    cases = CASES // divide
    code, report = fuzz(str(MODELS / "model_int8.tflite"), "--inputs", "--cases", str(cases))
    outcomes = report["outcomes"]
    assert code == 0 and report["cases"] == cases and report["failures"] == []
    assert outcomes["crash"] == outcomes["unclean"] == outcomes["nonfinite"] == 0
    kinds = set(report["by_kind"])
    for family in ("png-", "jpg-", "array-float32", "array-object", "array-str", "huge-frame", "object-"):
        assert any(k.startswith(family) for k in kinds), family
    assert outcomes["refused"] > 0 and outcomes["ran"] > 0


def test_a_crashing_case_is_counted_and_the_run_goes_on():
    code, report = fuzz(str(MODELS / "model_int8.tflite"), "--cases", "20", env={"EDGECNN_FUZZ_ABORT_AT": "7"})
    assert code == 1 and report["cases"] == 20
    assert report["outcomes"]["crash"] == 1 and report["outcomes"]["refused"] == 19
    assert [f["case"] for f in report["failures"]] == [7]


def test_a_file_that_cannot_be_fuzzed_is_refused_before_any_case(tmp_path):
    """A non-model, or a model whose manifest mode has no manifest, would make every case a worker 'crash'."""
    lone = tmp_path / "model_int8.tflite"
    lone.write_bytes((MODELS / "model_int8.tflite").read_bytes())
    for target, message in ((ROOT / "README.md", "is not a .tflite or .onnx model"),
                            (lone, "no manifest.json beside")):
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz.py"), str(target), "--cases", "2"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and done.stdout == ""
