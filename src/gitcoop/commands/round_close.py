"""``git coop round close NAME``: fix a round's result with a signed ``round-close`` entry
(maintainers, once the round has ended)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import constants, ledger, records, rounds, trust
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.credit import CreditReport, credit, result_digest
from gitcoop.errors import ConfigError, LedgerConflict
from gitcoop.session import open_session, signer_for


@dataclass(frozen=True)
class Closed:
    """What closing a round recorded."""

    name: str
    seq: int  # the round-close entry
    tip: str
    result: str
    credit: CreditReport


def close(path: str | Path = ".", name: str = "") -> Closed:
    """Credit round ``name`` as the ledger and the challenge branch stand now, and append
    a ``round-close`` entry that fixes it. Raises ConfigError for a round that does not
    exist, has not ended or is closed already, or a key that is not a maintainer's."""
    verified = verify_mod.verify(path)
    s = open_session(path)
    head = s.head
    key, signer, _ = signer_for(s.repo, s.repo.workdir)
    timeline = trust.Timeline(verified.trust)
    trust.require(timeline, key.keyid, "closes rounds")
    ch = s.pinned.challenge
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
    appended = ledger.append(s.repo, "round-close", key.public_openssh, envelope, after=head)
    return Closed(name, appended.entry.seq, tip, result, report)


def _in_force(verified: verify_mod.Report) -> int:
    return verified.versions[-1].number if verified.versions else 1
