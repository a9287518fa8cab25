"""TensorFlow's TFLite converter, set up once for every precision edgecnn writes.

    converter = tflite_converter(model, "int8", calibration)   # float32 NHWC images
    converter.inference_input_type = tf.int8                  # callers add their input and output types
    flatbuffer = convert(converter)
"""

from __future__ import annotations

import warnings

import numpy as np

from edgecnn.common.native_logs import import_tf, native_output_muted

tf, keras = import_tf()


def tflite_converter(model: keras.Model, precision: str, calibration: np.ndarray | None = None):
    """A converter for ``fp32``, ``fp16``, ``dynamic`` (int8 weights) or full ``int8`` (calibrated on
    ``calibration``, one image a step, with int8 kernels only)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if precision == "int8":
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def convert(converter) -> bytes:
    """The flatbuffer, with TensorFlow's native logs and a misleading warning muted."""
    with native_output_muted(), warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": the converter wants them only for quantization-aware
        # training; the representative dataset provides post-training statistics.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()
