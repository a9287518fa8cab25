"""The runtime wrapper that apps and devices embed: numpy plus LiteRT and/or ONNX Runtime, no TensorFlow.

    from edgecnn.runtime import Classifier

    with Classifier("runs/demo/model_int8.tflite") as clf:   # checks the sha256 listed in manifest.json
        print(clf.predict(cv2.imread("digit.png")))         # [('7', 0.98), ('1', 0.01), ('9', 0.004)]
        print(clf.predict(["a.png", "b.jpg"], top_k=1))      # image files, read with OpenCV: [[('3', 0.9)], ...]
        probs = clf.predict_proba(batch)                     # (N, classes) float32

Inputs are OpenCV frames (BGR uint8), grayscale images, batches of them, image file paths (a str or Path, or a list
of them), or float arrays already shaped like the model input; the manifest beside the model says how to
preprocess. int8 models get their input quantized and their output dequantized with the tensors' own scale and zero
point, by LiteRT inside the invoke (:mod:`edgecnn.float_io`; by OpenCV where that cannot be arranged). A model with
int8 input also takes its own int8 codes (round(x / scale) + zero_point, as an integer-only camera pipeline makes
them): the int8 ndarray shaped like the input, or a batch of them, each code run as itself.

Thread safety: a Classifier is not thread-safe. Use one per thread, or guard its calls with a lock.
"""

from __future__ import annotations

import os
import re
import sys
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import EdgecnnError, InputError, IntegrityError, check_choice, is_whole
from edgecnn.manifest import Manifest
from edgecnn.preprocess import Preprocessing, read_image, require_finite
from edgecnn.probe import require_survives
from edgecnn.quiet import native_output_muted

BACKENDS = ("auto", "tflite", "onnx")
_SUFFIX_BACKEND = {".tflite": "tflite", ".onnx": "onnx"}

# numpy's built-in dtypes are singletons, so `is` tests for native float32 fastest; any other float32
# (byte-swapped, with metadata) takes the general path
_FLOAT32 = np.dtype(np.float32)
_INT8 = np.dtype(np.int8)
TENSORRT, CUDA = "TensorrtExecutionProvider", "CUDAExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
# the one readable part of a CUDA provider's start-up error, after two C++ signatures
_CUDA_FAILURE = re.compile(r"\b(?:CUDA|CUDNN|CUBLAS) failure \d+: [^;\n]+")


def not_runtime_model(path: Path, what: str) -> EdgecnnError:
    """The error for a file the runtime does not run, e.g. "cannot tell the backend of x.keras: expected .tflite
    or .onnx (...)", with what to do where it is a Keras model."""
    hint = " (export makes them from a .keras model: edgecnn export RUN_DIR)" if path.suffix == ".keras" else ""
    return EdgecnnError(f"{what} {path.name}: expected .tflite or .onnx{hint}")


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


