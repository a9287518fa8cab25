import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.bench import (
    MIN_RUNS,
    BenchRow,
    bench_paths,
    failure_summary,
    indistinct,
    latency_stats,
    time_calls,
    time_interleaved,
)
from edgecnn.deploy.report import report
from edgecnn.deploy.targets import Target, cpu_info, resolve_target
from edgecnn.runtime.classifier import Classifier


def test_latency_stats_are_percentiles_of_the_samples():
    stats = latency_stats(np.arange(1, 101, dtype=float))
    assert stats["p50_ms"] == pytest.approx(50.5) and stats["p90_ms"] == pytest.approx(90.1)
    assert stats["p99_ms"] == pytest.approx(99.01) and stats["std_ms"] == pytest.approx(np.arange(1, 101).std())
    assert stats["mean_ms"] == pytest.approx(50.5) and stats["fps"] == pytest.approx(1000 / 50.5)
    assert latency_stats(np.full(5, 4.0), batch=8)["fps"] == pytest.approx(2000.0)


def test_the_median_interval_brackets_the_median_and_narrows_with_more_runs():
    rng = np.random.default_rng(0)
    few, many = (latency_stats(rng.normal(10, 1, n)) for n in (100, 10_000))
    for stats in (few, many):
        assert stats["p50_low_ms"] < stats["p50_ms"] < stats["p50_high_ms"]
    assert many["p50_high_ms"] - many["p50_low_ms"] < (few["p50_high_ms"] - few["p50_low_ms"]) / 5
    assert (few["runs"], many["runs"]) == (100, 10_000)


def test_interleaved_timing_alternates_the_calls_and_fills_the_minimum_time():
    order = []
    times = time_interleaved([lambda: order.append("a"), lambda: order.append("b")], warmup=2, runs=30, rounds=3)
    assert [len(t) for t in times] == [30, 30]
    timed = order[4:]  # after each call's warm-up
    assert timed == ["a"] * 10 + ["b"] * 10 + ["a"] * 10 + ["b"] * 10 + ["a"] * 10 + ["b"] * 10
    slow = time_interleaved([lambda: None], warmup=1, min_time_s=0.05)[0]
    assert len(slow) >= MIN_RUNS and time_interleaved([], runs=5) == []


def test_rows_whose_median_intervals_overlap_are_named_as_indistinct():
    def row(name, fmt, low, high):
        return BenchRow(name, fmt, "?", 1.0, p50_ms=(low + high) / 2, p50_low_ms=low, p50_high_ms=high)

    rows = [row("a_fp32.tflite", "tflite", 1.0, 1.2), row("a_int8.tflite", "tflite", 1.1, 1.3),
            row("b_fp32.onnx", "onnx", 1.0, 1.2), row("b_int8.onnx", "onnx", 1.5, 1.6),
            row("model.keras", "keras", 1.0, 1.3)]
    assert indistinct(rows) == [("a_fp32.tflite", "a_int8.tflite")]


def test_time_calls_warms_up_then_times_each_run():
    calls = []
    times = time_calls(lambda: calls.append(1), warmup=3, runs=7)
    assert len(calls) == 10 and times.shape == (7,) and (times >= 0).all()


def test_cpu_bench_covers_every_artifact_and_the_reference(run_dir, report):
    started = []
    rows = bench_paths([run_dir], resolve_target("cpu", threads=1), warmup=2, runs=10,
                       on_start=lambda *args: started.append(args))
    assert [r.artifact for r in rows] == ["model.keras", "model_fp32.tflite", "model_int8.tflite",
                                          "model_fp32.onnx", "model_int8.onnx"]
    assert started == [(i, 5, name) for i, name in enumerate(r.artifact for r in rows)]  # for a progress display
    assert all(r.status == "passed" and r.n == 360 and r.p50_ms > 0 for r in rows)
    assert [r.accuracy for r in rows] == [r["accuracy"] for r in report["rows"]]  # deterministic
    keras, fp32 = rows[0], rows[1]
    assert keras.agreement == 100.0 and fp32.agreement >= 99.0 and all(r.agreement is not None for r in rows)
    assert all(r.load_ms > 0 and r.first_ms > 0 and r.p50_ms <= r.p99_ms and r.std_ms >= 0 for r in rows)
    assert all(r.macs == 1_924_992 for r in rows)  # Keras, TFLite and ONNX count the same MACs
    assert all(r.gmacs == pytest.approx(r.macs * r.fps / 1e9) for r in rows)
    # each model measured in a process of its own: the runtime rows, unlike the Keras one, carry no TensorFlow
    assert all(50 < r.peak_rss_mb < rows[0].peak_rss_mb - 300 for r in rows[1:])
    assert {r.device for r in rows} == {"CPU"}  # this machine has no GPU; the Keras row asks TensorFlow


