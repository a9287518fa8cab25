"""Export a Keras model to TFLite and ONNX in every precision, verify each artifact, then move it into place.

Both int8 paths calibrate on the same images (float32 NHWC, drawn from the training split)::

    calib = ds.calibration(300)
    export_tflite(model, "m.tflite", "int8", calib)              # full int8, int8 input and output
    export_tflite(model, "m.tflite", "fp16")                     # or "fp32", "dynamic"
    export_onnx(model, "m.onnx")                                 # fp32, through Keras' own exporter
    quantize_onnx("m.onnx", "m_int8.onnx", calib)                # QDQ, U8S8, per-channel
    check = verify_artifact("m_int8.onnx", x_val, y_val, keras_probs)   # agreement, max |diff|, accuracy

``export_artifacts`` does it for every format and precision asked: each file is written in a staging folder,
verified against the Keras model on the validation split, and renamed into the run directory only if its top-1
agreement reaches ``min_agreement``; the manifest records it with its verification and quantization. With
``ExportOptions(tta="flip")`` every artifact (and the reference it is verified against) averages its predictions
on each image and its mirror (:func:`edgecnn.workstation.models.with_tta`).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score

from edgecnn.common.atomic import atomic_output, write_bytes_atomic
from edgecnn.common.errors import EdgecnnError, check_choice, one_or_many
from edgecnn.common.native_logs import import_tf, native_output_muted
from edgecnn.common.progress import OnStart
from edgecnn.common.tensor_names import layer_name, plain_name
from edgecnn.runtime.backends import quantization_params
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import TTA, ArtifactEntry, Manifest
from edgecnn.workstation.config import (
    C_FORMAT,
    CALIBRATION_METHODS,
    FORMATS,
    ONNX_ACTIVATIONS,
    PRECISIONS,
    SUPPORTED,
    ExportOptions,
)
from edgecnn.workstation.converter import convert, tflite_converter
from edgecnn.workstation.models import with_tta

tf, keras = import_tf()

STAGING_PREFIX = ".export-"


def artifact_name(format: str, precision: str) -> str:
    return f"model_{precision}.{format}"


def export_tflite(model: keras.Model, path, precision: str, calibration: np.ndarray | None = None,
                  int8_io: bool = True, activations: str = "int8") -> None:
    """Write a TFLite flatbuffer in ``fp32``, ``fp16``, ``dynamic`` (int8 weights) or full ``int8``; for int8,
    ``activations="int16"`` keeps int8 weights and 16-bit activations ("16x8", float input and output)."""
    check_choice("precision", precision, PRECISIONS)
    if precision == "int8":
        calibration = _require_calibration(calibration)
    converter = tflite_converter(model, precision, calibration)
    if precision == "int8" and activations == "int16":
        sixteen = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [sixteen]
    elif precision == "int8" and int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    flatbuffer = convert(converter)
    write_bytes_atomic(path, flatbuffer)


def export_onnx(model: keras.Model, path, opset: int | None = None) -> None:
    """Write an fp32 ONNX model through Keras' own exporter (NHWC input, dynamic batch)."""
    shape = model.inputs[0].shape[1:]
    model(np.zeros((1, *shape), np.float32))  # Keras refuses to export a model that was never called
    with atomic_output(path, suffix=".onnx") as tmp, native_output_muted():
        model.export(str(tmp), format="onnx", verbose=False, opset_version=opset)


