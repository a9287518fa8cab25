"""The run directory's ``manifest.json``: what each artifact is and how to feed it.

It records the labels, the preprocessing (see :mod:`edgecnn.runtime.preprocess`), the source Keras model, the
dataset, and for each artifact its file name, format, precision and sha256. The runtime reads it to
preprocess inputs and to refuse altered files::

    m = Manifest.load("runs/demo")                  # a folder or the manifest file itself
    m.labels, m.preprocessing.input_shape
    entry = m.verify("runs/demo/model_int8.tflite") # IntegrityError when the sha256 differs

File names in a manifest are plain names inside its own folder: ``../`` and absolute paths are refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import reprlib
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from edgecnn.common.atomic import write_json_atomic
from edgecnn.common.errors import IntegrityError
from edgecnn.common.json_records import from_json
from edgecnn.common.version import __version__
from edgecnn.runtime.preprocess import Preprocessing

MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 2**20  # a manifest naming 10,000 classes takes about 200 KB
TTA = {  # test-time augmentation: what the exported model runs on each image
    "none": "the image as it is",
    "flip": "the image and its left-right mirror, predictions averaged (2x compute, same weights)",
}
TTA_VIEWS = {"none": 1, "flip": 2}  # images the model runs per input image
FORMATS = ("tflite", "onnx")
_OPTIONAL = {"dataset": dict, "source": dict, "command": str, "tta": str, "created": str, "versions": dict,
             "extras": list}
SCHEMA_VERSION = 1
_TOOLS = ("tensorflow", "keras", "onnx", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "opencv-python",
          "opencv-python-headless", "numpy")  # the GPU and headless builds are separate distributions


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_name(name: str) -> str:
    """Return ``name`` if it is a plain file name (no folder part, no ``..``); raise IntegrityError otherwise."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute():
        raise IntegrityError(f"manifest names a file outside its folder: {reprlib.repr(name)}")
    return name


def tool_versions() -> dict[str, str]:
    """Installed versions of the libraries that make or run artifacts (absent ones are left out)."""
    versions = {"python": sys.version.split()[0], "edgecnn": __version__}
    for tool in _TOOLS:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            pass
    return versions


@dataclass
class ArtifactEntry:
    """One exported model file."""

    file: str
    format: str  # "tflite" | "onnx"
    precision: str  # "fp32" | "int8"
    sha256: str
    bytes: int
    input_dtype: str = "float32"
    verification: dict | None = None  # agreement with the float model on the validation split, see export.py
    quantization: dict | None = None  # TFLite int8 input/output [scale, zero_point]; None for float I/O
    batch: int | None = None  # images the file takes per call: None any number, 1 one (a batch runs image by image)
    recipe: dict | None = None  # how it was quantized: weights, their range, activations, calibration (export.py)


def _artifact(record) -> ArtifactEntry:
    """One ``artifacts`` entry of a manifest; TypeError where it does not fit (see ``json_records``)."""
    entry = from_json(ArtifactEntry, record, "artifact")
    safe_name(entry.file)
    if entry.batch is not None and entry.batch < 1:
        raise TypeError(f"artifact {entry.file} has batch {entry.batch}: at least 1, or null for any")
    if entry.format not in FORMATS or Path(entry.file).suffix != f".{entry.format}":
        raise TypeError(f"artifact {entry.file} has format {reprlib.repr(entry.format)}: not its file's "
                        f"({', '.join(FORMATS)})")
    if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
        raise TypeError(f"artifact {entry.file} has sha256 {reprlib.repr(entry.sha256)}, not 64 hex digits")
    return entry


