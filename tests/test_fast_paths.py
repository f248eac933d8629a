"""The one-pass parsers verify uses for what gitcoop itself writes agree with the general
parsers on every input: they either decline (None) or return exactly what the general
path returns, and what gitcoop writes takes them."""

from __future__ import annotations

import base64
from decimal import Decimal

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitcoop import canonical, constants, dsse, ledger, records
from gitcoop.errors import FormatError, GitOperationError
from gitcoop.git import open_repo

HEX = "0123456789abcdef"
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
PLAIN = st.text(PRINTABLE.filter(lambda c: c not in '"\\'), max_size=12)  # needs no escape
ANY_TEXT = st.one_of(PLAIN, st.text(PRINTABLE, max_size=12), st.text(max_size=12))
# Bytes that change JSON's meaning or its canonical form when dropped in anywhere.
NOISE = [b'"', b"\\", b"{", b"}", b"[", b",", b":", b"0", b"-", b".", b"a", b" ", b"\x1f", b"\xc3"]


def hexes(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(HEX), min_size=n, max_size=n)


decimals = st.one_of(
    st.sampled_from(["0", "1", "-1", "0.5", "-0.125", "123.456", "1" * 40, "9" * 41, "-0"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(lambda d: format(d, "f")),
)


@st.composite
def statements(
    draw: st.DrawFn, text: st.SearchStrategy[str] = ANY_TEXT, most: int = 2**53 - 1
) -> dict:
    parent = draw(st.one_of(st.none(), hexes(40)))
    env = draw(st.dictionaries(text, text, max_size=4))
    return {
        "_type": constants.STATEMENT_TYPE,
        "subject": [
            {
                "name": draw(text),
                "digest": {"gitCommit": draw(hexes(40)), "gitTree": draw(hexes(40))},
            }
        ],
        "predicateType": constants.PREDICATE_TYPE,
        "predicate": {
            "challenge": {"digest": "sha256:" + draw(hexes(64)), "origin": draw(hexes(64))},
            "metric": {
                "name": draw(text),
                "direction": draw(st.sampled_from(["maximize", "minimize", "up"])),
            },
            "split": draw(text),
            "score": draw(decimals),
            "parent": None
            if parent is None
            else {"commit": parent, "score": draw(st.one_of(st.none(), decimals))},
            "delta": draw(st.one_of(st.none(), decimals)),
            "environment": env,
            "durationMs": draw(st.integers(0, most)),
            "time": draw(text),
            "signer": {"keyid": draw(text), "principal": draw(text), "name": draw(text)},
        },
    }


def mutated(data: bytes, draw: st.DrawFn) -> bytes:
    """``data`` with a few bytes replaced, inserted or removed."""
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["put", "insert", "drop"]))
        noise = draw(st.sampled_from(NOISE))
        if action == "put":
            data = data[:at] + noise + data[at + 1 :]
        elif action == "insert":
            data = data[:at] + noise + data[at:]
        else:
            data = data[:at] + data[at + 1 :]
    return data


def outcome(parse, data):
    try:
        return parse(data)
    except FormatError:
        return FormatError


def agree(usual, general, data) -> None:
    fast = outcome(usual, data)
    if fast is not None:
        assert fast == outcome(general, data)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _general_attestation(data: bytes) -> records.Attestation:
    return records.parse_attestation(canonical.decode(data))


@FAST
@given(statements(), st.data())
def test_statement_fast_path_agrees(stmt: dict, data: st.DataObject) -> None:
    raw = mutated(canonical.encode(stmt), data.draw)
    agree(records._usual_attestation, _general_attestation, raw)


@FAST
@given(statements(PLAIN, most=10**15 - 1))  # a duration of 31,000 years at most
def test_statements_gitcoop_writes_take_the_fast_path(stmt: dict) -> None:
    raw = canonical.encode(stmt)
    general = outcome(_general_attestation, raw)
    if general is not FormatError:
        assert records._usual_attestation(raw) == general


def entries(
    envelope_text: st.SearchStrategy[str] = ANY_TEXT, most: int = 2**53 - 1
) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "version": st.sampled_from([constants.ENTRY_VERSION, 2]),
            "seq": st.one_of(st.integers(0, most), st.integers(-3, -1)),
            "prev": st.one_of(st.none(), hexes(64)),
            "kind": st.sampled_from([*ledger.KINDS, "unknown"]),
            "challenge": st.one_of(hexes(64).map(lambda h: "sha256:" + h), envelope_text),
            "origin": st.one_of(st.none(), hexes(64)),
            "key": envelope_text,
            "envelope": st.fixed_dictionaries(
                {
                    "payload": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
                    "payloadType": envelope_text,
                    "signatures": st.lists(
                        st.fixed_dictionaries(
                            {
                                "keyid": envelope_text,
                                "sig": st.binary(min_size=1, max_size=70).map(
                                    lambda b: base64.b64encode(b).decode()
                                ),
                            }
                        ),
                        min_size=1,
                        max_size=2,
                    ),
                }
            ),
        }
    )


