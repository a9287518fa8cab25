"""Benchmark targets: which backends, providers and thread counts a device class gets.

    t = resolve_target("rpi")       # on x86_64: emulated (runtime-only backends, <= 4 threads, batch 1)
    t.label                         # 'rpi (emulated on x86_64, AVX2, 2 threads)'
    resolve_target("gpu")           # EdgecnnError without ONNX Runtime's CUDA provider or a CUDA device
    resolve_target("cpu").label     # 'cpu (x86_64, AVX-512 VNNI, 2 threads)': the CPU's best int8 instructions

``cpu``: LiteRT (XNNPACK) and ONNX Runtime on the CPU, plus the Keras model as the reference.
``gpu``: ONNX Runtime's CUDA provider (TensorRT first where present) plus Keras; LiteRT's pip wheel has no
desktop GPU delegate, so TFLite rows are skipped there with that reason. ONNX Runtime lists the TensorRT provider
whenever its GPU wheel is installed, so TensorRT counts as present only where its library (``libnvinfer.so.10``)
loads; else the target is CUDA alone, and each bench row says which provider it ran on.
``micro``: the ``.tflite`` files in TFLite Micro (its Python interpreter, reference kernels), each with the RAM it
needs (the smallest tensor arena that runs it) and the ROM (the model's bytes), as a microcontroller would hold them;
the times are the host's running TFLite Micro's kernels, not a device's.
``rpi``: on an ARM machine, a native run with runtime-only backends and 4 threads; elsewhere the same limits
emulated on the host, one image per call (a Pi camera app's batch), and labelled so.

Whether int8 beats fp32 on a CPU depends on its int8 dot-product instructions (VNNI on x86, the dot-product and
i8mm extensions on ARM): the default model ran 0.58x as fast in int8 as in fp32 on an AVX2 CPU and 2.42x as fast on
one with AVX-512 VNNI (benchmarks/README.md). So each target records the CPU's model and those instructions
(``cpu``), and the cpu and rpi labels name the best of them.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecnn.common.errors import EdgecnnError, check_choice
from edgecnn.runtime.backends import GPU_PROVIDERS, TENSORRT

TARGETS = ("cpu", "gpu", "rpi", "micro")
ARM_MACHINES = ("aarch64", "arm64", "armv7l")
RPI_MAX_THREADS = 4
# the int8 instructions of each architecture, /proc/cpuinfo flag: name, in rising order of int8 throughput
X86_INT8 = {"avx2": "AVX2", "avx_vnni": "AVX-VNNI", "avx512_vnni": "AVX-512 VNNI", "amx_int8": "AMX"}
ARM_INT8 = {"asimddp": "dotprod", "i8mm": "i8mm"}


@dataclass(frozen=True)
class Target:
    name: str
    threads: int
    providers: tuple[str, ...]  # ONNX Runtime execution providers, in priority order
    formats: tuple[str, ...]  # artifact formats that run on this target
    keras_reference: bool  # bench the Keras model too
    emulated: bool
    label: str
    notes: tuple[str, ...] = ()  # what the profile changed from the request, e.g. threads capped
    batch: int = 1  # images per timed call
    cpu: dict = field(default_factory=dict)  # cpu_info(): model and int8 instructions

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_info(cpuinfo: str | None = None, machine: str | None = None) -> dict:
    """This CPU's ``model`` name and the int8 instructions it has (``int8``: flags of X86_INT8 or ARM_INT8, by
    ``machine``, in that order), read from ``cpuinfo`` (the text of /proc/cpuinfo; this machine's where it has one,
    else empty). Flags of the other architecture are ignored: qemu-user shows an emulated ARM program the host's.

    >>> cpu_info("model name : AMD EPYC\\nflags : fpu avx2 avx512f avx512_vnni", machine="x86_64")
    {'model': 'AMD EPYC', 'int8': ['avx2', 'avx512_vnni']}
    """
    known = ARM_INT8 if (machine or platform.machine()) in ARM_MACHINES else X86_INT8
    if cpuinfo is None:
        proc = Path("/proc/cpuinfo")
        cpuinfo = proc.read_text(errors="replace") if proc.exists() else ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())  # the first processor's; the others repeat it
    flags = set((fields.get("flags") or fields.get("Features") or "").split())  # x86 / ARM
    model = fields.get("model name") or fields.get("Model") or platform.processor()
    return {"model": model, "int8": [flag for flag in known if flag in flags]}


def _describe(machine: str, cpu: dict) -> str:
    """``machine`` and the best int8 instructions of ``cpu``: 'x86_64, AVX-512 VNNI' (or 'x86_64' without any)."""
    names = X86_INT8 | ARM_INT8
    return ", ".join([machine, *[names[flag] for flag in cpu.get("int8", [])][-1:]])


def onnx_providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def cuda_device_count() -> int:
    """NVIDIA GPUs the driver shows this process (after CUDA_VISIBLE_DEVICES): 0 without a driver or a device.
    Asked through the CUDA driver API itself, so it needs neither TensorFlow nor a CUDA toolkit."""
    try:
        driver = ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def tensorrt_loadable() -> bool:
    """Whether TensorRT's runtime library, which ONNX Runtime's TensorRT provider needs, loads in this process."""
    try:
        ctypes.CDLL("nvinfer_10.dll" if sys.platform == "win32" else "libnvinfer.so.10")
    except OSError:
        return False
    return True


def resolve_target(name: str, threads: int | None = None, providers: list[str] | None = None,
                   machine: str | None = None, gpus: int | None = None, cores: int | None = None,
                   batch: int = 1, tensorrt: bool | None = None, cpu: dict | None = None) -> Target:
    """Build the Target for ``name``. ``providers``, ``machine``, ``gpus`` (CUDA devices), ``cores``,
    ``tensorrt`` (whether TensorRT loads) and ``cpu`` (:func:`cpu_info`) default to what this host has. A request
    the profile cannot honour (``rpi`` with more threads than it has, or an emulated ``rpi`` with a batch above 1)
    is capped, and ``notes`` says so."""
    check_choice("target", name, TARGETS)
    if threads is not None and threads < 1:
        raise EdgecnnError(f"threads must be at least 1, got {threads}")
    if batch < 1:
        raise EdgecnnError(f"batch must be at least 1, got {batch}")
    machine = machine or platform.machine()
    cores = cores or os.cpu_count() or 1
    cpu = cpu_info(machine=machine) if cpu is None else cpu
    if name == "cpu":
        threads = threads or cores
        return Target("cpu", threads, ("CPUExecutionProvider",), ("tflite", "onnx"), True, False,
                      f"cpu ({_describe(machine, cpu)}, {threads} threads)", batch=batch, cpu=cpu)
    if name == "gpu":
        providers = onnx_providers() if providers is None else providers
        if "CUDAExecutionProvider" not in providers:
            raise EdgecnnError(
                "no GPU visible: ONNX Runtime has no CUDAExecutionProvider here "
                "(on a CUDA machine: pip install 'edgecnn[gpu]')"
            )
        if (cuda_device_count() if gpus is None else gpus) == 0:
            raise EdgecnnError("no GPU visible: the NVIDIA driver reports no CUDA device to this process "
                               "(check nvidia-smi and CUDA_VISIBLE_DEVICES)")
        if TENSORRT in providers and not (tensorrt_loadable() if tensorrt is None else tensorrt):
            providers = [p for p in providers if p != TENSORRT]  # it would fail to start, and CUDA take over
        chosen = tuple(p for p in GPU_PROVIDERS if p in providers)
        return Target("gpu", threads or cores, (*chosen, "CPUExecutionProvider"), ("onnx",), True, False,
                      f"gpu ({', '.join(chosen)})", batch=batch, cpu=cpu)
    if name == "micro":
        notes = [f"batch {batch} asked, 1 used: a microcontroller runs one image per call"] if batch > 1 else []
        return Target("micro", 1, (), ("tflite",), False, True,
                      f"micro (TFLite Micro's reference kernels on {_describe(machine, cpu)}: RAM and ROM are a "
                      "device's, times are this host's)", tuple(notes), 1, cpu)
    emulated = machine not in ARM_MACHINES
    limits = [(RPI_MAX_THREADS, "a Raspberry Pi has 4 cores")]
    if emulated:
        limits.append((cores, f"this host has {cores} cores"))
    used = min(threads or RPI_MAX_THREADS, *(n for n, _ in limits))
    notes = []
    if threads and threads > used:
        notes.append(f"{threads} threads asked, {used} used: "
                     + " and ".join(reason for n, reason in limits if n < threads))
    if emulated and batch > 1:  # the emulated profile times what a Pi camera app runs: one frame per call
        notes.append(f"batch {batch} asked, 1 used: the emulated Pi profile times one image per call")
        batch = 1
    where = f"emulated on {_describe(machine, cpu)}" if emulated else f"native {_describe(machine, cpu)}"
    return Target("rpi", used, ("CPUExecutionProvider",), ("tflite", "onnx"), False, emulated,
                  f"rpi ({where}, {used} threads)", tuple(notes), batch, cpu)