def quantize_onnx(fp32_path, path, calibration: np.ndarray, method: str = ExportOptions.calibration_method,
                  activations: str = ExportOptions.onnx_activations, per_channel: bool = True,
                  int16_tensors: tuple[str, ...] = ()) -> None:
    """Static int8 quantization with ONNX Runtime: pre-processing, then QDQ, per-channel int8 weights, and uint8
    activations (U8S8) or, with ``activations="int8"``, int8 ones (S8S8). With uint8 activations ONNX Runtime fuses
    every convolution and add into a quantized kernel; with int8 ones a tensor that feeds several layers (a residual
    link) leaves them in float between DequantizeLinear and QuantizeLinear (docs/performance.md).
    ``int16_tensors``: activations, by their names in a finished file (``block2_relu/Relu``), quantized to 16 bits
    (ONNX Runtime's ``TensorQuantOverrides``; the file moves to opset 21, which has 16-bit QuantizeLinear).

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI, ONNX Runtime's int8 kernels sum pairs
    of products in int16 and saturate with full-range per-channel weights; on the same CPUs U8S8 runs the wider
    models faster (docs/performance.md, "int8 against fp32 on CPUs").
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    check_choice("calibration method", method, CALIBRATION_METHODS)
    check_choice("ONNX activation type", activations, ONNX_ACTIVATIONS)
    calibration = _require_calibration(calibration)
    input_name = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter({input_name: calibration[i : i + 1]} for i in range(len(calibration)))

        def get_next(self):
            return next(self.batches, None)

    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory() as work, atomic_output(path, suffix=".onnx") as tmp:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        wide = QuantType.QInt16 if activations == "int8" else QuantType.QUInt16
        overrides = {name: [{"quant_type": wide}] for name in _raw_names(prepared, int16_tensors)}
        with native_output_muted():  # the entropy and percentile calibrators print their progress
            quantize_static(
                str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                reduce_range=True, weight_type=QuantType.QInt8,
                activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                calibrate_method=calibrate,
                # float biases: OpenCV DNN cannot read an int32 one behind a DequantizeLinear, and ONNX Runtime
                # quantizes them itself when it fuses a layer (same kernels, same speed)
                extra_options={"QuantizeBias": False, **({"TensorQuantOverrides": overrides} if overrides else {})},
            )


def _raw_names(model_path, tensors) -> list[str]:
    """``tensors`` (named as in a finished file) by their names in the model at ``model_path``, still the
    exporter's."""
    import onnx

    if not tensors:
        return []
    raw = {new: old for old, new in _layer_name_map(onnx.load(str(model_path)).graph).items()}
    return [raw.get(t, t) for t in tensors]


def finish_onnx(path, manifest: Manifest) -> None:
    """Store labels, preprocessing and test-time augmentation in ``metadata_props``, drop unused opset imports, name
    tensors and nodes after the Keras layers, give symbolic dimensions fixed names, and drop the graph's note: the
    same weights then give the same bytes in any process.

    The exporter's and quantizer's names (``model/block1_conv/...QuantizeLinear_Output``) become the Keras layer's
    (``block1_conv/Conv/quantized``); graph inputs and outputs keep theirs. The exporter numbers its note (a traced
    TensorFlow function) and its symbolic dimensions ("unk__58") with process-wide counters, and the quantizer lists
    tensors in an order of its own.
    """
    import json

    import onnx

    model = onnx.load(str(path))
    _layer_names(model.graph)
    _fixed_dimension_names(model.graph)
    model.graph.doc_string = ""
    used = {node.domain or "" for node in model.graph.node} | {""}  # the quantizer declares domains it never uses
    _replace(model.opset_import, [o for o in model.opset_import if (o.domain or "") in used])
    onnx.helper.set_model_props(model, {
        "edgecnn.labels": json.dumps(manifest.labels),
        "edgecnn.preprocessing": json.dumps(manifest.preprocessing.to_dict()),
        "edgecnn.tta": json.dumps({"name": manifest.tta, "built_in": TTA[manifest.tta]}),
    })
    onnx.checker.check_model(model)
    with atomic_output(path, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))


def _replace(field, items) -> None:
    """Set the contents of a repeated protobuf field to ``items`` (copies: they may be its own elements)."""
    items = [copy.deepcopy(item) for item in items]
    del field[:]
    field.extend(items)


# the quantizer's suffixes for what it adds around a float tensor, and the shorter ones that replace them
_QDQ_SUFFIXES = (("_QuantizeLinear_Output", "/quantized"), ("_DequantizeLinear_Output", "/dequantized"),
                 ("_QuantizeLinear_Input", "/float"),  # a graph output's float value, before its quantization
                 ("_quantized_scale", "/scale"), ("_quantized_zero_point", "/zero_point"), ("_quantized", "/quantized"),
                 ("_scale", "/scale"), ("_zero_point", "/zero_point"))
# the TensorFlow ops that hold a layer's weights, by what they are
_WEIGHTS = {"convolution/merged_input": "kernel", "convolution/ReadVariableOp": "kernel",
            "Cast/ReadVariableOp": "kernel", "BiasAdd/ReadVariableOp": "bias", "batchnorm/sub": "bias"}