def test_batched_bench_times_whole_batches(run_dir):
    one, eight = (bench_paths([run_dir / "model_int8.tflite"], resolve_target("cpu", threads=1, batch=b), warmup=2,
                              runs=20)[0] for b in (1, 8))
    assert eight.batch == 8 and eight.accuracy == one.accuracy
    assert eight.p50_ms > one.p50_ms and eight.fps == pytest.approx(8000 / eight.p50_ms)


def test_a_batch_larger_than_the_test_split_still_times_that_many_images(run_dir, monkeypatch):
    sizes = []
    predict_proba = Classifier.predict_proba
    monkeypatch.setattr(Classifier, "predict_proba", lambda self, x: sizes.append(len(x)) or predict_proba(self, x))
    row = bench_paths([run_dir / "model_int8.tflite"], resolve_target("cpu", threads=1, batch=500), warmup=1,
                      runs=3)[0]
    assert row.n == 360 and row.batch == 500  # the digits test split has 360 images
    assert sizes[-4:] == [500] * 4  # the warm-up and timed calls: the split cycled to 500 images


def test_an_artifact_that_loads_but_cannot_evaluate_is_marked_so(run_dir, monkeypatch):
    from edgecnn.runtime.classifier import Classifier

    original = Classifier.predict_proba

    def no_raw_images(self, x):  # an ONNX model that runs, but not on what the test split holds
        if self.backend.name == "onnx" and np.asarray(x).dtype == np.uint8:
            raise EdgecnnError("wrong input")
        return original(self, x)

    monkeypatch.setattr(Classifier, "predict_proba", no_raw_images)
    target = resolve_target("cpu")
    rows = bench_paths([run_dir / "model_int8.onnx", run_dir / "model_int8.tflite"], target, warmup=0, runs=3)
    assert rows[0].status == "exported, evaluation failed" and "wrong input" in rows[0].note
    assert rows[0].p50_ms > 0  # still timed
    assert failure_summary(report(rows, target, 0, 3)["rows"]) == (
        "1 of 2 artifacts did not pass: model_int8.onnx (exported, evaluation failed); see the table")


def test_emulated_rpi_bench_uses_runtime_backends_only(run_dir):
    rows = bench_paths([run_dir], resolve_target("rpi", machine="x86_64"), warmup=1, runs=5)
    assert "model.keras" not in [r.artifact for r in rows] and len(rows) == 4


def test_bench_on_the_emulated_rpi_caps_the_batch_with_a_note(run_dir):
    import json
    import platform

    from edgecnn.deploy.targets import ARM_MACHINES

    from .conftest import run_subprocess

    out = run_subprocess(["bench", str(run_dir / "model_int8.tflite"), "--target", "rpi", "--batch", "8",
                          "--runs", "3", "--warmup", "0", "--json", "-"])
    document = json.loads(out.stdout)
    used = 8 if platform.machine() in ARM_MACHINES else 1  # a real Pi runs the batch it is asked for
    assert out.returncode == 0 and document["rows"][0]["batch"] == used
    assert document["latency"]["batch"] == document["target"]["batch"] == used
    assert ("batch 8 asked, 1 used" in out.stderr) == (used == 1)


