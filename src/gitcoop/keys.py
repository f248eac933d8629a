"""Ed25519 signing keys: creation, safe loading, OpenSSH encodings and fingerprints."""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gitcoop import _faults, _fs, constants
from gitcoop.errors import GitcoopError, KeyFileError, VerificationError, write_failed

KEY_NAME = "id_ed25519"
AGENT_NAME = KEY_NAME + ".agent"  # the public key of a key that ssh-agent holds
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
    # Both length fields checked: one key must have one text, or its fingerprint varies.
    head = len(_SSH_ED25519).to_bytes(4, "big") + _SSH_ED25519 + (32).to_bytes(4, "big")
    if len(blob) != 51 or blob[:19] != head:
        raise VerificationError("public key is not an Ed25519 key blob")
    return Ed25519PublicKey.from_public_bytes(blob[19:])


def verify_raw(public: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``data`` by the raw 32-byte
    key ``public`` (SSH signature blobs hand over raw keys)."""
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=4096)
def public_with_fingerprint(text: str) -> tuple[Ed25519PublicKey, str]:
    """``parse_public`` and ``fingerprint`` at once, remembered: a ledger is signed by a
    handful of keys, so each is parsed once rather than once per entry."""
    public = parse_public(text)
    return public, fingerprint(public)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 signing key: a private key file, or a key ssh-agent holds (``path`` is
    then the public key file that names it). The repr never shows key material."""

    path: Path
    public: Ed25519PublicKey = field(repr=False)
    _sign: Callable[[bytes], bytes] = field(repr=False)
    in_agent: bool = False

    @classmethod
    def from_private(cls, path: Path, private: Ed25519PrivateKey) -> SigningKey:
        """The key of a private key file."""
        return cls(path, private.public_key(), private.sign)

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
        return self._sign(data)


def signers_line(principal: str, public: str, namespaces: str = "gitcoop") -> str:
    """The trust-list line (OpenSSH allowed_signers format) for a principal's key; the
    namespaces it may sign for are its roles (see gitcoop.trust)."""
    return f'{principal} namespaces="{namespaces}" {public}'


def check_private_file(path: Path) -> None:
    """Refuse, as OpenSSH does, a private key file another user owns or others can read."""
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
    if worktree is not None and _inside(path, worktree):
        raise KeyFileError(
            f"key directory {path} is inside the work tree {worktree.resolve()}, where it "
            "could be committed",
            hint=f"set {constants.HOME_ENV} to a directory outside the repository",
        )


def _inside(path: Path, root: Path) -> bool:
    resolved, top = path.resolve(), root.resolve()
    return resolved == top or top in resolved.parents


def load(home: Path) -> SigningKey:
    """Load the signing key from ``home/keys``; raises KeyFileError when missing or unsafe."""
    path = home / "keys" / KEY_NAME
    if not path.exists() and (home / "keys" / AGENT_NAME).exists():
        return _agent_key(home / "keys" / AGENT_NAME)
    try:
        check_private_file(path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no signing key at {path}", hint="run: git coop key generate") from None
    except PermissionError:
        raise KeyFileError(f"cannot read private key {path}", hint="check its owner") from None
    return SigningKey.from_private(path, _private_key(path, data))


def from_secret(data: bytes, name: str) -> SigningKey:
    """A signing key handed over as text (a CI secret), never written to disk; ``name``
    says where it came from in messages. Raises KeyFileError when it is no usable key."""
    path = Path(f"${name}")
    return SigningKey.from_private(path, _private_key(path, data))


def _private_key(path: Path, data: bytes) -> Ed25519PrivateKey:
    key = _plain_ed25519(data)
    if key is not None:
        return key
    # Anything else (encrypted, another key type, damaged) gets the library's verdict.
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    try:
        loaded = load_ssh_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not an unencrypted OpenSSH Ed25519 private key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return loaded


def _agent_key(path: Path) -> SigningKey:
    """The key ssh-agent holds whose public key ``path`` names."""
    from gitcoop import sshagent

    try:
        public = parse_public(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, VerificationError) as exc:
        raise KeyFileError(f"{path} does not name an ssh-ed25519 key: {exc}") from None
    blob = _wire(public.public_bytes_raw())
    if blob not in sshagent.identities():
        raise KeyFileError(
            f"ssh-agent does not hold the key {fingerprint(public)} named by {path}",
            hint="add it with: ssh-add PRIVATE_KEY_FILE",
        )
    return SigningKey(path, public, functools.partial(sshagent.sign, blob), in_agent=True)


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
    blob = _pem_blob(data)
    if blob is None:
        return None
    try:
        listed, public, pair, padding = _key_fields(blob)
    except ValueError:
        return None
    if listed != _wire(public) or len(pair) != 64 or pair[32:] != public:
        return None
    if len(padding) >= 8 or padding != bytes(range(1, len(padding) + 1)):
        return None
    key = Ed25519PrivateKey.from_private_bytes(pair[:32])
    return key if key.public_key().public_bytes_raw() == public else None


def _pem_blob(data: bytes) -> bytes | None:
    """The binary body of an OpenSSH private key file (after its magic check), or None."""
    text = data.strip()
    if not (text.startswith(_PEM_BEGIN) and text.endswith(_PEM_END)):
        return None
    try:
        blob = base64.b64decode(
            b"".join(text[len(_PEM_BEGIN) : -len(_PEM_END)].split()), validate=True
        )
    except ValueError:
        return None
    return blob if blob.startswith(_MAGIC) else None


def _key_fields(blob: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(listed public key, public key, seed and public key, padding) of an unencrypted
    one-key Ed25519 file; ValueError for any other layout."""
    outer = WireFields(blob, len(_MAGIC))
    cipher, kdf, kdf_options, count = outer.string(), outer.string(), outer.string(), outer.uint32()
    if (cipher, kdf, kdf_options, count) != (b"none", b"none", b"", 1):
        raise ValueError("encrypted, or more than one key")
    listed = outer.string()
    inner = WireFields(outer.string(), 0)
    outer.done()
    check = inner.uint32()
    if inner.uint32() != check or inner.string() != _SSH_ED25519:
        raise ValueError("damaged, or not an Ed25519 key")
    public, pair = inner.string(), inner.string()
    inner.string()  # the comment
    return listed, public, pair, inner.rest()


class WireFields:
    """Reads SSH wire fields (uint32-length-prefixed strings); ValueError when they run
    past the end."""

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
        """The next big-endian 32-bit integer."""
        return int.from_bytes(self._take(4), "big")

    def string(self) -> bytes:
        """The next length-prefixed string."""
        return self._take(self.uint32())

    def rest(self) -> bytes:
        """Everything not read yet."""
        return self._take(len(self._data) - self._at)

    def done(self) -> None:
        """Raise ValueError when anything is left unread."""
        if self._at != len(self._data):
            raise ValueError("trailing bytes")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` holding ``data``, whole or not at all: written to a temp file and
    linked into place (never over another process's key), so no failure or crash leaves a
    torn key that later runs would refuse to replace. Raises FileExistsError when ``path``
    exists, LocalIOError when the disk fails (nothing is left behind)."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise write_failed(exc, path, after="no key file was made") from exc
    try:
        _write_all(fd, path, data, mode)
        _faults.io("rename", path)
        try:
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            _write_exclusive(path, data, mode)  # a file system without hard links
    except FileExistsError:
        raise
    except OSError as exc:
        raise write_failed(exc, path, after="no key file was made") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK})


def _write_all(fd: int, path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``fd`` (a new file for ``path``), fsync it and close it."""
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:  # a short write (a file size limit) is no error to os.write
            _faults.io("write", path)
            view = view[os.write(fd, view) :]
        _faults.io("fsync", path)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        _write_all(fd, path, data, mode)
    except BaseException:
        path.unlink(missing_ok=True)  # created just now, so ours: never a torn key
        raise


def _key_dir(home: Path) -> Path:
    """``home/keys`` (created 0700, ``home`` too), refusing when it already holds a key."""
    keydir = home / "keys"
    keydir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    os.chmod(keydir, 0o700)
    for name in (KEY_NAME, AGENT_NAME):
        if (keydir / name).exists():
            raise KeyFileError(
                f"a key already exists at {keydir / name}",
                hint="it was left untouched; move it away first to replace it",
            )
    return keydir


def _store(keydir: Path, name: str, data: bytes, mode: int, public: str, comment: str) -> Path:
    # The .pub first: the key file is what says a key exists, so it comes last.
    _fs.atomic_write(keydir / (KEY_NAME + ".pub"), f"{public} {comment}\n".encode(), 0o644)
    path = keydir / name
    _write_new(path, data, mode)
    _fs.fsync_dir(keydir, wrote=path)
    return path


def _keep_private(keydir: Path, private: Ed25519PrivateKey, comment: str) -> SigningKey:
    """Write ``private`` as the signing key file (OpenSSH format, 0600) and its .pub."""
    from cryptography.hazmat.primitives import serialization

    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = public_openssh(private.public_key())
    return SigningKey.from_private(_store(keydir, KEY_NAME, pem, 0o600, public, comment), private)


def generate(home: Path, *, comment: str) -> SigningKey:
    """Create a new key under ``home/keys`` (dir 0700, file 0600); never overwrites.

    Raises KeyFileError when a key already exists there.
    """
    return _keep_private(_key_dir(home), Ed25519PrivateKey.generate(), comment)


def import_file(home: Path, source: Path, *, comment: str) -> SigningKey:
    """Make the OpenSSH Ed25519 key in ``source`` the signing key under ``home``: an
    unencrypted private key is copied (0600); for a passphrase-protected one, which
    gitcoop cannot unlock without a prompt, ssh-agent must hold it and signs with it.

    Raises KeyFileError when ``source`` is missing, unsafe (readable by others, owned by
    someone else), not an Ed25519 key, or when a key exists under ``home`` already.
    """
    try:
        check_private_file(source)
        data = source.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {source}", hint="name a private key file") from None
    except (PermissionError, IsADirectoryError):
        raise KeyFileError(f"cannot read {source}", hint="name a private key file") from None
    locked = _locked_public(data)
    if locked is not None:
        return import_agent(home, public_openssh(locked), comment=comment, source=source)
    private = _private_key(source, data)
    return _keep_private(_key_dir(home), private, comment)


def import_agent(
    home: Path, public_text: str, *, comment: str, source: Path | None = None
) -> SigningKey:
    """Make the key ssh-agent holds for ``public_text`` the signing key under ``home``
    (only its public half is written). Raises KeyFileError when the agent lacks it."""
    from gitcoop import sshagent

    public = parse_public(public_text)
    try:
        held = _wire(public.public_bytes_raw()) in sshagent.identities()
        why = "ssh-agent does not hold it"
    except KeyFileError as exc:
        held, why = False, exc.message
    if not held:
        named = "the key" if source is None else f"{source} is protected by a passphrase: it"
        raise KeyFileError(
            f"{named} can only sign through ssh-agent (gitcoop signs during git push, "
            f"where it cannot ask for a passphrase), and {why}",
            hint=f"run: ssh-add {source or 'PRIVATE_KEY_FILE'}, then import again",
        )
    keydir = _key_dir(home)
    line = public_openssh(public)
    path = _store(keydir, AGENT_NAME, f"{line} {comment}\n".encode(), 0o644, line, comment)
    return _agent_key(path)


def _locked_public(data: bytes) -> Ed25519PublicKey | None:
    """The public key an encrypted OpenSSH Ed25519 private key file lists in the clear, or
    None for any other file."""
    blob = _pem_blob(data)
    if blob is None:
        return None
    try:
        outer = WireFields(blob, len(_MAGIC))
        cipher, _kdf, _kdf_options, count = (
            outer.string(),
            outer.string(),
            outer.string(),
            outer.uint32(),
        )
        if cipher == b"none" or count != 1:
            return None
        listed = WireFields(outer.string(), 0)
        if listed.string() != _SSH_ED25519:
            return None
        raw = listed.string()
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except ValueError:
        return None


def export_private(home: Path, dest: Path) -> Path:
    """Copy the private key file to ``dest`` (a new file, 0600), never into a work tree.

    Raises KeyFileError when the key lives in ssh-agent, ``dest`` exists, or ``dest`` lies
    inside a git work tree.
    """
    key = load(home)
    if key.in_agent:
        raise KeyFileError(
            "the signing key is held by ssh-agent: there is no key file to export",
            hint="copy the private key file you added to the agent instead",
        )
    root = work_tree_of(dest.parent)
    if root is not None and _inside(dest.parent, root):
        raise KeyFileError(
            f"{dest} is inside the work tree {root}, where it could be committed",
            hint="name a file outside any repository's work tree",
        )
    try:
        _write_new(dest, key.path.read_bytes(), 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{dest} exists", hint="it was left untouched; name a new file"
        ) from None
    except FileNotFoundError:
        raise KeyFileError(f"no directory {dest.parent}", hint="create it first") from None
    return dest


def work_tree_of(path: Path) -> Path | None:
    """The work tree of the repository holding ``path``, or None (none, or bare)."""
    from gitcoop.git import open_repo

    try:
        return open_repo(path).workdir
    except GitcoopError:
        return None


def load_or_create(home: Path, *, comment: str) -> tuple[SigningKey, bool]:
    """Return the user's key and whether it was just created."""
    keydir = home / "keys"
    if (keydir / KEY_NAME).exists() or (keydir / AGENT_NAME).exists():
        return load(home), False
    return generate(home, comment=comment), True