def _layer_names(graph) -> None:
    """Name tensors and nodes after the Keras layers they come from (``stack1_b_conv/Conv/quantized``), as the
    ``.tflite`` files are, in the order the nodes use them, and list them in that order; drop the entries no node
    reads or writes (the quantizer leaves some behind). The names hold no converter counters, so the fp32 and int8
    files of one model name a float tensor alike."""
    names = _layer_name_map(graph)

    def short(raw: str) -> str:
        return names.get(raw, raw)

    used = {name for node in graph.node for name in (*node.input, *node.output)}
    for node in graph.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        node.name = node.output[0] if node.output else ""
    rank = {name: i for i, name in enumerate(names.values())}
    for field in (graph.initializer, graph.value_info):
        live = [t for t in field if t.name in used]
        for tensor in live:
            tensor.name = short(tensor.name)
        _replace(field, sorted(live, key=lambda t: (rank.get(t.name, len(rank)), t.name)))


def _layer_name_map(graph) -> dict[str, str]:
    """:func:`_layer_names`' new name for each tensor name the nodes use, in the order they use them."""
    keep = {v.name for v in (*graph.input, *graph.output)}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, tuple] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            readers.setdefault(name, (node, index))
    names: dict[str, str] = {}
    taken: set[str] = set(keep)

    def split(raw: str) -> tuple[str, str]:
        for suffix, short in _QDQ_SUFFIXES:
            if raw.endswith(suffix):
                return raw[: -len(suffix)], short
        return raw, ""

    def base(raw: str) -> str:
        if raw in keep:
            return raw
        found = layer_name(raw)
        if found is not None and found.partition("/")[2] in _WEIGHTS:
            layer, _, op = found.partition("/")
            found = f"{layer}/{_WEIGHTS[op]}"
        if found is None and raw not in producer and raw in readers and readers[raw][0].output:
            # a constant the exporter named by a counter, and names differently from export to export when it merges
            # equal ones ("const_axes__35" or "const_starts__88"): named by the node that reads it
            reader, index = readers[raw]
            return f"{short(reader.output[0])}/input{index}"
        if found is None:  # a node named by a counter ("Conv__54"): the layer of its weights
            node = producer.get(raw)
            layers = [layer_name(split(i)[0]) for i in (node.input[1:] if node is not None else [])]
            layer = next((name.split("/")[0] for name in layers if name), None)
            found = f"{layer}/{node.op_type}" if layer else plain_name(raw)
        return found

    def short(raw: str) -> str:
        if not raw or raw in keep:
            return raw
        if raw not in names:
            stem, suffix = split(raw)
            name = base(stem) + suffix
            unique, k = name, 1
            while unique in taken:
                unique, k = f"{name}:{k}", k + 1
            taken.add(unique)
            names[raw] = unique
        return names[raw]

    for node in graph.node:
        for name in (*node.input, *node.output):
            short(name)
    return names


def _fixed_dimension_names(graph) -> None:
    """A classifier gives one output row per input image: both batch dimensions become "batch". Other symbols
    (the doubled batch inside a --tta flip model) get names of their own, so equal names still mean equal sizes."""
    symbols = {v.type.tensor_type.shape.dim[0].dim_param: "batch" for v in (*graph.input, *graph.output)
               if v.type.tensor_type.shape.dim}
    symbols.pop("", None)
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = symbols.setdefault(dim.dim_param, f"dim{len(symbols)}")


def verify_artifact(path, x: np.ndarray, y: np.ndarray, reference: np.ndarray) -> tuple[dict, dict | None]:
    """Run the artifact on preprocessed ``x`` and compare it with the float model's probabilities ``reference``.

    Returns the check (n, top-1 agreement %, max |diff|, accuracy %) and, for TFLite, the input and output
    tensors' [scale, zero_point] (None for ONNX, whose I/O is float).
    """
    with native_output_muted():
        clf = Classifier(path, verify=False, probe=False)  # not listed yet; written by this process a moment ago
    probs = clf.predict_proba(x)
    check = {
        "n": len(y),
        "agreement": round(100 * accuracy_score(reference.argmax(1), probs.argmax(1)), 3),
        "max_abs_diff": round(float(np.abs(probs - reference).max()), 5),
        "accuracy": round(100 * accuracy_score(y, probs.argmax(1)), 3),
    }
    quantization = None  # for a model with float input and output (ONNX, or TFLite fp32, fp16, --float-io)
    if clf.backend.name == "tflite":
        params = {"input": quantization_params(clf.backend.input), "output": quantization_params(clf.backend.output)}
        quantization = params if any(params.values()) else None
    return check, quantization


