"""DSSE v1 envelopes: PAE, golden vector, tampering, parsing, securesystemslib interop."""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from securesystemslib import dsse as sslib_dsse
from securesystemslib import exceptions as sslib_exceptions

# securesystemslib re-exports these without __all__, which mypy --strict flags.
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from gitcoop import dsse
from gitcoop.dsse import (
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURES,
    Envelope,
    Signature,
    Signer,
    pae,
    sign,
    verify,
)
from gitcoop.errors import FormatError, VerificationError

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "dsse_envelope.json").read_text(encoding="utf-8")
)
SEED = bytes.fromhex(VECTOR["seed_hex"])
TYPE = "application/vnd.gitcoop.event+json"
PAYLOAD = b'{"hello":"world"}'


class SeedSigner:
    """Minimal Signer: an Ed25519 key from a fixed seed."""

    def __init__(self, seed: bytes = SEED, keyid: str = "test") -> None:
        self.keyid = keyid
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()


def _as_signer(signer: SeedSigner) -> Signer:
    # Static check that the test signer satisfies the Protocol.
    return signer


def _flip_bit(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture
def signer() -> SeedSigner:
    return SeedSigner()


@pytest.fixture
def envelope(signer: SeedSigner) -> Envelope:
    return sign(TYPE, PAYLOAD, _as_signer(signer))


# --- PAE -----------------------------------------------------------------------------


def test_pae_spec_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_of_non_ascii_type() -> None:
    # "é" is one character but two UTF-8 bytes.
    assert pae("t\u00e9", b"x") == b"DSSEv1 3 t\xc3\xa9 1 x"
    assert pae("\U0001f600", b"") == b"DSSEv1 4 \xf0\x9f\x98\x80 0 "


def test_pae_empty_body_and_binary_payload() -> None:
    assert pae("a", b"") == b"DSSEv1 1 a 0 "
    assert pae("a", b"\x00 \xff") == b"DSSEv1 1 a 3 \x00 \xff"


def test_pae_separates_type_and_payload_unambiguously() -> None:
    assert pae("a b", b"c") != pae("a", b"b c")


# --- golden vector -------------------------------------------------------------------


def test_golden_vector_key_is_rfc8032_test_1() -> None:
    assert _raw_public(SeedSigner().public_key()).hex() == VECTOR["public_key_hex"]


def test_golden_vector_pae() -> None:
    payload = VECTOR["payload"].encode("utf-8")
    assert pae(VECTOR["payloadType"], payload).hex() == VECTOR["pae_hex"]


def test_golden_vector_sign_is_exact() -> None:
    env = sign(VECTOR["payloadType"], VECTOR["payload"].encode("utf-8"), SeedSigner())
    assert env.to_json() == VECTOR["envelope"]


def test_golden_vector_verifies() -> None:
    env = Envelope.from_json(copy.deepcopy(VECTOR["envelope"]))
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(VECTOR["public_key_hex"]))
    assert verify(env, key, payload_type=VECTOR["payloadType"]) == VECTOR["payload"].encode()
    assert env.signatures[0].keyid == VECTOR["keyid"]


# --- sign / verify -------------------------------------------------------------------


def test_round_trip(envelope: Envelope, signer: SeedSigner) -> None:
    parsed = Envelope.from_json(json.loads(json.dumps(envelope.to_json())))
    assert parsed == envelope
    assert verify(parsed, signer.public_key(), payload_type=TYPE) == PAYLOAD


def test_to_json_shape(envelope: Envelope) -> None:
    obj = envelope.to_json()
    assert obj["payload"] == base64.standard_b64encode(PAYLOAD).decode()
    assert obj["payloadType"] == TYPE
    assert [sorted(s) for s in obj["signatures"]] == [["keyid", "sig"]]
    assert obj["signatures"][0]["keyid"] == "test"
    assert len(base64.b64decode(obj["signatures"][0]["sig"], validate=True)) == 64


def test_sign_refuses_empty_payload_type(signer: SeedSigner) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        sign("", PAYLOAD, signer)


def test_sign_refuses_oversized_payload(signer: SeedSigner) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        sign(TYPE, b"x" * (MAX_PAYLOAD_BYTES + 1), signer)


