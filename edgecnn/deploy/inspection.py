"""Describe a .tflite or .onnx artifact: operators, input/output tensors, parameters, size, manifest status.

    info = inspect_artifact("runs/demo/model_int8.tflite")
    info["operators"]        # {'CONV_2D': 3, 'MAX_POOL_2D': 3, ...}
    info["inputs"][0]        # {'name': ..., 'dtype': 'int8', 'shape': [1, 28, 28, 1], 'quantization': [0.0039, -128]}

No TensorFlow: TFLite through the runtime's interpreter, ONNX through the ``onnx`` package.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.runtime.backends import TFLiteBackend, quantization_params
from edgecnn.runtime.classifier import not_runtime_model
from edgecnn.runtime.manifest import Manifest
from edgecnn.runtime.probe import require_survives
from edgecnn.runtime.signing import load_trusted_keys, verify_signed


def inspect_artifact(path: str | Path, probe: bool = True) -> dict:
    """What ``edgecnn inspect`` shows of ``path``. ``probe``: open a model without a manifest in a throwaway process
    first (:mod:`edgecnn.runtime.probe`); False where the caller has just done so."""
    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"model not found: {path}")
    keys = load_trusted_keys()
    if keys:  # as the runtime does: nothing unsigned is parsed where keys are trusted
        verify_signed(path, keys)
    manifest = Manifest.beside(path)
    suffix = path.suffix.lower()
    if suffix not in (".tflite", ".onnx"):
        raise not_runtime_model(path, "cannot inspect")
    if manifest:
        manifest.verify(path)
    elif probe:  # nothing vouches for the bytes: a file that aborts the runtime must not take this process with it
        require_survives(path, suffix[1:])
    info = _tflite(path) if suffix == ".tflite" else _onnx(path)
    entry = manifest.entry(path.name) if manifest else None
    if entry:  # as the runtime would refuse it
        classes = info["outputs"][0]["shape"][-1]
        manifest.check_fits(path.name, info["inputs"][0]["shape"][1:], classes if isinstance(classes, int) else None)
    return {
        "file": str(path), "bytes": path.stat().st_size, **info,
        "precision": entry.precision if entry else None,
        "tta": manifest.tta if entry else None,  # "flip": the model runs each image and its mirror
        "recipe": entry.recipe if entry else None,
        "manifest": "sha256 verified" if entry else "none (integrity not checked)",
    }


def _tflite(path: Path) -> dict:
    # the file's own graph, on the built-in kernels: XNNPACK leaves the shapes of the tensors it owns unset
    backend = TFLiteBackend(path, xnnpack=False)
    # one run on zeros gives every tensor its shape, those computed in the graph (a Flatten's Reshape) included
    backend.run(np.zeros((1, *backend.input_shape), backend.input_dtype))
    interpreter = backend.interpreter
    try:  # a damaged file that loads can carry operator or tensor names that are not UTF-8
        ops = tflite_operators(path.read_bytes())
        tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    except (ValueError, IndexError) as exc:
        raise IntegrityError(f"{path} is not a readable TFLite model: {exc}") from None
    unread = sorted({t for op in ops for t in op["inputs"] + op["outputs"] if t >= 0} - tensors.keys())
    if unread:  # LiteRT leaves out a tensor whose details it cannot read (a name that is not UTF-8)
        raise IntegrityError(f"{path} is not a readable TFLite model: tensor {unread[0]} has no readable details")
    produced = {t for op in ops for t in op["outputs"]}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    constants = {t for op in ops for t in op["inputs"] if t >= 0} - produced - graph_inputs
    weight_codes = [interpreter.get_tensor(op["inputs"][1]) for op in ops if op["op_name"] in KERNEL_OPS
                     and tensors[op["inputs"][1]]["dtype"] == np.int8]
    macs = 0
    for op in ops:
        out_shape = tensors[op["outputs"][0]]["shape"]  # whole batches: a model with --tta flip runs two per image
        if op["op_name"] in KERNEL_OPS:
            weights = tensors[op["inputs"][1]]["shape"]  # OHWI, 1HWO (depthwise) or OI
            per_output = np.prod(weights[1:]) if op["op_name"] != "DEPTHWISE_CONV_2D" else np.prod(weights[1:3])
            macs += int(np.prod(out_shape) * per_output)
    return {
        "format": "tflite",
        "macs": macs // int(interpreter.get_input_details()[0]["shape"][0]),  # per image
        "operators": dict(Counter(op["op_name"] for op in ops)),
        "parameters": int(sum(np.prod(tensors[t]["shape"]) for t in constants)),
        "weights": weight_range(weight_codes),
        "inputs": [_tflite_tensor(d) for d in interpreter.get_input_details()],
        "outputs": [_tflite_tensor(d) for d in interpreter.get_output_details()],
    }


KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def weight_range(codes: list[np.ndarray]) -> dict | None:
    """How much of the int8 range the weights of convolutions and dense layers use (None where they are float):
    ONNX Runtime's ``reduce_range`` keeps them within 7 bits (|q| <= 64), other quantizers use all 8 (127)."""
    if not codes:
        return None
    largest = max(int(np.abs(c.astype(np.int16)).max()) for c in codes)
    return {"dtype": "int8", "layers": len(codes), "max_abs_code": largest,
            "range": "7-bit (reduce_range)" if largest <= 64 else "full"}