class TFLiteBackend:
    """A LiteRT interpreter whose input tensor is resized to each batch size it is given; ``xnnpack=False`` keeps
    it on LiteRT's built-in kernels (slower, but every tensor then reports the shape it was given).

    ``float_io``: run a model with int8 (or uint8) input or output with float32 twins added to its graph
    (:mod:`edgecnn.float_io`), so that LiteRT quantizes and dequantizes inside the invoke; ``float_io`` then says
    whether it does. ``input``, ``output`` and ``input_dtype`` describe the file's own tensors either way, and the
    model's int8 codes are still taken: the file's own graph runs them, opened the first time they come. Where the
    rewrite cannot be made (no ai-edge-litert schema, as with tflite-runtime), OpenCV quantizes instead.
    """

    name = "tflite"

    def __init__(self, path: Path, threads: int | None = None, xnnpack: bool = True, float_io: bool = True):
        interpreter_class = tflite_interpreter_class()
        options = {"num_threads": threads}
        if not xnnpack:  # built-in kernels only; their tensors show the shapes allocation gave them
            options["experimental_op_resolver_type"] = sys.modules[
                interpreter_class.__module__].OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = interpreter_class(model_path=str(path), **options)
            self.interpreter.allocate_tensors()
            # a damaged file can carry tensor names that are not UTF-8 (a ValueError)
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
        except (ValueError, RuntimeError) as exc:
            raise IntegrityError(f"{path} is not a loadable TFLite model: {_first_line(exc)}") from None
        self.input_shape = tuple(int(d) for d in self.input["shape"][1:])
        self.input_dtype = np.dtype(self.input["dtype"])
        self.classes = int(self.output["shape"][-1]) if len(self.output["shape"]) else None
        self.float_io, self._path, self._options, self._codes_graph = False, path, (threads, xnnpack), None
        if float_io and (quantization_params(self.input) or quantization_params(self.output)):
            self._open_float_io(path, interpreter_class, options)
        self._details()

    def _open_float_io(self, path: Path, interpreter_class, options: dict) -> None:
        """Swap in an interpreter of the model with float32 twins, where the rewrite can be made and loads."""
        try:
            from edgecnn.float_io import with_float_io
        except ImportError:  # LiteRT's flatbuffer schema comes with ai-edge-litert only
            return
        content = with_float_io(path.read_bytes())
        if content is None:
            return
        try:
            interpreter = interpreter_class(model_content=content, **options)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError):  # a file LiteRT runs as it is but not rewritten: it runs as it is
            return
        self.interpreter, self.float_io = interpreter, True

    def _details(self):
        """What each call needs from the interpreter's input and output, read again after every resize."""
        feed, fetch = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self._feed, self._fetch, self._batch = feed["index"], fetch["index"], int(feed["shape"][0])
        self._feed_dtype = np.dtype(feed["dtype"])
        quantizer = Quantizer.of(feed)
        # quantized into this array, made once per batch size, and handed over by set_tensor: 2.4 us at 1x28x28x1,
        # against 3.7 us for a fresh interpreter.tensor() view per call (LiteRT refuses to invoke while a view is
        # alive) and quantizing through 2-D reshapes of it
        self._quantize = partial(quantizer.quantize, out=np.empty(feed["shape"], self._feed_dtype)) if quantizer \
            else None
        self._dequantizer = Quantizer.of(fetch)
        self._invoke = _invoker(self.interpreter, self._feed, self._fetch)
        # one float32 image, where the graph takes and gives float32 at batch 1: nothing to resize or convert, so
        # the Classifier's hot path calls the interpreter straight (0.2 us a call less than through run)
        simple = self._batch == 1 and self._feed_dtype == _FLOAT32 and not self._dequantizer
        self.run_one = self._invoke if simple else self.run

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            if len(batch) != self._batch:
                self.interpreter.resize_tensor_input(self._feed, [len(batch), *self.input_shape])
                self.interpreter.allocate_tensors()
                self._details()
            if batch.dtype is not self._feed_dtype:  # floats for int8 input, or the codes of a float32 twin's file
                if self._quantize is None:
                    return self._file_graph().run(batch)
                batch = self._quantize(batch)
        except (ValueError, RuntimeError) as exc:  # a model that loaded but cannot be resized (e.g. a damaged file)
            raise _inference_failed(exc) from None
        output = self._invoke(batch)
        return self._dequantizer.dequantize(output) if self._dequantizer else output

    def _file_graph(self) -> TFLiteBackend:
        """The file's own graph, for the model's int8 codes: its float32 twin would take them only as floats, which
        a dequantizing lookup made 0.6 us a call slower."""
        if self._codes_graph is None:
            self._codes_graph = TFLiteBackend(self._path, *self._options, float_io=False)
        return self._codes_graph


def _invoker(interpreter, feed: int, fetch: int):
    """``call(batch) -> output``: set_tensor, invoke and get_tensor (a copy: the next invoke reuses the buffer) on
    ``interpreter``, LiteRT's errors raised as an EdgecnnError ("inference failed: ..."), through the methods of its
    native wrapper where it has one (the ``_interpreter`` of LiteRT's, tflite-runtime's and TensorFlow's
    interpreters alike). That skips the Python layer of the public methods, whose invoke() first checks that no
    numpy view from tensor() is alive (this backend makes none): 0.2 us a call, 1% of an 18 us model. The wrapper is
    looked up at each call, not kept: a second reference to it would fail that check for every later public call."""
    native = type(getattr(interpreter, "_interpreter", None))
    set_tensor, invoke, get_tensor = (getattr(native, name, None) for name in ("SetTensor", "Invoke", "GetTensor"))
    if not (set_tensor and invoke and get_tensor):
        def call(batch):
            try:
                interpreter.set_tensor(feed, batch)
                interpreter.invoke()
                return interpreter.get_tensor(fetch)
            except (ValueError, RuntimeError) as exc:  # a model that loaded but cannot run (e.g. a damaged file)
                raise _inference_failed(exc) from None
    else:
        def call(batch):
            wrapper = interpreter._interpreter
            try:
                set_tensor(wrapper, feed, batch)
                invoke(wrapper)
                return get_tensor(wrapper, fetch, 0)
            except (ValueError, RuntimeError) as exc:
                raise _inference_failed(exc) from None
    return call


