"""Ed25519 signing keys: creation, safe loading, OpenSSH encodings and fingerprints."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gitcoop import _fs, constants
from gitcoop.errors import KeyFileError, VerificationError

KEY_NAME = "id_ed25519"
_SSH_ED25519 = b"ssh-ed25519"


def gitcoop_home() -> Path:
    """Return where keys live: $GITCOOP_HOME, else $XDG_CONFIG_HOME/gitcoop."""
    explicit = os.environ.get(constants.HOME_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "gitcoop"


def _wire(raw: bytes) -> bytes:
    def field_(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    return field_(_SSH_ED25519) + field_(raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    """Return the OpenSSH-style fingerprint ``SHA256:<base64>`` of a public key."""
    digest = hashlib.sha256(_wire(public.public_bytes_raw())).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def public_openssh(public: Ed25519PublicKey) -> str:
    """Return the key as ``ssh-ed25519 AAAA…`` (no comment)."""
    return "ssh-ed25519 " + base64.b64encode(_wire(public.public_bytes_raw())).decode()


def parse_public(text: str) -> Ed25519PublicKey:
    """Parse ``ssh-ed25519 <base64> [comment]``; raises VerificationError when malformed."""
    parts = text.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise VerificationError(f"not an ssh-ed25519 public key: {text[:40]!r}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise VerificationError("public key is not valid base64") from None
    if len(blob) != 51 or blob[:15] != len(_SSH_ED25519).to_bytes(4, "big") + _SSH_ED25519:
        raise VerificationError("public key is not an Ed25519 key blob")
    return Ed25519PublicKey.from_public_bytes(blob[19:])


@functools.lru_cache(maxsize=4096)
def public_with_fingerprint(text: str) -> tuple[Ed25519PublicKey, str]:
    """``parse_public`` and ``fingerprint`` at once, remembered: a ledger is signed by a
    handful of keys, so each is parsed once rather than once per entry."""
    public = parse_public(text)
    return public, fingerprint(public)


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key with its public half; the repr never shows key material."""

    path: Path
    _private: Ed25519PrivateKey = field(repr=False)

    @property
    def public(self) -> Ed25519PublicKey:
        """The public key."""
        return self._private.public_key()

    @property
    def keyid(self) -> str:
        """The key's fingerprint, used as the DSSE keyid hint."""
        return fingerprint(self.public)

    @property
    def public_openssh(self) -> str:
        """The public key as an OpenSSH line without comment."""
        return public_openssh(self.public)

    def sign(self, data: bytes) -> bytes:
        """Return the Ed25519 signature of ``data``."""
        return self._private.sign(data)


