"""``git coop credit``: who improved the challenge and by how much, from a verified ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from gitcoop import (
    canonical,
    commitsig,
    history,
    keys,
    ledger,
    pinned,
    private,
    rounds,
    scoring,
    trust,
    versions,
    vindex,
)
from gitcoop.challenge import ASSURANCE_LEVELS, Challenge, Round
from gitcoop.commands import verify as verify_mod
from gitcoop.decimals import decimal_text
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.git import Repo
from gitcoop.session import Session, open_session


@dataclass
class CreditReport:
    """The credit table plus what the table alone does not say."""

    challenge: str
    direction: str
    credit: scoring.Credit
    notes: list[str] = field(default_factory=list)
    version: int = 1  # the challenge version credited
    mainline: list[str] = field(default_factory=list)  # oldest first, from the baseline
    scores: dict[str, scoring.Scored] = field(default_factory=dict)  # what counted
    assurance: dict[str, str] = field(default_factory=dict)
    round: RoundState | None = None
    rules: Challenge | None = None  # the challenge version credited
    members: dict[str, trust.Member] = field(default_factory=dict)  # the list in force then

    def to_json(self) -> dict[str, Any]:
        """The documented ``credit --json`` object: every number is a decimal string."""
        out = {**self.result(), "notes": self.notes}
        if self.round is not None:
            out["round"] = self.round.to_json()
        return out

    def result(self) -> dict[str, Any]:
        """The credit without the notes: what a round close fixes (by its digest)."""
        c = self.credit

        def point(p: tuple[str, Any] | None) -> dict[str, str] | None:
            return None if p is None else {"commit": p[0], "score": decimal_text(p[1])}

        return {
            "challenge": self.challenge,
            "version": self.version,
            "direction": self.direction,
            # The round without its close: the result a close fixes cannot name the close.
            "round": None if self.round is None else self.round.span(),
            "baseline": point(c.baseline),
            "best": point(c.best),
            "contributors": [_row_json(r) for r in c.rows],
            "uncredited": [{"commit": u.commit, "reason": u.reason} for u in c.uncredited],
        }


@dataclass(frozen=True)
class RoundState:
    """The round credited, and the close that fixed its result (None: still open)."""

    round: Round
    close: rounds.Close | None
    commits: frozenset[str]  # the commits first attested in it

    def span(self) -> dict[str, Any]:
        """The round's name and times."""
        r = self.round
        return {"name": r.name, "start": r.start, "end": r.end}

    def to_json(self) -> dict[str, Any]:
        """``round`` in ``credit --json``: the span and the close."""
        c = self.close
        closed = None if c is None else {"seq": c.seq, "tip": c.tip, "result": c.result}
        return {**self.span(), "closed": closed}


