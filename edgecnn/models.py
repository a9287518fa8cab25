"""Compact CNN architectures, built by name. Every one quantizes to full int8 and exports to ONNX.

    model = build_model("edge-cnn", input_shape=(28, 28, 1), num_classes=10)
    model.count_params()   # about 29k

Layers are Keras built-ins only (no Lambda), so saved models load with ``safe_mode=True``.
"""

from __future__ import annotations

from collections.abc import Callable

from edgecnn.errors import check_choice
from edgecnn.quiet import import_tf

_, keras = import_tf()
layers = keras.layers


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9, not Keras' 0.99: with small datasets (40 steps an epoch on the built-in digits) the
    # 0.99 moving statistics lag the weights and the model scores near chance in inference mode.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def edge_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Three 3x3 conv blocks (16-32-64, BatchNorm folded at export), each pooled, then one dense layer."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, 16, "block1")
    x = layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn_relu(x, 32, "block2")
    x = layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn_relu(x, 64, "block3")
    x = layers.MaxPooling2D(name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.25, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="edge_cnn")


ARCHS: dict[str, Callable[[tuple[int, int, int], int], keras.Model]] = {"edge-cnn": edge_cnn}


def build_model(arch: str, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Build an architecture by name; raise EdgecnnError for an unknown one."""
    return ARCHS[check_choice("architecture", arch, ARCHS)](tuple(input_shape), num_classes)
