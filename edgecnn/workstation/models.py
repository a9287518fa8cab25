"""CNN architectures, built by name. Every one quantizes to full int8 (BatchNorm folded) and exports to ONNX.

    model = build_model("edge-cnn", input_shape=(28, 28, 1), num_classes=10)
    model.count_params()                       # 29,402
    build_model("mobilenetv2-0.35", (96, 96, 3), 4, weights="imagenet")   # a keras.applications backbone
    describe_models((28, 28, 1), 10)           # [{"arch", "params", "macs", "input", "summary", "error"}, ...]
    with_tta(model, "flip")                    # averages the predictions on each image and its mirror
    load_model("runs/demo/model.keras")        # safe_mode=True; one-line EdgecnnError for a bad file

Layers are Keras built-ins only (no Lambda), so saved models load with ``safe_mode=True``. This module needs Keras
alone: on ``KERAS_BACKEND=jax`` (or ``torch``) it loads and runs ``.keras`` models without TensorFlow.
"""

from __future__ import annotations

import re
import warnings
from bisect import bisect_left
from collections.abc import Callable
from math import prod
from pathlib import Path

from edgecnn.common.errors import EdgecnnError, check_choice
from edgecnn.common.native_logs import import_keras
from edgecnn.runtime.manifest import TTA
from edgecnn.runtime.preprocess import MAX_SIDE

keras = import_keras()
layers = keras.layers

BACKBONE = "backbone"  # the name of a transfer architecture's keras.applications model inside the whole
TRANSFER_MIN_SIDE = 32  # the smallest input keras.applications' MobileNets take


def _conv_bn_relu(x, filters: int, name: str, kernel: int = 3, strides: int = 1, relu: bool = True):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9, not Keras' 0.99: with small datasets (40 steps an epoch on the built-in digits) the
    # 0.99 moving statistics lag the weights and the model scores near chance in inference mode.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _head(x, num_classes: int, dropout: float, pool: str):
    x = layers.GlobalAveragePooling2D(name="gap")(x) if pool == "gap" else layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="probs")(x)


def edge_cnn(input_shape, num_classes: int) -> keras.Model:
    """The default: three 3x3 conv blocks (16-32-64), each pooled, then one dense layer (29k parameters at 28x28)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, filters in enumerate((16, 32, 64), start=1):
        x = _conv_bn_relu(x, filters, f"block{i}")
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    return keras.Model(inputs, _head(x, num_classes, 0.25, "flatten"), name="edge_cnn")


def edge_vgg(input_shape, num_classes: int) -> keras.Model:
    """VGG-style: two 3x3 convs per stage (20-20, 40-40), a 64-filter conv, global pooling (50k parameters)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, filters in enumerate((20, 40), start=1):
        x = _conv_bn_relu(x, filters, f"block{i}a")
        x = _conv_bn_relu(x, filters, f"block{i}b")
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = _conv_bn_relu(x, 64, "block3")
    return keras.Model(inputs, _head(x, num_classes, 0.1, "gap"), name="edge_vgg")


def seed_cnn(input_shape, num_classes: int) -> keras.Model:
    """TensorFlow's CNN tutorial, the seed's 99.26% MNIST model: Conv 32-64-64 (valid), Dense 64."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="fc")(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax", name="probs")(x), name="seed_cnn")


def seed_bn(input_shape, num_classes: int) -> keras.Model:
    """The seed's 90% Fashion-MNIST model: two 5x5 conv (16, 32) + BatchNorm + pool blocks, one dense layer."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, filters in enumerate((16, 32), start=1):
        x = _conv_bn_relu(x, filters, f"block{i}", kernel=5)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    return keras.Model(inputs, _head(x, num_classes, 0.0, "flatten"), name="seed_bn")


