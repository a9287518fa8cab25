"""TFLite model metadata for an image classifier, the record MediaPipe Tasks' ``ImageClassifier`` reads::

    data = with_classifier_metadata(flatbuffer, labels=["cat", "dog"], float_input=True, name="pets")
    Path("pets.tflite").write_bytes(data)     # loads in ImageClassifier as it is

It writes the ``TFLITE_METADATA`` buffer of the TFLite metadata schema (``metadata_schema.fbs``, file identifier
``M001``, version 1.0.0 features only): the input is an RGB image, with normalization options for a float input;
the output scores the classes named in an attached ``labels.txt``. As TFLite's metadata populator does, the labels
file travels in a zip archive appended to the flatbuffer, which LiteRT ignores.

The schema's Python bindings ship with ``tflite-support`` (which needs protobuf<4, excluded by TensorFlow) and with
``mediapipe`` (whose writers import a module its wheels lack, and which pulls in a second OpenCV), so the few
tables needed are built here with ``flatbuffers``' builder, by field slot as the schema numbers them.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

METADATA_NAME = "TFLITE_METADATA"  # the name the metadata extractors of LiteRT Support and MediaPipe look for
LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"
_IMAGE_PROPERTIES, _FEATURE_PROPERTIES = 2, 1  # ContentProperties union members
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member
_RGB = 1  # ColorSpaceType
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType


class _Writer:
    """``flatbuffers.Builder`` calls for one table at a time: ``table({slot: value})``, where a value is an int
    (a scalar of the given kind) or an offset already in the buffer."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)

    def string(self, text: str) -> int:
        return self.b.CreateString(text)

    def offsets(self, items: list[int]) -> int:
        self.b.StartVector(4, len(items), 4)
        for item in reversed(items):
            self.b.PrependUOffsetTRelative(item)
        return self.b.EndVector()

    def floats(self, values: list[float]) -> int:
        self.b.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.b.PrependFloat32(value)
        return self.b.EndVector()

    def table(self, fields: dict[int, int], *, bytes_at=(), uints_at=()) -> int:
        """A table with offsets in ``fields``, except the slots in ``bytes_at`` (uint8) and ``uints_at`` (uint32)."""
        self.b.StartObject(max(fields) + 1 if fields else 0)
        for slot, value in fields.items():
            if slot in bytes_at:
                self.b.PrependUint8Slot(slot, value, 0)
            elif slot in uints_at:
                self.b.PrependUint32Slot(slot, value, 0)
            else:
                self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
        return self.b.EndObject()


def classifier_metadata(*, name: str, description: str, labels_description: str, float_input: bool,
                        height: int, width: int) -> bytes:
    """The ``M001`` metadata flatbuffer of a one-input, one-output image classifier."""
    w = _Writer()
    size = w.table({0: width, 1: height}, uints_at=(0, 1))
    image = w.table({0: _RGB, 1: size}, bytes_at=(0,))
    image_content = w.table({0: _IMAGE_PROPERTIES, 1: image}, bytes_at=(0,))
    units = []
    if float_input:  # MediaPipe computes (pixel - mean) / std for float inputs: the graph takes raw 0-255 values
        units = [w.table({0: _NORMALIZATION_OPTIONS, 1: w.table({0: w.floats([0.0]), 1: w.floats([1.0])})},
                         bytes_at=(0,))]
    input_stats = w.table({0: w.floats([255.0]), 1: w.floats([0.0])})
    input_fields = {0: w.string("image"), 1: w.string("RGB image, pixel values 0-255"), 3: image_content,
                    5: input_stats}
    if units:
        input_fields[4] = w.offsets(units)
    input_meta = w.table(input_fields)
    labels = w.table({0: w.string(LABELS_FILE), 1: w.string(labels_description), 2: _TENSOR_AXIS_LABELS},
                     bytes_at=(2,))
    feature_content = w.table({0: _FEATURE_PROPERTIES, 1: w.table({})}, bytes_at=(0,))
    output_stats = w.table({0: w.floats([1.0]), 1: w.floats([0.0])})
    output_meta = w.table({0: w.string("probability"), 1: w.string("Probability of each class"),
                           3: feature_content, 5: output_stats, 6: w.offsets([labels])})
    subgraph = w.table({2: w.offsets([input_meta]), 3: w.offsets([output_meta])})
    root = w.table({0: w.string(name), 1: w.string(description), 3: w.offsets([subgraph]),
                    7: w.string(MIN_PARSER_VERSION)})
    w.b.Finish(root, file_identifier=b"M001")
    return bytes(w.b.Output())


def with_classifier_metadata(flatbuffer: bytes, *, labels: list[str], float_input: bool, name: str,
                             description: str = "") -> bytes:
    """``flatbuffer`` (a one-subgraph ``.tflite``) with image-classifier metadata and its labels file attached."""
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    subgraph = model.subgraphs[0]
    height, width = (int(d) for d in subgraph.tensors[subgraph.inputs[0]].shape[1:3])
    record = classifier_metadata(name=name, description=description, float_input=float_input, height=height,
                                 width=width, labels_description="Labels of the output's classes, in order")
    buffer = schema.BufferT()
    buffer.data = list(record)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(flatbuffer) + len(record) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:  # appended after the flatbuffer, as TFLite's populator does
        archive.writestr(zipfile.ZipInfo(LABELS_FILE, date_time=(1980, 1, 1, 0, 0, 0)), "\n".join(labels) + "\n")
    return out.getvalue()


def attached_labels(data: bytes) -> list[str] | None:
    """The labels file attached to a ``.tflite`` (None where it has none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(LABELS_FILE).decode().splitlines()
    except (zipfile.BadZipFile, KeyError):
        return None
