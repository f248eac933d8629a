"""A signed commit's verified author gets its credit: `git commit -S` with an SSH key the
trust list names is checked (OpenSSH's sshsig format, namespace `git`) and beats the name
of whoever measured the commit; an unsigned or badly signed commit changes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from testing.world import Player, World

from gitcoop import commitsig, keys


def _wire(*fields: bytes) -> bytes:
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def _sshsig(private: Ed25519PrivateKey, message: bytes, namespace: bytes = b"git") -> bytes:
    """An armored signature built from PROTOCOL.sshsig, as ssh-keygen -Y sign writes it."""
    public = _wire(b"ssh-ed25519", private.public_key().public_bytes_raw())
    signed = b"SSHSIG" + _wire(namespace, b"", b"sha512", hashlib.sha512(message).digest())
    sig = _wire(b"ssh-ed25519", private.sign(signed))
    blob = b"SSHSIG" + (1).to_bytes(4, "big") + _wire(public, namespace, b"", b"sha512", sig)
    body = base64.b64encode(blob)
    lines = b"\n".join(body[i : i + 70] for i in range(0, len(body), 70))
    return b"-----BEGIN SSH SIGNATURE-----\n" + lines + b"\n-----END SSH SIGNATURE-----\n"


def test_the_sshsig_check_follows_the_format() -> None:
    private = Ed25519PrivateKey.generate()
    expected = keys.public_openssh(private.public_key())
    message = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nhello\n"
    assert commitsig.key_of(_sshsig(private, message), message) == expected
    assert commitsig.key_of(_sshsig(private, message), message + b"!") is None
    assert commitsig.key_of(_sshsig(private, message, b"file"), message) is None
    armored = _sshsig(private, message)
    assert commitsig.key_of(armored.replace(b"SSH SIGNATURE", b"PGP SIGNATURE"), message) is None


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="git signs with ssh-keygen")
def test_a_signed_commit_is_credited_to_its_verified_author(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    bob = world.contributor("bob", "Bob", "bob@example.org")
    world.accept(bob)
    ada.git("pull", "-q", "--ff-only", "origin", "main")
    ada.commit_score("0.7", "ada's idea, signed")
    key = ada.home / "keys" / keys.KEY_NAME
    ada.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q",
            "--amend", "--no-edit", "-S")  # fmt: skip
    signed = ada.head()
    assert (
        commitsig.signer(_repo(ada), signed)
        == ada.coop("key", "export").stdout.split(" ", 2)[2].strip()
    )
    ada.git("push", "-q", "--no-verify", "origin", "HEAD:refs/heads/ada")  # nothing attested
    bob.git("pull", "-q", "--ff-only", "origin", "main")
    bob.git("fetch", "-q", "origin", "ada")
    bob.git("merge", "-q", "--ff-only", "FETCH_HEAD")
    bob.commit_score("0.75", "bob's tweak, unsigned")
    bob.git("push", "-q", "origin", "HEAD:main")  # Bob's hook attests his own commit
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    m.coop("evaluate", signed)  # the maintainer measures Ada's commit: Ada still authored it
    report = json.loads(m.coop("credit", "--json").stdout)
    gains = {c["email"]: c["gain"] for c in report["contributors"]}
    assert gains == {"ada@example.org": "0.2", "bob@example.org": "0.05"}
    notes = " ".join(report["notes"])
    assert signed[:12] not in notes  # author, signer and credit agree for Ada's commit


def _repo(p: Player):
    from gitcoop.git import open_repo

    return open_repo(p.repo)
