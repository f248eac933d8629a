"""Challenge versions: the genesis pins version 1, and each ``challenge-update`` entry a
maintainer signs pins the next one (a new metric, data or protected files). Attestations
under one version are a series of their own; credit reads one version at a time.

An update counts only when it replaces the version in force and a maintainer of the trust
list in force at its entry signed it; anything else is a broken ledger, because every
entry after an update is bound to the challenge it pins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from gitcoop import trust
from gitcoop.errors import VerificationError


class Version(NamedTuple):
    """A challenge version as the ledger set it."""

    seq: int  # the entry that pinned it (the genesis: 0)
    keyid: str  # who signed that entry
    digest: str
    tree: str  # the pinned snapshot
    replaces: int | None  # the seq of the version it replaced (the genesis: None)
    number: int  # 1 for the genesis, then one more per update

    def to_json(self) -> list[object]:
        """Plain JSON form (kept with the verified pin)."""
        return list(self)

    @classmethod
    def from_json(cls, obj: object) -> Version:
        """Parse; raises ValueError for anything else than ``to_json`` wrote."""
        if not isinstance(obj, list) or len(obj) != 6:
            raise ValueError("not a challenge version")
        seq, keyid, digest, tree, replaces, number = obj
        texts = (keyid, digest, tree)
        if not (isinstance(seq, int) and isinstance(number, int)) or not all(
            isinstance(t, str) for t in texts
        ):
            raise ValueError("not a challenge version")
        if replaces is not None and not isinstance(replaces, int):
            raise ValueError("not a challenge version")
        return cls(seq, keyid, digest, tree, replaces, number)


def dumps(rows: Sequence[Version]) -> list[object]:
    """Versions as plain JSON."""
    return [r.to_json() for r in rows]


def loads(obj: object) -> list[Version] | None:
    """Versions from plain JSON, or None when it is not what ``dumps`` wrote."""
    if not isinstance(obj, list):
        return None
    try:
        return [Version.from_json(item) for item in obj]
    except ValueError:
        return None


def settle(known: Sequence[Version], found: Sequence[Version], timeline: trust.Timeline) -> None:
    """Check the versions a verification ``found`` against those ``known`` before them;
    raises VerificationError naming the first update that does not count."""
    last = known[-1] if known else None
    for v in found:
        if last is None:  # the genesis
            last = v
            continue
        if v.replaces != last.seq or v.number != last.number + 1:
            raise VerificationError(
                f"ledger entry #{v.seq} pins challenge version {v.number} over the version "
                f"of entry #{v.replaces}, but version {last.number} (entry #{last.seq}) is "
                "in force: an old update replayed, or two made at once"
            )
        if not timeline.holds(v.keyid, v.seq, trust.MAINTAINER):
            raise VerificationError(
                f"ledger entry #{v.seq} changes the challenge, but {v.keyid} is not a "
                "maintainer in the trust list in force"
            )
        last = v


def numbered(rows: Sequence[Version], number: int | None) -> Version:
    """Version ``number`` (None: the one in force); raises LookupError when there is none."""
    if not rows:
        raise LookupError("no challenge version is known")
    if number is None:
        return rows[-1]
    for v in rows:
        if v.number == number:
            return v
    raise LookupError(f"there is no challenge version {number} (1 to {rows[-1].number})")
