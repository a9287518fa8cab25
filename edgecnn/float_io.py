"""An int8-I/O LiteRT model rewritten in memory to take and give float32: the runtime's fast path for int8 models.

    from edgecnn.float_io import with_float_io
    content = with_float_io(Path("runs/demo/model_int8.tflite").read_bytes())  # None: nothing to rewrite
    interpreter = Interpreter(model_content=content)  # float32 in and out, the same int8 kernels inside

Each quantized graph input gets a float32 twin that feeds it through a QUANTIZE op, and each quantized graph output
a DEQUANTIZE op into a float32 twin; the graph and its signatures then name the twins. It is the graph that
`edgecnn export --float-io` gets from TensorFlow's converter, made from the exported file without TensorFlow, so
that LiteRT quantizes in C++ within the same invoke instead of OpenCV calls around it: 2.3 us a call less on the
default model, whose int8 invoke takes 18.6 us on a CPU with VNNI, and 4.5 us on Fashion-MNIST's
(benchmarks/results/epyc_vnni/wrapper_ab_float_io.md). Needs the flatbuffer schema that ships with ai-edge-litert;
an ImportError here means the runtime quantizes in OpenCV instead.
"""

from __future__ import annotations

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

_QUANTIZED = (schema.TensorType.INT8, schema.TensorType.UINT8)
# the versions TensorFlow's converter writes for these ops in a float-I/O int8 model
_OPS = {"quantize": (schema.BuiltinOperator.QUANTIZE, 1), "dequantize": (schema.BuiltinOperator.DEQUANTIZE, 2)}


def with_float_io(content: bytes) -> bytes | None:
    """``content`` (a .tflite file's bytes) with float32 twins for its quantized inputs and outputs, or None where
    it has none, or where this reader cannot rewrite it (weights stored after the flatbuffer, as in models over 2
    GB; a file it cannot parse): such a model runs as it is."""
    try:
        model = schema.ModelT.InitFromPackedBuf(content, 0)
        graph = model.subgraphs[0]
    except Exception:  # the generated reader raises whatever a malformed table makes it raise
        return None
    if any(buffer.offset for buffer in model.buffers or []):
        return None
    inputs = {i: _twin(graph, i) for i in map(int, graph.inputs) if _quantized(graph.tensors[i])}
    outputs = {i: _twin(graph, i) for i in map(int, graph.outputs) if _quantized(graph.tensors[i])}
    if not inputs and not outputs:
        return None
    graph.operators = ([_op(model, "quantize", twin, i) for i, twin in inputs.items()] + list(graph.operators)
                       + [_op(model, "dequantize", i, twin) for i, twin in outputs.items()])
    renamed = inputs | outputs
    graph.inputs = [inputs.get(i, i) for i in map(int, graph.inputs)]
    graph.outputs = [outputs.get(i, i) for i in map(int, graph.outputs)]
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == 0:
            for tensor_map in [*(signature.inputs or []), *(signature.outputs or [])]:
                tensor_map.tensorIndex = renamed.get(tensor_map.tensorIndex, tensor_map.tensorIndex)
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _quantized(tensor) -> bool:
    """Whether a tensor holds int8 or uint8 codes of one scale (per-channel ones are weights, not activations)."""
    q = tensor.quantization
    return tensor.type in _QUANTIZED and q is not None and q.scale is not None and len(q.scale) == 1


def _twin(graph, index: int) -> int:
    """The index of a new float32 tensor shaped like tensor ``index``, added to ``graph``."""
    tensor, twin = graph.tensors[index], schema.TensorT()
    twin.shape = tensor.shape
    twin.shapeSignature = tensor.shapeSignature
    twin.type = schema.TensorType.FLOAT32
    twin.buffer = 0  # the empty buffer: the tensor gets its memory from the interpreter
    twin.name = (tensor.name or b"") + b"_float32"
    graph.tensors.append(twin)
    return len(graph.tensors) - 1


def _op(model, kind: str, source: int, target: int):
    """A QUANTIZE or DEQUANTIZE operator from tensor ``source`` to ``target``, its operator code added to ``model``
    where missing."""
    code, version = _OPS[kind]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    if code not in codes:
        entry = schema.OperatorCodeT()
        entry.builtinCode, entry.deprecatedBuiltinCode, entry.version = code, min(code, 127), version
        model.operatorCodes.append(entry)
        codes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = codes.index(code), [source], [target]
    return op
