import shutil

import numpy as np
import pytest

from edgecnn.bench import bench_paths, latency_stats, time_calls
from edgecnn.errors import EdgecnnError
from edgecnn.targets import Target, resolve_target


def test_latency_stats_are_percentiles_of_the_samples():
    stats = latency_stats(np.arange(1, 101, dtype=float))
    assert stats["p50_ms"] == pytest.approx(50.5) and stats["p90_ms"] == pytest.approx(90.1)
    assert stats["mean_ms"] == pytest.approx(50.5) and stats["fps"] == pytest.approx(1000 / 50.5)


def test_time_calls_warms_up_then_times_each_run():
    calls = []
    times = time_calls(lambda: calls.append(1), warmup=3, runs=7)
    assert len(calls) == 10 and times.shape == (7,) and (times >= 0).all()


def test_cpu_bench_covers_every_artifact_and_the_reference(run_dir, report):
    rows = bench_paths([run_dir], resolve_target("cpu", threads=1), warmup=2, runs=10)
    assert [r.artifact for r in rows] == ["model.keras", "model_fp32.tflite", "model_int8.tflite",
                                          "model_fp32.onnx", "model_int8.onnx"]
    assert all(r.status == "ok" and r.n == 360 and r.p50_ms > 0 for r in rows)
    assert [r.accuracy for r in rows] == [r["accuracy"] for r in report["rows"]]  # deterministic


def test_emulated_rpi_bench_uses_runtime_backends_only(run_dir):
    rows = bench_paths([run_dir], resolve_target("rpi", machine="x86_64"), warmup=1, runs=5)
    assert "model.keras" not in [r.artifact for r in rows] and len(rows) == 4


def test_rows_for_skipped_unverifiable_and_corrupted_artifacts(run_dir, tmp_path):
    onnx_only = Target("gpu", 1, ("CPUExecutionProvider",), ("onnx",), False, False, "test")
    skipped = bench_paths([run_dir / "model_int8.tflite"], onnx_only, warmup=0, runs=2)[0]
    assert skipped.status == "skipped" and skipped.p50_ms is None

    alone = tmp_path / "alone" / "model.tflite"
    alone.parent.mkdir()
    shutil.copy(run_dir / "model_int8.tflite", alone)
    row = bench_paths([alone], resolve_target("cpu"), warmup=1, runs=5)[0]
    assert row.status == "ok" and row.accuracy is None and "no manifest" in row.note and row.p50_ms > 0

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "model_fp32.onnx").write_bytes(b"garbage")
    rows = {r.artifact: r for r in bench_paths([copy], resolve_target("rpi"), warmup=1, runs=5)}
    assert rows["model_fp32.onnx"].status == "failed" and "sha256" in rows["model_fp32.onnx"].note
    assert rows["model_int8.onnx"].status == "ok"


def test_bench_bad_requests(tmp_path):
    with pytest.raises(EdgecnnError, match="no such run directory"):
        bench_paths([tmp_path / "nothing"], resolve_target("cpu"))
    with pytest.raises(EdgecnnError, match="runs must be at least 1"):
        bench_paths([tmp_path], resolve_target("cpu"), runs=0)


def test_unavailable_test_split_skips_accuracy_not_latency(run_dir, tmp_path):
    import json

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "manifest.json").read_text())
    record["dataset"]["name"] = "a-dataset-this-machine-lacks"
    (copy / "manifest.json").write_text(json.dumps(record))
    rows = bench_paths([copy], resolve_target("cpu"), warmup=1, runs=5)
    assert len(rows) == 5 and all(r.status == "ok" and r.accuracy is None and r.p50_ms > 0 for r in rows)
