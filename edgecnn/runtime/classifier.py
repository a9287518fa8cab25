"""The runtime wrapper that apps and devices embed: numpy, OpenCV and LiteRT or ONNX Runtime, no TensorFlow.

    from edgecnn.runtime import Classifier

    with Classifier("runs/demo/model_int8.tflite") as clf:   # checks the sha256 listed in manifest.json
        print(clf.predict(cv2.imread("digit.png")))         # [('7', 0.98), ('1', 0.01), ('9', 0.004)]
        print(clf.predict(["a.png", "b.jpg"], top_k=1))      # image files, read with OpenCV: [[('3', 0.9)], ...]
        probs = clf.predict_proba(batch)                     # (N, classes) float32

Inputs are OpenCV frames (BGR uint8), grayscale images, batches of them, image file paths (a str or Path, or a list
of them), or float arrays already shaped like the model input; the manifest beside the model says how to
preprocess. A model with int8 input gets uint8 pixels turned into its int8 codes through one 256-entry table (the
normalization is per pixel), float input quantized with the tensor's scale and zero point, and its output
dequantized. It also takes its own int8 codes (round(x / scale) + zero_point, as an integer-only camera pipeline
makes them): the int8 ndarray shaped like the input, or a batch of them.

Thread safety: a Classifier is not thread-safe. Use one per thread, or guard its calls with a lock.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError, InputError, check_choice, is_whole
from edgecnn.runtime.backends import open_backend
from edgecnn.runtime.manifest import Manifest
from edgecnn.runtime.preprocess import Preprocessing, read_image
from edgecnn.runtime.probe import require_survives
from edgecnn.runtime.signing import load_trusted_keys, verify_signed

BACKENDS = ("auto", "tflite", "onnx")
_SUFFIX_BACKEND = {".tflite": "tflite", ".onnx": "onnx"}


def not_runtime_model(path: Path, what: str) -> EdgecnnError:
    """The error for a file the runtime does not run, e.g. "cannot tell the backend of x.keras: expected .tflite
    or .onnx (...)", with what to do where it is a Keras model."""
    hint = " (export makes them from a .keras model: edgecnn export RUN_DIR)" if path.suffix == ".keras" else ""
    return EdgecnnError(f"{what} {path.name}: expected .tflite or .onnx{hint}")


class Classifier:
    """Classify images with a ``.tflite`` or ``.onnx`` model, using the manifest beside it.

    ``backend``: "auto" (from the file suffix), "tflite" or "onnx". ``threads``: intra-op threads (None: the
    runtime's default). ``providers``: ONNX Runtime execution providers in priority order, e.g.
    ["CUDAExecutionProvider", "CPUExecutionProvider"]. Where the CUDA provider cannot start (no device, no cuDNN),
    ONNX Runtime retries on the CPU, even when the list names none, and ``clf.backend.providers`` says what runs;
    with TensorRT listed first it retries on CUDA only, and a failure there is an EdgecnnError naming the providers
    and CUDA's reason. Where CUDA runs an int8 model (not TensorRT), its
    weights are folded into float constants first, which takes host-to-GPU copies off every call.
    ``verify``: check the file's sha256 against the manifest before loading.
    Without a manifest the model still runs, but only on preprocessed float input, with index labels.
    ``probe``: first open and run the model in a throwaway process (:mod:`.probe`), so that a damaged file
    whose native code aborts is an IntegrityError here, not the end of the app. None (the default): where no
    verified sha256 vouches for the file (no manifest, or ``verify=False``); it costs a process start, ~0.2 s.
    ``trusted_keys``: Ed25519 public keys (a file, a folder of them, or a list; None: ``$EDGECNN_TRUSTED_KEYS``).
    Where any are given, the model runs only if its folder's ``model.sig`` is a valid signature by one of them over
    the manifest and this file as they are now (:mod:`edgecnn.runtime.signing`); otherwise an IntegrityError names
    the reason, before any byte reaches the runtime.
    """

    def __init__(self, path, backend: str = "auto", threads: int | None = None, providers=None, verify=True,
                 probe: bool | None = None, trusted_keys=None):
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
        keys = load_trusted_keys(trusted_keys)
        if keys:  # before the manifest is parsed or any byte reaches a runtime
            verify_signed(self.path, keys)
        self.signed = bool(keys)
        self.manifest = Manifest.beside(self.path)
        vouched = bool(self.manifest and verify)  # a verified sha256 says this is the file export checked
        if vouched:
            self.manifest.verify(self.path)
        if probe or (probe is None and not vouched):
            require_survives(self.path, backend)
        self.backend = open_backend(self.path, backend, threads, providers)
        shape = self.backend.input_shape
        if self.manifest:
            self.manifest.check_fits(self.path.name, shape, self.backend.classes)
        self.preprocessing = self.manifest.preprocessing if self.manifest else None
        self.labels = self.manifest.labels if self.manifest else None
        self._float_input = Preprocessing(*shape)  # checks (shape, NaN) for preprocessed float input
        # pixels -> the model's input: normalizing (and an int8 input's quantizing) is per pixel, so 256 entries
        # cover it, and one lookup replaces the arithmetic
        quantizer, self._pixel_table, self._raw_shapes = self.backend.input_quantizer, None, ()
        if self.preprocessing:
            values = self.preprocessing.pixel_values
            self._pixel_table = quantizer.quantize(values) if quantizer else values
            pre = self.preprocessing
            if pre.channels == 1:  # a grey image at the input size needs nothing but the lookup (inversion folded in)
                self._raw_shapes = ((pre.height, pre.width), (pre.height, pre.width, 1))
                self._raw_table = self._pixel_table[::-1].copy() if pre.invert else self._pixel_table
        self._one_image = (1, *shape)
        self._run = self.backend.run if vouched else self._run_checked

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.backend.input_shape

    def prepare(self, x) -> tuple[np.ndarray, bool]:
        """The model's input batch for ``x`` (see the module docstring), and whether ``x`` was a single image."""
        if self.backend is None:
            raise EdgecnnError(f"the classifier for {self.path.name} is closed")
        x = _read_files(x)
        if isinstance(x, np.ndarray) and x.dtype == np.int8:
            return self._codes(x)
        if self.preprocessing is not None:
            return self.preprocessing.batch(x, self._pixel_table)
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(
                f"{self.path.name} has no manifest beside it, so edgecnn cannot preprocess images for it: "
                f"pass float input shaped {self.input_shape} or (N, {', '.join(map(str, self.input_shape))})"
            )
        return self._float_input.batch(x)

    def _codes(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """An int8 array: the model's own input codes, one image or a batch, passed on unchanged."""
        if self.backend.input_dtype != np.int8:
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
        if type(x) is np.ndarray and x.dtype == np.uint8 and x.shape in self._raw_shapes and self.backend:
            return self._run(self._raw_table.take(x).reshape(self._one_image))
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