def check_plan(formats, precisions, mediapipe: bool = False) -> None:
    """EdgecnnError for an unknown format or precision, a precision none of the formats has, or a file for another
    runtime without the TFLite artifact it is made from: checked before the model and the dataset load."""
    if not formats or not precisions:
        raise EdgecnnError(f"nothing to export: name at least one {'format' if not formats else 'precision'} "
                           f"({', '.join(FORMATS if not formats else PRECISIONS)})")
    for fmt in formats:
        check_choice("format", fmt, (*FORMATS, C_FORMAT))
    if C_FORMAT in formats and "tflite" not in formats:
        raise EdgecnnError("--format c writes the TFLite files as C arrays: add tflite to --format")
    if mediapipe and "tflite" not in formats:
        raise EdgecnnError("--mediapipe makes MediaPipe files of the TFLite ones: add tflite to --format")
    for precision in precisions:
        check_choice("precision", precision, PRECISIONS)
        if not any(precision in SUPPORTED.get(fmt, ()) for fmt in formats):
            raise EdgecnnError(f"{precision} is a TFLite precision: add tflite to --format")


def export_artifacts(model: keras.Model, folder, manifest: Manifest, calibration: np.ndarray | None,
                     validation: tuple[np.ndarray, np.ndarray], formats=FORMATS, precisions=("fp32", "int8"),
                     options: ExportOptions = ExportOptions(),
                     on_done: Callable[[ArtifactEntry], None] | None = None,
                     on_start: OnStart | None = None,
                     calibrate: Callable[[int], np.ndarray] | None = None) -> list[ArtifactEntry]:
    """Export, verify and record every supported format x precision; see the module docstring. ``on_start(index,
    total, file name)`` is called before each artifact and ``on_done(entry)`` after it, for a progress display.
    ``calibrate(n)``: n calibration images, for the ``max_drop`` sweep (default: the first n of ``calibration``)."""
    formats, precisions = one_or_many(formats), one_or_many(precisions)
    check_plan(formats, precisions, options.mediapipe)
    manifest.check_fits("the model", model.input_shape[1:], model.output_shape[-1])  # or every artifact carries it
    tta = resolve_tta(manifest, options.tta, formats, precisions)
    plain, model = model, with_tta(model, tta)
    # a mirror-averaging graph is exported to TFLite at batch 1: the converter's static shapes are right only so
    tflite_model, tflite_batch = (with_tta(plain, tta, batch_size=1), 1) if tta != "none" else (model, None)
    manifest.tta = tta
    folder = Path(folder)
    for stale in folder.glob(f"{STAGING_PREFIX}*"):  # left by an export killed mid-way (exports run one at a time)
        shutil.rmtree(stale, ignore_errors=True)
    x_val, y_val = validation
    reference = model.predict(x_val, batch_size=256, verbose=0)
    if calibrate is None:
        calibrate = lambda n: _require_calibration(calibration)[:n]  # noqa: E731
    entries = []
    plan = [(fmt, precision) for fmt in formats for precision in precisions if precision in SUPPORTED.get(fmt, ())]
    for index, (fmt, precision) in enumerate(plan):
        name = artifact_name(fmt, precision)
        if on_start:
            on_start(index, len(plan), name)
        with tempfile.TemporaryDirectory(dir=folder, prefix=STAGING_PREFIX) as staging:
            staged = Path(staging) / name
            chosen = None
            if precision == "int8" and options.max_drop is not None:
                chosen = search_int8(fmt, staged, tflite_model if fmt == "tflite" else model, manifest, options,
                                     calibrate, (x_val, y_val), reference)
            elif fmt == "tflite":
                export_tflite(tflite_model, staged, precision, calibration, options.int8_io)
            elif precision == "fp32":
                export_onnx(model, staged, options.opset)
            else:
                export_onnx(model, Path(staging) / "source.onnx", options.opset)
                quantize_onnx(Path(staging) / "source.onnx", staged, calibration, options.calibration_method,
                              options.onnx_activations)
            if fmt == "onnx" and chosen is None:
                finish_onnx(staged, manifest)
            check, quantization = verify_artifact(staged, x_val, y_val, reference)
            if options.min_agreement is not None and check["agreement"] < options.min_agreement:
                hint = "more --calib-samples" + (", or --calibration entropy" if fmt == "onnx" else "")
                raise EdgecnnError(
                    f"{name} agrees with the float model on {check['agreement']:.2f}% of the validation split, "
                    f"below --min-agreement {options.min_agreement}: nothing written (try {hint})"
                )
            os.replace(staged, folder / name)
        sixteen = chosen is not None and chosen["setting"]["activations"] == "int16"
        int8_input = (fmt, precision) == ("tflite", "int8") and options.int8_io and not sixteen
        input_dtype = "int8" if int8_input else "float32"
        entry = manifest.add_artifact(folder / name, fmt, precision, input_dtype)
        entry.verification, entry.quantization = check, quantization
        entry.batch = tflite_batch if fmt == "tflite" else None
        entry.recipe = recipe(fmt, precision, options, 0 if calibration is None else len(calibration))
        if chosen is not None:
            entry.recipe = chosen_recipe(entry.recipe, chosen, options.max_drop, input_dtype)
        if fmt == "tflite":
            write_extras(folder / name, manifest, formats, options, tflite_model, calibration, (x_val, reference))
        manifest.save(folder)
        entries.append(entry)
        if on_done:
            on_done(entry)
    return entries


