"""The two inference runtimes behind :class:`edgecnn.runtime.Classifier`, through their public Python APIs only.

    backend = TFLiteBackend(Path("model_int8.tflite"), threads=1)
    probs = backend.run(batch)          # float32 (N, H, W, C) in, float32 (N, classes) out

A backend takes a float32 batch, or, for a model with int8 input, the model's own int8 codes; it resizes the
model's batch dimension to the batch it is given, and returns float32 scores (an int8 output is dequantized).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cv2
import numpy as np

from edgecnn.common.errors import EdgecnnError, InputError, IntegrityError
from edgecnn.common.native_logs import native_output_muted

TENSORRT, CUDA = "TensorrtExecutionProvider", "CUDAExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
# the one readable part of a CUDA provider's start-up error, after two C++ signatures
_CUDA_FAILURE = re.compile(r"\b(?:CUDA|CUDNN|CUBLAS) failure \d+: [^;\n]+")


def tflite_interpreter_class():
    """LiteRT's Interpreter, else tflite-runtime's, else TensorFlow's (the last resort on a desktop)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                import tensorflow as tf  # its public API: `tensorflow.lite` is a source package, not tf.lite
            except ImportError:
                raise EdgecnnError("no TFLite interpreter installed: pip install ai-edge-litert") from None
            Interpreter = tf.lite.Interpreter
    return Interpreter