def dscnn(input_shape, num_classes: int) -> keras.Model:
    """Depthwise-separable CNN (MobileNet-style blocks, MLPerf Tiny's DS-CNN shape): 3x3 stem, four DS blocks, GAP."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, 32, "stem")
    for i, (filters, strides) in enumerate(((64, 2), (64, 1), (128, 2), (128, 1)), start=1):
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"ds{i}_dw")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"ds{i}_dw_bn")(x)
        x = layers.ReLU(name=f"ds{i}_dw_relu")(x)
        x = _conv_bn_relu(x, filters, f"ds{i}_pw", kernel=1)
    return keras.Model(inputs, _head(x, num_classes, 0.2, "gap"), name="dscnn")


def _resnet8(input_shape, num_classes: int, widths: tuple[int, int, int], name: str) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, widths[0], "stem")
    for i, filters in enumerate(widths, start=1):
        strides = 1 if i == 1 else 2
        y = _conv_bn_relu(x, filters, f"stack{i}_a", strides=strides)
        y = _conv_bn_relu(y, filters, f"stack{i}_b", relu=False)
        if strides != 1:  # project the shortcut to the new shape
            x = layers.Conv2D(filters, 1, strides=strides, name=f"stack{i}_shortcut")(x)
        x = layers.ReLU(name=f"stack{i}_relu")(layers.Add(name=f"stack{i}_add")([x, y]))
    return keras.Model(inputs, _head(x, num_classes, 0.0, "gap"), name=name)


def resnet8(input_shape, num_classes: int) -> keras.Model:
    """MLPerf Tiny's image-classification ResNet-8: a 16-filter stem, three residual stacks (16, 32, 64), GAP."""
    return _resnet8(input_shape, num_classes, (16, 32, 64), "resnet8")


def resnet8_wide(input_shape, num_classes: int) -> keras.Model:
    """ResNet-8 at 1.125x width: an 18-filter stem, residual stacks (18, 36, 72), GAP (99k parameters at 28x28)."""
    return _resnet8(input_shape, num_classes, (18, 36, 72), "resnet8_wide")


def _mobilenet(constructor: str, alpha: float, summary: str, **options) -> Callable[..., keras.Model]:
    """A builder of ``keras.applications.<constructor>`` at width ``alpha`` (and ``options``) under a pooled softmax
    head."""

    def build(input_shape, num_classes: int, weights: str | None = None) -> keras.Model:
        height, width, channels = input_shape
        inputs = keras.Input(shape=input_shape, name="image")
        # grayscale repeated into the three channels the ImageNet weights expect
        x = inputs if channels == 3 else layers.Concatenate(name="gray_to_rgb")([inputs] * 3)
        # edgecnn's inputs are pixels / 255; the MobileNets were trained on pixels / 127.5 - 1
        x = layers.Rescaling(2.0, offset=-1.0, name="to_signed")(x)
        # the Rescaling above does MobileNetV3's own preprocessing
        extra = {**options, "include_preprocessing": False} if constructor.startswith("MobileNetV3") else options
        with warnings.catch_warnings():  # that weights trained at 224 px load at any size: they fit every size
            warnings.filterwarnings("ignore", message=".*Weights for input shape")
            backbone = getattr(keras.applications, constructor)(
                input_shape=(height, width, 3), alpha=alpha, include_top=False, weights=weights, name=BACKBONE,
                **extra)
        for layer in backbone.layers:  # Keras' 0.999 lags on small datasets as 0.99 does (see _conv_bn_relu)
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9
        return keras.Model(inputs, _head(backbone(x), num_classes, 0.2, "gap"), name=constructor.lower())

    build.__doc__ = summary
    return build


# keras.applications backbones for transfer learning (``weights="imagenet"`` or a weights file), at the widths that
# suit a Raspberry Pi; they take 32x32 and up, ImageNet weights were trained at 96-224 px
TRANSFER: dict[str, Callable[..., keras.Model]] = {
    "mobilenetv2-0.35": _mobilenet("MobileNetV2", 0.35, "MobileNetV2 at 0.35 width: keras.applications, "
                                   "ImageNet weights with --weights imagenet (96-224 px)"),
    "mobilenetv2-0.5": _mobilenet("MobileNetV2", 0.5, "MobileNetV2 at 0.5 width: as mobilenetv2-0.35, wider"),
    "mobilenetv3s-0.75": _mobilenet("MobileNetV3Small", 0.75, "MobileNetV3-Small at 0.75 width: keras.applications, "
                                    "hard-swish and squeeze-excite, ImageNet weights at 224 px"),
    "mobilenetv3s-1.0": _mobilenet("MobileNetV3Small", 1.0, "MobileNetV3-Small at full width: as "
                                   "mobilenetv3s-0.75, wider"),
    # without hard-swish and squeeze-excite, whose int8 TFLite kernels run slower than float on XNNPACK
    "mobilenetv3s-min": _mobilenet("MobileNetV3Small", 1.0, "MobileNetV3-Small minimalistic: ReLU and 3x3 "
                                   "kernels only, the fastest in int8 (docs/performance.md)", minimalistic=True),
}