def test_rows_for_skipped_unverifiable_and_corrupted_artifacts(run_dir, tmp_path):
    onnx_only = Target("gpu", 1, ("CPUExecutionProvider",), ("onnx",), False, False, "test")
    skipped = bench_paths([run_dir / "model_int8.tflite"], onnx_only, warmup=0, runs=2)[0]
    assert skipped.status == "skipped" and skipped.p50_ms is None

    alone = tmp_path / "alone" / "model.tflite"
    alone.parent.mkdir()
    shutil.copy(run_dir / "model_int8.tflite", alone)
    row = bench_paths([alone], resolve_target("cpu"), warmup=1, runs=5)[0]
    assert row.status == "passed" and row.accuracy is None and "no manifest" in row.note and row.p50_ms > 0

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "model_fp32.onnx").write_bytes(b"garbage")
    rows = {r.artifact: r for r in bench_paths([copy], resolve_target("rpi"), warmup=1, runs=5)}
    assert rows["model_fp32.onnx"].status == "failed" and "sha256" in rows["model_fp32.onnx"].note
    assert rows["model_int8.onnx"].status == "passed"


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_gpu_provider_that_does_not_start_fails_the_row_instead_of_timing_the_cpu(run_dir, monkeypatch):
    import onnxruntime as ort

    # Asked for a provider it does not have, ONNX Runtime warns and runs on the CPU: what a CUDA machine without
    # cuDNN gets. Pretend the provider is installed, as it is with onnxruntime-gpu, and record the library preload.
    preloads = []
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "preload_dlls", lambda: preloads.append(1), raising=False)
    gpu = Target("gpu", 1, ("CUDAExecutionProvider", "CPUExecutionProvider"), ("onnx",), False, False, "test")
    row = bench_paths([run_dir / "model_fp32.onnx"], gpu, warmup=0, runs=2)[0]
    assert row.status == "failed" and "CUDAExecutionProvider did not start" in row.note and row.p50_ms is None
    assert preloads == [1]
    cpu = bench_paths([run_dir / "model_fp32.onnx"], resolve_target("cpu"), warmup=0, runs=2)[0]
    assert cpu.status == "passed" and cpu.device == "CPU" and preloads == [1]  # no preload for the CPU


def test_the_table_gains_a_device_column_only_when_a_row_ran_off_the_cpu(tmp_path):
    from edgecnn.deploy.bench import BenchRow
    from edgecnn.deploy.report import write_markdown

    rows = [BenchRow("m.onnx", "onnx", "fp32", 10.0, device="CPU"), BenchRow("m.keras", "keras", "fp32", 9.0)]
    write_markdown(rows, tmp_path / "cpu.md", "cpu")
    assert "Device" not in (tmp_path / "cpu.md").read_text()
    rows[0].device = "CUDA"
    write_markdown(rows, tmp_path / "gpu.md", "gpu")
    header, _, first, second = (tmp_path / "gpu.md").read_text().splitlines()[2:]
    assert header.split(" | ")[3] == "Device" and first.split(" | ")[3] == "CUDA" and second.split(" | ")[3] == ""


def test_the_table_says_how_many_test_images_each_accuracy_rests_on(tmp_path):
    from edgecnn.deploy.bench import BenchRow
    from edgecnn.deploy.report import write_markdown

    rows = [BenchRow("a/m.onnx", "onnx", "int8", 10.0, accuracy=98.3, n=360),
            BenchRow("a/m.tflite", "tflite", "int8", 9.0, accuracy=98.1, n=360), BenchRow("x.onnx", "onnx", "?", 1.0)]
    write_markdown(rows, tmp_path / "one.md", "cpu")
    title, _, header = (tmp_path / "one.md").read_text().splitlines()[:3]
    assert title == "# cpu, accuracy on 360 test images" and "Test n" not in header  # one split: said once
    rows.append(BenchRow("b/m.onnx", "onnx", "int8", 10.0, accuracy=99.5, n=10000))
    write_markdown(rows, tmp_path / "two.md", "cpu")
    lines = (tmp_path / "two.md").read_text().splitlines()
    assert lines[0] == "# cpu" and lines[2].split(" | ")[5] == "Test n"  # several: a column, after Accuracy
    assert [line.split(" | ")[5] for line in lines[4:]] == ["360", "360", "-", "10000"]


def test_int8_slower_than_fp32_is_explained_on_x86_by_what_the_cpu_has():
    from edgecnn.deploy.bench import BenchRow, int8_slower_note

    rows = [BenchRow("model_fp32.tflite", "tflite", "fp32", 118.0, p50_ms=0.033),
            BenchRow("model_int8.tflite", "tflite", "int8", 37.0, p50_ms=0.054),
            BenchRow("model_fp32.onnx", "onnx", "fp32", 115.0, p50_ms=0.052),
            BenchRow("model_int8.onnx", "onnx", "int8", 35.0, p50_ms=0.047),
            BenchRow("other/model_int8.tflite", "tflite", "int8", 37.0, p50_ms=0.9)]  # no fp32 twin: not compared
    avx2 = {"model": "AMD EPYC", "int8": ["avx2"]}
    note = int8_slower_note(rows, resolve_target("cpu", cpu=avx2, machine="x86_64"))
    assert note.startswith("int8 ran slower than fp32 here (model_int8.tflite): this CPU has no VNNI")
    assert int8_slower_note(rows, resolve_target("rpi", cpu=avx2, machine="x86_64")) == note
    vnni = {"model": "Intel Xeon", "int8": ["avx2", "avx512_vnni", "amx_int8"]}
    small = int8_slower_note(rows, resolve_target("cpu", cpu=vnni, machine="x86_64"))
    assert small.startswith("int8 ran slower than fp32 here (model_int8.tflite): this CPU has AVX-512 VNNI, AMX")
    assert "model this small" in small
    pi4 = {"model": "Raspberry Pi 4 Model B Rev 1.4", "int8": []}
    assert int8_slower_note(rows, resolve_target("rpi", cpu=pi4, machine="aarch64")) is None
    faster = [r for r in rows if r.artifact != "model_int8.tflite"]
    assert int8_slower_note(faster, resolve_target("cpu", cpu=avx2, machine="x86_64")) is None