class Quantizer:
    """A tensor's affine int8/uint8 quantization, ``real = (q - zero_point) * scale``."""

    def __init__(self, scale: float, zero_point: int, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.inverse_scale, self.zero_point = float(1.0 / scale), float(zero_point)
        self._cv_type = cv2.CV_8S if self.dtype == np.int8 else cv2.CV_8U
        codes = np.arange(256, dtype=np.uint8).view(self.dtype).astype(np.float32)  # every 8-bit code, by its byte
        self.table = ((codes - zero_point) * scale).astype(np.float32)

    @classmethod
    def of(cls, detail: dict) -> Quantizer | None:
        """The quantizer of a LiteRT tensor, or None for a float tensor."""
        params = quantization_params(detail)
        return cls(*params, np.dtype(detail["dtype"])) if params else None

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """The codes of a float32 array: x / scale + zero_point, rounded and saturated to the dtype."""
        # one vectorized call: OpenCV's weighted sum scales, offsets, rounds and saturates into the 8-bit type
        return cv2.addWeighted(x, self.inverse_scale, x, 0.0, self.zero_point, dtype=self._cv_type)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """The real values of codes ``q``, by table lookup (take() reads int8 -k as entry 256 - k, its byte's)."""
        return self.table.take(q)


def quantization_params(detail: dict) -> list | None:
    """A LiteRT tensor's ``[scale, zero_point]``, or None for a float tensor (LiteRT reports those as [0.0, 0])."""
    scale, zero_point = detail["quantization"]
    return [scale, zero_point] if scale and np.dtype(detail["dtype"]) in (np.int8, np.uint8) else None


class TFLiteBackend:
    """A LiteRT interpreter whose batch dimension follows the batch it is given.

    ``xnnpack=False`` keeps it on LiteRT's built-in kernels (slower, but every tensor then reports the shape it was
    given). A file exported at a fixed batch of 1 (``fixed_batch``) runs a larger batch image by image.
    ``input_quantizer``: the input's :class:`Quantizer` where the model takes int8 (or uint8) input, else None;
    float32 input to such a model is quantized with it, the model's own codes pass as they are.
    """

    name = "tflite"

    def __init__(self, path: Path, threads: int | None = None, xnnpack: bool = True):
        interpreter_class = tflite_interpreter_class()
        options = {"num_threads": threads}
        if not xnnpack:
            options["experimental_op_resolver_type"] = sys.modules[
                interpreter_class.__module__].OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = interpreter_class(model_path=str(path), **options)
            self.interpreter.allocate_tensors()
            # a damaged file can carry tensor names that are not UTF-8 (a ValueError)
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
        except (ValueError, RuntimeError) as exc:
            raise IntegrityError(f"{path} is not a loadable TFLite model: {first_line(exc)}") from None
        self.input_shape = tuple(int(d) for d in self.input["shape"][1:])
        self.input_dtype = np.dtype(self.input["dtype"])
        self.classes = int(self.output["shape"][-1]) if len(self.output["shape"]) else None
        self.input_quantizer = Quantizer.of(self.input)
        self.output_quantizer = Quantizer.of(self.output)
        self._feed, self._fetch, self._batch = self.input["index"], self.output["index"], int(self.input["shape"][0])
        # a file exported at a fixed batch keeps it: its graph's shapes hold for that batch alone
        self.fixed_batch = None if int(self.input.get("shape_signature", [-1])[0]) == -1 else self._batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.dtype != self.input_dtype:
            if self.input_quantizer is None or batch.dtype != np.float32:
                raise InputError(f"the model takes {self.input_dtype} input, not {batch.dtype}")
            batch = self.input_quantizer.quantize(batch)
        if self.fixed_batch and len(batch) != self.fixed_batch:
            if self.fixed_batch != 1:
                raise InputError(f"the model takes batches of {self.fixed_batch} images only, not {len(batch)}")
            return np.concatenate([self.run(batch[i : i + 1]) for i in range(len(batch))])
        try:
            if len(batch) != self._batch:
                self.interpreter.resize_tensor_input(self._feed, [len(batch), *self.input_shape])
                self.interpreter.allocate_tensors()
                self._batch = len(batch)
            self.interpreter.set_tensor(self._feed, batch)
            self.interpreter.invoke()
            output = self.interpreter.get_tensor(self._fetch)  # a copy: the next invoke reuses the buffer
        except (ValueError, RuntimeError) as exc:  # a model that loaded but cannot run (e.g. a damaged file)
            raise inference_failed(exc) from None
        return self.output_quantizer.dequantize(output) if self.output_quantizer else output


def _load_pip_cuda_libraries(ort) -> None:
    """Load the CUDA and cuDNN libraries that pip installed (``onnxruntime-gpu[cuda,cudnn]``): the CUDA provider
    finds them only this way, as ONNX Runtime documents. Libraries already on the system path are used otherwise."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with native_output_muted():  # it prints a line for each library it could not find
            preload()


def open_session(ort, path: Path, options, providers: list[str], fold: bool):
    """An ONNX Runtime session; ``fold`` turns QDQ fusion off, for the CUDA provider, so that an int8 model's
    weights fold into float constants on the GPU instead of being copied there at every call
    (docs/performance.md, "GPU"). Not for TensorRT, which reads the QDQ nodes, nor the CPU, whose int8 kernels come
    from that fusion."""
    if fold:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    with native_output_muted():  # ORT prints an "EP Error" banner when it falls back along the list
        return ort.InferenceSession(str(path), options, providers=providers)


def _loads_on_cpu(ort, path: Path, options) -> bool:
    """Whether the model opens on the CPU provider alone: tells a GPU that failed from a file that is bad."""
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


class OnnxBackend:
    """An ONNX Runtime session on the given execution providers (CPU by default)."""

    name = "onnx"
    input_quantizer = None  # int8 ONNX exports quantize inside the graph (QDQ): their input is float32

    def __init__(self, path: Path, threads: int | None = None, providers: list[str] | str | None = None):
        import onnxruntime as ort

        providers = [providers] if isinstance(providers, str) else list(providers or ["CPUExecutionProvider"])
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise EdgecnnError(
                f"ONNX Runtime has no {', '.join(missing)} here; available: {', '.join(available)}"
            )
        gpu = [p for p in providers if p in GPU_PROVIDERS]
        if gpu:
            _load_pip_cuda_libraries(ort)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            fold = CUDA in providers and TENSORRT not in providers
            self.session = open_session(ort, path, options, providers, fold)
            if not fold and self.session.get_providers()[0] == CUDA:  # TensorRT did not start, CUDA took over
                self.session = open_session(ort, path, options, providers, fold=True)
            meta, output = self.session.get_inputs()[0], self.session.get_outputs()[0]  # names and symbolic dims
            self.input_name, self.output_name = meta.name, output.name  # of a damaged file may not be UTF-8
            self.input_shape = tuple(int(d) if isinstance(d, int) else -1 for d in meta.shape[1:])
            self.classes = output.shape[-1] if output.shape and isinstance(output.shape[-1], int) else None
        except Exception as exc:  # ORT raises its own exception types for a bad file or a GPU that fails
            if gpu and _loads_on_cpu(ort, path, options):
                reason = _CUDA_FAILURE.search(str(exc))
                raise EdgecnnError(f"{' and '.join(gpu)} could not start: "
                                   f"{reason.group(0).strip() if reason else first_line(exc)}") from None
            raise IntegrityError(f"{path} is not a loadable ONNX model: {first_line(exc)}") from None
        self.input_dtype = np.dtype(np.float32)
        self.providers = self.session.get_providers()  # ORT drops a GPU provider that fails to start, silently

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self.output_name], {self.input_name: batch})[0]
        except Exception as exc:  # ORT's own exception types: a model that loaded but cannot run
            raise inference_failed(exc) from None


def open_backend(path: Path, backend: str, threads: int | None = None, providers=None):
    """A :class:`TFLiteBackend` or :class:`OnnxBackend` for ``path`` ("tflite" or "onnx")."""
    return TFLiteBackend(path, threads) if backend == "tflite" else OnnxBackend(path, threads, providers)


def inference_failed(exc: BaseException) -> EdgecnnError:
    """The error for a model that loaded but cannot run (a damaged file), naming the runtime's first line."""
    return EdgecnnError(f"inference failed: {first_line(exc)}")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