ARCHS: dict[str, Callable[..., keras.Model]] = {
    "edge-cnn": edge_cnn,
    "edge-vgg": edge_vgg,
    "seed-cnn": seed_cnn,
    "seed-bn": seed_bn,
    "dscnn": dscnn,
    "resnet8": resnet8,
    "resnet8-wide": resnet8_wide,
    **TRANSFER,
}


def build_model(arch: str, input_shape: tuple[int, int, int], num_classes: int, *,
                weights: str | None = None) -> keras.Model:
    """Build an architecture by name; EdgecnnError for an unknown one or an input too small for it. ``weights``
    (transfer architectures only): "imagenet" (Keras downloads them once into ~/.keras/models) or the path of a
    weights file of the backbone, as ``keras.applications`` takes it."""
    builder = ARCHS[check_choice("architecture", arch, ARCHS)]
    check_weights(arch, weights)
    if arch in TRANSFER and min(input_shape[:2]) < TRANSFER_MIN_SIDE:  # before a download: it could not be used
        raise EdgecnnError(f"{arch} needs an input of at least {TRANSFER_MIN_SIDE}x{TRANSFER_MIN_SIDE}, got "
                           f"{input_shape[0]}x{input_shape[1]} (--image-size)")
    if weights is not None:
        return _pretrained(arch, builder, tuple(input_shape), num_classes, weights)
    try:
        return builder(tuple(input_shape), num_classes)
    except ValueError as exc:  # e.g. valid convolutions and pooling that shrink a small input below one pixel
        height, width, channels = input_shape
        sides = range(max(height, width) + 1, MAX_SIDE + 1)
        smallest = bisect_left(sides, True, key=lambda side: _builds(builder, (side, side, channels), num_classes))
        if smallest == len(sides):
            raise EdgecnnError(f"{arch} cannot take a {height}x{width} input: {str(exc).splitlines()[0]}") from None
        raise EdgecnnError(f"{arch} needs an input of at least {sides[smallest]}x{sides[smallest]}: its convolutions "
                           f"and pooling shrink {height}x{width} below one pixel") from None


def _pretrained(arch: str, builder: Callable, input_shape: tuple[int, int, int], num_classes: int,
                weights: str) -> keras.Model:
    try:
        with warnings.catch_warnings():  # Keras warns, and goes on, where a file holds only some of the weights
            warnings.filterwarnings("error", message="Skipping", category=UserWarning)
            return builder(input_shape, num_classes, weights=weights)
    except Exception as exc:  # Keras' download raises a bare Exception; loading a file raises many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if weights != "imagenet":
            raise EdgecnnError(f"{weights} does not hold {arch}'s backbone weights: {first}") from None
        url = re.search(r"https?://\S+\.h5", first)
        if url is None:
            raise EdgecnnError(f"cannot load {arch}'s ImageNet weights: {first}") from None
        raise EdgecnnError(f"cannot download {arch}'s ImageNet weights (no network?): fetch {url.group(0)} where "
                           f"there is one, then pass the file with --weights FILE") from None


def check_weights(arch: str, weights: str | None) -> None:
    """EdgecnnError where ``weights`` are given to an architecture without a backbone, or name a missing file."""
    if weights is None:
        return
    if arch not in TRANSFER:
        raise EdgecnnError(f"--weights is for the transfer architectures ({', '.join(TRANSFER)}), not {arch}")
    if weights != "imagenet" and not Path(weights).is_file():
        raise EdgecnnError(f"weights file not found: {weights} (pass imagenet, or a weights file of the backbone)")


def set_backbone_frozen(model: keras.Model, frozen: bool) -> None:
    """Freeze a transfer model's backbone, or let it fine-tune; its BatchNorm layers stay frozen either way, so they
    keep the pretrained statistics (and run in inference mode) on a small dataset. A no-op without a backbone."""
    if BACKBONE not in {layer.name for layer in model.layers}:
        return
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = not frozen
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _builds(builder: Callable, input_shape: tuple[int, int, int], num_classes: int) -> bool:
    try:
        builder(input_shape, num_classes)
    except ValueError:
        return False
    return True


