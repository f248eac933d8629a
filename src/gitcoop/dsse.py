"""DSSE v1 envelopes (Dead Simple Signing Envelope) signed with Ed25519.

A signature covers the pre-authentication encoding (PAE) of the payload type and the
payload, never the JSON envelope, so re-serialising an envelope cannot change what
was signed, and a signature for one payload type cannot be replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import string
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gitcoop.errors import FormatError, VerificationError

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_SIGNATURES",
    "Envelope",
    "Signature",
    "Signer",
    "pae",
    "sign",
    "verify",
]

MAX_PAYLOAD_BYTES = 1 << 20
MAX_SIGNATURES = 16
# Far above any real signature (RSA-4096 is 512 bytes); bounds work on hostile input.
_MAX_SIG_BYTES = 1024
_ED25519_SIG_BYTES = 64

_ENVELOPE_FIELDS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_FIELDS = frozenset({"keyid", "sig"})
_REQUIRED_SIGNATURE_FIELDS = frozenset({"sig"})

_B64_STANDARD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URLSAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return the DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``.

    ``b"DSSEv1 <len(type)> <type> <len(payload)> <payload>"`` with lengths in bytes,
    written as ASCII decimal.

    Raises:
        UnicodeEncodeError: ``payload_type`` holds a lone surrogate (not UTF-8 encodable).
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


class Signer(Protocol):
    """Anything that can sign bytes under a key it names.

    ``keyid`` is a hint for the verifier to pick a key; it is never trusted.
    """

    @property
    def keyid(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """Return the signature over ``data``."""
        ...


class Signature(NamedTuple):
    """One DSSE signature: an untrusted key hint and the raw signature bytes."""

    keyid: str
    sig: bytes


class Envelope(NamedTuple):
    """A DSSE envelope: the payload, its type, and one or more signatures over the PAE."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the DSSE JSON form, binary fields as padded standard base64."""
        return {
            "payload": _b64encode(self.payload),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": signature.keyid, "sig": _b64encode(signature.sig)}
                for signature in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, obj: object) -> Envelope:
        """Return the envelope held in the parsed JSON value ``obj``, validated strictly.

        Base64 fields may use the standard or URL-safe alphabet, padded or not.
        Signatures are not checked here: call ``verify``.

        Raises:
            FormatError: naming the offending field, when ``obj`` is not an object,
                a field is missing, unknown or of the wrong type, ``payloadType`` or
                ``signatures`` is empty, there are more than ``MAX_SIGNATURES``
                signatures, a ``sig`` is empty, base64 is invalid, or the decoded
                payload exceeds ``MAX_PAYLOAD_BYTES``.
        """
        return _usual_envelope(obj) or cls.parse(obj)

    @classmethod
    def parse(cls, obj: object) -> Envelope:
        """``from_json`` the general way, for every form it accepts."""
        fields = _require_object(obj, None, _ENVELOPE_FIELDS, _ENVELOPE_FIELDS)
        text = _require_str(fields, "payload", decoded_max=MAX_PAYLOAD_BYTES)
        payload = _b64decode(text, "payload", MAX_PAYLOAD_BYTES)
        payload_type = _require_str(fields, "payloadType", nonempty=True)
        return cls(payload_type, payload, _signatures_from_json(fields["signatures"]))


def _usual_envelope(obj: object) -> Envelope | None:
    """The envelope in the form gitcoop writes (one signature with a key id, ASCII text,
    padded standard base64), checked in a few steps; None sends it the general way."""
    if type(obj) is not dict or len(obj) != 3:
        return None
    payload, payload_type, sigs = obj.get("payload"), obj.get("payloadType"), obj.get("signatures")
    if type(sigs) is not list or len(sigs) != 1 or type(sigs[0]) is not dict or len(sigs[0]) != 2:
        return None
    keyid, sig_text = sigs[0].get("keyid"), sigs[0].get("sig")
    if type(payload_type) is not str or not payload_type or not payload_type.isascii():
        return None
    if type(keyid) is not str or not keyid.isascii() or type(sig_text) is not str:
        return None
    data = _b64decode_padded(payload, MAX_PAYLOAD_BYTES) if type(payload) is str else None
    sig = _b64decode_padded(sig_text, _MAX_SIG_BYTES) if sig_text else None
    if data is None or sig is None:
        return None
    return Envelope(payload_type, data, (Signature(keyid, sig),))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _field_error(field: str | None, problem: str) -> FormatError:
    if field is None:
        return FormatError(f"DSSE envelope: {problem}")
    return FormatError(f"DSSE envelope field {field!r}: {problem}")


