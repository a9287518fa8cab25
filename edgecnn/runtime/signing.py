"""Check that a run folder was signed by a trusted key before any of its bytes reach a runtime.

    keys = load_trusted_keys("keys/")              # Ed25519 public keys (PEM); None: $EDGECNN_TRUSTED_KEYS
    verify_signed(Path("runs/demo/model_int8.tflite"), keys)   # IntegrityError naming the reason, or the signed set

The signature is ``model.sig`` beside ``manifest.json``: a DSSE envelope (the Dead Simple Signing Envelope of
secure-systems-lab, as OpenSSF model signing uses) whose payload is an in-toto Statement v1 listing the manifest and
every artifact it names, each with its sha256; it is signed with Ed25519 over DSSE's pre-authentication encoding.
Threat model and key rotation: docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from edgecnn.common.errors import EdgecnnError, IntegrityError
from edgecnn.runtime.manifest import MANIFEST_NAME, sha256_file

SIGNATURE_NAME = "model.sig"
TRUSTED_KEYS_ENV = "EDGECNN_TRUSTED_KEYS"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:edgecnn:signed-run:v1"
MODEL_SUFFIXES = (".tflite", ".onnx")
MAX_SIGNATURE_BYTES = 1 << 20  # a signature lists a handful of files; a larger one is not ours
PUBLIC_KEY_SUFFIXES = (".pub", ".pem")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature signs, so that the payload type is signed too."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(public_key) -> str:
    """The sha256 of a public key's raw 32 bytes, in hex: how an envelope names the key that signed it."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()


# RFC 8410: an Ed25519 SubjectPublicKeyInfo is this DER header and the 32-byte key. Read so, a key costs one small
# import (the ed25519 module) instead of cryptography's whole serialization package on a device's first open
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
PEM_BEGIN, PEM_END = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"


def load_public_key(path: Path):
    """An Ed25519 public key from a PEM file (as ``edgecnn keygen`` and ``openssl pkey -pubout`` write it);
    EdgecnnError naming the file where it is not one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgecnnError(f"cannot read public key {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        body = text.split(PEM_BEGIN, 1)[1].split(PEM_END, 1)[0]
        der = base64.b64decode("".join(body.split()), validate=True)
    except (IndexError, binascii.Error):
        der = b""
    if len(der) != len(ED25519_SPKI_PREFIX) + 32 or not der.startswith(ED25519_SPKI_PREFIX):
        raise EdgecnnError(f"{path} is not an Ed25519 public key in PEM (edgecnn keygen makes one)")
    return Ed25519PublicKey.from_public_bytes(der[len(ED25519_SPKI_PREFIX):])


def load_trusted_keys(source=None) -> dict:
    """The trusted public keys by key id: ``source`` is a key file, a folder of ``.pub``/``.pem`` files, or a list
    of those; None reads ``$EDGECNN_TRUSTED_KEYS`` (paths joined by the OS path separator). {} where neither
    names any: then models run as without signing."""
    if source is None:
        source = [p for p in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if p]
    paths = [Path(p) for p in ([source] if isinstance(source, str | os.PathLike) else source)]
    keys = {}
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in PUBLIC_KEY_SUFFIXES and p.is_file())
            if not files:
                raise EdgecnnError(f"no public keys (.pub or .pem) in trusted-keys folder {path}")
        elif path.is_file():
            files = [path]
        else:
            raise EdgecnnError(f"trusted key {path} does not exist")
        for file in files:
            key = load_public_key(file)
            keys[key_id(key)] = key
    return keys


def verify_signed(path: str | Path, keys: dict) -> dict[str, str]:
    """Check ``path`` (an artifact, or a run folder) against the signature of its folder; return the signed files
    by name with their sha256. IntegrityError, naming the reason, where the folder is unsigned, the signature is
    not valid or not by a key of ``keys``, a signed file changed or is gone, or a model file is not in the signed
    set. Reads only the signature, the manifest and the files it checks: nothing is parsed by a runtime."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    signed = _signed_set(folder, keys)
    if path.is_dir():
        names = list(signed)
        added = sorted(p.name for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES and p.name not in signed)
        if added:
            raise IntegrityError(f"{folder / added[0]} was added after {folder} was signed: refused")
    else:
        if path.name not in signed:
            raise IntegrityError(f"{path} is not in the set {folder / SIGNATURE_NAME} signs: refused")
        names = [MANIFEST_NAME, path.name]
    for name in names:
        file = folder / name
        if not file.is_file():
            raise IntegrityError(f"{file} was removed after {folder} was signed: refused")
        if sha256_file(file) != signed[name]:
            raise IntegrityError(f"{file} changed after {folder} was signed: refused")
    return signed


def _signed_set(folder: Path, keys: dict) -> dict[str, str]:
    """The files the folder's signature lists, once the signature is checked against ``keys``."""
    sig = folder / SIGNATURE_NAME
    if not sig.is_file():
        raise IntegrityError(f"{folder} is not signed (no {SIGNATURE_NAME}) and trusted keys are set: refused")
    if sig.stat().st_size > MAX_SIGNATURE_BYTES:
        raise IntegrityError(f"{sig} is not a signature: {sig.stat().st_size:,} bytes")
    try:
        envelope = json.loads(sig.read_bytes())
        payload_type, payload = envelope["payloadType"], base64.b64decode(envelope["payload"], validate=True)
        signatures = [(s["keyid"], base64.b64decode(s["sig"], validate=True)) for s in envelope["signatures"]]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise IntegrityError(f"{sig} is not a signature envelope (DSSE JSON): refused") from None
    if payload_type != PAYLOAD_TYPE:
        raise IntegrityError(f"{sig} signs {payload_type!r}, not an edgecnn run: refused")
    from cryptography.exceptions import InvalidSignature

    known = [(keys[kid], raw) for kid, raw in signatures if isinstance(kid, str) and kid in keys]
    if not known:
        ids = ", ".join(str(kid)[:16] for kid, _ in signatures) or "none"
        raise IntegrityError(f"{folder} is signed by a key that is not trusted (key id {ids}): refused")
    for key, raw in known:
        try:
            key.verify(raw, pae(payload_type, payload))
            break
        except InvalidSignature:
            continue
    else:
        raise IntegrityError(f"{sig} has a bad signature: the signature or what it signs was altered; refused")
    try:
        record = json.loads(payload)
        if record["_type"] != STATEMENT_TYPE or record["predicateType"] != PREDICATE_TYPE:
            raise ValueError
        signed = {s["name"]: s["digest"]["sha256"] for s in record["subject"]}
        if not all(isinstance(n, str) and isinstance(d, str) for n, d in signed.items()):
            raise ValueError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityError(f"{sig} signs something other than an edgecnn run: refused") from None
    if MANIFEST_NAME not in signed:
        raise IntegrityError(f"{sig} does not sign {MANIFEST_NAME}: refused")
    return signed
