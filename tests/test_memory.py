"""edgecnn.deploy.memory: each model's peak RSS, measured in a process that runs that model alone."""

import subprocess

import pytest

import edgecnn.deploy.memory
from edgecnn.deploy.memory import artifact_peak_rss_mb, process_peak_rss_mb

TENSORFLOW_MB = 300  # importing TensorFlow alone takes more than this; the runtime's libraries far less


def test_a_runtime_model_is_measured_without_this_process_and_its_tensorflow(run_dir):
    import tensorflow  # noqa: F401  # this process holds TensorFlow, as `edgecnn bench` does for the Keras row

    own = process_peak_rss_mb()
    for name in ("model_int8.tflite", "model_fp32.onnx"):
        child = artifact_peak_rss_mb(run_dir / name, threads=1)
        assert 30 < child < TENSORFLOW_MB < own


@pytest.mark.slow
def test_the_keras_reference_is_measured_with_keras(run_dir):
    keras_mb = artifact_peak_rss_mb(run_dir / "model.keras", threads=1)
    assert keras_mb > TENSORFLOW_MB + artifact_peak_rss_mb(run_dir / "model_int8.tflite", threads=1)


def test_the_batch_reaches_the_child(run_dir):
    one, many = (artifact_peak_rss_mb(run_dir / "model_fp32.tflite", threads=1, batch=b) for b in (1, 512))
    assert many > one + 10  # 512 images of 28x28x16 float activations are 25 MiB a layer


def test_a_model_that_does_not_load_has_no_figure(tmp_path):
    broken = tmp_path / "model_int8.tflite"
    broken.write_bytes(b"not a flatbuffer")
    assert artifact_peak_rss_mb(broken) is None
    assert artifact_peak_rss_mb(tmp_path / "missing.onnx") is None


def test_the_child_sees_the_gpus_only_for_the_gpu_target(tmp_path, monkeypatch):
    seen = []

    def child(command, env, **kwargs):
        seen.append(env)
        return subprocess.CompletedProcess(command, 0, stdout='{"peak_rss_mb": 80.5}\n')

    monkeypatch.setattr(edgecnn.deploy.memory.subprocess, "run", child)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert artifact_peak_rss_mb(tmp_path / "model.keras") == 80.5
    assert artifact_peak_rss_mb(tmp_path / "model.keras", gpu=True) == 80.5
    off, on = seen
    assert (off["CUDA_VISIBLE_DEVICES"], off["JAX_PLATFORMS"]) == ("", "cpu")
    assert on["CUDA_VISIBLE_DEVICES"] == "0" and "JAX_PLATFORMS" not in on
