import hashlib
import json
import os
import stat

import pytest

from edgecnn.atomic import atomic_output, write_json_atomic
from edgecnn.errors import EdgecnnError, IntegrityError
from edgecnn.manifest import Manifest, sha256_file
from edgecnn.preprocess import Preprocessing


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
    (tmp_path / "manifest.json").write_text('{"labels": []}')
    with pytest.raises(IntegrityError, match="preprocessing"):
        Manifest.load(tmp_path)


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