def search_int8(fmt: str, staged: Path, model: keras.Model, manifest: Manifest, options: ExportOptions,
                calibrate: Callable[[int], np.ndarray], validation: tuple[np.ndarray, np.ndarray],
                reference: np.ndarray) -> dict:
    """Write to ``staged`` the int8 file :func:`edgecnn.workstation.recipes.search` chooses; return the choice with
    the sweep's rows."""
    from edgecnn.workstation.recipes import search, staging_folder

    x_val, y_val = validation
    float_accuracy = round(100 * accuracy_score(y_val, reference.argmax(1)), 3)
    with staging_folder(staged.parent) as work:
        work = Path(work)
        source = fp32 = None
        if fmt == "onnx":
            source, fp32 = work / "source.onnx", work / "fp32.onnx"
            export_onnx(model, source, options.opset)
            shutil.copy(source, fp32)
            finish_onnx(fp32, manifest)

        def write(setting: dict, path: Path, int16_tensors: tuple[str, ...]) -> None:
            calibration = calibrate(setting["calibration_images"])
            if fmt == "tflite":
                export_tflite(model, path, "int8", calibration, activations=setting["activations"])
                return
            quantize_onnx(source, path, calibration, setting["method"], setting["activations"],
                          per_channel=setting["per_channel"], int16_tensors=int16_tensors)
            finish_onnx(path, manifest)

        rows, chosen = search(fmt, max_drop=options.max_drop, write=write, fp32=fp32, calibrate=calibrate,
                              verify=lambda path: verify_artifact(path, x_val, y_val, reference)[0],
                              float_accuracy=float_accuracy, staging=work, out=staged)
    return {**chosen, "sweep": rows, "float_accuracy": float_accuracy}


def chosen_recipe(base: dict, chosen: dict, max_drop: float, input_dtype: str) -> dict:
    """The manifest's recipe of a file ``--max-drop`` chose: the setting, the 16-bit tensors, the sweep."""
    setting = chosen["setting"]
    record = {**base, "activations": setting["activations"],
              "calibration": f"{setting.get('method', 'minmax')}, {setting['calibration_images']} images",
              "max_drop": max_drop, "validation_drop": chosen["validation_drop"],
              "int16_tensors": chosen["int16_tensors"], "setting": setting, "sweep": chosen["sweep"]}
    if "per_channel" in setting:
        record["weights"] = "int8, per-channel" if setting["per_channel"] else "int8, per-tensor"
    if "io" in record:
        record["io"] = input_dtype
    return record