def _require_object(
    obj: object, field: str | None, allowed: frozenset[str], required: frozenset[str]
) -> dict[str, object]:
    """Return ``obj`` as a dict whose keys are all ``allowed`` and include ``required``."""
    if not isinstance(obj, dict):
        raise _field_error(field, f"must be an object, not {type(obj).__name__}")
    prefix = "" if field is None else f"{field}."
    # Unknown fields are not covered by any signature: refusing them keeps one
    # envelope from having many byte forms in the ledger.
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        raise _field_error(f"{prefix}{unknown[0]}", "unknown field")
    missing = sorted(required - obj.keys())
    if missing:
        raise _field_error(f"{prefix}{missing[0]}", "missing")
    return obj


def _require_str(
    fields: dict[str, object],
    name: str,
    *,
    label: str | None = None,
    nonempty: bool = False,
    decoded_max: int | None = None,
) -> str:
    """The string field ``name``; with ``decoded_max``, base64 text too long to decode to
    at most that many bytes is refused before anything is copied."""
    label = label or name
    value = fields[name]
    if not isinstance(value, str):
        raise _field_error(label, f"must be a string, not {type(value).__name__}")
    if decoded_max is not None and len(value) > _encoded_bound(decoded_max):
        raise _field_error(label, f"decodes to more than {decoded_max} bytes")
    if nonempty and not value:
        raise _field_error(label, "must not be empty")
    try:
        # A lone surrogate (possible after json.loads) could never reach PAE as UTF-8.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _field_error(label, "is not valid Unicode") from None
    return value


def _signatures_from_json(raw: object) -> tuple[Signature, ...]:
    if not isinstance(raw, list):
        raise _field_error("signatures", f"must be a list, not {type(raw).__name__}")
    if not raw:
        raise _field_error("signatures", "must not be empty")
    if len(raw) > MAX_SIGNATURES:
        raise _field_error("signatures", f"more than {MAX_SIGNATURES} entries")
    return tuple(_signature_from_json(item, f"signatures[{i}]") for i, item in enumerate(raw))


def _signature_from_json(raw: object, field: str) -> Signature:
    fields = _require_object(raw, field, _SIGNATURE_FIELDS, _REQUIRED_SIGNATURE_FIELDS)
    sig_text = _require_str(
        fields, "sig", label=f"{field}.sig", nonempty=True, decoded_max=_MAX_SIG_BYTES
    )
    # Non-empty valid base64 always decodes to at least one byte.
    sig = _b64decode(sig_text, f"{field}.sig", _MAX_SIG_BYTES)
    keyid = _require_str(fields, "keyid", label=f"{field}.keyid") if "keyid" in fields else ""
    return Signature(keyid=keyid, sig=sig)


