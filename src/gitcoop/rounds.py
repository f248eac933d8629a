"""Round closes: a maintainer fixes a round's result with a signed ``round-close`` entry,
which names the round, the challenge branch's commit it was closed at and the SHA-256 of
the credit result; from then on the round is read from the ledger up to that entry only.

A close counts when a maintainer or an evaluator of the trust list in force at its entry
signed it, at or after the round's end, and no close of that round counted before it; any
other close changes nothing and is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from gitcoop import trust
from gitcoop.challenge import Round

# A maintainer closes a round; so does the evaluator, which must when the round is decided
# on a private split (only it holds the data), and may from a scheduled CI job.
CLOSERS = (trust.MAINTAINER, trust.EVALUATOR)


class Close(NamedTuple):
    """A round-close entry as the ledger holds it."""

    seq: int
    keyid: str
    digest: str  # the challenge version it closes the round of
    name: str
    tip: str
    result: str  # SHA-256 hex of the canonical result
    time: str  # when it was signed

    def to_json(self) -> list[object]:
        """Plain JSON form (kept with the verified pin)."""
        return list(self)

    @classmethod
    def from_json(cls, obj: object) -> Close:
        """Parse; raises ValueError for anything else than ``to_json`` wrote."""
        if not isinstance(obj, list) or len(obj) != 7:
            raise ValueError("not a round close")
        seq, *texts = obj
        if not isinstance(seq, int) or not all(isinstance(t, str) for t in texts):
            raise ValueError("not a round close")
        return cls(seq, *texts)


def dumps(rows: Sequence[Close]) -> list[object]:
    """Closes as plain JSON."""
    return [r.to_json() for r in rows]


def loads(obj: object) -> list[Close] | None:
    """Closes from plain JSON, or None when it is not what ``dumps`` wrote."""
    if not isinstance(obj, list):
        return None
    try:
        return [Close.from_json(item) for item in obj]
    except ValueError:
        return None


class Found(NamedTuple):
    """The close that counts for a round (None: open), and why others do not."""

    close: Close | None
    ignored: list[str]


def find(closes: Sequence[Close], timeline: trust.Timeline, digest: str, r: Round) -> Found:
    """The close of round ``r`` under the challenge version ``digest`` that counts."""
    found: Close | None = None
    ignored = []
    for c in closes:
        if c.digest != digest or c.name != r.name:
            continue
        why = _why_not(c, timeline, r, found)
        if why is None:
            found = c
        else:
            ignored.append(f"round close #{c.seq} does not count: {why}")
    return Found(found, ignored)


def _why_not(c: Close, timeline: trust.Timeline, r: Round, before: Close | None) -> str | None:
    if before is not None:
        return f"round {r.name} was closed by entry #{before.seq}"
    if not any(timeline.holds(c.keyid, c.seq, role) for role in CLOSERS):
        return f"{c.keyid} is neither a maintainer nor an evaluator"
    if c.time < r.end:
        return f"signed at {c.time}, before the round ends ({r.end})"
    return None