def test_markdown_keeps_pipes_and_line_breaks_of_names_and_notes_inside_their_cells(tmp_path):
    from edgecnn.deploy.bench import BenchRow
    from edgecnn.deploy.report import write_markdown

    rows = [BenchRow("a|b.onnx", "onnx", "fp32", 1.0, status="failed", note="inference failed:\nshape | mismatch")]
    write_markdown(rows, tmp_path / "t.md", "cpu")
    _, _, header, rule, row = (tmp_path / "t.md").read_text().splitlines()
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]  # split on the pipes that are not escaped
    assert len(cells) == header.count("|") - 1 == rule.count("|") - 1
    assert cells[0] == "a\\|b.onnx" and cells[-1] == "failed: inference failed: shape \\| mismatch"


def test_rows_from_several_folders_are_named_with_their_folder(run_dir, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    for name in ("model_int8.onnx", "manifest.json"):
        shutil.copy(run_dir / name, second / name)
    target = resolve_target("cpu", threads=1)
    alone = bench_paths([run_dir / "model_int8.onnx"], target, warmup=0, runs=2)
    both = bench_paths([run_dir / "model_int8.onnx", second / "model_int8.onnx"], target, warmup=0, runs=2)
    assert [r.artifact for r in alone] == ["model_int8.onnx"]
    assert [r.artifact for r in both] == [f"{run_dir.name}/model_int8.onnx", "second/model_int8.onnx"]
    assert both[0].accuracy == both[1].accuracy == alone[0].accuracy


def test_bench_bad_requests(tmp_path):
    with pytest.raises(EdgecnnError, match="no such run directory"):
        bench_paths([tmp_path / "nothing"], resolve_target("cpu"))
    with pytest.raises(EdgecnnError, match="runs and batch must be at least 1"):
        bench_paths([tmp_path], resolve_target("cpu"), runs=0)


def test_unavailable_test_split_skips_accuracy_not_latency(run_dir, tmp_path):
    import json

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "manifest.json").read_text())
    record["dataset"]["name"] = "a-dataset-this-machine-lacks"
    (copy / "manifest.json").write_text(json.dumps(record))
    rows = bench_paths([copy], resolve_target("cpu"), warmup=1, runs=5)
    assert len(rows) == 5 and all(r.status == "passed" and r.accuracy is None and r.p50_ms > 0 for r in rows)


@pytest.mark.slow
def test_bench_verb_writes_json_csv_markdown_and_plot(run_dir, tmp_path):
    import csv
    import json

    import cv2

    from .conftest import run_subprocess

    out = {k: tmp_path / f"bench.{k}" for k in ("json", "csv", "md", "png")}
    done = run_subprocess(["bench", str(run_dir), "--runs", "5", "--warmup", "1", "--json", str(out["json"]),
                           "--csv", str(out["csv"]), "--md", str(out["md"]), "--plot", str(out["png"])])
    assert done.returncode == 0, done.stderr
    document = json.loads(out["json"].read_text())
    assert document["schema"] == 10 and document["latency"]["batch"] == 1 and len(document["rows"]) == 5
    assert document["versions"]["keras-backend"] == "tensorflow"
    assert document["target"]["cpu"] == cpu_info() and document["target"]["label"].startswith("cpu (")
    table = list(csv.DictReader(out["csv"].open()))
    assert [r["artifact"] for r in table] == [r["artifact"] for r in document["rows"]]
    assert {r["status"] for r in table} == {"passed"} and float(table[2]["accuracy"]) > 90
    markdown = out["md"].read_text().splitlines()
    assert markdown[2].startswith("| Artifact |") and len(markdown) == 4 + 5
    assert cv2.imread(str(out["png"])).shape[:2] == (495, 770)  # 7 x 4.5 inches at 110 dpi
    alone = tmp_path / "alone.tflite"
    alone.write_bytes((run_dir / "model_int8.tflite").read_bytes())
    bad = run_subprocess(["bench", str(alone), "--runs", "2", "--plot", str(tmp_path / "none.png")])
    assert bad.returncode == 1 and "nothing to plot" in bad.stderr and not (tmp_path / "none.png").exists()