_B64_VALUES = {
    c: i
    for i, c in enumerate(string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/")
}


def _b64decode_padded(text: str, max_bytes: int) -> bytes | None:
    # What gitcoop itself writes: standard alphabet, padded; anything else takes the
    # careful path below. Strict decoding in C refuses other characters and misplaced
    # padding; the length and the unused low bits of the last character before the
    # padding (zero in the one canonical text) are all it leaves to check.
    if len(text) > _encoded_bound(max_bytes) or len(text) % 4 or not text.isascii():
        return None
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    if len(data) > max_bytes or _unused_bits(text):
        return None
    return data


def _unused_bits(text: str) -> int:
    if text[-2:] == "==":
        return _B64_VALUES.get(text[-3], 1) & 0b1111
    if text[-1:] == "=":
        return _B64_VALUES.get(text[-2], 1) & 0b11
    return 0


def _encoded_bound(max_bytes: int) -> int:
    """The longest base64 text (padded or not) that can decode to ``max_bytes`` bytes."""
    return (max_bytes * 4 + 2) // 3 + 2


def _b64decode(text: str, field: str, max_bytes: int) -> bytes:
    """Decode standard or URL-safe base64, padded or not, refusing every other form."""
    # A cheap bound before any scanning or allocation; the exact limit is checked on the
    # decoded bytes below.
    if len(text) > _encoded_bound(max_bytes):
        raise _field_error(field, f"decodes to more than {max_bytes} bytes")
    fast = _b64decode_padded(text, max_bytes)
    if fast is not None:
        return fast
    if _B64_STANDARD.fullmatch(text):
        standard = text
    elif _B64_URLSAFE.fullmatch(text):
        standard = text.translate(_URLSAFE_TO_STANDARD)
    else:
        raise _field_error(field, "invalid base64")
    body = standard.rstrip("=")
    # Padding, when present, must complete a 4-character group; 1 leftover is never valid.
    if (body != standard and len(standard) % 4) or len(body) % 4 == 1:
        raise _field_error(field, "invalid base64 length")
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        raise _field_error(field, "invalid base64") from None
    # Non-zero unused trailing bits would give the same bytes several encodings.
    if _b64encode(data).rstrip("=") != body:
        raise _field_error(field, "non-canonical base64 (trailing bits set)")
    if len(data) > max_bytes:
        raise _field_error(field, f"decodes to more than {max_bytes} bytes")
    return data


def sign(payload_type: str, payload: bytes, signer: Signer) -> Envelope:
    """Return an envelope holding ``payload`` and ``signer``'s signature over its PAE.

    Raises:
        ValueError: ``payload_type`` is empty or not UTF-8 encodable, ``payload``
            exceeds ``MAX_PAYLOAD_BYTES`` (``Envelope.from_json`` would refuse it),
            or the signer returned an empty signature.
    """
    if not payload_type:
        raise ValueError("DSSE payload type must not be empty")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"DSSE payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    sig = signer.sign(pae(payload_type, payload))
    if not sig:
        raise ValueError("signer returned an empty signature")
    return Envelope(payload_type, bytes(payload), (Signature(signer.keyid, bytes(sig)),))


def _verifies(key: Ed25519PublicKey, sig: bytes, message: bytes) -> bool:
    # Checked here so a malformed signature is just "not this one", never an exception.
    if len(sig) != _ED25519_SIG_BYTES:
        return False
    crypto_sign_open, bad_signature = _sodium()
    try:
        crypto_sign_open(sig + message, key.public_bytes_raw())
    except (bad_signature, ValueError):
        return False
    return True


def preload() -> None:
    """Load the signature library now: processes forked afterwards share it instead of
    each loading its own."""
    _sodium()


@functools.cache
def _sodium() -> tuple[Callable[[bytes, bytes], bytes], type[Exception]]:
    # libsodium verifies in about half the time of OpenSSL here, and is the stricter of
    # the two (canonical S, no small-order keys): see docs/decisions/0005. Loaded on first
    # use, and once: the import is not free and verify calls this per entry.
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    return crypto_sign_open, BadSignatureError


def verify(envelope: Envelope, key: Ed25519PublicKey, *, payload_type: str) -> bytes:
    """Return ``envelope.payload`` once a signature over its PAE verifies under ``key``.

    Any one valid signature suffices. Key ids are ignored: they are unauthenticated
    hints, so matching on them would add no security.

    Raises:
        VerificationError: "unexpected payload type ..." when the envelope's type is
            not ``payload_type``; "bad signature ..." when no signature verifies.
    """
    # The type is inside the PAE too; checking it first just gives the clearer error.
    if envelope.payload_type != payload_type:
        raise VerificationError(
            f"unexpected payload type {envelope.payload_type!r}",
            hint=f"expected {payload_type!r}",
        )
    message = pae(envelope.payload_type, envelope.payload)
    sigs = envelope.signatures
    # One signature is the usual case: checked without a generator per envelope.
    if (sigs and _verifies(key, sigs[0].sig, message)) or any(
        _verifies(key, s.sig, message) for s in sigs[1:]
    ):
        return envelope.payload
    raise VerificationError(
        f"bad signature: none of {len(envelope.signatures)} signature(s) verifies"
        " under the given key"
    )
