"""Who signed a git commit: OpenSSH signatures (``git commit -S`` with ``gpg.format=ssh``),
checked with the signature library gitcoop already uses (through ``keys``), so a commit
signed by a key the trust list names is credited to that key's principal even when
someone else measured it.

The format is OpenSSH's PROTOCOL.sshsig: an armored blob naming the public key, the
namespace (``git`` for commits), the hash algorithm and an Ed25519 signature over a
preamble and the hash of the commit's signed bytes.
"""

from __future__ import annotations

import base64
import hashlib

from gitcoop.git import Repo
from gitcoop.keys import WireFields, verify_raw

_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
_END = b"-----END SSH SIGNATURE-----"
_MAGIC = b"SSHSIG"
_ED25519 = b"ssh-ed25519"
_HASHES = {b"sha256": hashlib.sha256, b"sha512": hashlib.sha512}


def signer(repo: Repo, commit: str) -> str | None:
    """The ``ssh-ed25519 AAAA…`` key whose valid ``git``-namespace signature the commit
    carries, or None: unsigned, signed otherwise (GPG, another key type), or a signature
    that does not verify."""
    found = repo.commit_signature(commit)
    return None if found is None else key_of(*found)


def key_of(armored: bytes, message: bytes) -> str | None:
    """The key of an armored SSH signature of ``message`` in the ``git`` namespace, when
    it verifies; None for anything else."""
    try:
        return _verify(armored, message)
    except ValueError:
        return None


def _verify(armored: bytes, message: bytes) -> str | None:
    text = armored.strip()
    if not (text.startswith(_BEGIN) and text.endswith(_END)):
        return None
    blob = base64.b64decode(b"".join(text[len(_BEGIN) : -len(_END)].split()), validate=True)
    if blob[:6] != _MAGIC:
        return None
    f = WireFields(blob, 6)
    version, public, namespace = f.uint32(), f.string(), f.string()
    reserved, algorithm, signature = f.string(), f.string(), f.string()
    f.done()
    if version != 1 or namespace != b"git" or algorithm not in _HASHES:
        return None
    key_fields, sig_fields = WireFields(public, 0), WireFields(signature, 0)
    if key_fields.string() != _ED25519 or sig_fields.string() != _ED25519:
        return None
    raw_key, raw_sig = key_fields.string(), sig_fields.string()
    key_fields.done()
    sig_fields.done()
    signed = _MAGIC + b"".join(
        len(x).to_bytes(4, "big") + x
        for x in (namespace, reserved, algorithm, _HASHES[algorithm](message).digest())
    )
    if not verify_raw(raw_key, raw_sig, signed):
        return None
    return "ssh-ed25519 " + base64.b64encode(public).decode()