def _inference_failed(exc: BaseException) -> EdgecnnError:
    """The error for a model that loaded but cannot run (a damaged file), naming the runtime's first line."""
    return EdgecnnError(f"inference failed: {_first_line(exc)}")


def _load_pip_cuda_libraries(ort) -> None:
    """Load the CUDA and cuDNN libraries that pip installed (``onnxruntime-gpu[cuda,cudnn]``): the CUDA provider
    finds them only this way, as ONNX Runtime documents. Libraries already on the system path are used otherwise."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with native_output_muted():  # it prints a line for each library it could not find
            preload()


def _open_session(ort, path: Path, options, providers: list[str], fold: bool):
    """``fold``: turn ONNX Runtime's QDQ fusion off, for the CUDA provider. With it on, ORT leaves the weights'
    DequantizeLinear nodes of an int8 (QDQ) model on the CPU and copies their output to the GPU at every call; with
    it off they fold into float constants, and the GPU runs the same arithmetic faster (int8 MNIST at batch 1 on
    an H100: 416 to 335 us, the same output; benchmarks/results/gpu_cuda_graph.md). Not for TensorRT, which
    reads the QDQ nodes to run int8 kernels, nor for the CPU, whose int8 kernels come from that fusion."""
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
            self.session = _open_session(ort, path, options, providers, fold)
            if not fold and self.session.get_providers()[0] == CUDA:  # TensorRT did not start, CUDA took over
                self.session = _open_session(ort, path, options, providers, fold=True)
            meta, output = self.session.get_inputs()[0], self.session.get_outputs()[0]  # names and symbolic dims
            self.input_name, self.output_name = meta.name, output.name  # of a damaged file may not be UTF-8
            self.input_shape = tuple(int(d) if isinstance(d, int) else -1 for d in meta.shape[1:])
            self.classes = output.shape[-1] if output.shape and isinstance(output.shape[-1], int) else None
        except Exception as exc:  # ORT raises its own exception types for a bad file or a GPU that fails
            if gpu and _loads_on_cpu(ort, path, options):
                reason = _CUDA_FAILURE.search(str(exc))
                raise EdgecnnError(f"{' and '.join(gpu)} could not start: "
                                   f"{reason.group(0).strip() if reason else _first_line(exc)}") from None
            raise IntegrityError(f"{path} is not a loadable ONNX model: {_first_line(exc)}") from None
        self.input_dtype = np.dtype(np.float32)
        self.providers = self.session.get_providers()  # ORT drops a GPU provider that fails to start, silently
        self.run_one = self.run
        self._run_options = ort.RunOptions()  # made once: measured 2-3% faster per call than run()'s default

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self.output_name], {self.input_name: batch}, self._run_options)[0]
        except Exception as exc:  # ORT's own exception types: a model that loaded but cannot run
            raise _inference_failed(exc) from None


class Classifier:
    """Classify images with a ``.tflite`` or ``.onnx`` model, using the manifest beside it.

    ``backend``: "auto" (from the file suffix), "tflite" or "onnx". ``threads``: intra-op threads (None: the
    runtime's default). ``providers``: ONNX Runtime execution providers in priority order, e.g.
    ["CUDAExecutionProvider", "CPUExecutionProvider"]. Where the CUDA provider cannot start (no device, no cuDNN),
    ONNX Runtime retries on the CPU, even when the list names none, and ``clf.backend.providers`` says what runs;
    with TensorRT listed first it retries on CUDA only, and a failure there is an EdgecnnError naming the providers
    and CUDA's reason (both seen on an H100 with the GPU hidden). Where CUDA runs an int8 model (not TensorRT), its
    weights are folded into float constants first, which takes host-to-GPU copies off every call.
    ``verify``: check the file's sha256 against the manifest before loading.
    Without a manifest the model still runs, but only on preprocessed float input, with index labels.
    ``probe``: first open and run the model in a throwaway process (:mod:`edgecnn.probe`), so that a damaged file
    whose native code aborts is an IntegrityError here, not the end of the app. None (the default): where no
    verified sha256 vouches for the file (no manifest, or ``verify=False``); it costs a process start, ~0.2 s.
    """

    def __init__(self, path, backend: str = "auto", threads: int | None = None, providers=None, verify=True,
                 probe: bool | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            models = sorted(p.name for p in self.path.iterdir() if p.suffix in (".tflite", ".onnx"))
            raise EdgecnnError(f"{self.path} is a folder: pass one of its models"
                               + (f" ({', '.join(models)})" if models else ", a .tflite or .onnx file"))
        if not self.path.is_file():
            raise EdgecnnError(f"model not found: {self.path}")
        check_choice("backend", backend, BACKENDS)
        if threads is not None and not (is_whole(threads) and threads >= 1):
            raise EdgecnnError(f"threads must be a whole number of at least 1, or None for the runtime's default; "
                               f"got {threads!r}")
        threads = None if threads is None else int(threads)  # LiteRT takes only Python's int
        if backend == "auto":
            suffix = self.path.suffix.lower()
            if suffix not in _SUFFIX_BACKEND:
                raise not_runtime_model(self.path, "cannot tell the backend of")
            backend = _SUFFIX_BACKEND[suffix]
        self.manifest = Manifest.beside(self.path)
        vouched = bool(self.manifest and verify)  # a verified sha256 says this is the file export checked
        if vouched:
            self.manifest.verify(self.path)
        if probe or (probe is None and not vouched):
            require_survives(self.path, backend)
        self.backend = TFLiteBackend(self.path, threads) if backend == "tflite" else OnnxBackend(
            self.path, threads, providers
        )
        shape = self.backend.input_shape
        if self.manifest:
            self.manifest.check_fits(self.path.name, shape, self.backend.classes)
            self.preprocessing = self.manifest.preprocessing
            self.labels = self.manifest.labels
        else:
            self.preprocessing = None
            self.labels = None
        self._float_input = Preprocessing(*shape)  # checks (shape, NaN) for preprocessed float input
        self._one_image = (1, *shape)
        self._codes_dtype = _INT8 if self.backend.input_dtype == _INT8 else None  # int8 codes pass straight in
        self._run, self._vouched = (self.backend.run if vouched else self._run_checked), vouched

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.backend.input_shape

    def prepare(self, x) -> tuple[np.ndarray, bool]:
        """The model's input batch for ``x`` (see the module docstring), and whether ``x`` was a single image."""
        if self.backend is None:
            raise EdgecnnError(f"the classifier for {self.path.name} is closed")
        x = _read_files(x)
        if isinstance(x, np.ndarray) and x.dtype == _INT8:
            return self._codes(x)
        if self.preprocessing is not None:
            return self.preprocessing.batch(x)
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(
                f"{self.path.name} has no manifest beside it, so edgecnn cannot preprocess images for it: "
                f"pass float input shaped {self.input_shape} or (N, {', '.join(map(str, self.input_shape))})"
            )
        return self._float_input.batch(x)

    def _codes(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """An int8 array: the model's own input codes, one image or a batch, passed on unchanged."""
        if self._codes_dtype is None:
            raise InputError(f"{self.path.name} takes float32 input, not int8 codes: pass uint8 images or a "
                             f"float array shaped {self.input_shape}")
        if x.shape == self.input_shape:
            return np.ascontiguousarray(x[None]), True
        if x.ndim == len(self.input_shape) + 1 and x.shape[1:] == self.input_shape and len(x):
            return np.ascontiguousarray(x), False
        raise InputError(f"expected int8 codes shaped {self.input_shape} or (N, "
                         f"{', '.join(map(str, self.input_shape))}) with N >= 1; got {x.shape}")

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities, shape (N, classes), for one image or a batch."""
        if type(x) is np.ndarray and x.shape == self._one_image and self.backend is not None:
            # the hot path, one preprocessed image: 1.4 us of general checks skipped
            if x.dtype is _FLOAT32:
                require_finite(x)
                return self.backend.run_one(x) if self._vouched else self._run(x)
            if x.dtype is self._codes_dtype and x.flags.c_contiguous:  # the model's own codes: nothing to check
                return self._run(x)
        batch, _ = self.prepare(x)
        return self._run(batch)

    def predict(self, x, top_k: int = 3):
        """Top-k ``(label, score)`` pairs for one image, or a list of such lists for a batch."""
        if not (is_whole(top_k) and top_k >= 1):
            raise InputError(f"top_k must be a whole number of at least 1, got {top_k!r}")
        batch, single = self.prepare(x)
        probs = self._run(batch)
        labels = self.labels or [str(i) for i in range(probs.shape[1])]
        order = np.argsort(-probs, axis=1)[:, :top_k]
        results = [[(labels[i], float(row[i])) for i in idx] for row, idx in zip(probs, order, strict=True)]
        return results[0] if single else results

    def _run_checked(self, batch: np.ndarray) -> np.ndarray:
        """The backend's probabilities, refused where not finite: a damaged weight can make them NaN, and without a
        verified sha256 nothing else would tell (13 of 3,000 damaged copies of the Fashion-MNIST fp32 ONNX model in
        tools/fuzz.py)."""
        probs = self.backend.run(batch)
        if not np.isfinite(probs).all():
            raise EdgecnnError(f"{self.path.name} gave NaN or infinite probabilities: nothing vouches for the file "
                               "(no manifest, or verify=False), so it may be damaged")
        return probs

    def close(self) -> None:
        self.backend = self._run = None

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_files(x):
    """``x`` with its image file paths read as BGR frames: a str or Path becomes one frame, and each str or Path in
    a list or tuple the frame it names (ImageReadError, naming the file, where one cannot be read)."""
    if isinstance(x, str | os.PathLike):
        return read_image(x)
    if isinstance(x, list | tuple) and any(isinstance(i, str | os.PathLike) for i in x):
        return [read_image(i) if isinstance(i, str | os.PathLike) else i for i in x]
    return x


class Quantizer:
    """A tensor's affine int8/uint8 quantization, ``real = (q - zero_point) * scale``, precomputed for speed."""

    def __init__(self, scale: float, zero_point: int, dtype: np.dtype):
        self.dtype = dtype
        self.inverse_scale, self.zero_point = float(1.0 / scale), float(zero_point)
        self._cv_type = cv2.CV_8S if dtype == np.int8 else cv2.CV_8U
        codes = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float32)  # every 8-bit code, by its byte
        self.table = ((codes - zero_point) * scale).astype(np.float32)

    @classmethod
    def of(cls, detail: dict) -> Quantizer | None:
        """The quantizer of a LiteRT tensor, or None for a float tensor."""
        params = quantization_params(detail)
        return cls(*params, np.dtype(detail["dtype"])) if params else None

    def quantize(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The codes of a float32 array ``x``: x / scale + zero_point, rounded and saturated to the dtype, written
        into ``out`` (an array of this dtype and x's shape) when given. One OpenCV call (its saturate_cast) on the
        array as it is, of any rank: 1.4 us at 1x28x28x1, against 5.6 us for the five numpy ufuncs it replaces."""
        out = np.empty(x.shape, self.dtype) if out is None else out
        # positional arguments (dst, dtype): OpenCV parses them 0.35 us faster than keywords. It returns its own
        # array where it cannot use dst, so the returned array is the one to use
        return cv2.addWeighted(x, self.inverse_scale, x, 0.0, self.zero_point, out, self._cv_type)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """The real values of codes ``q``: one table lookup per value. The table is ordered by byte, and take()
        counts a negative index from the end, so the int8 code -k reads entry 256 - k, the one of its byte."""
        return self.table.take(q)


def quantization_params(detail: dict) -> list | None:
    """A LiteRT tensor's ``[scale, zero_point]``, or None for a float tensor (LiteRT reports those as [0.0, 0])."""
    scale, zero_point = detail["quantization"]
    return [scale, zero_point] if scale and np.dtype(detail["dtype"]) in (np.int8, np.uint8) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