def tflite_operators(content: bytes) -> list[dict]:
    """The main graph's operators of a ``.tflite`` file, in order: ``op_name``, ``inputs`` and ``outputs`` (tensor
    indices, as the interpreter numbers them), read with the file format's schema that ships with ai-edge-litert
    (the interpreter's Python API lists tensors, not operators)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    graph = model.Subgraphs(0)
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = codes[op.OpcodeIndex()]
        # files from before 2.4 keep small codes in the deprecated byte; the larger of the two is the real one
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        ops.append({"op_name": name, "inputs": [int(t) for t in op.InputsAsNumpy()],
                    "outputs": [int(t) for t in op.OutputsAsNumpy()]})
    return ops


def _tflite_tensor(detail: dict) -> dict:
    return {"name": detail["name"], "dtype": np.dtype(detail["dtype"]).name,
            "shape": [int(d) for d in detail["shape"]], "quantization": quantization_params(detail)}


def _onnx(path: Path) -> dict:
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise IntegrityError(f"{path} is not a valid ONNX model: {str(exc).splitlines()[0]}") from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    # Parameters: weights and biases, not the scales and zero points of Q/DQ nodes nor int64 shape constants.
    qdq_aux = {n.input[i] for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
               for i in (1, 2) if len(n.input) > i}
    weight_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT32)

    values = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    kernels = [producer.get(n.input[1]) for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")
               and len(n.input) > 1]
    weight_codes = [onnx.numpy_helper.to_array(values[q.input[0]]) for q in kernels
                    if q is not None and q.op_type == "DequantizeLinear" and q.input[0] in values
                    and values[q.input[0]].data_type == onnx.TensorProto.INT8]

    def tensor(value) -> dict:
        kind = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in kind.shape.dim]
        return {"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type).name,
                "shape": dims, "quantization": None}

    return {
        "format": "onnx",
        "macs": _onnx_macs(model),
        "metadata": {p.key: p.value for p in model.metadata_props},
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "operators": dict(Counter(node.op_type for node in graph.node)),
        "parameters": int(sum(np.prod(i.dims) for i in graph.initializer
                              if i.name not in qdq_aux and i.data_type in weight_types)),
        "weights": weight_range(weight_codes),
        "inputs": [tensor(v) for v in graph.input if v.name not in initializers],
        "outputs": [tensor(v) for v in graph.output],
    }


def _onnx_macs(model) -> int | None:
    """Multiply-accumulates of Conv, MatMul and Gemm for one image. One run on a zero image, with those nodes'
    outputs made graph outputs, gives each its shape: shape inference cannot follow a Flatten's computed Reshape,
    nor see that a model exported with --tta flip runs two views of each image. None where ONNX Runtime cannot run
    the model on this machine."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    weights = {i.name: list(i.dims) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def weight_shape(name):  # through a DequantizeLinear in QDQ models
        node = producer.get(name)
        return weights.get(node.input[0] if node is not None and node.op_type == "DequantizeLinear" else name)

    nodes = [n for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1
             and weight_shape(n.input[1])]
    if not nodes:
        return 0
    image = next(v for v in graph.input if v.name not in weights).type.tensor_type
    zeros = np.zeros([d.dim_value or 1 for d in image.shape.dim], onnx.helper.tensor_dtype_to_np_dtype(image.elem_type))
    outputs = {o.name for o in graph.output}
    graph.output.extend(onnx.ValueInfoProto(name=n.output[0]) for n in nodes if n.output[0] not in outputs)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node as it is
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        shapes = session.run([n.output[0] for n in nodes], {session.get_inputs()[0].name: zeros})
    except Exception:  # ORT's own exception types: an operator it lacks, a model ONNX accepts and it does not
        return None
    macs = 0
    for node, out in zip(nodes, shapes, strict=True):
        kernel = weight_shape(node.input[1])  # Conv: O, I/group, kH, kW; MatMul: K, N; Gemm: K, N or, transposed, N, K
        transposed = any(a.name == "transB" and a.i for a in node.attribute)
        macs += int(out.size * (np.prod(kernel[1:]) if node.op_type == "Conv" else kernel[1 if transposed else 0]))
    return macs