def keras_macs(model: keras.Model) -> int:
    """Multiply-accumulates of the Conv2D, DepthwiseConv2D and Dense layers for one image (as ``inspect`` counts)."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a transfer architecture's backbone
            macs += keras_macs(layer)
            continue
        outputs = int(prod(layer.output.shape[1:])) if hasattr(layer, "output") else 0
        if isinstance(layer, layers.DepthwiseConv2D):
            macs += outputs * int(prod(layer.kernel_size))
        elif isinstance(layer, layers.Conv2D):
            macs += outputs * int(prod(layer.kernel_size)) * int(layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            macs += outputs * int(layer.input.shape[-1])
    return macs


def with_tta(model: keras.Model, tta: str, batch_size: int | None = None) -> keras.Model:
    """``model`` itself for "none". For "flip", a model that averages its predictions on each image and on its
    left-right mirror, for data trained with horizontal flips (clothes, objects; not digits). Both run as one
    batch through the same layers, so an exported file holds the weights once: same size, twice the MACs.
    ``batch_size``: a fixed batch (1 for TFLite, whose converter stores the doubled batch at the wrong size when the
    batch is dynamic); None: any."""
    check_choice("test-time augmentation", tta, TTA)
    if tta == "none":
        return model
    inputs = keras.Input(model.inputs[0].shape[1:], batch_size=batch_size, name="image")
    # a slice with step -1 (TFLite STRIDED_SLICE, ONNX Slice), which every runtime has; at batch 1 (TFLite) with an
    # explicit start, which OpenCV's TFLite importer needs and ONNX Runtime's symbolic shape inference cannot follow
    start = inputs.shape[2] - 1 if batch_size == 1 else None
    mirror = inputs[:, :, start::-1, :]
    both = keras.ops.concatenate([inputs, mirror], axis=0)  # the batch, then its mirror
    probs = model(both)
    if batch_size == 1:  # no reshape: OpenCV's TFLite importer cannot follow one out of its NCHW layout
        average = keras.ops.mean(probs, axis=0, keepdims=True)
    else:
        average = keras.ops.mean(keras.ops.reshape(probs, (2, -1, probs.shape[-1])), axis=0)
    # a short name: TFLite prefixes every tensor name with it (as "resnet8_wide_flip" it cost 1.4 KB of a 117 KB file)
    return keras.Model(inputs, average, name="tta")


def describe_models(input_shape=(28, 28, 1), num_classes: int = 10) -> list[dict]:
    """Parameters and multiply-accumulates (one image) of every architecture at ``input_shape``."""
    rows = []
    for arch, builder in ARCHS.items():
        row = {"arch": arch, "params": None, "macs": None, "input": list(input_shape),
               "summary": builder.__doc__.split(":")[0], "error": None}
        try:
            model = build_model(arch, input_shape, num_classes)
            row.update(params=int(model.count_params()), macs=keras_macs(model))
        except EdgecnnError as exc:  # an input too small for this one: the others are still listed
            row["error"] = str(exc)
        rows.append(row)
    return rows


def load_model(path: str | Path, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True``; one-line EdgecnnError when it is missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"model not found: {path}")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as exc:  # Keras raises many types for a bad file
        raise EdgecnnError(f"{path} is not a loadable Keras model: {str(exc).splitlines()[0]}") from None


def keras_placement(model: keras.Model) -> str:
    """Where ``model`` runs: "GPU" or "CPU", read from where its weights live (on TensorFlow, JAX or PyTorch), so
    it is right under a ``keras.device`` scope too."""
    value = model.weights[0].value
    backend = keras.backend.backend()
    if backend == "jax":
        return "GPU" if any(device.platform == "gpu" for device in value.devices()) else "CPU"
    if backend == "torch":
        return "GPU" if value.is_cuda else "CPU"
    return "GPU" if ":GPU:" in value.device.upper() else "CPU"


def keras_device() -> str:
    """Where Keras runs models here: "GPU" when its backend (TensorFlow, JAX or PyTorch) sees one, else "CPU"."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "GPU" if jax.default_backend() == "gpu" else "CPU"
    if backend == "torch":
        import torch

        return "GPU" if torch.cuda.is_available() else "CPU"
    import tensorflow as tf

    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