def test_sign_and_verify_empty_payload(signer: SeedSigner) -> None:
    env = Envelope.from_json(sign(TYPE, b"", signer).to_json())
    assert verify(env, signer.public_key(), payload_type=TYPE) == b""


@pytest.mark.parametrize("index", [0, 5, len(PAYLOAD) - 1])
def test_payload_bit_flip_rejected(envelope: Envelope, signer: SeedSigner, index: int) -> None:
    tampered = envelope._replace(payload=_flip_bit(envelope.payload, index))
    with pytest.raises(VerificationError, match="bad signature"):
        verify(tampered, signer.public_key(), payload_type=TYPE)


def test_payload_truncation_and_extension_rejected(envelope: Envelope, signer: SeedSigner) -> None:
    for payload in (PAYLOAD[:-1], PAYLOAD + b" ", b""):
        with pytest.raises(VerificationError, match="bad signature"):
            verify(envelope._replace(payload=payload), signer.public_key(), payload_type=TYPE)


def test_payload_type_bit_flip_rejected(envelope: Envelope, signer: SeedSigner) -> None:
    # Flip a bit of the type but ask for the flipped type: the signature must still fail.
    flipped = _flip_bit(TYPE.encode(), 3, 1).decode()
    tampered = envelope._replace(payload_type=flipped)
    with pytest.raises(VerificationError, match="bad signature"):
        verify(tampered, signer.public_key(), payload_type=flipped)


@pytest.mark.parametrize(("index", "bit"), [(0, 0), (31, 7), (32, 0), (63, 6), (63, 7)])
def test_signature_bit_flip_rejected(
    envelope: Envelope, signer: SeedSigner, index: int, bit: int
) -> None:
    bad = Signature("test", _flip_bit(envelope.signatures[0].sig, index, bit))
    with pytest.raises(VerificationError, match="bad signature"):
        verify(envelope._replace(signatures=(bad,)), signer.public_key(), payload_type=TYPE)


def test_public_key_bit_flip_rejected(envelope: Envelope, signer: SeedSigner) -> None:
    raw = _raw_public(signer.public_key())
    tried = 0
    for index in range(len(raw)):
        try:
            other = Ed25519PublicKey.from_public_bytes(_flip_bit(raw, index))
        except ValueError:
            continue  # not every 32-byte string is a valid point encoding
        tried += 1
        with pytest.raises(VerificationError, match="bad signature"):
            verify(envelope, other, payload_type=TYPE)
    assert tried >= 8


def test_other_key_rejected(envelope: Envelope) -> None:
    stranger = SeedSigner(bytes(32)).public_key()
    with pytest.raises(VerificationError, match="bad signature"):
        verify(envelope, stranger, payload_type=TYPE)


def test_type_confusion_rejected(signer: SeedSigner) -> None:
    env = sign("application/vnd.in-toto+json", PAYLOAD, signer)
    with pytest.raises(VerificationError, match="unexpected payload type") as info:
        verify(env, signer.public_key(), payload_type=TYPE)
    assert "application/vnd.in-toto+json" in str(info.value)


def test_keyid_is_not_trusted(envelope: Envelope, signer: SeedSigner) -> None:
    good = envelope.signatures[0]
    renamed = envelope._replace(signatures=(good._replace(keyid="someone-else"),))
    assert verify(renamed, signer.public_key(), payload_type=TYPE) == PAYLOAD
    forged = Signature("test", _flip_bit(good.sig, 10))
    with pytest.raises(VerificationError, match="bad signature"):
        verify(envelope._replace(signatures=(forged,)), signer.public_key(), payload_type=TYPE)


def test_any_valid_signature_suffices(envelope: Envelope, signer: SeedSigner) -> None:
    junk = Signature("test", b"\x00" * 64)
    env = envelope._replace(signatures=(junk, Signature("x", b"\x01"), envelope.signatures[0]))
    assert verify(env, signer.public_key(), payload_type=TYPE) == PAYLOAD


@pytest.mark.parametrize("length", [1, 63, 65, 128])
def test_wrong_length_signature_fails_cleanly(
    envelope: Envelope, signer: SeedSigner, length: int
) -> None:
    sig = (envelope.signatures[0].sig * 3)[:length]
    with pytest.raises(VerificationError, match="bad signature"):
        verify(
            envelope._replace(signatures=(Signature("test", sig),)),
            signer.public_key(),
            payload_type=TYPE,
        )


