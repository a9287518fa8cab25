"""Make Ed25519 key pairs and sign run folders, so that a device runs only what its owner signed.

    private, public = keygen("keys/release")       # keys/release.key (mode 0600) and keys/release.pub
    sign_run("runs/demo", private)                  # runs/demo/model.sig over manifest.json and every artifact

The signature format and its check are :mod:`edgecnn.runtime.signing`; the threat model is docs/security.md.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

from edgecnn.common.atomic import write_bytes_atomic
from edgecnn.common.errors import EdgecnnError
from edgecnn.runtime.manifest import MANIFEST_NAME, Manifest, sha256_file
from edgecnn.runtime.signing import PAYLOAD_TYPE, PREDICATE_TYPE, SIGNATURE_NAME, STATEMENT_TYPE, key_id, pae

PRIVATE_SUFFIX, PUBLIC_SUFFIX = ".key", ".pub"


def keygen(out: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair: ``OUT.key`` (PKCS#8 PEM, mode 0600) and ``OUT.pub`` (PEM). EdgecnnError where
    either exists (keys are never overwritten) or ``OUT``'s folder is a run folder (private keys stay out of what
    is copied to devices)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(out)
    private, public = out.with_name(out.name + PRIVATE_SUFFIX), out.with_name(out.name + PUBLIC_SUFFIX)
    folder = out.parent
    if (folder / MANIFEST_NAME).exists():
        raise EdgecnnError(f"{folder} is a run folder: keep private keys out of it (they would travel with the "
                           "models); choose another folder")
    for path in (private, public):
        if path.exists():
            raise EdgecnnError(f"{path} exists: keys are never overwritten; choose another name")
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:  # created with 0600 from the start: the key is never readable by others, not even for a moment
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise EdgecnnError(f"cannot write {private}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    write_bytes_atomic(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def load_private_key(path: str | Path):
    """The Ed25519 private key in ``path``; EdgecnnError where the file is readable by others than its owner
    (a key anyone on the machine can read signs for anyone), missing, or not such a key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise EdgecnnError(f"cannot read private key {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise EdgecnnError(f"private key {path} is readable by others (mode {mode:04o}): refused for signing; "
                           f"chmod 600 {path}")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise EdgecnnError(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EdgecnnError(f"{path} is not an Ed25519 private key (edgecnn keygen makes one)")
    return key


def statement(digests: dict[str, str]) -> dict:
    """The in-toto statement that lists each file with its sha256 (what :mod:`edgecnn.runtime.signing` checks)."""
    return {"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE,
            "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in digests.items()],
            "predicate": {"manifest": MANIFEST_NAME}}


def sign_run(run_dir: str | Path, key_path: str | Path) -> dict:
    """Sign ``run_dir``'s manifest and every artifact it lists; write ``model.sig`` there. Refused where an artifact
    is missing or differs from its manifest's sha256: a signature vouches for a run as export checked it.

    Returns:
        ``{"signature": path, "key_id": hex, "files": [names]}``.
    """
    run_dir = Path(run_dir)
    key = load_private_key(key_path)
    manifest = Manifest.load(run_dir)
    if not manifest.artifacts:
        raise EdgecnnError(f"{run_dir / MANIFEST_NAME} lists no artifacts: nothing to sign (run edgecnn export)")
    digests = {MANIFEST_NAME: sha256_file(run_dir / MANIFEST_NAME)}
    for entry in sorted(manifest.artifacts, key=lambda a: a.file):
        path = run_dir / entry.file
        if not path.is_file() or sha256_file(path) != entry.sha256:
            raise EdgecnnError(f"{path} is missing or differs from its manifest: export again before signing")
        digests[entry.file] = entry.sha256  # just checked against the file
    files = list(digests)
    payload = json.dumps(statement(digests), sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    kid = key_id(key.public_key())
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                "signatures": [{"keyid": kid, "sig": base64.b64encode(signature).decode()}]}
    path = run_dir / SIGNATURE_NAME
    write_bytes_atomic(path, (json.dumps(envelope, indent=2) + "\n").encode())
    return {"signature": str(path), "key_id": kid, "files": files}