def _check_private_file(path: Path) -> None:
    st = path.stat()
    if st.st_uid != os.getuid():
        raise KeyFileError(
            f"private key {path} belongs to another user", hint="use a key file you own"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError(
            f"UNPROTECTED PRIVATE KEY FILE: {path} is readable by others "
            f"(mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"run: chmod 600 {path}",
        )


def refuse_inside(path: Path, worktree: Path | None) -> None:
    """Raise KeyFileError when the key directory lies inside a git work tree."""
    if worktree is None:
        return
    resolved, root = path.resolve(), worktree.resolve()
    if resolved == root or root in resolved.parents:
        raise KeyFileError(
            f"key directory {path} is inside the work tree {root}, where it could be committed",
            hint=f"set {constants.HOME_ENV} to a directory outside the repository",
        )


def load(home: Path) -> SigningKey:
    """Load the private key from ``home/keys``; raises KeyFileError when missing or unsafe."""
    path = home / "keys" / KEY_NAME
    try:
        _check_private_file(path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no signing key at {path}", hint="run: git coop key generate") from None
    except PermissionError:
        raise KeyFileError(f"cannot read private key {path}", hint="check its owner") from None
    key = _plain_ed25519(data)
    if key is not None:
        return SigningKey(path, key)
    # Anything else (encrypted, another key type, damaged) gets the library's verdict.
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    try:
        loaded = load_ssh_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not an unencrypted OpenSSH Ed25519 private key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return SigningKey(path, loaded)


_PEM_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_PEM_END = b"-----END OPENSSH PRIVATE KEY-----"
_MAGIC = b"openssh-key-v1\0"


def _plain_ed25519(data: bytes) -> Ed25519PrivateKey | None:
    """The key of an unencrypted OpenSSH Ed25519 private key file (as ``generate`` and
    ssh-keygen write it), or None for anything else.

    Reading this one layout directly spares every signing process the import of
    cryptography's SSH serialization (several ms). The public key listed in the file must
    be the one derived from the seed.
    """
    text = data.strip()
    if not (text.startswith(_PEM_BEGIN) and text.endswith(_PEM_END)):
        return None
    try:
        body = b"".join(text[len(_PEM_BEGIN) : -len(_PEM_END)].split())
        listed, public, pair, padding = _key_fields(base64.b64decode(body, validate=True))
    except ValueError:
        return None
    if listed != _wire(public) or len(pair) != 64 or pair[32:] != public:
        return None
    if len(padding) >= 8 or padding != bytes(range(1, len(padding) + 1)):
        return None
    key = Ed25519PrivateKey.from_private_bytes(pair[:32])
    return key if key.public_key().public_bytes_raw() == public else None


def _key_fields(blob: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(listed public key, public key, seed and public key, padding) of an unencrypted
    one-key Ed25519 file; ValueError for any other layout."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not an OpenSSH private key")
    outer = _Fields(blob, len(_MAGIC))
    cipher, kdf, kdf_options, count = outer.string(), outer.string(), outer.string(), outer.uint32()
    if (cipher, kdf, kdf_options, count) != (b"none", b"none", b"", 1):
        raise ValueError("encrypted, or more than one key")
    listed = outer.string()
    inner = _Fields(outer.string(), 0)
    outer.done()
    check = inner.uint32()
    if inner.uint32() != check or inner.string() != _SSH_ED25519:
        raise ValueError("damaged, or not an Ed25519 key")
    public, pair = inner.string(), inner.string()
    inner.string()  # the comment
    return listed, public, pair, inner.rest()


class _Fields:
    """Reads SSH wire fields; ValueError when they run past the end."""

    def __init__(self, data: bytes, at: int) -> None:
        self._data = data
        self._at = at

    def _take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise ValueError("truncated")
        out, self._at = self._data[self._at : end], end
        return out

    def uint32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def string(self) -> bytes:
        return self._take(self.uint32())

    def rest(self) -> bytes:
        return self._take(len(self._data) - self._at)

    def done(self) -> None:
        if self._at != len(self._data):
            raise ValueError("trailing bytes")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def generate(home: Path, *, comment: str) -> SigningKey:
    """Create a new key under ``home/keys`` (dir 0700, file 0600); never overwrites.

    Raises KeyFileError when a key already exists there.
    """
    from cryptography.hazmat.primitives import serialization

    keydir = home / "keys"
    keydir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    os.chmod(keydir, 0o700)
    path = keydir / KEY_NAME
    if path.exists():
        raise KeyFileError(f"a key already exists at {path}", hint="it was left untouched")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write_new(path, pem, 0o600)
    pub_line = f"{public_openssh(private.public_key())} {comment}\n".encode()
    pub = keydir / (KEY_NAME + ".pub")
    pub.unlink(missing_ok=True)
    _write_new(pub, pub_line, 0o644)
    _fs.fsync_dir(keydir)
    return SigningKey(path, private)


def load_or_create(home: Path, *, comment: str) -> tuple[SigningKey, bool]:
    """Return the user's key and whether it was just created."""
    if (home / "keys" / KEY_NAME).exists():
        return load(home), False
    return generate(home, comment=comment), True
