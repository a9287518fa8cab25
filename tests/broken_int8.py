"""A model whose float accuracy is intact and whose plain int8 quantization is not: one channel takes the whole
per-tensor activation range."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np


def with_outlier_channel(model, bn: str, next_conv: str, channel: int = 0, factor: float = 200.0):
    """Scale ``channel`` of BatchNorm ``bn`` (its gamma and beta) by ``factor`` and divide the matching input weights
    of the convolution ``next_conv`` by it. ReLU and max pooling commute with a positive scale, so the float model
    computes what it did; its activations between the two layers now span ``factor`` times the range in one channel,
    which a per-tensor int8 scale spreads over all of them."""
    layer = model.get_layer(bn)
    gamma, beta, mean, variance = (w.copy() for w in layer.get_weights())
    gamma[channel] *= factor
    beta[channel] *= factor
    layer.set_weights([gamma, beta, mean, variance])
    conv = model.get_layer(next_conv)
    kernel, *rest = (w.copy() for w in conv.get_weights())
    kernel[:, :, channel, :] /= factor
    conv.set_weights([kernel, *rest])
    return model


def broken_copy(run_dir: Path, out: Path, bn: str = "block2_bn", next_conv: str = "block3_conv") -> Path:
    """A copy of a run whose model.keras has an outlier channel, its artifacts removed (export them again)."""
    from edgecnn.runtime.manifest import sha256_file
    from edgecnn.workstation.models import load_model

    shutil.copytree(run_dir, out)
    model = with_outlier_channel(load_model(out / "model.keras"), bn, next_conv)
    model.save(out / "model.keras")
    record = json.loads((out / "manifest.json").read_text())
    for artifact in record["artifacts"]:
        (out / artifact["file"]).unlink(missing_ok=True)
    record["artifacts"], record["source"]["sha256"] = [], sha256_file(out / "model.keras")
    (out / "manifest.json").write_text(json.dumps(record))
    return out


def float_outputs_agree(a, b, x: np.ndarray) -> float:
    """The largest difference between two Keras models' outputs on ``x``."""
    return float(np.abs(a.predict(x, verbose=0) - b.predict(x, verbose=0)).max())
