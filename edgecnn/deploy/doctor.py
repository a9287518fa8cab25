"""Which tensor of an int8 model loses the accuracy: float and int8 files of one run, tensor by tensor.

    report = diagnose_run("models/fashion_mnist", images=200)
    report["artifacts"]["model_int8.onnx"]["tensors"][0]   # the worst: {'name': ..., 'local_snr_db': ..., ...}
    report["flips"]                                       # images whose int8 top-1 differs from float

Each int8 artifact runs beside its fp32 twin on the same validation images: the ``.tflite`` files in LiteRT with
every intermediate tensor kept (``experimental_preserve_all_tensors``), the ``.onnx`` files in ONNX Runtime with
every quantized tensor (the output of each QuantizeLinear, and the float tensor it quantizes) made a graph output.
Tensors are matched by name: the converters name a float tensor alike in both files. Per quantized tensor:

- ``snr_db``: signal-to-noise ratio of the dequantized int8 tensor against the float one, over the whole tensor;
  ``channel_snr_db``: its median over channels, which one outlier channel cannot hide;
- ``local_snr_db``: the noise this tensor adds to what its inputs already carried (noise-to-signal ratios add),
  as an SNR; the tensors are ranked by it, worst first: the layer that loses the accuracy;
- ``cosine``, ``max_abs_error``, ``codes_used`` (share of the 256 int8 codes that occur) and ``saturation``
  (share of values outside the range the scale can represent).

Where Model Explorer is installed, the local SNR of each ``.tflite`` tensor is also written as its node data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError
from edgecnn.common.native_logs import native_output_muted
from edgecnn.common.tensor_names import layer_name, plain_name
from edgecnn.runtime.backends import Quantizer
from edgecnn.runtime.manifest import Manifest

DOCTOR_IMAGES = 200  # validation images per artifact: enough for stable statistics, seconds to run
SNR_CAP_DB = 100.0  # an exact tensor's SNR is infinite; shown as this
ONNX_CHUNK = 25  # images per ONNX Runtime call: every intermediate tensor of the chunk is held at once


class _Stats:
    """Running sums for one tensor pair, over images: per-channel signal and noise energy, dot products, the codes
    seen and the values outside the representable range."""

    def __init__(self, name: str, axis: int, scale: float | None, zero_point: int | None, dtype=None):
        self.name, self.axis, self.scale, self.zero_point = name, axis, scale, zero_point
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.signal = self.noise = None
        self.dot = self.float_sq = self.quant_sq = 0.0
        self.max_abs = 0.0
        self.codes = np.zeros(256, np.int64)
        self.clipped = self.count = 0
        self.shape: list[int] = []

    def add(self, real: np.ndarray, dequantized: np.ndarray, codes: np.ndarray | None) -> None:
        real, dequantized = real.astype(np.float64), dequantized.astype(np.float64)
        error = dequantized - real
        axes = tuple(i for i in range(real.ndim) if i != self.axis % real.ndim) if real.ndim > 1 else ()
        signal, noise = np.sum(real**2, axis=axes), np.sum(error**2, axis=axes)
        self.signal = signal if self.signal is None else self.signal + signal
        self.noise = noise if self.noise is None else self.noise + noise
        self.dot += float(np.sum(real * dequantized))
        self.float_sq += float(np.sum(real**2))
        self.quant_sq += float(np.sum(dequantized**2))
        self.max_abs = max(self.max_abs, float(np.abs(error).max(initial=0.0)))
        self.count += real.size
        self.shape = list(real.shape[1:])
        if codes is not None and self.scale:
            self.codes += np.bincount(codes.astype(np.int64).ravel() - np.iinfo(codes.dtype).min, minlength=256)
            info = np.iinfo(codes.dtype)
            low = (info.min - self.zero_point - 0.5) * self.scale
            high = (info.max - self.zero_point + 0.5) * self.scale
            self.clipped += int(np.count_nonzero((real < low) | (real > high)))

    def nsr(self) -> float:
        """The noise-to-signal ratio, median over channels that carry signal (the whole tensor's where none do)."""
        live = self.signal > 0
        if not np.any(live):
            return 0.0 if float(np.sum(self.noise)) == 0 else math.inf
        return float(np.median(self.noise[live] / self.signal[live]))

    def record(self, local_nsr: float) -> dict:
        total_signal, total_noise = float(np.sum(self.signal)), float(np.sum(self.noise))
        quantized = self.scale is not None
        return {
            "name": self.name,
            "display": layer_name(self.name) or plain_name(self.name),
            "shape": self.shape,
            "snr_db": _db(total_noise / total_signal if total_signal else 0.0),
            "channel_snr_db": _db(self.nsr()),
            "local_snr_db": _db(local_nsr),
            "cosine": round(self.dot / math.sqrt(self.float_sq * self.quant_sq), 6) if self.float_sq and
            self.quant_sq else (1.0 if self.float_sq == self.quant_sq else 0.0),
            "max_abs_error": round(self.max_abs, 6),
            "codes_used": round(float(np.count_nonzero(self.codes)) / 256, 4) if quantized else None,
            "saturation": round(self.clipped / self.count, 6) if quantized and self.count else None,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


def _db(nsr: float) -> float:
    if nsr <= 0:
        return SNR_CAP_DB
    return round(min(SNR_CAP_DB, -10 * math.log10(nsr)), 2) if math.isfinite(nsr) else -SNR_CAP_DB


def _ranked(stats: dict[str, _Stats], inputs_of: dict[str, list[str]], files: str) -> list[dict]:
    """Records in graph order with ``local_snr_db``, then sorted worst first. EdgecnnError where no tensor past the
    input matched in shape as well as name (the files of two models)."""
    stats = {name: s for name, s in stats.items() if s.signal is not None}
    if len(stats) < 2:
        raise EdgecnnError(f"{files} share no quantized tensor names past the input: they are not one model's, or "
                           "were exported before edgecnn named ONNX tensors after the Keras layers (export them again)")
    nsr = {name: s.nsr() for name, s in stats.items()}
    records = []
    for order, (name, s) in enumerate(stats.items()):
        before = max((nsr[i] for i in inputs_of.get(name, []) if i in nsr), default=0.0)
        record = s.record(max(0.0, nsr[name] - before))
        record["order"] = order
        records.append(record)
    return sorted(records, key=lambda r: (r["local_snr_db"], r["order"]))


def diagnose_tflite(int8_path: Path, fp32_path: Path, x: np.ndarray) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Tensor records of a ``.tflite`` int8 file against its fp32 twin on float images ``x``, and both files'
    scores."""
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.deploy.inspection import tflite_operators

    def open_(path):
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        return interpreter

    with native_output_muted():
        quant, real = open_(int8_path), open_(fp32_path)
    q_details = {d["index"]: d for d in quant.get_tensor_details()}
    r_by_name = {d["name"]: d["index"] for d in real.get_tensor_details()}
    ops = tflite_operators(int8_path.read_bytes())
    q_input, r_input = quant.get_input_details()[0], real.get_input_details()[0]
    produced = [t for op in ops for t in op["outputs"]]
    tensors = [q_input["index"], *produced]
    pairs = [(t, r_by_name[q_details[t]["name"]]) for t in tensors if q_details[t]["name"] in r_by_name]
    if len(pairs) < 2:
        raise EdgecnnError(f"{int8_path.name} and {fp32_path.name} share no tensor names past the input: they are not "
                           "one model's")
    inputs_of = {}
    for op in ops:
        for out in op["outputs"]:
            inputs_of[q_details[out]["name"]] = [q_details[i]["name"] for i in op["inputs"] if i in q_details]
    stats: dict[str, _Stats] = {}
    for t, _ in pairs:
        detail = q_details[t]
        scale, zero_point = detail["quantization"]
        quantized = bool(scale) and np.dtype(detail["dtype"]) in (np.int8, np.uint8)
        stats[detail["name"]] = _Stats(detail["name"], -1, float(scale) if quantized else None,
                                       int(zero_point) if quantized else None, detail["dtype"])
    q_scores, r_scores = [], []
    q_out, r_out = quant.get_output_details()[0], real.get_output_details()[0]
    in_quantizer, out_quantizer = Quantizer.of(q_input), Quantizer.of(q_out)
    for image in x:
        batch = image[None]
        quant.set_tensor(q_input["index"], in_quantizer.quantize(batch) if in_quantizer else batch)
        real.set_tensor(r_input["index"], batch)
        quant.invoke()
        real.invoke()
        for t, r in pairs:
            s = stats[q_details[t]["name"]]
            value, reference = quant.get_tensor(t), real.get_tensor(r)
            if reference.shape != value.shape:
                continue
            codes = value if s.scale is not None else None
            dequantized = (value.astype(np.float64) - s.zero_point) * s.scale if codes is not None else value
            s.add(reference, dequantized, codes)
        scores = quant.get_tensor(q_out["index"])
        q_scores.append(out_quantizer.dequantize(scores) if out_quantizer else scores)
        r_scores.append(real.get_tensor(r_out["index"]))
    files = f"{int8_path.name} and {fp32_path.name}"
    return _ranked(stats, inputs_of, files), np.concatenate(q_scores), np.concatenate(r_scores)


def diagnose_onnx(int8_path: Path, fp32_path: Path, x: np.ndarray) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Tensor records of a QDQ ``.onnx`` int8 file against its fp32 twin on float images ``x``, and both files'
    scores."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    quant, real = onnx.load(str(int8_path)), onnx.load(str(fp32_path))
    values = {i.name: numpy_helper.to_array(i) for i in quant.graph.initializer}
    real_tensors = {o for n in real.graph.node for o in n.output} | {i.name for i in real.graph.input}
    producer = {o: n for n in quant.graph.node for o in n.output}
    quantizers = [n for n in quant.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in real_tensors
                  and len(n.input) > 2 and values.get(n.input[1]) is not None and values[n.input[1]].size == 1]
    if len(quantizers) < 2:  # the input alone is no diagnosis
        raise EdgecnnError(f"{int8_path.name} and {fp32_path.name} share no quantized tensor names past the input: "
                           "they are not one model's, or were exported before edgecnn named ONNX tensors after the "
                           "Keras layers (export them again)")
    dequantized_from = {}  # a DequantizeLinear's output -> the float tensor whose codes it reads
    quantized_of = {n.output[0]: n.input[0] for n in quantizers}
    for n in quant.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in quantized_of:
            dequantized_from[n.output[0]] = quantized_of[n.input[0]]

    def sources(tensor: str, seen=()) -> list[str]:
        """The quantized float tensors that feed the node producing ``tensor`` (through non-QDQ nodes)."""
        node = producer.get(tensor)
        if node is None or tensor in seen:
            return []
        found = []
        for i in node.input:
            if i in dequantized_from:
                found.append(dequantized_from[i])
            elif i in producer and producer[i].op_type != "DequantizeLinear":
                found += sources(i, (*seen, tensor))
        return found

    inputs_of = {q.input[0]: sources(q.input[0]) for q in quantizers}
    stats = {q.input[0]: _Stats(q.input[0], 1, float(values[q.input[1]]), int(values[q.input[2]]),
                                values[q.input[2]].dtype) for q in quantizers}

    def session(model, outputs: list[str]):
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        known = {o.name for o in probe.graph.output}
        probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in outputs if name not in known)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every Q and DQ as written
        return ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])

    q_names = [q.output[0] for q in quantizers]
    r_names = [q.input[0] for q in quantizers]
    with native_output_muted():
        q_session = session(quant, [quant.graph.output[0].name, *q_names])
        r_session = session(real, [real.graph.output[0].name, *[n for n in r_names if n not in
                                                                   {i.name for i in real.graph.input}]])
    q_feed, r_feed = q_session.get_inputs()[0].name, r_session.get_inputs()[0].name
    q_scores, r_scores = [], []
    r_output_names = [o.name for o in r_session.get_outputs()]
    for start in range(0, len(x), ONNX_CHUNK):
        chunk = x[start : start + ONNX_CHUNK]
        q_out = q_session.run([quant.graph.output[0].name, *q_names], {q_feed: chunk})
        r_out = dict(zip(r_output_names, r_session.run(None, {r_feed: chunk}), strict=True))
        r_out.setdefault(r_feed, chunk)
        q_scores.append(q_out[0])
        r_scores.append(r_out[real.graph.output[0].name])
        for q, codes in zip(quantizers, q_out[1:], strict=True):
            s = stats[q.input[0]]
            reference = r_out[q.input[0]]
            if reference.shape != codes.shape:
                continue
            s.add(reference, (codes.astype(np.float64) - s.zero_point) * s.scale, codes)
    files = f"{int8_path.name} and {fp32_path.name}"
    return _ranked(stats, inputs_of, files), np.concatenate(q_scores), np.concatenate(r_scores)


def flip_records(int8_scores: np.ndarray, float_scores: np.ndarray, labels: np.ndarray,
                 names: list[str]) -> list[dict]:
    """The images whose int8 top-1 differs from the float one: index, label, both predictions and scores."""
    flipped = np.flatnonzero(int8_scores.argmax(1) != float_scores.argmax(1))
    return [{"index": int(i), "label": names[int(labels[i])],
             "float": {"label": names[int(float_scores[i].argmax())], "score": round(float(float_scores[i].max()), 4)},
             "int8": {"label": names[int(int8_scores[i].argmax())], "score": round(float(int8_scores[i].max()), 4)}}
            for i in flipped]


def contact_sheet(images: np.ndarray, flips: list[dict], path: Path, cell: int = 96, columns: int = 8) -> Path | None:
    """A PNG of the flipped images, each captioned with the float and the int8 top-1 (None where nothing flipped)."""
    import cv2

    from edgecnn.common.atomic import atomic_output

    if not flips:
        return None
    rows = math.ceil(len(flips) / columns)
    sheet = np.full((rows * (cell + 28), columns * cell, 3), 255, np.uint8)
    for k, flip in enumerate(flips):
        image = images[flip["index"]]
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3]
        tile = cv2.resize(image, (cell, cell), interpolation=cv2.INTER_NEAREST)
        top, left = (k // columns) * (cell + 28), (k % columns) * cell
        sheet[top : top + cell, left : left + cell] = tile
        for line, text in enumerate((f"float {flip['float']['label']}", f"int8 {flip['int8']['label']}")):
            cv2.putText(sheet, text[:16], (left + 2, top + cell + 11 + 13 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (0, 0, 160) if line else (0, 110, 0), 1, cv2.LINE_AA)
    with atomic_output(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), sheet):
            raise EdgecnnError(f"cannot write {path}")
    return path


def diagnose_run(path: str | Path, *, data_dir=None, images: int = DOCTOR_IMAGES, out: str | Path | None = None,
                 on_start: Callable[[int, int, str], None] | None = None) -> dict:
    """Every int8 artifact of a run (or the one named) against its fp32 twin on the first ``images`` validation
    images: ranked tensor records, the flipped images, and with ``out`` (a folder) ``doctor.json`` and a contact
    sheet per artifact there."""
    from edgecnn.common.atomic import write_json_atomic

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest = Manifest.load(folder)
    entries = [a for a in manifest.artifacts if a.precision == "int8" and (path.is_dir() or a.file == path.name)]
    if not path.is_dir() and manifest.entry(path.name) is None:
        raise EdgecnnError(f"{path.name} is not listed in {folder / 'manifest.json'}")
    if not entries:
        raise EdgecnnError(f"{path} has no int8 artifact: nothing is quantized to diagnose "
                           "(edgecnn export --quantize int8)")
    if images < 1:
        raise EdgecnnError(f"images must be at least 1, got {images}")
    raw, labels = validation_split(manifest, data_dir)
    raw, labels = raw[:images], labels[:images]
    x = np.stack([manifest.preprocessing(img)[0] for img in raw])
    report = {"run": str(folder), "images": len(x), "split": "val", "artifacts": {}}
    for index, entry in enumerate(entries):
        twin = manifest.entry(f"model_fp32.{entry.format}")
        if twin is None:
            raise EdgecnnError(f"{entry.file} has no fp32 twin in {folder}: export --quantize none,int8 for the "
                               "float reference")
        if on_start:
            on_start(index, len(entries), entry.file)
        for name in (entry.file, twin.file):
            manifest.verify(folder / name)
        diagnose = diagnose_tflite if entry.format == "tflite" else diagnose_onnx
        tensors, q_scores, r_scores = diagnose(folder / entry.file, folder / twin.file, x)
        flips = flip_records(q_scores, r_scores, labels, manifest.labels)
        record = {"tensors": tensors, "flips": flips, "agreement": round(100 * (1 - len(flips) / len(x)), 3),
                  "int8_accuracy": round(100 * float(np.mean(q_scores.argmax(1) == labels)), 3),
                  "float_accuracy": round(100 * float(np.mean(r_scores.argmax(1) == labels)), 3)}
        if out is not None:
            stem = entry.file.replace(".", "_")
            sheet = contact_sheet(raw, flips, Path(out) / f"flips_{stem}.png")
            record["contact_sheet"] = str(sheet) if sheet else None
            if entry.format == "tflite":
                record["model_explorer"] = model_explorer_node_data(tensors, Path(out) / f"node_data_{stem}.json")
        report["artifacts"][entry.file] = record
    if out is not None:
        write_json_atomic(Path(out) / "doctor.json", report)
    return report


def model_explorer_node_data(tensors: list[dict], path: Path) -> str | None:
    """Write each tensor's local SNR as node data that Model Explorer (``ai-edge-model-explorer``) overlays on a
    ``.tflite`` graph, keyed by output tensor name, worst in red; None where it is not installed. (Its ONNX support
    is an extension of its own, so ONNX files get none.)"""
    try:
        from model_explorer import node_data_builder as ndb
    except ImportError:
        return None
    from edgecnn.common.atomic import atomic_output

    data = ndb.ModelNodeData(graphsData={"main": ndb.GraphNodeData(
        name="edgecnn doctor: local SNR (dB)",
        results={t["name"]: ndb.NodeDataResult(value=t["local_snr_db"]) for t in tensors},
        gradient=[ndb.GradientItem(stop=0, bgColor="#d73027"), ndb.GradientItem(stop=1, bgColor="#ffffff")])})
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(data.to_json_string(indent=2))
    return str(path)


def validation_split(manifest: Manifest, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The run's validation split (raw images, labels), rebuilt from its dataset record."""
    record = manifest.dataset
    if not all(key in record for key in ("name", "image_size", "seed")):
        raise EdgecnnError("the manifest names no dataset (name, image_size, seed): doctor runs the validation split "
                           "the model was exported with")
    from edgecnn.workstation.data import load_dataset

    ds = load_dataset(record["name"], image_size=record["image_size"], seed=record["seed"], data_dir=data_dir)
    return ds.split("val").images, ds.split("val").labels
