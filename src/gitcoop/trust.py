"""The trust list in force: which keys a challenge knows, in which roles, from which entry on.

The list is the ledger's, never the file's. The genesis entry pins the first list and a
``trust-update`` entry replaces it whole, but only when a key that was a maintainer in the
list in force before it signed it. ``.coop/allowed_signers`` is where a list is written
and proposed; a commit editing it changes nothing until a maintainer accepts it.

Roles are OpenSSH ``namespaces=`` values on a key's line: ``gitcoop`` (contributor),
``gitcoop-evaluator`` (CI) and ``gitcoop-maintainer``. A line without the option is a
contributor's; the genesis signer is a maintainer whatever its line says, in every list
that names its key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gitcoop import keys
from gitcoop.errors import ConfigError, GitcoopError

CONTRIBUTOR = "contributor"
EVALUATOR = "evaluator"
MAINTAINER = "maintainer"
ROLE_NAMESPACES = {
    "gitcoop": CONTRIBUTOR,
    "gitcoop-evaluator": EVALUATOR,
    "gitcoop-maintainer": MAINTAINER,
}

_KEY = re.compile(r"(?:^|\s)(ssh-ed25519\s+[A-Za-z0-9+/=]+)")
_NAMESPACES = re.compile(r'(?:^|,)namespaces="([^"]*)"')


class TrustRow(NamedTuple):
    """A trust list some signed entry set: the genesis's, or a trust-update's."""

    seq: int
    keyid: str  # who signed the entry
    lines: tuple[str, ...]
    replaces: int | None  # the seq of the list the update was made against (genesis: None)

    def to_json(self) -> list[object]:
        """Plain JSON form (kept with the verified pin)."""
        return [self.seq, self.keyid, list(self.lines), self.replaces]

    @classmethod
    def from_json(cls, obj: object) -> TrustRow:
        """Parse; raises ValueError for anything else than ``to_json`` wrote."""
        if not (isinstance(obj, list) and len(obj) == 4 and isinstance(obj[0], int)):
            raise ValueError("not a trust row")
        seq, keyid, lines, replaces = obj
        if not isinstance(keyid, str) or not isinstance(lines, list):
            raise ValueError("not a trust row")
        if not all(isinstance(ln, str) for ln in lines):
            raise ValueError("not a trust row")
        if replaces is not None and not isinstance(replaces, int):
            raise ValueError("not a trust row")
        return cls(seq, keyid, tuple(lines), replaces)


@dataclass(frozen=True)
class Member:
    """A key the list names: its principal and roles."""

    keyid: str
    principal: str
    roles: frozenset[str]
    line: str
    valid_after: str | None = None  # "YYYYMMDDHHMMSS", UTC
    valid_before: str | None = None

    def has(self, role: str) -> bool:
        """Whether the key holds ``role``."""
        return role in self.roles

    @property
    def windowed(self) -> bool:
        """Whether the line limits when the key may sign."""
        return self.valid_after is not None or self.valid_before is not None

    def valid_at(self, time: str) -> bool:
        """Whether an entry signed at ``time`` (RFC 3339, as gitcoop writes it) falls in
        the key's validity window: after ``valid-after``, before ``valid-before``."""
        stamp = re.sub(r"[^0-9]", "", time)[:14].ljust(14, "0")
        after, before = self.valid_after, self.valid_before
        return (after is None or stamp >= after) and (before is None or stamp < before)

    def window(self) -> str:
        """The window as the line states it, for messages."""
        parts = []
        if self.valid_after is not None:
            parts.append(f"valid-after {self.valid_after}")
        if self.valid_before is not None:
            parts.append(f"valid-before {self.valid_before}")
        return ", ".join(parts)


def lines_of(text: str) -> tuple[str, ...]:
    """The list's lines in a file's text: comments and blank lines dropped."""
    return tuple(
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    )


def parse(lines: Iterable[str]) -> dict[str, Member]:
    """The Ed25519 keys the lines name, by fingerprint. Lines naming other key types or
    nothing readable are skipped: they can never sign a gitcoop entry."""
    out: dict[str, Member] = {}
    for line in lines:
        member = _member(line)
        if member is not None and member.keyid not in out:
            out[member.keyid] = member
    return out


def _member(line: str) -> Member | None:
    found = _KEY.search(line)
    if found is None or line.lstrip().startswith("#"):
        return None
    try:
        _, keyid = keys.public_with_fingerprint(found.group(1))
    except GitcoopError:
        return None
    before = line[: found.start(1)].split(None, 1)
    principal = before[0] if before else ""
    options = before[1] if len(before) > 1 else ""
    spaces = _NAMESPACES.search(options.strip())
    names = ["gitcoop"] if spaces is None else spaces.group(1).split(",")
    roles = frozenset(ROLE_NAMESPACES[n.strip()] for n in names if n.strip() in ROLE_NAMESPACES)
    window = _stamp(options, "valid-after"), _stamp(options, "valid-before")
    return Member(keyid, principal, roles, line, *window)


def _stamp(options: str, name: str) -> str | None:
    # OpenSSH reads a stamp without "Z" in the verifier's time zone; gitcoop reads every
    # stamp as UTC, so every machine judges an entry alike.
    found = re.search(rf'(?:^|,){name}="?([0-9]{{8}}(?:[0-9]{{4}}(?:[0-9]{{2}})?)?)Z?"?', options)
    return None if found is None else found.group(1).ljust(14, "0")