@FAST
@given(entries(), st.data())
def test_entry_fast_path_agrees(entry: dict, data: st.DataObject) -> None:
    raw = mutated(canonical.encode(entry), data.draw)
    agree(ledger._usual_entry, ledger.Entry.parse, raw)


@FAST
@given(entries(PLAIN, most=10**15 - 1))
def test_entries_gitcoop_writes_take_the_fast_path(entry: dict) -> None:
    raw = canonical.encode(entry)
    general = outcome(ledger.Entry.parse, raw)
    if general is not FormatError and len(entry["envelope"]["signatures"]) == 1:
        assert ledger._usual_entry(raw) == general


@FAST
@given(entries(), st.data())
def test_envelope_fast_path_agrees(entry: dict, data: st.DataObject) -> None:
    envelope = entry["envelope"]
    if data.draw(st.booleans()):  # a field's text garbled, as base64 or otherwise
        field = data.draw(st.sampled_from(["payload", "payloadType"]))
        envelope[field] = mutated(envelope[field].encode(), data.draw).decode("utf-8", "replace")
    if data.draw(st.booleans()):
        envelope["signatures"][0]["extra"] = "x"
    agree(dsse._usual_envelope, dsse.Envelope.parse, envelope)


def _statement(score: str = "0.5", environment: dict[str, str] | None = None) -> bytes:
    return canonical.encode(
        {
            "_type": constants.STATEMENT_TYPE,
            "predicateType": constants.PREDICATE_TYPE,
            "subject": [{"name": "c", "digest": {"gitCommit": "a" * 40, "gitTree": "b" * 40}}],
            "predicate": {
                "challenge": {"digest": "sha256:" + "c" * 64, "origin": "d" * 64},
                "metric": {"name": "score", "direction": "maximize"},
                "split": "public",
                "score": score,
                "parent": None,
                "delta": None,
                "environment": environment or {},
                "durationMs": 1,
                "time": "t",
                "signer": {"keyid": "k", "principal": "p", "name": "n"},
            },
        }
    )


@pytest.mark.parametrize(
    ("value", "ok"), [("0.5", True), ("-0", False), ("1" * 40, True), ("1" * 41, False)]
)
def test_fast_path_keeps_the_score_bounds(value: str, ok: bool) -> None:
    raw = _statement(value)
    if ok:
        assert records._usual_attestation(raw).score == Decimal(value)
    else:
        with pytest.raises(FormatError, match="canonical decimal"):
            records._usual_attestation(raw)


@pytest.mark.parametrize("pairs", ['"b":"1","a":"2"', '"a":"1","a":"2"', '"a":"1",'])
def test_fast_path_declines_an_environment_out_of_canonical_form(pairs: str) -> None:
    sorted_env = _statement(environment={"a": "1", "b": "2"})
    assert records._usual_attestation(sorted_env) is not None
    raw = sorted_env.replace(b'"a":"1","b":"2"', pairs.encode())
    assert records._usual_attestation(raw) is None
    with pytest.raises(FormatError):
        _general_attestation(raw)


def _ledger_commit(
    repo: pygit2.Repository, entries: dict[str, tuple[bytes | pygit2.Oid, int]]
) -> str:
    tb = repo.TreeBuilder()
    for name, (content, mode) in entries.items():
        oid = repo.create_blob(content) if isinstance(content, bytes) else content
        tb.insert(name, oid, mode)
    sig = pygit2.Signature("t", "t@example.org", 0, 0)
    return str(repo.create_commit(None, sig, sig, "m", tb.write(), []))


def test_raw_tree_reads_match_the_object_reads(tmp_path) -> None:
    raw = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    sub = raw.TreeBuilder().write()
    blob, tree = pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.TREE
    names = (constants.ENTRY_FILE, constants.PINNED_TREE)
    usual = _ledger_commit(raw, {"entry.json": (b"{}", blob), "challenge": (sub, tree)})
    executable = _ledger_commit(
        raw,
        {"entry.json": (b"{}", pygit2.enums.FileMode.BLOB_EXECUTABLE), "challenge": (sub, tree)},
    )
    extra = _ledger_commit(
        raw, {"entry.json": (b"{}", blob), "challenge": (sub, tree), "z": (b"", blob)}
    )
    swapped = _ledger_commit(raw, {"entry.json": (sub, tree), "challenge": (b"{}", blob)})
    repo = open_repo(tmp_path / "r")
    assert repo.entry_commit(usual, names) == (b"{}", str(sub), ())
    assert repo.entry_commit(executable, names) == (b"{}", str(sub), ())  # the general way
    with pytest.raises(GitOperationError, match="holds 3 entries"):
        repo.entry_commit(extra, names)
    with pytest.raises(GitOperationError, match="wrong type"):
        repo.entry_commit(swapped, names)
    for commit in (usual, executable, extra, swapped):
        pairs, end, _ = repo.first_parents(commit, None)
        (item,) = repo.entry_run(pairs, end, names)
        try:
            expected: object = repo.entry_commit(commit, names)
        except GitOperationError as exc:
            assert isinstance(item, GitOperationError) and item.message == exc.message
        else:
            assert item == (commit, *expected)