def test_the_plot_format_follows_its_suffix(run_dir, tmp_path):
    from edgecnn.deploy.report import write_plot

    from .conftest import run_subprocess

    rows = bench_paths([run_dir / "model_int8.tflite"], resolve_target("cpu", threads=1), warmup=1, runs=3)
    write_plot(rows, tmp_path / "plot.svg", "title")
    assert "<svg" in (tmp_path / "plot.svg").read_text()
    write_plot(rows, tmp_path / "plot.pdf", "title")
    assert (tmp_path / "plot.pdf").read_bytes().startswith(b"%PDF")
    bad = run_subprocess(["bench", str(run_dir), "--runs", "2", "--plot", str(tmp_path / "plot.txt")])
    assert bad.returncode == 2 and "plot.txt: expected a .png, .svg, .pdf file" in bad.stderr
    assert "Artifact" not in bad.stdout and not (tmp_path / "plot.txt").exists()  # refused before benchmarking


def test_on_the_gpu_target_a_keras_row_that_ran_on_the_cpu_says_so(run_dir, monkeypatch):
    import edgecnn.workstation.models
    from edgecnn.deploy.bench import bench_keras
    from edgecnn.runtime.manifest import Manifest

    monkeypatch.setattr(edgecnn.workstation.models, "keras_placement", lambda model: "CPU")  # also with a GPU
    monkeypatch.setattr(edgecnn.workstation.models, "keras_device", lambda: "CPU")
    manifest = Manifest.load(run_dir)
    row, _ = bench_keras(run_dir / "model.keras", manifest, None, 0, 2, gpu=True)
    assert (row.status, row.device) == ("passed", "CPU")
    assert row.note == "reference, on the CPU: Keras' tensorflow backend sees no GPU"
    assert bench_keras(run_dir / "model.keras", manifest, None, 0, 2)[0].note == "reference"
    monkeypatch.setattr(edgecnn.workstation.models, "keras_device", lambda: "GPU")  # seen; the weights on the CPU
    assert bench_keras(run_dir / "model.keras", manifest, None, 0, 2, gpu=True)[0].note == "reference, on the CPU"


def test_off_the_gpu_target_the_keras_reference_is_placed_on_the_cpu(run_dir, monkeypatch):
    import keras

    from edgecnn.deploy.bench import bench_keras
    from edgecnn.runtime.manifest import Manifest

    asked, real = [], keras.device
    monkeypatch.setattr(keras, "device", lambda name: asked.append(name) or real(name))
    manifest = Manifest.load(run_dir)
    row, _ = bench_keras(run_dir / "model.keras", manifest, None, 0, 2)
    assert set(asked) == {"cpu"} and (row.status, row.device) == ("passed", "CPU")  # opened and timed there
    asked.clear()
    bench_keras(run_dir / "model.keras", manifest, None, 0, 2, gpu=True)
    assert asked == []  # on the gpu target the backend places it


@pytest.mark.slow
def test_json_on_stdout_stays_json_when_the_dataset_is_not_on_disk(tmp_path):
    """The shipped MNIST model's test split is nowhere here (no data dir, an empty Keras cache, no network):
    Keras' download attempt prints nothing on stdout, the row says accuracy is missing, and stderr why."""
    import json
    import os

    from .conftest import run_subprocess

    model = Path(__file__).resolve().parents[1] / "models" / "mnist" / "model_int8.tflite"
    env = {k: v for k, v in os.environ.items() if k != "EDGECNN_DATA_DIR"} | {"HOME": str(tmp_path)}
    done = run_subprocess(["bench", str(model), "--runs", "3", "--warmup", "1", "--json", "-"], env=env)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["rows"][0]  # the whole of stdout is one JSON document
    assert row["status"] == "passed" and row["accuracy"] is None and "no test split" in row["note"]
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: accuracy skipped")]
    assert len(notes) == 1 and f"accuracy skipped for {model.parent}: no test split here (mnist not found" in notes[0]
    assert "pass --data-dir DIR (or set EDGECNN_DATA_DIR)" in notes[0]


