"""Short tensor names a user can map to the Keras model, from the names the converters leave.

TensorFlow's graph names an op by its path of Keras layer calls, each with a call suffix
(``tta_1/resnet8_wide_1/stack1_b_bn_1/batchnorm/add_1``); tf2onnx adds process-wide counters (``mul_1__9:0``,
``Conv__54:0``) and ONNX Runtime's quantizer suffixes (``..._QuantizeLinear_Output``). ``layer_name`` keeps the
innermost layer and what follows it, with the counters and call suffixes dropped::

    layer_name("tta_1/resnet8_wide_1/stack1_b_bn_1/batchnorm/add_1")   # 'stack1_b_bn/batchnorm/add_1'
    layer_name("edge_vgg_1/block1a_relu_1/Relu:0")                     # 'block1a_relu/Relu'
    layer_name("Conv__54:0")                                           # None: no layer in it

TFLite tensors of fused ops list every name they stand for, separated by ";": the first is the op's output.
"""

from __future__ import annotations

import re

_CALL = re.compile(r"_\d+$")  # a Keras layer call's suffix in TensorFlow's graph: "stem_relu_1"
_COUNTER = re.compile(r"__\d+")  # tf2onnx's process-wide counters: "mul_1__9", "Conv__54"


def layer_name(raw: str) -> str | None:
    """``LAYER/OP`` for a converter's tensor name, or None where it names no Keras layer."""
    path = _COUNTER.sub("", raw.split(";")[0]).removesuffix(":0").split("/")
    for i in range(len(path) - 2, -1, -1):  # the innermost component with a call suffix, the op after it
        if _CALL.search(path[i]):
            return "/".join([_CALL.sub("", path[i]), *path[i + 1 :]])
    return None


def plain_name(raw: str) -> str:
    """``raw`` without counters or the ``:0`` of a first output: the name itself where no layer is in it."""
    return _COUNTER.sub("", raw.split(";")[0]).removesuffix(":0")
