"""``git coop round close NAME``: fix a round's result with a signed ``round-close`` entry
(maintainers, once the round has ended)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import _faults, constants, ledger, private, records, rounds, trust
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.credit import CreditReport, credit, result_digest
from gitcoop.errors import ConfigError, LedgerConflict
from gitcoop.keys import SigningKey
from gitcoop.session import Session, identity, open_session, signer_for


@dataclass(frozen=True)
class Closed:
    """What closing a round recorded."""

    name: str
    seq: int  # the round-close entry
    tip: str
    result: str
    credit: CreditReport
    revealed: int = 0  # private-split scores appended before the close


def close(
    path: str | Path = ".",
    name: str = "",
    *,
    private_data: Path | None = None,
    key: SigningKey | None = None,
) -> Closed:
    """Credit round ``name`` as the ledger and the challenge branch stand now, and append
    a ``round-close`` entry that fixes it; for a challenge with a private split, first
    score the history on it (the key must be an evaluator's) from ``private_data``.
    Signs with ``key`` (an evaluator's, in CI) or else the user's key. Raises ConfigError
    for a round that does not exist, has not ended or is closed already, or a key that may
    not close it."""
    verified = verify_mod.verify(path)
    s = open_session(path)
    if key is None:
        key, signer, _ = signer_for(s.repo, s.repo.workdir)
    else:
        name_, email = identity(s.repo)
        signer = records.Signer(key.keyid, email, name_)
    timeline = trust.Timeline(verified.trust)
    ch = s.pinned.challenge
    _may_close(timeline, key.keyid, private=ch.private is not None)
    r = ch.round(name)
    now = records.now()
    if now < r.end:
        raise ConfigError(
            f"round {name} ends at {r.end}; it is still open (now {now})",
            hint="close it once it has ended",
        )
    for v in verified.versions:
        done = rounds.find(verified.closes, timeline, v.digest, r).close
        if done is not None:
            raise ConfigError(
                f"round {name} was closed by ledger entry #{done.seq}",
                hint=f"git coop credit --round {name} shows its result",
            )
    tip = s.repo.resolve(f"refs/heads/{ch.branch}")
    revealed = 0
    if ch.private is not None:
        revealed = _reveal(s, verified, key, signer, tip, private_data)
        _faults.hit("round", "after-reveal")  # private scores appended, no round-close yet
        s = open_session(path)
    head = s.head
    report = credit(path, round_name=name, rev=tip)
    pin = verify_mod.read_pin(s.repo)
    if pin is None or pin.seq != head.entry.seq or report.version != _in_force(verified):
        raise LedgerConflict(
            "the ledger moved while the round was credited", hint="run the command again"
        )
    result = result_digest(report.result())
    body = records.round_close_body(head.entry.challenge, head.origin, name, tip, result)
    event = records.Event("round-close", body, signer, now)
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    _faults.hit("round", "after-sign")  # the result fixed and signed, not appended
    appended = ledger.append(s.repo, "round-close", key.public_openssh, envelope, after=head)
    return Closed(name, appended.entry.seq, tip, result, report, revealed)


def _may_close(timeline: trust.Timeline, keyid: str, *, private: bool) -> None:
    member = timeline.names().get(keyid)
    roles = frozenset() if member is None else member.roles
    if private and trust.EVALUATOR not in roles:
        raise ConfigError(
            f"this round is decided on the private split, which only an evaluator scores; "
            f"{keyid} is not one",
            hint="close it in CI with the evaluator key and the private data",
        )
    if not roles & set(rounds.CLOSERS):
        raise ConfigError(
            f"{keyid} is neither a maintainer nor an evaluator: it cannot close rounds",
            hint="ask a maintainer of the challenge",
        )


def _reveal(
    s: Session,
    verified: verify_mod.Report,
    key: SigningKey,
    signer: records.Signer,
    tip: str,
    given: Path | None,
) -> int:
    known = private.known(s, verified)
    todo = private.missing(s, tip, known)
    if not todo:  # revealed already (in CI: by ci score --split private, then ci sign)
        return 0
    return private.reveal(s, key, signer, todo, private.data_file(s.pinned.challenge, given), known)


def _in_force(verified: verify_mod.Report) -> int:
    return verified.versions[-1].number if verified.versions else 1