def write_extras(artifact: Path, manifest: Manifest, formats, options: ExportOptions, model: keras.Model,
                 calibration: np.ndarray | None, validation: tuple[np.ndarray, np.ndarray]) -> None:
    """The files made from a TFLite artifact for other runtimes, each recorded in the manifest's ``extras``: its C
    array (``--format c``) and its MediaPipe Tasks file (``mediapipe``), the latter verified with LiteRT first."""
    from edgecnn.workstation import portable

    stem = artifact.with_suffix("")
    if C_FORMAT in formats:
        for path in portable.write_c_array(artifact, stem):
            manifest.add_extra(path, artifact.name, "TFLite Micro (C array)")
    if options.mediapipe:
        precision = manifest.entry(artifact.name).precision
        if precision not in MEDIAPIPE_PRECISIONS:
            return
        path = stem.with_name(stem.name + portable.MEDIAPIPE_SUFFIX + ".tflite")
        with atomic_output(path, suffix=".tflite") as tmp:
            tmp.write_bytes(portable.mediapipe_tflite(model, manifest.preprocessing, precision, manifest.labels,
                                                      calibration, name=stem.name))
            check = verify_mediapipe(tmp, manifest.preprocessing, *validation)
        extra = manifest.add_extra(path, artifact.name, "MediaPipe Tasks ImageClassifier (RGB input, metadata)")
        extra["verification"] = check


MEDIAPIPE_PRECISIONS = ("fp32", "fp16", "int8")  # MediaPipe takes float32 or uint8 images; dynamic adds nothing


def verify_mediapipe(path, pre, x: np.ndarray, reference: np.ndarray) -> dict:
    """Top-1 agreement of a MediaPipe file, run by LiteRT on the RGB pixels of ``x``, with the float model."""
    from edgecnn.runtime.backends import TFLiteBackend
    from edgecnn.workstation.portable import raw_rgb

    backend = TFLiteBackend(path)
    probs = backend.run(raw_rgb(x, pre).astype(backend.input_dtype))
    return {"n": len(x), "agreement": round(100 * accuracy_score(reference.argmax(1), probs.argmax(1)), 3)}


def recipe(fmt: str, precision: str, options: ExportOptions, calibration_images: int) -> dict | None:
    """The manifest's record of how an artifact was quantized (None for fp32): what ``inspect`` shows and
    ``inspect`` checks the file's weights against."""
    if precision == "fp32":
        return None
    if precision == "fp16":
        return {"weights": "float16", "activations": "float32"}
    if precision == "dynamic":  # int8 weights; the runtime quantizes activations per call
        return {"weights": "int8", "weight_range": "full", "activations": "float32 (quantized per call)"}
    onnx = fmt == "onnx"
    return {
        "weights": "int8, per-channel",
        # ORT's U8S8 kernels on x86 without VNNI add pairs of products in int16: 7-bit weights cannot saturate them
        "weight_range": "7-bit (reduce_range)" if onnx else "full",
        "activations": options.onnx_activations if onnx else "int8",
        "calibration": f"{options.calibration_method if onnx else 'minmax'}, {calibration_images} images",
        **({"format": "QDQ"} if onnx else {"io": "int8" if options.int8_io else "float32"}),
    }


def resolve_tta(manifest: Manifest, tta: str | None, formats, precisions) -> str:
    """The test-time augmentation to export with: ``tta``, or the run's where None. The manifest records one for all
    its artifacts, so changing it while the run keeps artifacts this export does not replace is an EdgecnnError."""
    tta = tta or manifest.tta
    exporting = {artifact_name(fmt, p) for fmt in formats for p in precisions if p in SUPPORTED.get(fmt, ())}
    others = [a.file for a in manifest.artifacts if a.file not in exporting]
    if tta != manifest.tta and others:
        raise EdgecnnError(f"{', '.join(others)} use --tta {manifest.tta}: export them with --tta {tta} too, "
                           f"or keep --tta {manifest.tta}")
    return tta


def _require_calibration(calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise EdgecnnError("int8 quantization needs calibration images, and none were given")
    return np.asarray(calibration, np.float32)
