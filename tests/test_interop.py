"""Our ledger's envelopes verify with securesystemslib's independent DSSE code."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]
from testing.tamper import read_ledger
from testing.world import World

from gitcoop.keys import parse_public


def test_real_ledger_envelopes_verify_with_securesystemslib(world: World) -> None:
    m = world.maintainer()
    m.commit_score("0.6")
    m.coop("evaluate")
    entries = read_ledger(m.repo)
    assert len(entries) == 3
    for data, _tree in entries:
        entry = json.loads(data)
        public = parse_public(entry["key"])
        assert isinstance(public, Ed25519PublicKey)
        keyid = entry["envelope"]["signatures"][0]["keyid"]
        key = SSlibKey.from_crypto(public, keyid=keyid)
        env = Envelope.from_dict(json.loads(json.dumps(entry["envelope"])))
        assert keyid in env.verify([key], 1)
        stmt = json.loads(env.payload)
        assert stmt["_type"].startswith(
            ("https://in-toto.io/Statement/v1", "https://gitcoop.dev/event/v1")
        )
