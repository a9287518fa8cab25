"""Export a Keras model to TFLite (fp32, full int8) and ONNX (fp32, int8 QDQ), atomically.

Both int8 paths calibrate on the same images (float32 NHWC, drawn from the training split)::

    calib = ds.calibration(300)
    export_tflite(model, "runs/a/model_int8.tflite", "int8", calib)   # int8 input and output
    export_onnx(model, "runs/a/model_fp32.onnx")
    quantize_onnx("runs/a/model_fp32.onnx", "runs/a/model_int8.onnx", calib)  # QDQ, S8S8, per channel

``export_artifacts`` does all four and records them in the manifest.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.atomic import atomic_output, write_bytes_atomic
from edgecnn.errors import EdgecnnError, check_choice
from edgecnn.manifest import ArtifactEntry, Manifest
from edgecnn.quiet import import_tf, native_output_muted

tf, keras = import_tf()

FORMATS = ("tflite", "onnx")
PRECISIONS = ("fp32", "int8")


def artifact_name(format: str, precision: str) -> str:
    return f"model_{precision}.{format}"


def export_tflite(model: keras.Model, path: str | Path, precision: str, calibration: np.ndarray | None = None):
    """Write a TFLite flatbuffer: ``fp32``, or ``int8`` with int8 input/output (needs ``calibration``)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        calibration = _require_calibration(calibration)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    else:
        check_choice("precision", precision, PRECISIONS)
    with native_output_muted(), warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": the converter wants them only for quantization-aware
        # training; the representative dataset provides post-training statistics.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        flatbuffer = converter.convert()
    write_bytes_atomic(path, flatbuffer)


def export_onnx(model: keras.Model, path: str | Path) -> None:
    """Write an fp32 ONNX model through Keras' own exporter (NHWC input, dynamic batch)."""
    shape = model.inputs[0].shape[1:]
    model(np.zeros((1, *shape), np.float32))  # Keras refuses to export a model that was never called
    with atomic_output(path, suffix=".onnx") as tmp, native_output_muted():
        model.export(str(tmp), format="onnx", verbose=False)


def quantize_onnx(fp32_path: str | Path, path: str | Path, calibration: np.ndarray) -> None:
    """Static int8 quantization with ONNX Runtime: pre-processing, then QDQ, S8S8, per-channel weights.

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI, ONNX Runtime's int8 kernels sum pairs
    of products in int16 and saturate with full-range per-channel weights. Measured on the built-in digits:
    int8 accuracy 94.17% without it, 98.33% with it, 98.61% in fp32.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = _require_calibration(calibration)
    input_name = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter({input_name: calibration[i : i + 1]} for i in range(len(calibration)))

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as work, atomic_output(path, suffix=".onnx") as tmp:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        )


def export_artifacts(
    model: keras.Model,
    folder: str | Path,
    manifest: Manifest,
    calibration: np.ndarray | None,
    formats: tuple[str, ...] = FORMATS,
    precisions: tuple[str, ...] = PRECISIONS,
    on_done: Callable[[ArtifactEntry], None] | None = None,
) -> list[ArtifactEntry]:
    """Export every format x precision into ``folder``, record each in ``manifest`` and save it."""
    for fmt in formats:
        check_choice("format", fmt, FORMATS)
    for precision in precisions:
        check_choice("precision", precision, PRECISIONS)
    folder = Path(folder)
    entries = []
    for fmt in formats:
        for precision in precisions:
            path = folder / artifact_name(fmt, precision)
            if fmt == "tflite":
                export_tflite(model, path, precision, calibration)
            elif precision == "fp32":
                export_onnx(model, path)
            else:
                fp32 = folder / artifact_name("onnx", "fp32")
                if not fp32.is_file():
                    export_onnx(model, fp32)
                    manifest.add_artifact(fp32, "onnx", "fp32")
                quantize_onnx(fp32, path, calibration)
            input_dtype = "int8" if (fmt, precision) == ("tflite", "int8") else "float32"
            entry = manifest.add_artifact(path, fmt, precision, input_dtype)
            manifest.save(folder)
            entries.append(entry)
            if on_done:
                on_done(entry)
    return entries


def _require_calibration(calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise EdgecnnError("int8 quantization needs calibration images, and none were given")
    return np.asarray(calibration, np.float32)