def test_no_signatures_fails(envelope: Envelope, signer: SeedSigner) -> None:
    with pytest.raises(VerificationError, match="bad signature"):
        verify(envelope._replace(signatures=()), signer.public_key(), payload_type=TYPE)


# --- from_json -----------------------------------------------------------------------


def _valid_json() -> dict[str, Any]:
    return copy.deepcopy(VECTOR["envelope"])


def _without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


def _with_sig(**fields: Any) -> dict[str, Any]:
    obj = _valid_json()
    obj["signatures"] = [fields]
    return obj


GOOD_SIG = VECTOR["envelope"]["signatures"][0]["sig"]


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (None, "DSSE envelope: must be an object"),
        ([], "DSSE envelope: must be an object"),
        ("{}", "DSSE envelope: must be an object"),
        (_without(_valid_json(), "payload"), "'payload': missing"),
        (_without(_valid_json(), "payloadType"), "'payloadType': missing"),
        (_without(_valid_json(), "signatures"), "'signatures': missing"),
        ({**_valid_json(), "payload": 12}, "'payload': must be a string"),
        ({**_valid_json(), "payload": None}, "'payload': must be a string"),
        ({**_valid_json(), "payloadType": ""}, "'payloadType': must not be empty"),
        ({**_valid_json(), "payloadType": ["x"]}, "'payloadType': must be a string"),
        ({**_valid_json(), "payloadType": "a\ud800"}, "'payloadType': is not valid Unicode"),
        ({**_valid_json(), "signatures": []}, "'signatures': must not be empty"),
        ({**_valid_json(), "signatures": {}}, "'signatures': must be a list"),
        ({**_valid_json(), "signatures": "sig"}, "'signatures': must be a list"),
        ({**_valid_json(), "signatures": ["sig"]}, "'signatures[0]': must be an object"),
        ({**_valid_json(), "extra": 1}, "'extra': unknown field"),
        (_with_sig(keyid="k"), "'signatures[0].sig': missing"),
        (_with_sig(keyid="k", sig=""), "'signatures[0].sig': must not be empty"),
        (_with_sig(keyid="k", sig="===="), "'signatures[0].sig': invalid base64"),
        (_with_sig(keyid="k", sig=None), "'signatures[0].sig': must be a string"),
        (_with_sig(keyid=7, sig=GOOD_SIG), "'signatures[0].keyid': must be a string"),
        (_with_sig(keyid=None, sig=GOOD_SIG), "'signatures[0].keyid': must be a string"),
        (_with_sig(sig=GOOD_SIG, cert="x"), "'signatures[0].cert': unknown field"),
        (_with_sig(sig="A" * 2000), "'signatures[0].sig': decodes to more than"),
        (
            {**_valid_json(), "signatures": [{"sig": GOOD_SIG}] * (MAX_SIGNATURES + 1)},
            "'signatures': more than 16 entries",
        ),
    ],
)
def test_from_json_rejects(obj: object, field: str) -> None:
    with pytest.raises(FormatError, match=re.escape(field)):
        Envelope.from_json(obj)


@pytest.mark.parametrize(
    "payload",
    [
        "e30",  # fine as unpadded...
        "e30=",  # ...and padded
    ],
)
def test_from_json_accepts_padding_variants(payload: str) -> None:
    env = Envelope.from_json({**_valid_json(), "payload": payload})
    assert env.payload == b"{}"


@pytest.mark.parametrize(
    "payload",
    [
        "e30==",  # too much padding
        "e3=0",  # padding in the middle
        "e",  # one leftover character is never valid
        "e30 ",  # whitespace
        "e3\n0",
        "e30*",  # not in either alphabet
        "+_8=",  # both alphabets mixed
        "e31=",  # non-zero trailing bits: same bytes as "e30="
        "QR==",  # same for a one-byte value ("QQ==")
        "e30A=",  # a whole group, then padding strict decoding lets through
    ],
)
def test_from_json_rejects_bad_base64(payload: str) -> None:
    with pytest.raises(FormatError, match=r"'payload'.*base64"):
        Envelope.from_json({**_valid_json(), "payload": payload})


