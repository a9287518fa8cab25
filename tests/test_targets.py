import os
from pathlib import Path

import numpy as np
import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy import targets
from edgecnn.deploy.targets import cuda_device_count, onnx_providers, resolve_target


def test_cpu_target_uses_every_core_and_the_keras_reference():
    target = resolve_target("cpu")
    assert target.threads == os.cpu_count() and target.keras_reference
    assert resolve_target("cpu", threads=1).threads == 1


def test_gpu_target_needs_cuda_and_prefers_tensorrt():
    with pytest.raises(EdgecnnError, match="no GPU visible"):
        resolve_target("gpu", providers=["CPUExecutionProvider"])
    cuda = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    with pytest.raises(EdgecnnError, match="no GPU visible: the NVIDIA driver reports no CUDA device"):
        resolve_target("gpu", providers=cuda, gpus=0)
    target = resolve_target("gpu", providers=cuda, gpus=1, tensorrt=True)
    assert target.providers == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert target.formats == ("onnx",)
    # onnxruntime-gpu lists TensorRT even where TensorRT's library is absent, and it would not start there
    target = resolve_target("gpu", providers=cuda, gpus=1, tensorrt=False)
    assert target.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert target.label == "gpu (CUDAExecutionProvider)"


def test_tensorrt_counts_as_present_where_its_library_loads(monkeypatch):
    from edgecnn.deploy import targets

    loaded = []

    def cdll(name):
        loaded.append(name)
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(targets.ctypes, "CDLL", cdll)
    assert targets.tensorrt_loadable() is False and loaded in (["libnvinfer.so.10"], ["nvinfer_10.dll"])
    monkeypatch.setattr(targets.ctypes, "CDLL", lambda name: object())
    assert targets.tensorrt_loadable() is True


class FakeDriver:
    """libcuda's two calls that cuda_device_count makes, answering like a driver with ``devices`` GPUs."""

    def __init__(self, devices: int):
        self.devices = devices

    def cuInit(self, flags):  # noqa: N802 (the driver API's name)
        return 0 if self.devices else 100  # CUDA_ERROR_NO_DEVICE

    def cuDeviceGetCount(self, count_ref):  # noqa: N802
        count_ref._obj.value = self.devices
        return 0


def test_cuda_device_count_asks_the_driver_and_is_zero_without_one(monkeypatch):
    def no_driver(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(targets.ctypes, "CDLL", no_driver)
    assert cuda_device_count() == 0
    for devices in (0, 2):
        monkeypatch.setattr(targets.ctypes, "CDLL", lambda name, d=devices: FakeDriver(d))
        assert cuda_device_count() == devices


def test_rpi_target_is_emulated_off_arm_and_native_on_it():
    emulated = resolve_target("rpi", threads=16, machine="x86_64")
    assert emulated.emulated and "emulated" in emulated.label
    assert emulated.threads == min(4, os.cpu_count()) and not emulated.keras_reference
    native = resolve_target("rpi", machine="aarch64")
    assert not native.emulated and native.threads == 4 and "native" in native.label


@pytest.mark.parametrize("machine, cores, asked, used, note", [
    ("aarch64", 8, 8, 4, "8 threads asked, 4 used: a Raspberry Pi has 4 cores"),
    ("x86_64", 2, 3, 2, "3 threads asked, 2 used: this host has 2 cores"),
    ("x86_64", 2, 8, 2, "8 threads asked, 2 used: a Raspberry Pi has 4 cores and this host has 2 cores"),
    ("x86_64", 16, 8, 4, "8 threads asked, 4 used: a Raspberry Pi has 4 cores"),
    ("x86_64", 16, 3, 3, None),
    ("x86_64", 2, None, 2, None),  # the profile's own default is no request: nothing to note
])
def test_rpi_target_notes_a_capped_thread_request(machine, cores, asked, used, note):
    target = resolve_target("rpi", threads=asked, machine=machine, cores=cores)
    assert target.threads == used and target.notes == ((note,) if note else ())
    assert f"{used} threads" in target.label


def test_emulated_rpi_times_one_image_per_call_and_says_so_when_asked_for_more():
    emulated = resolve_target("rpi", threads=2, machine="x86_64", cores=2, batch=8)
    assert emulated.batch == 1
    assert emulated.notes == ("batch 8 asked, 1 used: the emulated Pi profile times one image per call",)
    assert resolve_target("rpi", machine="aarch64", batch=8).batch == 8  # a real Pi runs what it is asked
    assert resolve_target("cpu", batch=8).batch == 8 and resolve_target("rpi", machine="x86_64").notes == ()


def test_bad_target_requests():
    with pytest.raises(EdgecnnError, match="unknown target 'tpu'"):
        resolve_target("tpu")
    with pytest.raises(EdgecnnError, match="at least 1"):
        resolve_target("cpu", threads=0)
    with pytest.raises(EdgecnnError, match="batch must be at least 1"):
        resolve_target("cpu", batch=0)


@pytest.mark.skipif("CUDAExecutionProvider" not in onnx_providers() or cuda_device_count() == 0,
                    reason="needs an NVIDIA GPU and onnxruntime-gpu (CUDAExecutionProvider)")
def test_gpu_target_runs_the_shipped_model_on_cuda_and_agrees_with_the_cpu():
    from edgecnn.runtime.backends import GPU_PROVIDERS
    from edgecnn.runtime.classifier import Classifier

    target = resolve_target("gpu")
    assert "CUDAExecutionProvider" in target.providers
    model = Path(__file__).parents[1] / "models" / "mnist" / "model_fp32.onnx"
    with Classifier(model, providers=list(target.providers)) as gpu, Classifier(model) as cpu:
        assert gpu.backend.providers[0] in GPU_PROVIDERS  # started on the GPU, not fallen back to the CPU
        x = np.random.default_rng(0).random((16, *cpu.input_shape), np.float32)
        on_gpu, on_cpu = gpu.predict_proba(x), cpu.predict_proba(x)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3)  # cuDNN may use TF32 matrix units
    assert (on_gpu.argmax(1) == on_cpu.argmax(1)).all()