@dataclass
class Manifest:
    labels: list[str]
    preprocessing: Preprocessing
    dataset: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    artifacts: list[ArtifactEntry] = field(default_factory=list)
    command: str = ""
    tta: str = "none"  # test-time augmentation built into every artifact (TTA)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    versions: dict = field(default_factory=tool_versions)
    # files made from an artifact for other runtimes (MediaPipe, C arrays): {file, of, for, sha256, bytes}
    extras: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "labels": list(self.labels),
            "input": {"shape": list(self.preprocessing.input_shape), "layout": "NHWC", "dtype": "float32"},
            "preprocessing": self.preprocessing.to_dict(),
            "dataset": self.dataset,
            "source": self.source,
            "artifacts": [asdict(a) for a in self.artifacts],
            "command": self.command,
            "tta": self.tta,
            "created": self.created,
            "versions": self.versions,
            "extras": self.extras,
        }

    @classmethod
    def from_dict(cls, record: dict) -> Manifest:
        """The manifest of a JSON object, every field checked (a model folder is untrusted input): IntegrityError
        naming the first field that is missing or wrong."""
        try:
            labels = record["labels"]
            if not (isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels)):
                raise TypeError(f"labels {reprlib.repr(labels)} are not a list of names")
            for key, kind in _OPTIONAL.items():
                if key in record and not isinstance(record[key], kind):
                    raise TypeError(f"{key} {reprlib.repr(record[key])} is not a "
                                    f"{'string' if kind is str else 'JSON object'}")
            if record.get("tta", "none") not in TTA:
                raise TypeError(f"tta {reprlib.repr(record['tta'])} is none of {', '.join(TTA)}")
            if not isinstance(record.get("artifacts", []), list):
                raise TypeError("artifacts is not a list")
            artifacts = [_artifact(a) for a in record.get("artifacts", [])]
            for extra in record.get("extras", []):
                if not (isinstance(extra, dict) and isinstance(extra.get("file"), str)):
                    raise TypeError(f"extra {reprlib.repr(extra)} is not an object naming a file")
                safe_name(extra["file"])
            preprocessing = Preprocessing.from_dict(record["preprocessing"])
        except KeyError as exc:
            raise IntegrityError(f"manifest is not valid: it has no {exc}") from None
        except TypeError as exc:
            raise IntegrityError(f"manifest is not valid: {exc}") from None
        return cls(labels=labels, preprocessing=preprocessing, artifacts=artifacts,
                   **{key: record[key] for key in _OPTIONAL if key in record})

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read ``path`` (a manifest file, or a folder holding ``manifest.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        try:
            size = path.stat().st_size
            if size > MAX_MANIFEST_BYTES:
                raise IntegrityError(f"manifest {path} holds {size:,} bytes, more than a manifest's "
                                     f"{MAX_MANIFEST_BYTES:,}")
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise IntegrityError(f"no manifest at {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[...]]]]
            raise IntegrityError(f"manifest {path} is not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise IntegrityError(f"manifest {path} is not a JSON object")
        return cls.from_dict(record)

    @classmethod
    def beside(cls, artifact: str | Path) -> Manifest | None:
        """The manifest in the artifact's folder if there is one and it lists the artifact, else None."""
        artifact = Path(artifact)
        candidate = artifact.parent / MANIFEST_NAME
        if not candidate.is_file():
            return None
        manifest = cls.load(candidate)
        return manifest if manifest.entry(artifact.name) else None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        write_json_atomic(path, self.to_dict())
        return path

    def entry(self, file: str) -> ArtifactEntry | None:
        return next((a for a in self.artifacts if a.file == file), None)

    def add_artifact(self, path: str | Path, format: str, precision: str, input_dtype: str = "float32"):
        """Record (or replace) the artifact at ``path``, which must sit in the manifest's folder."""
        path = Path(path)
        entry = ArtifactEntry(
            file=safe_name(path.name),
            format=format,
            precision=precision,
            sha256=sha256_file(path),
            bytes=path.stat().st_size,
            input_dtype=input_dtype,
        )
        self.artifacts = [a for a in self.artifacts if a.file != entry.file] + [entry]
        return entry

    def add_extra(self, path: str | Path, of: str, purpose: str) -> dict:
        """Record (or replace) ``path``, a file made from the artifact ``of`` for ``purpose`` (another runtime)."""
        path = Path(path)
        extra = {"file": safe_name(path.name), "of": of, "for": purpose, "sha256": sha256_file(path),
                 "bytes": path.stat().st_size}
        self.extras = [e for e in self.extras if e["file"] != extra["file"]] + [extra]
        return extra

    def check_fits(self, model: str, input_shape: tuple, classes: int | None) -> None:
        """IntegrityError where ``model`` (a file name, or "the model") takes another input than this manifest's
        preprocessing makes, or scores another number of classes than it names (``classes`` None: not known)."""
        if tuple(input_shape) != self.preprocessing.input_shape:
            raise IntegrityError(f"{model} takes input {tuple(input_shape)} but its manifest says "
                                 f"{self.preprocessing.input_shape}")
        if classes is not None and classes != len(self.labels):
            raise IntegrityError(f"{model} scores {classes} classes but its manifest names {len(self.labels)}")

    def verify(self, artifact: str | Path) -> ArtifactEntry:
        """Check the artifact's sha256 against this manifest; return its entry or raise IntegrityError."""
        artifact = Path(artifact)
        entry = self.entry(artifact.name)
        if entry is None:
            raise IntegrityError(f"{artifact.name} is not listed in its manifest")
        actual = sha256_file(artifact)
        if actual != entry.sha256:
            raise IntegrityError(
                f"{artifact} does not match its manifest (sha256 {actual[:12]}..., expected {entry.sha256[:12]}...)"
                ": the file was altered or corrupted"
            )
        return entry