@dataclass(frozen=True)
class _Span:
    start: int  # first seq the key counts at
    end: int | None  # first seq it no longer does
    member: Member


class Timeline:
    """The lists in force along the ledger, replayed from its trust rows."""

    def __init__(self, rows: Iterable[TrustRow]) -> None:
        self.ignored: list[tuple[TrustRow, str]] = []  # updates that did not count, and why
        self._owner = ""  # the genesis signer's keyid
        self.lists: list[tuple[int, dict[str, Member]]] = []
        for row in sorted(rows, key=lambda r: r.seq):
            self._apply(row)
        self._spans = self._spans_by_key()
        # Keys that count for every entry they sign, whatever its seq: the usual case,
        # answered by one dictionary lookup an entry.
        self.always = {
            k: v[0].member
            for k, v in self._spans.items()
            if len(v) == 1 and v[0].end is None and not v[0].member.windowed
        }
        self.windowed = any(m.windowed for _, names in self.lists for m in names.values())

    def _apply(self, row: TrustRow) -> None:
        if not self.lists:
            self._owner = row.keyid
        elif not self._maintainer(row):
            self.ignored.append((row, f"{row.keyid} is not a maintainer in the list in force"))
            return
        elif row.replaces != self.lists[-1][0]:
            # An old update replayed, or two maintainers racing: the later one must accept
            # again, against the list now in force.
            why = f"it replaces the list of entry #{row.replaces}, not the one in force"
            self.ignored.append((row, f"{why} (#{self.lists[-1][0]})"))
            return
        self.lists.append((row.seq, self.members(row.lines)))

    def members(self, lines: Iterable[str]) -> dict[str, Member]:
        """The keys ``lines`` name, as a list in force would hold them: the genesis signer
        owns the challenge, a maintainer in every list that names its key (and in the
        genesis list even when no line does)."""
        members = parse(lines)
        owner = members.get(self._owner)
        if owner is not None or not self.lists:
            roles = (owner.roles if owner else frozenset()) | {MAINTAINER, CONTRIBUTOR}
            line, principal = (owner.line, owner.principal) if owner else ("", "")
            members[self._owner] = Member(self._owner, principal, frozenset(roles), line)
        return members

    def _maintainer(self, row: TrustRow) -> bool:
        return self.lists[-1][1].get(row.keyid, _NOBODY).has(MAINTAINER)

    def in_force(self) -> int:
        """The seq of the entry that set the list in force at the end (-1: none)."""
        return self.lists[-1][0] if self.lists else -1

    def _spans_by_key(self) -> dict[str, list[_Span]]:
        spans: dict[str, list[_Span]] = {}
        for i, (start, members) in enumerate(self.lists):
            end = self.lists[i + 1][0] if i + 1 < len(self.lists) else None
            for keyid, member in members.items():
                mine = spans.setdefault(keyid, [])
                if mine and mine[-1].end == start and mine[-1].member == member:
                    mine[-1] = _Span(mine[-1].start, end, member)
                else:
                    mine.append(_Span(start, end, member))
        return spans

    def member(self, keyid: str, seq: int) -> Member | None:
        """Who ``keyid`` was for the entry ``seq``, or None when it does not count there.

        A key counts where the list in force names it. An entry a key signed before the
        key was ever trusted counts from the update that first names it (a join accepted
        after its holder pushed); after a list drops a key, what it signs never counts.
        """
        spans = self._spans.get(keyid)
        if spans and seq < spans[0].start:
            return spans[0].member
        return self._in_force(keyid, seq)

    def holds(self, keyid: str, seq: int, role: str) -> bool:
        """Whether the list in force at entry ``seq`` gives ``keyid`` the ``role`` (strictly:
        no counting from a later update, as ``member`` does for what contributors signed)."""
        member = self._in_force(keyid, seq)
        return member is not None and member.has(role)

    def _in_force(self, keyid: str, seq: int) -> Member | None:
        for span in self._spans.get(keyid, ()):
            if span.start <= seq and (span.end is None or seq < span.end):
                return span.member
        return None

    def names(self) -> dict[str, Member]:
        """The list in force at the end."""
        return self.lists[-1][1] if self.lists else {}


_NOBODY = Member("", "", frozenset(), "")


def require(timeline: Timeline, keyid: str, what: str) -> None:
    """Raise ConfigError unless ``keyid`` is a maintainer in the list in force; ``what``
    names the act ("accepts joins")."""
    if not timeline.names().get(keyid, _NOBODY).has(MAINTAINER):
        raise ConfigError(
            f"your key {keyid} is not a maintainer's in this challenge's trust list, and "
            f"only a maintainer {what}",
            hint="ask a maintainer; git coop key show prints your key",
        )


def dumps(rows: Sequence[TrustRow]) -> list[object]:
    """Rows as plain JSON."""
    return [r.to_json() for r in rows]


def loads(obj: object) -> list[TrustRow] | None:
    """Rows from plain JSON, or None when it is not what ``dumps`` wrote."""
    if not isinstance(obj, list):
        return None
    try:
        return [TrustRow.from_json(item) for item in obj]
    except ValueError:
        return None
