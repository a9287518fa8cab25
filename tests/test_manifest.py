import hashlib
import json
import os
import stat

import pytest

from edgecnn.common.atomic import atomic_output, write_json_atomic
from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.runtime.manifest import MAX_MANIFEST_BYTES, Manifest, sha256_file
from edgecnn.runtime.preprocess import Preprocessing


def make(tmp_path, name="model_int8.tflite", data=b"\x00flatbuffer" * 50):
    (tmp_path / name).write_bytes(data)
    manifest = Manifest(labels=list("0123456789"), preprocessing=Preprocessing(28, 28, 1))
    manifest.add_artifact(tmp_path / name, "tflite", "int8", "int8")
    manifest.save(tmp_path)
    return manifest


def test_sha256_and_round_trip(tmp_path):
    data = b"abc" * 1000
    manifest = make(tmp_path, data=data)
    assert sha256_file(tmp_path / "model_int8.tflite") == hashlib.sha256(data).hexdigest()
    loaded = Manifest.load(tmp_path)
    assert loaded.artifacts == manifest.artifacts and loaded.labels == manifest.labels
    assert loaded.preprocessing == manifest.preprocessing
    record = json.loads((tmp_path / "manifest.json").read_text())
    assert record["input"] == {"shape": [28, 28, 1], "layout": "NHWC", "dtype": "float32"}


def test_verify_catches_a_single_flipped_byte(tmp_path):
    manifest = make(tmp_path)
    path = tmp_path / "model_int8.tflite"
    assert manifest.verify(path).precision == "int8"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        manifest.verify(path)


def test_add_artifact_replaces_an_entry_of_the_same_name(tmp_path):
    manifest = make(tmp_path)
    (tmp_path / "model_int8.tflite").write_bytes(b"new")
    manifest.add_artifact(tmp_path / "model_int8.tflite", "tflite", "int8")
    assert len(manifest.artifacts) == 1 and manifest.artifacts[0].bytes == 3


@pytest.mark.parametrize("name", ["../model.tflite", "/etc/passwd", "sub/model.tflite", ".."])
def test_manifest_cannot_name_files_outside_its_folder(tmp_path, name):
    make(tmp_path)
    record = json.loads((tmp_path / "manifest.json").read_text())
    record["artifacts"][0]["file"] = name
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="outside its folder"):
        Manifest.load(tmp_path)


def test_bad_manifests_are_one_line_errors(tmp_path):
    with pytest.raises(IntegrityError, match="no manifest"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"labels": ["a"]}')
    with pytest.raises(IntegrityError, match="manifest is not valid: it has no 'preprocessing'"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)  # Python's parser recurses
    with pytest.raises(IntegrityError, match="not valid JSON: maximum recursion depth exceeded"):
        Manifest.load(tmp_path)
    with open(tmp_path / "manifest.json", "w") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: no 16 MiB written
    with pytest.raises(IntegrityError, match=f"holds {MAX_MANIFEST_BYTES + 1:,} bytes, more than a manifest's"):
        Manifest.load(tmp_path)


@pytest.mark.parametrize("where, value, message", [
    (["labels"], "0123456789", "labels '0123456789' are not a list of names"),
    (["labels"], [0, 1], "labels [0, 1] are not a list of names"),
    (["labels"], [], "labels [] are not a list of names"),
    (["preprocessing", "height"], "28", "preprocessing field height is '28'"),
    (["preprocessing", "height"], 28.0, "preprocessing field height is 28.0"),
    (["preprocessing", "height"], 100000, "preprocessing size 100000x28 is not within 8..512"),
    (["preprocessing", "channels"], 7, "preprocessing channels 7 is neither 1 nor 3"),
    (["preprocessing", "scale"], "x", "preprocessing field scale is 'x'"),
    (["preprocessing", "std"], 0, "preprocessing scale 0.00392156862745098, mean 0.0, std 0.0: not finite, or std 0"),
    (["preprocessing", "invert"], "yes", "preprocessing field invert is 'yes'"),
    (["preprocessing"], None, "preprocessing None is not an object"),
    (["dataset"], [], "dataset [] is not a JSON object"),
    (["source"], "x", "source 'x' is not a JSON object"),
    (["command"], 5, "command 5 is not a string"),
    (["tta"], "spin", "tta 'spin' is none of none, flip"),
    (["artifacts"], {"a": 1}, "artifacts is not a list"),
    (["artifacts", 0], 1, "artifact 1 is not an object"),
    (["artifacts", 0, "bytes"], "x", "artifact field bytes is 'x'"),
    (["artifacts", 0, "sha256"], 5, "artifact field sha256 is 5"),
    (["artifacts", 0, "sha256"], "abc", "artifact model_int8.tflite has sha256 'abc', not 64 hex digits"),
    (["artifacts", 0, "format"], "tf", "artifact model_int8.tflite has format 'tf': not its file's (tflite, onnx)"),
    (["artifacts", 0, "format"], "onnx", "artifact model_int8.tflite has format 'onnx': not its file's (tflite, onnx)"),
    (["artifacts", 0, "quantization"], "x", "artifact field quantization is 'x'"),
])
def test_each_field_of_a_manifest_is_checked(tmp_path, where, value, message):
    """A model folder is untrusted input: a manifest of the wrong shape is one IntegrityError naming the field
    (an IndexError from labels, a TypeError from a string size or a NaN from std 0 before)."""
    make(tmp_path)
    record = json.loads((tmp_path / "manifest.json").read_text())
    *parents, key = where
    node = record
    for parent in parents:
        node = node[parent]
    node[key] = value
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    with pytest.raises(IntegrityError) as caught:
        Manifest.load(tmp_path)
    assert str(caught.value) == f"manifest is not valid: {message}"


def test_beside_finds_only_a_manifest_that_lists_the_file(tmp_path):
    make(tmp_path)
    (tmp_path / "other.tflite").write_bytes(b"x")
    assert Manifest.beside(tmp_path / "model_int8.tflite") is not None
    assert Manifest.beside(tmp_path / "other.tflite") is None
    (tmp_path / "alone").mkdir()
    assert Manifest.beside(tmp_path / "alone" / "m.tflite") is None


def test_atomic_writes_leave_no_partial_file(tmp_path):
    target = tmp_path / "report.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # as open() would, not mkstemp's 0600


def test_a_path_that_cannot_be_written_is_one_error_naming_it(tmp_path):
    """Not the hidden temporary file's name, nor an OSError the CLI can only print with its type."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    for path, reason in [(tmp_path / "a_file" / "b.json", "a file stands where its folder should be"),
                         (tmp_path / "a_folder", "Is a directory")]:
        with pytest.raises(EdgecnnError, match=f"^cannot write {path}: {reason}$"):
            write_json_atomic(path, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder"] and not any(
        (tmp_path / "a_folder").iterdir())
