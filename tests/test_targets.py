import os

import pytest

from edgecnn.errors import EdgecnnError
from edgecnn.targets import onnx_providers, resolve_target


def test_cpu_target_uses_every_core_and_the_keras_reference():
    target = resolve_target("cpu")
    assert target.threads == os.cpu_count() and target.keras_reference
    assert resolve_target("cpu", threads=1).threads == 1


def test_gpu_target_needs_cuda_and_prefers_tensorrt():
    with pytest.raises(EdgecnnError, match="no GPU visible"):
        resolve_target("gpu", providers=["CPUExecutionProvider"])
    target = resolve_target("gpu", providers=["CPUExecutionProvider", "CUDAExecutionProvider",
                                              "TensorrtExecutionProvider"])
    assert target.providers == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert target.formats == ("onnx",)


def test_rpi_target_is_emulated_off_arm_and_native_on_it():
    emulated = resolve_target("rpi", threads=16, machine="x86_64")
    assert emulated.emulated and "emulated" in emulated.label
    assert emulated.threads == min(4, os.cpu_count()) and not emulated.keras_reference
    native = resolve_target("rpi", machine="aarch64")
    assert not native.emulated and native.threads == 4 and "native" in native.label


def test_bad_target_requests():
    with pytest.raises(EdgecnnError, match="unknown target 'tpu'"):
        resolve_target("tpu")
    with pytest.raises(EdgecnnError, match="at least 1"):
        resolve_target("cpu", threads=0)


@pytest.mark.skipif("CUDAExecutionProvider" not in onnx_providers(),
                    reason="needs an NVIDIA GPU with onnxruntime-gpu (CUDAExecutionProvider)")
def test_gpu_target_resolves_on_a_cuda_machine():
    assert "CUDAExecutionProvider" in resolve_target("gpu").providers