@pytest.mark.parametrize("record, why", [
    pytest.param({"source": "elsewhere"}, "the manifest's dataset record has no 'name'", marks=pytest.mark.slow),
    pytest.param({}, "the manifest's dataset record has no 'name'", marks=pytest.mark.slow),  # an empty record too
    pytest.param({"name": "digits", "image_size": 28, "seed": -1},
                 "seed must be a whole number from 0 to 4294967295, got -1", marks=pytest.mark.slow),
])
def test_a_test_split_that_cannot_be_rebuilt_is_said_once_per_folder(run_dir, tmp_path, record, why):
    import json

    run = shutil.copytree(run_dir, tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "dataset": record}))
    notes = []
    rows = bench_paths([run], resolve_target("cpu", threads=1), warmup=0, runs=2, on_note=notes.append)
    assert notes == [f"accuracy skipped for {run}: no test split here ({why})"]
    assert [r.accuracy for r in rows] == [None] * len(rows) and len(rows) == 5


def test_an_artifact_named_twice_is_benched_once_where_first_named(run_dir):
    from edgecnn.runtime.manifest import Manifest

    int8 = run_dir / "model_int8.tflite"
    rows = bench_paths([int8, run_dir, int8], resolve_target("rpi", threads=1), warmup=0, runs=2)
    listed = [a.file for a in Manifest.load(run_dir).artifacts]
    assert [r.artifact for r in rows] == ["model_int8.tflite", *(f for f in listed if f != "model_int8.tflite")]
    one = bench_paths(str(int8), resolve_target("rpi", threads=1), warmup=0, runs=2)  # one path, not 40 letters
    assert [r.artifact for r in one] == ["model_int8.tflite"] and one[0].status == "passed"


@pytest.mark.slow
def test_a_keras_file_named_on_its_own(run_dir, tmp_path):
    # the run's model.keras is described by the run's manifest: accuracy, and the agreement of a file named beside it
    keras_row, int8_row = bench_paths([run_dir / "model.keras", run_dir / "model_int8.tflite"], resolve_target("cpu"),
                                      warmup=0, runs=2)
    assert (keras_row.status, keras_row.note, keras_row.n) == ("passed", "reference", 360)
    assert int8_row.agreement is not None and int8_row.agreement > 90
    # a .keras file no manifest describes is timed on its own input shape
    alone = tmp_path / "m.keras"
    shutil.copy(run_dir / "model.keras", alone)
    row = bench_paths([alone], resolve_target("cpu"), warmup=0, runs=2)[0]
    assert (row.status, row.note, row.accuracy) == ("passed", "reference, no manifest: accuracy skipped", None)
    assert row.p50_ms > 0
    # a runtime-only target skips it, as the gpu target skips .tflite files
    row = bench_paths([run_dir / "model.keras"], resolve_target("rpi"), warmup=0, runs=2)[0]
    assert (row.status, row.note, row.p50_ms) == ("skipped", "keras does not run on the rpi target", None)


def test_a_narrow_terminal_gets_whole_values_and_the_names_of_the_columns_left_out():
    import io

    from rich.console import Console

    from edgecnn.deploy.bench import BenchRow
    from edgecnn.deploy.report import print_table

    rows = [BenchRow(name, "tflite", precision, 118.2, status="passed", accuracy=98.61, agreement=100.0, load_ms=8.5,
                     first_ms=0.24, p50_ms=0.034, p99_ms=0.049, std_ms=0.004, fps=29353.0, gmacs=56.5,
                     peak_rss_mb=855.0)
            for name, precision in (("model_fp32.tflite", "fp32"), ("model_int8.tflite", "int8"))]
    for width, shown, left_out in ((80, "29353", "p50 ±95%, RSS (MiB), Std (ms), First (ms)"), (250, "855", None)):
        screen = io.StringIO()
        print_table(rows, "t", Console(file=screen, width=width, force_terminal=False))
        text = screen.getvalue()
        assert max(map(len, text.splitlines())) <= width and "…" not in text
        assert "model_fp32.tflite" in text and "model_int8.tflite" in text and shown in text
        assert (f"left out to fit {width} columns: {left_out}" in " ".join(text.split())) if left_out else (
            "left out" not in text and "RSS (MiB)" in text)