def test_keras_reference_runs_on_the_gpu_for_the_gpu_target_only():
    from edgecnn.deploy.bench import bench_keras
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.manifest import Manifest
    from edgecnn.workstation.models import keras_device

    if keras_device() != "GPU":
        pytest.skip("needs an NVIDIA GPU that Keras' backend (TensorFlow, JAX or PyTorch) sees")
    run = Path(__file__).parents[1] / "models" / "mnist"
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28), np.uint8)
    row, top1 = bench_keras(run / "model.keras", Manifest.load(run), (images, np.zeros(64, int)), 2, 5, gpu=True)
    assert (row.status, row.device) == ("passed", "GPU") and "no GPU" not in row.note
    with Classifier(run / "model_fp32.onnx") as cpu:
        onnx_top1 = cpu.predict_proba(images).argmax(1)
    assert np.mean(top1 == onnx_top1) >= 0.95  # TF32 may flip a near tie
    # off the gpu target it stays on the CPU of the same machine
    row, top1 = bench_keras(run / "model.keras", Manifest.load(run), (images, np.zeros(64, int)), 2, 5)
    assert (row.status, row.device) == ("passed", "CPU") and np.mean(top1 == onnx_top1) >= 0.95


EPYC_VNNI = "processor : 0\nmodel name : AMD EPYC\nflags : fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n\n" \
            "processor : 1\nmodel name : AMD EPYC\nflags : fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n"
PI5 = "processor : 0\nBogoMIPS : 108.00\nFeatures : fp asimd evtstrm aes crc32 atomics asimdrdm lrcpc dcpop asimddp\n" \
      "CPU part : 0xd0b\n\nRevision : d04170\nModel : Raspberry Pi 5 Model B Rev 1.0\n"


@pytest.mark.parametrize("cpuinfo, expected, label", [
    (EPYC_VNNI, {"model": "AMD EPYC", "int8": ["avx2", "avx512_vnni"]}, "cpu (x86_64, AVX-512 VNNI, 2 threads)"),
    ("model name : Intel(R) Xeon(R)\nflags : avx2 avx512_vnni avx_vnni amx_int8 amx_tile\n",
     {"model": "Intel(R) Xeon(R)", "int8": ["avx2", "avx_vnni", "avx512_vnni", "amx_int8"]},
     "cpu (x86_64, AMX, 2 threads)"),
    ("model name : AMD EPYC\nflags : fpu sse4_2 avx avx2 fma\n", {"model": "AMD EPYC", "int8": ["avx2"]},
     "cpu (x86_64, AVX2, 2 threads)"),
    ("model name : Old\nflags : fpu sse4_2\n", {"model": "Old", "int8": []}, "cpu (x86_64, 2 threads)"),
])
def test_cpu_target_records_the_cpu_and_names_its_best_int8_instructions(cpuinfo, expected, label):
    cpu = targets.cpu_info(cpuinfo, machine="x86_64")
    assert cpu == expected
    target = resolve_target("cpu", threads=2, machine="x86_64", cpu=cpu)
    assert target.label == label and target.to_dict()["cpu"] == expected


def test_rpi_labels_name_the_arm_dot_product_instructions_and_the_emulating_host():
    pi5 = targets.cpu_info(PI5, machine="aarch64")
    assert pi5 == {"model": "Raspberry Pi 5 Model B Rev 1.0", "int8": ["asimddp"]}
    assert resolve_target("rpi", machine="aarch64", cpu=pi5).label == "rpi (native aarch64, dotprod, 4 threads)"
    pi4 = PI5.replace(" asimddp", "").replace("5 Model B Rev 1.0", "4 Model B Rev 1.4")
    assert resolve_target("rpi", machine="aarch64", cpu=targets.cpu_info(pi4, machine="aarch64")).label \
        == "rpi (native aarch64, 4 threads)"
    emulated = resolve_target("rpi", machine="x86_64", cores=2, cpu=targets.cpu_info(EPYC_VNNI, machine="x86_64"))
    assert emulated.label == "rpi (emulated on x86_64, AVX-512 VNNI, 2 threads)"
    # qemu-user shows an emulated aarch64 program the x86 host's /proc/cpuinfo: its flags say nothing of the ARM CPU
    assert targets.cpu_info(EPYC_VNNI, machine="aarch64") == {"model": "AMD EPYC", "int8": []}
    assert targets.cpu_info(PI5, machine="x86_64")["int8"] == []


def test_cpu_info_reads_this_machine():
    cpu = resolve_target("cpu").cpu
    assert cpu == targets.cpu_info() and set(cpu["int8"]) <= set(targets.X86_INT8 | targets.ARM_INT8)
    if Path("/proc/cpuinfo").exists():  # Linux: the kernel's own list, read back another way
        flags = Path("/proc/cpuinfo").read_text().split()
        assert all(flag in flags for flag in cpu["int8"]) and cpu["model"]
