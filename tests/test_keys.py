"""Private key files: the plain Ed25519 layout is read directly, and exactly as the library
reads it; anything else keeps the library's verdict."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gitcoop import keys
from gitcoop.errors import KeyFileError


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _write(home: Path, pem: bytes) -> None:
    (home / "keys").mkdir(parents=True, mode=0o700)
    path = home / "keys" / keys.KEY_NAME
    path.write_bytes(pem)
    path.chmod(0o600)


def test_a_generated_key_is_read_as_the_library_reads_it(tmp_path: Path) -> None:
    made = keys.generate(tmp_path, comment="me@example.org")
    data = made.path.read_bytes()
    direct = keys._plain_ed25519(data)
    assert direct is not None
    library = serialization.load_ssh_private_key(data, password=None)
    assert isinstance(library, Ed25519PrivateKey)
    assert _raw(direct) == _raw(library) == _raw(direct)
    assert keys.load(tmp_path).public_openssh == made.public_openssh


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_an_ssh_keygen_key_is_read_directly(tmp_path: Path) -> None:
    path = tmp_path / "id"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "a comment", "-f", str(path)],
        check=True,
    )
    data = path.read_bytes()
    direct = keys._plain_ed25519(data)
    library = serialization.load_ssh_private_key(data, password=None)
    assert direct is not None and isinstance(library, Ed25519PrivateKey)
    assert _raw(direct) == _raw(library)


def _pem(blob: bytes) -> bytes:
    body = base64.b64encode(blob)
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return b"\n".join([keys._PEM_BEGIN, *lines, keys._PEM_END]) + b"\n"


def _blob(pem: bytes) -> bytearray:
    return bytearray(base64.b64decode(b"".join(pem.strip().splitlines()[1:-1])))


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.__setitem__(slice(-40, -39), b"\xff"),  # a byte of the seed or public key
        lambda b: b.__setitem__(-1, b[-1] ^ 0xFF),  # the padding
        lambda b: b.extend(b"\0"),  # trailing garbage
        lambda b: b.__setitem__(slice(len(keys._MAGIC) + 4, len(keys._MAGIC) + 8), b"aes2"),
    ],
    ids=["key-bytes", "padding", "trailing", "cipher"],
)
def test_a_damaged_file_is_not_read_directly(tmp_path: Path, damage) -> None:
    made = keys.generate(tmp_path, comment="me@example.org")
    blob = _blob(made.path.read_bytes())
    damage(blob)
    assert keys._plain_ed25519(_pem(bytes(blob))) is None


def test_other_key_types_keep_the_library_s_verdict(tmp_path: Path) -> None:
    ecdsa = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write(tmp_path, ecdsa)
    assert keys._plain_ed25519(ecdsa) is None
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        keys.load(tmp_path)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_an_encrypted_key_keeps_the_library_s_verdict(tmp_path: Path) -> None:
    path = tmp_path / "id"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(path)], check=True
    )
    _write(tmp_path / "home", path.read_bytes())
    assert keys._plain_ed25519(path.read_bytes()) is None
    with pytest.raises(KeyFileError, match="not an unencrypted OpenSSH Ed25519"):
        keys.load(tmp_path / "home")
