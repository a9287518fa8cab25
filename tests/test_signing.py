"""Signed runs: with trusted keys, a model runs only as its owner signed it, and every tampering is refused in one
line before any byte reaches the runtime."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import edgecnn.runtime.classifier as classifier_module
from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import MANIFEST_NAME, sha256_file
from edgecnn.runtime.signing import SIGNATURE_NAME, TRUSTED_KEYS_ENV
from edgecnn.workstation.signing import keygen, sign_run
from tests.conftest import assert_one_error_line, run_cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx", "model_int8.onnx")


def signed_copy(source: Path, folder: Path, key: Path) -> Path:
    """The manifest and artifacts of ``source`` (no model.keras: devices never get it), signed with ``key``."""
    folder.mkdir(parents=True)
    for name in (MANIFEST_NAME, *MODELS):
        shutil.copy(source / name, folder / name)
    sign_run(folder, key)
    return folder


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("keys")
    owner, owner_pub = keygen(base / "owner")
    stranger, stranger_pub = keygen(base / "stranger")
    return {"owner": owner, "owner_pub": owner_pub, "stranger": stranger, "stranger_pub": stranger_pub}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, keys) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("signed")
    return (signed_copy(ROOT / "models" / "mnist", base / "mnist", keys["owner"]),
            signed_copy(ROOT / "models" / "fashion_mnist", base / "fashion", keys["owner"]))


@pytest.fixture
def no_runtime(monkeypatch):
    """Opening a backend or probing a file fails the test: a refusal must come before either."""
    def reached(*args, **kwargs):
        raise AssertionError("the runtime was reached")

    monkeypatch.setattr(classifier_module, "open_backend", reached)
    monkeypatch.setattr(classifier_module, "require_survives", reached)


def test_keygen_writes_a_private_key_only_its_owner_reads(keys, tmp_path):
    assert stat.S_IMODE(keys["owner"].stat().st_mode) == 0o600
    with pytest.raises(EdgecnnError, match="never overwritten"):
        keygen(keys["owner"].with_suffix(""))
    run = tmp_path / "run"
    run.mkdir()
    (run / MANIFEST_NAME).write_text("{}")
    with pytest.raises(EdgecnnError, match="run folder"):
        keygen(run / "key")
    assert not list(run.glob("key*"))


def test_a_key_others_can_read_is_refused_for_signing(keys, runs, tmp_path):
    loose = tmp_path / "loose.key"
    shutil.copy(keys["owner"], loose)
    os.chmod(loose, 0o644)
    with pytest.raises(EdgecnnError, match=r"readable by others \(mode 0644\).*chmod 600"):
        sign_run(runs[0], loose)


def test_the_genuine_signed_run_runs_and_gives_the_unsigned_answers(keys, runs):
    image = np.zeros((28, 28), np.uint8)
    for name in MODELS:
        with Classifier(runs[0] / name, trusted_keys=keys["owner_pub"]) as signed, \
                Classifier(ROOT / "models" / "mnist" / name) as plain:
            assert signed.signed and not plain.signed
            np.testing.assert_array_equal(signed.predict_proba(image), plain.predict_proba(image))
    with Classifier(runs[1] / "model_int8.tflite", trusted_keys=[keys["stranger_pub"], keys["owner_pub"]]):
        pass  # one trusted key among several is enough


def test_trusted_keys_come_from_the_environment_as_a_folder(keys, runs, monkeypatch, no_runtime):
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(keys["stranger_pub"].parent))  # both public keys: owner's trusted
    with pytest.raises(AssertionError, match="runtime was reached"):  # the signature held: on to the runtime
        Classifier(runs[0] / "model_int8.tflite")
    unsigned = ROOT / "models" / "mnist" / "model_int8.tflite"
    with pytest.raises(IntegrityError, match="is not signed"):
        Classifier(unsigned)


def tamper(kind: str, run: Path, other: Path, keys: dict, rng: np.random.Generator) -> str:
    """Damage ``run`` one way (``other``: a second signed run); return the artifact to open."""
    name = MODELS[rng.integers(len(MODELS))]
    if kind == "bytes and manifest hash":  # the manifest's sha256 rewritten to match: only the signature tells
        data = bytearray((run / name).read_bytes())
        for at in rng.integers(0, len(data), rng.integers(1, 8)):
            data[at] ^= 1 + rng.integers(255)
        (run / name).write_bytes(bytes(data))
        manifest = json.loads((run / MANIFEST_NAME).read_text())
        for entry in manifest["artifacts"]:
            if entry["file"] == name:
                entry["sha256"], entry["bytes"] = sha256_file(run / name), len(data)
        (run / MANIFEST_NAME).write_text(json.dumps(manifest))
    elif kind == "swapped model":
        shutil.copy(other / name, run / name)
    elif kind == "other run's manifest":
        shutil.copy(other / MANIFEST_NAME, run / MANIFEST_NAME)
    elif kind == "removed signature":
        (run / SIGNATURE_NAME).unlink()
    elif kind == "untrusted key":
        sign_run(run, keys["stranger"])
    elif kind == "signature bytes":
        envelope = json.loads((run / SIGNATURE_NAME).read_text())
        raw = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
        raw[rng.integers(len(raw))] ^= 1 + rng.integers(255)
        envelope["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
        (run / SIGNATURE_NAME).write_text(json.dumps(envelope))
    elif kind == "signed payload":  # the listed sha256 of the model replaced by the damaged file's
        envelope = json.loads((run / SIGNATURE_NAME).read_text())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        (run / name).write_bytes((run / name).read_bytes() + b"\0")
        for subject in statement["subject"]:
            if subject["name"] == name:
                subject["digest"]["sha256"] = sha256_file(run / name)
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        (run / SIGNATURE_NAME).write_text(json.dumps(envelope))
    elif kind == "added model":  # a model dropped beside the signed ones, opened by name
        shutil.copy(run / name, run / f"extra_{name}")
        return f"extra_{name}"
    return name


KINDS = ("bytes and manifest hash", "swapped model", "other run's manifest", "removed signature", "untrusted key",
         "signature bytes", "signed payload", "added model")
REASONS = ("changed after", "is not signed", "not trusted", "bad signature", "is not in the set", "not in its manifest")


def test_tampered_copies_are_all_refused_before_the_runtime(keys, runs, tmp_path, no_runtime, cases=1000):
    rng = np.random.default_rng(cases)
    seen = dict.fromkeys(KINDS, 0)
    for case in range(cases):
        kind = KINDS[case % len(KINDS)]
        source, other = runs if case % 2 else runs[::-1]
        run = tmp_path / f"case{case}"
        shutil.copytree(source, run)
        name = tamper(kind, run, other, keys, rng)
        with pytest.raises(IntegrityError) as refused:
            Classifier(run / name, trusted_keys=keys["owner_pub"])
        message = str(refused.value)
        assert "\n" not in message and any(reason in message for reason in REASONS), (kind, message)
        seen[kind] += 1
        shutil.rmtree(run)
    assert min(seen.values()) >= cases // len(KINDS)


def test_verify_checks_a_whole_folder(keys, runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    assert run_cli(["verify", str(run), "--trust", str(keys["owner_pub"])]) == 0
    assert "signature valid, 5 files as signed" in capsys.readouterr().out
    (run / "model_int8.onnx").unlink()  # a signed file gone
    assert run_cli(["verify", str(run), "--trust", str(keys["owner_pub"])]) == 1
    assert_one_error_line(capsys.readouterr().err, "model_int8.onnx", "removed after")
    shutil.copy(runs[0] / "model_int8.onnx", run / "model_int8.onnx")
    shutil.copy(runs[0] / "model_int8.onnx", run / "new.onnx")  # a model the signature does not list
    assert run_cli(["verify", str(run), "--trust", str(keys["owner_pub"])]) == 1
    assert_one_error_line(capsys.readouterr().err, "new.onnx", "added after")
    assert run_cli(["verify", str(runs[0])]) == 1
    assert_one_error_line(capsys.readouterr().err, "no trusted keys")


def test_predict_honours_the_trusted_keys_of_the_environment(keys, runs, tmp_path, capsys, monkeypatch):
    import cv2

    cv2.imwrite(str(tmp_path / "zero.png"), np.zeros((28, 28), np.uint8))
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(keys["owner_pub"]))
    assert run_cli(["predict", str(runs[0] / "model_int8.tflite"), str(tmp_path / "zero.png"), "--json"]) == 0
    capsys.readouterr()
    assert run_cli(["predict", str(ROOT / "models" / "mnist" / "model_int8.tflite"),
                    str(tmp_path / "zero.png")]) == 1
    assert_one_error_line(capsys.readouterr().err, "is not signed")


def test_sign_refuses_a_run_whose_artifact_differs_from_its_manifest(keys, runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    (run / "model_int8.tflite").write_bytes(b"not the exported model")
    with pytest.raises(EdgecnnError, match="model_int8.tflite is missing or differs from its manifest"):
        sign_run(run, keys["owner"])