def result_digest(result: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a credit result's canonical JSON, as a round close records it."""
    return hashlib.sha256(canonical.encode(dict(result))).hexdigest()


def _row_json(r: scoring.Row) -> dict[str, Any]:
    d = scoring.decimal_string
    who = r.contributor
    return {
        "name": who.name,
        "email": who.email,
        "keyid": who.keyid,
        "commits": str(r.commits),
        "improvements": str(r.improvements),
        "gain": d(r.gain),
        "loss": d(r.loss),
        "net": d(r.net),
        "share": d(r.share, 6),
        "records": str(r.records),
        "received": d(r.received),
        "passed": d(r.passed),
    }


_RANK = {level: i for i, level in enumerate(ASSURANCE_LEVELS)}


@dataclass
class Scores:
    """What credit takes from the verified attestations: one score per commit that
    counts, why the others do not, and what the table alone would not say."""

    counted: dict[str, scoring.Scored] = field(default_factory=dict)
    assurance: dict[str, str] = field(default_factory=dict)  # of every trusted commit
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    private: dict[str, Decimal] = field(default_factory=dict)  # trusted private-split scores


_Claim = tuple[vindex.Row, trust.Member]


@dataclass
class _Sorted:
    """The verified rows of one challenge version, sorted by what they can count for."""

    first: dict[str, _Claim] = field(default_factory=dict)
    more: dict[str, list[_Claim]] = field(default_factory=dict)  # later claims, rare
    reviews: dict[str, list[_Claim]] = field(default_factory=dict)
    earlier: dict[str, _Claim] = field(default_factory=dict)  # authorship under another version
    dropped: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # keyid -> the name its rows give
    private: list[vindex.Row] = field(default_factory=list)  # scores on the private split

    def add(self, row: vindex.Row, member: trust.Member | None, times: Mapping[int, str]) -> None:
        if member is not None and member.windowed and not member.valid_at(times[row.seq]):
            why = f"signed by {row.keyid} outside its validity window ({member.window()})"
            self.dropped.setdefault(row.commit, why)
        elif row.review:
            if member is not None:
                self.reviews.setdefault(row.commit, []).append((row, member))
        elif member is None:
            why = f"signed by {row.keyid}, a key this challenge does not trust"
            self.dropped.setdefault(row.commit, why)
        elif row.commit in self.first:
            self.more.setdefault(row.commit, []).append((row, member))
        else:
            self.first[row.commit] = (row, member)
        if member is not None:
            self.names.setdefault(row.keyid, row.name)

    def add_elsewhere(self, row: vindex.Row, timeline: trust.Timeline) -> None:
        if not row.review and row.commit not in self.earlier:
            member = timeline.member(row.keyid, row.seq)
            if member is not None and _authors(member):
                self.earlier[row.commit] = (row, member)


def _scores(
    rows: Iterable[vindex.Row],
    ch: Challenge,
    digest: str,
    timeline: trust.Timeline,
    times: Mapping[int, str],
    signed: Mapping[str, str],
) -> Scores:
    by = _sort(rows, digest, timeline, times)
    out = Scores(dropped=by.dropped, private=private.scored(by.private, digest, timeline))
    people: dict[tuple[str, str], scoring.Contributor] = {}
    required = _RANK[ch.require]
    more, reviews, earlier = by.more, by.reviews, by.earlier
    counted, assurance, evaluator = out.counted, out.assurance, trust.EVALUATOR
    for commit, claim in by.first.items():
        if commit in more or commit in reviews or commit in earlier:
            claims = [claim, *more.get(commit, ())]
            scored, level = _settle(claims, reviews.get(commit, []), ch.agreement, out.notes)
            row, member = _author([*_one(earlier.get(commit)), *claims])
        else:  # one attestation, the usual case: nothing to compare or choose between
            scored = (row, member) = claim
            level = "ci" if evaluator in member.roles else "self"
        assurance[commit] = level
        if required and _RANK[level] < required:
            out.dropped[commit] = f"assurance {level}; the challenge requires {ch.require}"
            continue
        who = (row.keyid, member.principal or row.principal)
        key = signed.get(commit) if signed else None
        if key is not None and (verified := _verified_author(key, timeline, row.seq)):
            who = (verified.keyid, verified.principal)
        person = people.get(who)
        if person is None:
            name = by.names.get(who[0], who[1])
            person = people[who] = scoring.Contributor(who[0], name, who[1], row.seq)
        elif row.seq < person.since:
            _earlier(person, row.seq)
        counted[commit] = scoring.Scored(Decimal(scored[0].score), person)
    return out


def _sort(
    rows: Iterable[vindex.Row], digest: str, timeline: trust.Timeline, times: Mapping[int, str]
) -> _Sorted:
    by = _Sorted()
    first, names, always = by.first, by.names, timeline.always
    for row in rows:
        if row.split != "public":
            by.private.append(row)
            continue
        if row.challenge != digest:
            by.add_elsewhere(row, timeline)
            continue
        member = always.get(row.keyid)
        if member is not None and not row.review and row.commit not in first:
            first[row.commit] = (row, member)  # what add does, for the usual row, inline
            names.setdefault(row.keyid, row.name)
        else:
            by.add(row, timeline.member(row.keyid, row.seq), times)
    return by


def _earlier(person: scoring.Contributor, seq: int) -> None:
    # Ledger order for ties is the earliest counted entry, whichever commit it is of.
    # ``since`` is bookkeeping, not identity (it takes no part in equality).
    object.__setattr__(person, "since", seq)


def _authors(member: trust.Member) -> bool:
    # An evaluator's attestation is a measurement, not a claim of authorship.
    return member.has(trust.CONTRIBUTOR) and not member.has(trust.EVALUATOR)


def _verified_author(key: str, timeline: trust.Timeline, seq: int) -> trust.Member | None:
    """The trusted contributor whose key signed the commit itself (``git commit -S``),
    as the list in force at the entry ``seq`` (the commit's attestation) names them."""
    try:
        keyid = keys.public_with_fingerprint(key)[1]
    except GitcoopError:
        return None
    member = timeline.member(keyid, seq)
    return member if member is not None and _authors(member) else None


def _one(claim: _Claim | None) -> tuple[_Claim, ...]:
    return () if claim is None else (claim,)


def _author(claims: list[_Claim]) -> _Claim:
    """Whom a commit's credit goes to: the earliest signer that attests as a contributor,
    under any challenge version (a rescore under a new version measures again, it does not
    take the commit over); the evaluator when nobody else attested it."""
    for c in sorted(claims, key=lambda c: c[0].seq):
        if _authors(c[1]):
            return c
    return claims[0]


def _settle(
    claims: list[_Claim], reviews: list[_Claim], tolerance: Decimal, notes: list[str]
) -> tuple[_Claim, str]:
    """The claim a commit's score is taken from (an evaluator's first, else the first)
    and the commit's assurance level: reproduced when two trusted signers with different
    principals (attesting or reviewing) agree within ``tolerance``."""
    ci = [c for c in claims if c[1].has(trust.EVALUATOR)]
    chosen = ci[0] if ci else claims[0]
    level = "ci" if ci else "self"
    every = claims + reviews
    if len(every) > 1:
        agree = any(
            a[1].principal != b[1].principal
            and a[0].keyid != b[0].keyid  # a renamed principal is still the same signer
            and abs(Decimal(a[0].score) - Decimal(b[0].score)) <= tolerance
            for i, a in enumerate(every)
            for b in every[i + 1 :]
        )
        if agree:
            level = "reproduced"
        elif len({c[1].principal for c in every}) > 1:
            notes.append(
                f"{chosen[0].commit[:12]}: not reproduced within {tolerance}: "
                + ", ".join(
                    f"{row.score} by {m.principal}{' (review)' if row.review else ''}"
                    for row, m in every
                )
            )
    return chosen, level


def _on_private_split(got: Scores, state: RoundState, notes: list[str]) -> None:
    """A closed round of a challenge with a private split is credited on the private
    scores its close revealed; an open one is shown on the public split, provisionally."""
    if state.close is None:
        notes.append(
            f"round {state.round.name} is decided on the private split when it closes; "
            "until then, this is the public split"
        )
        return
    for commit, s in list(got.counted.items()):
        score = got.private.get(commit)
        if score is None:
            del got.counted[commit]
            got.dropped[commit] = "no private-split score from a trusted evaluator"
        else:
            got.counted[commit] = scoring.Scored(score, s.contributor)


def _windowed(timeline: trust.Timeline, row: vindex.Row) -> bool:
    member = timeline.member(row.keyid, row.seq)
    return member is not None and member.windowed


def _times(repo: Repo, head: verify_mod.Position, seqs: list[int]) -> dict[int, str]:
    """The signed time of each entry in ``seqs`` (verified entries: no signature check)."""
    if not seqs:
        return {}
    ids, _, _ = repo.first_parents(head.commit, None, head.seq - min(seqs) + 1)
    out = {}
    for seq in seqs:
        at = (head.seq - seq) * 40  # 20 bytes of commit id, then 20 of its tree
        rec = ledger.read_record(repo, ids[at : at + 20].hex())
        statement = rec.entry.payload()
        out[seq] = str(statement["predicate"]["time"])
    return out


def _search_prefixes(patterns: tuple[str, ...]) -> tuple[str, ...]:
    # The literal directories a protect pattern can match under ("" when it starts with a
    # wildcard), so unchanged subtrees are skipped without a diff.
    out = []
    for pattern in (".coop/**", *patterns):
        parts = pattern.rstrip("/").split("/")
        literal = []
        for part in parts:
            if any(ch in part for ch in "*?["):
                break
            literal.append(part)
        out.append("/".join(literal))
    return tuple(sorted(set(out)))


def _fact(s: Session, ch: Challenge, prefixes: tuple[str, ...], commit: str) -> history.Fact:
    info = s.repo.commit(commit)
    signed = commitsig.signer(s.repo, commit)
    if not info.parents:
        return history.Fact(None, info.author_email, False, (), signed)
    first = info.parents[0]
    merged: list[tuple[str, str | None]] = []
    if len(info.parents) > 1:
        for m in s.repo.new_commits(info.parents[1], [first]):
            ps = s.repo.commit(m).parents
            merged.append((m, ps[0] if ps else None))
    changed = s.repo.changed_under(s.repo.commit(first).tree, info.tree, prefixes)
    protected = any(map(ch.is_protected, changed))
    return history.Fact(first, info.author_email, protected, tuple(merged), signed)


def _mainline(
    s: Session, pin: pinned.Pinned, tip: str
) -> tuple[list[scoring.Node], dict[str, str | None], list[history.Fact]]:
    baseline = s.baseline
    ch = pin.challenge
    prefixes = _search_prefixes(ch.protect)
    chain = history.walk(
        history.path_for(s.local, pin.digest), tip, baseline, lambda c: _fact(s, ch, prefixes, c)
    )
    if chain[0][0] != baseline:
        raise ConfigError(
            f"{tip[:12]} does not descend from the challenge baseline "
            f"{baseline[:12]} along first parents",
            hint="credit a branch that grew from the challenge",
        )
    nodes = [scoring.Node(baseline)]
    side_parent: dict[str, str | None] = {}
    for commit, fact in chain[1:]:
        side_parent.update(fact.merged)
        nodes.append(scoring.Node(commit, tuple(m for m, _ in fact.merged), fact.protected))
    return nodes, side_parent, [fact for _, fact in chain]


def _mismatches(
    nodes: list[scoring.Node], authors: list[str], scores: dict[str, scoring.Scored]
) -> list[str]:
    notes = []
    for n, author in zip(nodes[1:], authors[1:], strict=True):
        got = scores.get(n.commit)
        if got and author.lower() != got.contributor.email.lower():
            notes.append(
                f"{n.commit[:12]} names author {author} but was signed by "
                f"{got.contributor.email}: credited to the signer"
            )
    return notes


@dataclass(frozen=True)
class _View:
    """A verified ledger as credit reads it: one challenge version and the trust lists,
    up to ``upto`` (a round's close) when given."""

    s: Session
    head: verify_mod.Position
    version: versions.Version
    pin: pinned.Pinned
    timeline: trust.Timeline
    trust_rows: list[trust.TrustRow]
    closes: list[rounds.Close]
    upto: int | None = None

    def rows(self, commit: str | None = None) -> tuple[Iterable[vindex.Row], dict[int, str]]:
        """The verified rows (of ``commit`` only, when given), and the signed times of
        those a validity window judges."""
        rows: Iterable[vindex.Row] = verify_mod.verified_rows(self.s.repo, self.head)
        if self.upto is not None:
            upto = self.upto
            rows = [r for r in rows if r.seq < upto]
        if commit is not None:
            rows = [r for r in rows if r.commit == commit]
        if not self.timeline.windowed:  # only then is when each entry was signed worth reading
            return rows, {}
        rows = list(rows)
        windowed = [r.seq for r in rows if _windowed(self.timeline, r)]
        return rows, _times(self.s.repo, self.head, windowed)

    def at_close(self, close: rounds.Close) -> _View:
        """The ledger as it stood when ``close`` fixed a round: the entries before it."""
        kept = [t for t in self.trust_rows if t.seq < close.seq]
        return replace(self, timeline=trust.Timeline(kept), upto=close.seq)

    def round_state(self, name: str, notes: list[str]) -> RoundState:
        """Round ``name`` of this version: its close, if one counts, and its commits."""
        r = self.pin.challenge.round(name)
        found = rounds.find(self.closes, self.timeline, self.version.digest, r)
        notes += found.ignored
        upto = None if found.close is None else found.close.seq
        first: dict[str, int] = {}
        for row in verify_mod.verified_rows(self.s.repo, self.head):
            if upto is not None and row.seq >= upto:
                break
            if row.challenge == self.version.digest and not row.review:
                first.setdefault(row.commit, row.seq)
        times = _times(self.s.repo, self.head, list(first.values()))
        inside = frozenset(c for c, seq in first.items() if r.holds(times[seq]))
        return RoundState(r, found.close, inside)


def _view(path: str | Path, version: int | None, round_name: str | None = None) -> _View:
    """Verify the ledger (incrementally) and open challenge ``version`` (None: in force, or
    the one a round was closed under); raises ConfigError for a version that does not
    exist."""
    verified = verify_mod.verify(path)
    s = open_session(path)
    assert verified.head is not None
    if version is None and round_name is not None:
        version = _closed_under(verified, round_name)
    try:
        v = versions.numbered(verified.versions, version)
    except LookupError as exc:
        raise ConfigError(str(exc), hint="git coop log lists the challenge updates") from None
    pin = pinned.load(s.repo, v.tree, v.digest, s.local / "challenges")
    timeline = trust.Timeline(verified.trust)
    return _View(s, verified.head, v, pin, timeline, verified.trust, verified.closes)


def _closed_under(verified: verify_mod.Report, name: str) -> int | None:
    """The number of the latest version under which a close of round ``name`` was made
    (None: no close), so a closed round is read as it was closed."""
    digests = {c.digest for c in verified.closes if c.name == name}
    for v in reversed(verified.versions):
        if v.digest in digests:
            return v.number
    return None


def credit(
    path: str | Path = ".",
    *,
    rev: str | None = None,
    version: int | None = None,
    round_name: str | None = None,
) -> CreditReport:
    """Verify the ledger (incrementally), then compute credit along the challenge branch
    under challenge ``version`` (default: the one in force), for one round when
    ``round_name`` is given (a closed round: as the ledger stood at its close).

    Raises VerificationError/SecurityError when the ledger does not verify, ConfigError
    for a revision that is not part of the challenge, a version or round that does not
    exist, or a revision given for a closed round.
    """
    view = _view(path, version, round_name)
    notes: list[str] = []
    state = None if round_name is None else view.round_state(round_name, notes)
    if state is not None and state.close is not None:
        if rev is not None:
            raise ConfigError(
                f"round {round_name} was closed at {state.close.tip[:12]}; its result is fixed",
                hint="leave out --rev for a closed round",
            )
        view = view.at_close(state.close)
        rev = state.close.tip
    report = _credit(view, rev, state, notes)
    if state is not None and state.close is not None:
        got = result_digest(report.result())
        if got != state.close.result:
            report.notes.append(
                f"round {state.round.name}: this result (sha256 {got[:16]}) differs from the "
                f"one closed by entry #{state.close.seq} (sha256 {state.close.result[:16]})"
            )
    return report


def _credit(
    view: _View, rev: str | None, state: RoundState | None, notes: list[str]
) -> CreditReport:
    ch = view.pin.challenge
    tip = view.s.repo.resolve(rev or f"refs/heads/{ch.branch}")
    nodes, side_parent, facts = _mainline(view.s, view.pin, tip)
    rows, times = view.rows()
    signed = {n.commit: f.signed for n, f in zip(nodes, facts, strict=True) if f.signed}
    got = _scores(rows, ch, view.pin.digest, view.timeline, times, signed)
    window = None
    if state is not None:
        window = scoring.Window(state.commits)
        if ch.private is not None:
            _on_private_split(got, state, notes)
    result = scoring.compute(
        nodes,
        got.counted,
        side_parent,
        maximize=ch.maximize,
        min_delta=ch.min_delta,
        unscored=got.dropped,
        lineage=ch.lineage,
        window=window,
    )
    notes += _mismatches(nodes, [f.author for f in facts], got.counted) + got.notes
    return CreditReport(
        ch.name,
        ch.metric.direction,
        result,
        notes,
        view.version.number,
        [n.commit for n in nodes],
        got.counted,
        got.assurance,
        state,
        ch,
        view.timeline.names(),
    )


def assurance(path: str | Path, commit: str) -> dict[str, Any]:
    """How one commit stands under the challenge in force: its assurance level, whether it
    counts for credit, and why not (``show`` reports it). Verifies the ledger first."""
    view = _view(path, None)
    rows, times = view.rows(commit)
    got = _scores(rows, view.pin.challenge, view.pin.digest, view.timeline, times, {})
    level = got.assurance.get(commit)
    if commit in got.counted:
        return {"level": level, "counts": True, "reason": None}
    why = got.dropped.get(commit, "no verified attestation under the challenge in force")
    return {"level": level, "counts": False, "reason": why}