_PIECES = ["AQgw", "e30=", "e31=", "QQ==", "QR==", "Bh+/", "A", "g", "h", "=", "==", " ", "-"]


def _canonical_or_none(text: str) -> bytes | None:
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    return data if base64.b64encode(data).decode() == text else None


def test_fast_base64_accepts_exactly_the_canonical_text() -> None:
    # The fast decoder proves canonical form without encoding again: over every text of
    # up to three pieces it must agree with "decodes strictly, and encodes back the same".
    texts = ["".join(p) for n in range(4) for p in itertools.product(_PIECES, repeat=n)]
    differ = [t for t in texts if dsse._b64decode_padded(t, 1 << 20) != _canonical_or_none(t)]
    assert differ == []
    assert sum(_canonical_or_none(t) is not None for t in texts) > 30  # both sides tried


def test_from_json_accepts_url_safe_base64(signer: SeedSigner) -> None:
    # These bytes encode with "+" and "/" in the standard alphabet.
    payload = b"\xfb\xff\xbf" * 5
    env = sign(TYPE, payload, signer)
    obj = env.to_json()
    assert "+" in obj["payload"] and "/" in obj["payload"]
    obj["payload"] = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    obj["signatures"][0]["sig"] = base64.urlsafe_b64encode(env.signatures[0].sig).decode()
    parsed = Envelope.from_json(obj)
    assert parsed == env
    assert verify(parsed, signer.public_key(), payload_type=TYPE) == payload


def test_from_json_keyid_is_optional(envelope: Envelope) -> None:
    obj = envelope.to_json()
    del obj["signatures"][0]["keyid"]
    parsed = Envelope.from_json(obj)
    assert parsed.signatures[0].keyid == ""
    assert parsed.signatures[0].sig == envelope.signatures[0].sig


def test_from_json_payload_size_limit() -> None:
    at_limit = base64.b64encode(b"\x00" * MAX_PAYLOAD_BYTES).decode()
    assert len(Envelope.from_json({**_valid_json(), "payload": at_limit}).payload) == (
        MAX_PAYLOAD_BYTES
    )
    over = base64.b64encode(b"\x00" * (MAX_PAYLOAD_BYTES + 1)).decode()
    with pytest.raises(FormatError, match="'payload': decodes to more than 1048576 bytes"):
        Envelope.from_json({**_valid_json(), "payload": over})


def test_from_json_does_not_mutate_input() -> None:
    obj = _valid_json()
    Envelope.from_json(obj)
    assert obj == VECTOR["envelope"]


# --- interop with securesystemslib ---------------------------------------------------


def test_our_envelope_verifies_with_securesystemslib(
    envelope: Envelope, signer: SeedSigner
) -> None:
    key = SSlibKey.from_crypto(signer.public_key(), keyid="test")
    theirs = sslib_dsse.Envelope.from_dict(envelope.to_json())
    accepted = theirs.verify([key], 1)
    assert list(accepted) == ["test"]
    assert theirs.payload == PAYLOAD
    assert theirs.pae() == pae(TYPE, PAYLOAD)


def test_securesystemslib_rejects_our_tampered_envelope(
    envelope: Envelope, signer: SeedSigner
) -> None:
    key = SSlibKey.from_crypto(signer.public_key(), keyid="test")
    tampered = envelope._replace(payload=_flip_bit(PAYLOAD, 2))
    theirs = sslib_dsse.Envelope.from_dict(tampered.to_json())
    with pytest.raises(sslib_exceptions.VerificationError, match="threshold"):
        theirs.verify([key], 1)


def test_securesystemslib_envelope_verifies_with_ours() -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = private.public_key()
    crypto_signer = CryptoSigner(private, SSlibKey.from_crypto(public, keyid="sslib"))
    theirs = sslib_dsse.Envelope(PAYLOAD, TYPE, {})
    theirs.sign(crypto_signer)
    ours = Envelope.from_json(json.loads(json.dumps(theirs.to_dict())))
    assert ours.signatures[0].keyid == "sslib"
    assert verify(ours, public, payload_type=TYPE) == PAYLOAD
    with pytest.raises(VerificationError, match="unexpected payload type"):
        verify(ours, public, payload_type="application/other")
