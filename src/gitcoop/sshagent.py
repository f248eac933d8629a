"""Signing through ssh-agent, for keys whose private half stays in the agent.

An agent signs data with an ``ssh-ed25519`` key as plain Ed25519 over the data itself, so
its signature is exactly the one a key file would give: nothing else in gitcoop changes.
Only the two requests that needs are spoken (draft-miller-ssh-agent: list identities,
sign).
"""

from __future__ import annotations

import os
import socket
import struct

from gitcoop.errors import KeyFileError

SOCKET_ENV = "SSH_AUTH_SOCK"
_REQUEST_IDENTITIES, _IDENTITIES_ANSWER = 11, 12
_SIGN_REQUEST, _SIGN_RESPONSE = 13, 14
_MAX_REPLY = 256 * 1024  # an agent's answer is a few keys or one signature
_TIMEOUT = 30.0  # seconds; an agent may ask its user to confirm a signature


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _take_string(data: bytes, at: int) -> tuple[bytes, int]:
    if at + 4 > len(data):
        raise ValueError("truncated")
    (size,) = struct.unpack_from(">I", data, at)
    end = at + 4 + size
    if end > len(data):
        raise ValueError("truncated")
    return data[at + 4 : end], end


def _unavailable(problem: str) -> KeyFileError:
    return KeyFileError(
        f"ssh-agent {problem}",
        hint=f"start ssh-agent, add the key with ssh-add, and export {SOCKET_ENV}",
    )


def _call(kind: int, body: bytes) -> tuple[int, bytes]:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise _unavailable(f"is not running here ({SOCKET_ENV} is not set)")
    message = bytes([kind]) + body
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(_TIMEOUT)
            sock.connect(path)
            sock.sendall(struct.pack(">I", len(message)) + message)
            size = struct.unpack(">I", _read(sock, 4))[0]
            if not 0 < size <= _MAX_REPLY:
                raise _unavailable(f"sent a reply of {size} bytes")
            reply = _read(sock, size)
    except OSError as exc:
        raise _unavailable(f"cannot be reached at {path}: {exc.strerror or exc}") from None
    return reply[0], reply[1:]


def _read(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise OSError("the agent closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def identities() -> list[bytes]:
    """The public key blobs (SSH wire form) the agent holds."""
    kind, body = _call(_REQUEST_IDENTITIES, b"")
    if kind != _IDENTITIES_ANSWER:
        raise _unavailable("refused to list its keys")
    try:
        (count,) = struct.unpack_from(">I", body, 0)
        blobs, at = [], 4
        for _ in range(count):
            blob, at = _take_string(body, at)
            _comment, at = _take_string(body, at)
            blobs.append(blob)
    except (ValueError, struct.error):
        raise _unavailable("sent a malformed list of keys") from None
    return blobs


def sign(blob: bytes, data: bytes) -> bytes:
    """The raw 64-byte Ed25519 signature of ``data`` by the agent's key ``blob``."""
    kind, body = _call(_SIGN_REQUEST, _string(blob) + _string(data) + struct.pack(">I", 0))
    if kind != _SIGN_RESPONSE:
        raise _unavailable("refused to sign (is the key still added? see ssh-add -l)")
    try:
        signature, _ = _take_string(body, 0)
        algorithm, at = _take_string(signature, 0)
        raw, _ = _take_string(signature, at)
    except ValueError:
        raise _unavailable("sent a malformed signature") from None
    if algorithm != b"ssh-ed25519" or len(raw) != 64:
        raise _unavailable("sent a signature that is not Ed25519")
    return raw
