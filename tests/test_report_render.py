"""The challenge report as HTML and Markdown: rendered by a real headless Chromium with the
network off, hostile names kept inert, edge cases, and a 10,000-commit history."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from html.parser import HTMLParser
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest
from testing.browser import dump_dom, screenshot

from gitcoop import report

NAMES = ["Alice Martin", "Bob Okafor", "Chen Wei", "Zoë Ångström"]
SECTIONS = ["leaderboard", "chart", "credit", "payout", "verification"]
EVIL = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "| pipe |",
    "Mallory\n| 9 | x | y |\r\n[link](https://evil.example) *bold* _it_ `code` www.evil.example",
]


def _commit(i: int, salt: str = "c") -> str:
    return hashlib.sha1(f"{salt}{i}".encode()).hexdigest()


def _key(name: str) -> str:
    return "SHA256:" + hashlib.sha256(name.encode()).hexdigest()[:43]


def _history(n: int, names: list[str], seed: int = 7) -> list[dict[str, Any]]:
    """A mainline that mostly climbs from 0.8: the first point is the baseline."""
    rng = random.Random(seed)
    score = best = Decimal("0.8")
    out: list[dict[str, Any]] = [
        {
            "commit": _commit(0),
            "score": "0.8",
            "contributor": None,
            "delta": None,
            "improvement": False,
            "record": False,
        },
    ]
    for i in range(1, n):
        step = Decimal(rng.randint(-25, 40)) / 10000
        score += step
        out.append(
            {
                "commit": _commit(i),
                "score": format(score, "f"),
                "contributor": names[i % len(names)],
                "delta": format(step, "f"),
                "improvement": step >= Decimal("0.001"),
                "record": score > best,
            }
        )
        best = max(best, score)
    return out


def _data(names: list[str] = NAMES, points: int = 36) -> dict[str, Any]:
    history = _history(points, names)
    return {
        "challenge": "digits",
        "version": 1,
        "direction": "maximize",
        "metric": "accuracy",
        "generated": "2026-12-05T12:00:00Z",
        "round": {
            "name": "week-1",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-08T00:00:00Z",
            "closed": True,
        },
        "leaderboard": [
            {
                "rank": i + 1,
                "name": n,
                "keyid": _key(n),
                "best": best,
                "commit": _commit(i),
                "assurance": assurance,
            }
            for i, (n, best, assurance) in enumerate(
                zip(
                    names,
                    ["0.87", "0.861", "0.85", "0.83"],
                    ["reproduced", "ci", "self", "self"],
                    strict=False,
                )
            )
        ],
        "history": history,
        "credit": {
            "contributors": [
                {
                    "name": n,
                    "email": f"{i}@example.org",
                    "keyid": _key(n),
                    "commits": str(9 - i),
                    "improvements": str(5 - i),
                    "gain": "0.061",
                    "loss": "0.012",
                    "net": "0.049",
                    "share": f"0.{4 - i}",
                    "records": str(i),
                }
                for i, n in enumerate(names)
            ],
            "uncredited": [
                {"commit": _commit(3), "reason": "delta below min_delta"},
                {"commit": _commit(9), "reason": "regressed the score"},
            ],
        },
        "payout": {
            "pool": "1000",
            "unit": "USDC-cents",
            "rule": "proportional",
            "rows": [
                {"name": n, "keyid": _key(n), "amount": amount, "address": address}
                for n, amount, address in zip(
                    names,
                    ["417", "333", "149", "101"],
                    [
                        "0x52908400098527886E0F7030069857D2E4169EE7",
                        None,
                        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
                        None,
                    ],
                    strict=False,
                )
            ],
        },
        "verification": {
            "ok": True,
            "entries": 42,
            "head": hashlib.sha256(b"head").hexdigest(),
            "warnings": ["anchor of entry 40 is pending: 3 of 12 confirmations"],
            "anchors": [
                {
                    "seq": 20,
                    "chain_id": 1,
                    "tx": "0x" + hashlib.sha256(b"t1").hexdigest(),
                    "block": 19000123,
                    "status": "final",
                },
                {
                    "seq": 40,
                    "chain_id": 1,
                    "tx": "0x" + hashlib.sha256(b"t2").hexdigest(),
                    "block": None,
                    "status": "pending",
                },
            ],
        },
    }


# -- reading what was rendered ---------------------------------------------------------


class _Page(HTMLParser):
    """Every element with its attributes, and the text under each section id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self.all_text = ""
        self.titles: list[tuple[str, str]] = []  # (circle class, its tooltip)
        self._open: list[tuple[str, str | None]] = []
        self._circle: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "circle":
            self._circle = dict(attrs).get("class") or ""
        if tag not in {"meta", "br", "hr", "img", "link", "input", "wbr", "source"}:
            self._open.append((tag, dict(attrs).get("id")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if any(t == tag for t, _ in self._open):
            while self._open.pop()[0] != tag:
                pass
        if tag == "circle":
            self._circle = None

    def handle_data(self, data: str) -> None:
        self.all_text += data
        for _, sid in self._open:
            if sid in SECTIONS:
                self.text[sid] = self.text.get(sid, "") + data
        if self._circle is not None and self._open and self._open[-1][0] == "title":
            self.titles.append((self._circle, data))

    def marks(self, kind: str) -> list[str]:
        return [tip for cls, tip in self.titles if kind in cls.split()]


def _png(path: Path, rows: int | None = None) -> tuple[int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) with the
    standard library; return (bytes per pixel, the first ``rows`` rows)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour in (2, 6), "not 8-bit RGB(A)"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    out, prior = [], bytes(stride)
    for y in range(height if rows is None else min(rows, height)):
        start = y * (stride + 1)
        line = raw[start + 1 : start + 1 + stride]
        prior = _UNFILTER[raw[start]](line, prior, bpp)
        out.append(prior)
    return bpp, out


def _none(line: bytes, prior: bytes, bpp: int) -> bytes:
    return line


def _sub(line: bytes, prior: bytes, bpp: int) -> bytes:
    out = bytearray(len(line))
    for c in range(bpp):  # each channel is a running sum, modulo 256
        out[c::bpp] = bytes(b & 255 for b in accumulate(line[c::bpp]))
    return bytes(out)


def _up(line: bytes, prior: bytes, bpp: int) -> bytes:
    return bytes((a + b) & 255 for a, b in zip(line, prior, strict=True))


def _average(line: bytes, prior: bytes, bpp: int) -> bytes:
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        out[i] = (out[i] + ((left + prior[i]) >> 1)) & 255
    return bytes(out)


def _paeth(line: bytes, prior: bytes, bpp: int) -> bytes:
    out = bytearray(line)
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b, c = prior[i], prior[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return bytes(out)


_UNFILTER: dict[int, Callable[[bytes, bytes, int], bytes]] = {
    0: _none,
    1: _sub,
    2: _up,
    3: _average,
    4: _paeth,
}


def test_png_decoder_handles_every_filter_type(tmp_path: Path) -> None:
    # One 3-pixel RGB row per filter type, filtered by hand from known pixels.
    pixels = [bytes([10, 20, 30, 40, 50, 60, 250, 5, 128]), bytes([1, 2, 3, 200, 100, 50, 9, 9, 9])]
    rows = [pixels[0], pixels[1], pixels[0], pixels[1], pixels[0]]
    filtered, prior = b"", bytes(9)
    for kind, row in enumerate(rows):
        out = bytearray()
        for i, x in enumerate(row):
            a = row[i - 3] if i >= 3 else 0
            b, c = prior[i], prior[i - 3] if i >= 3 else 0
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            out.append((x - [0, a, b, (a + b) // 2, paeth][kind]) & 255)
        filtered += bytes([kind]) + bytes(out)
        prior = row
    chunk = b"IHDR" + struct.pack(">IIBBBBB", 3, 5, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n"
    for body in (chunk, b"IDAT" + zlib.compress(filtered), b"IEND"):
        png += struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    (tmp_path / "five.png").write_bytes(png)
    assert _png(tmp_path / "five.png") == (3, rows)


# -- Chromium ---------------------------------------------------------------------------


def test_the_page_renders_in_chromium_with_the_network_off(tmp_path: Path) -> None:
    data = _data()
    page = tmp_path / "report.html"
    page.write_text(report.html(data), encoding="utf-8")
    shot = tmp_path / "report.png"
    screenshot(page, shot, width=1280, height=2000)
    chart, dom = _probe(tmp_path, page)

    bpp, rows = _png(shot, rows=chart[1] + chart[3])
    colours = Counter(r[i : i + 3] for r in rows for i in range(0, len(r), bpp * 3))
    assert len(colours) > 60, "the page looks blank"
    assert rows[4][4 * bpp : 5 * bpp][:3] == bytes.fromhex("f4f6fa"), "not the page's --bg"
    x, y, w, h = chart
    inside = Counter(
        r[i : i + 3] for r in rows[y : y + h] for i in range(x * bpp, (x + w) * bpp, bpp)
    )
    assert w > 600 and h > 200, chart
    assert len(inside) > 20, "the chart has no line, dots or labels"
    # Background, grid and text are grey; only the drawn data is in colour. Axes, labels
    # and the legend alone give about 250 coloured pixels, the data about 7,000.
    coloured = sum(n for rgb, n in inside.items() if max(rgb) - min(rgb) > 60)
    assert coloured > 2000, f"the chart has no data drawn ({coloured} coloured pixels)"

    ids = {a.get("id") for _, a in dom.elements}
    assert set(SECTIONS) <= ids
    assert "digits" in dom.all_text.split("Leaderboard")[0]
    for name in NAMES:
        assert name in dom.text["leaderboard"] and name in dom.text["credit"]
        assert name in dom.text["payout"]
    for amount in ("417", "333", "149", "101"):
        assert amount in dom.text["payout"]
    assert "final" in dom.text["verification"] and "pending" in dom.text["verification"]
    ups = [h for h in data["history"] if h["improvement"] and not h["record"]]
    records = [h for h in data["history"] if h["record"]]
    assert len(dom.marks("improvement")) == len(ups) >= 5
    assert len(dom.marks("record")) == len(records) >= 2


def _probe(tmp: Path, page: Path) -> tuple[tuple[int, int, int, int], _Page]:
    """Where Chromium lays out the chart, in screenshot pixels, and the DOM it built.

    A copy of the page with a one-line script (and so without the policy that forbids
    it) writes the SVG's box into the DOM; one browser run then gives both."""
    probe = tmp / "probe.html"
    script = (
        "<script>const r=document.querySelector('#chart svg').getBoundingClientRect();"
        "document.documentElement.dataset.box=JSON.stringify("
        "[r.left,r.top,r.width,r.height].map(Math.round));</script>"
    )
    text = re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", page.read_text())
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = dump_dom(probe, width=1280, height=2000)
    found = re.search(r'data-box="([^"]*)"', dom)
    assert found, "the probe script did not run"
    x, y, w, h = json.loads(found.group(1))
    return (x, y, w, h), _Page(dom)


def test_hostile_names_stay_text_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "evil.html"
    page.write_text(report.html(_everything(_data(), EVIL[0])), encoding="utf-8")
    dom = _Page(dump_dom(page))
    tags = {t for t, _ in dom.elements}
    assert "script" not in tags and "img" not in tags
    assert "<script>alert(1)</script>" in dom.text["leaderboard"]


# -- escaping -------------------------------------------------------------------------


def _everything(data: Any, evil: str) -> Any:
    """``data`` with every string a stranger could choose replaced by ``evil``."""
    if isinstance(data, dict):
        return {k: _everything(v, evil) for k, v in data.items()}
    if isinstance(data, list):
        return [_everything(v, evil) for v in data]
    return evil if isinstance(data, str) else data


@pytest.mark.parametrize("evil", EVIL)
def test_hostile_strings_are_escaped_in_html(evil: str) -> None:
    data = _everything(_data(), evil)
    for h in data["history"]:
        h["score"] = "0.9"  # keep the chart's markers: a hostile score is left out of it
    out = report.html(data)
    assert "<script" not in out.lower()
    page = _Page(out)
    for tag, attrs in page.elements:
        assert tag not in {"script", "img", "iframe", "object", "embed", "link", "a"} or (
            tag == "a" and (attrs.get("href") or "").startswith("#")
        ), tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
    assert evil.split("\n")[0] in page.text["leaderboard"]  # shown, as text
    assert page.marks("improvement") and all(evil in t for t in page.marks("record"))


@pytest.mark.parametrize("evil", EVIL)
def test_hostile_strings_cannot_break_markdown(evil: str) -> None:
    data = _everything(_data(), evil)
    for h in data["history"]:
        h["score"] = "0.9"  # keep the chart: a hostile score is simply left out of it
    out = report.markdown(data)
    for table in _tables(out):
        widths = {len(_cells(row)) for row in table}
        assert len(widths) == 1, table
        for row in table[2:]:
            inert = re.sub(r"\\.|`[0-9a-fA-F]+`|&(amp|lt|gt);", "", row)
            assert not set(inert) & set("<>[]*_`\\"), row
    assert "<script" not in out and "<img" not in out
    assert "://" not in out.replace("\\://", "")
    assert "www." not in out.replace("www\\.", "")


def _cells(row: str) -> list[str]:
    # A pipe is a separator unless an odd number of backslashes precedes it.
    return re.split(r"(?<!\\)(?:\\\\)*\|", row)


def _tables(md: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_tables_have_header_rules_and_the_chart_is_mermaid() -> None:
    data = _data()
    out = report.markdown(data)
    tables = _tables(out)
    assert len(tables) == 5  # leaderboard, credit, earned nothing, payout, anchors
    for table in tables:
        assert re.fullmatch(r"\|( ---:? \|)+", table[1]), table[1]
        assert len({len(_cells(r)) for r in table}) == 1
    chart = _mermaid(out)
    assert chart[0] == "xychart-beta"
    assert re.fullmatch(r'x-axis "scored commit" 1 --> 36', chart[2])
    assert chart[3].startswith('y-axis "accuracy"')
    values = chart[4].removeprefix("line [").removesuffix("]").split(", ")
    assert values == [h["score"] for h in data["history"]]
    assert "All 36 scored commits" in out
    for name in NAMES:
        assert name in out
    assert "| 1 | Alice Martin |" in out


def _mermaid(md: str) -> list[str]:
    block = re.search(r"```mermaid\n(.*?)\n```", md, re.S)
    assert block, "no Mermaid block"
    return [line.strip() for line in block.group(1).splitlines()]


def test_markdown_chart_shows_the_last_200_points() -> None:
    data = _data(points=250)
    out = report.markdown(data)
    chart = _mermaid(out)
    values = chart[4].removeprefix("line [").removesuffix("]").split(", ")
    assert values == [h["score"] for h in data["history"][-200:]]
    assert chart[2] == 'x-axis "scored commit" 51 --> 250'
    assert "Showing the last 200 of 250 scored commits." in out


# -- no network -----------------------------------------------------------------------


def test_the_page_references_nothing_outside_itself() -> None:
    out = report.html(_data())
    page = _Page(out)
    urls = [
        v
        for _, attrs in page.elements
        for k, v in attrs.items()
        if k in {"src", "href", "xlink:href", "srcset", "action", "poster", "data"} and v
    ]
    assert urls and all(u.startswith("#") for u in urls), urls
    tags = {t for t, _ in page.elements}
    assert not tags & {"link", "script", "img", "iframe", "object"}
    assert "<link" not in out and "<script" not in out
    assert "url(" not in out and "@import" not in out
    policy = [a["content"] for t, a in page.elements if a.get("http-equiv")]
    assert policy == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]
    assert out.startswith('<!doctype html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in out


# -- edge cases -----------------------------------------------------------------------


def _edge(**changes: Any) -> dict[str, Any]:
    data = _data()
    data.update(changes)
    return data


def test_empty_history() -> None:
    data = _edge(history=[])
    page = _Page(report.html(data))
    assert "No scored commits yet" in page.text["chart"]
    assert "svg" not in {t for t, _ in page.elements}
    md = report.markdown(data)
    assert "```mermaid" not in md and "No scored commits yet" in md


def test_one_point() -> None:
    data = _edge(history=_history(1, NAMES))
    out = report.html(data)
    page = _Page(out)
    assert "svg" in {t for t, _ in page.elements}
    assert page.marks("record") == page.marks("improvement") == []
    assert _coordinates(out)
    assert "1 scored commit," in page.text["chart"]
    chart = _mermaid(report.markdown(data))
    assert chart[2] == "x-axis [1]" and chart[4] == "line [0.8]"
    assert chart[3] == 'y-axis "accuracy" 0.72 --> 0.88'


def _coordinates(out: str) -> list[float]:
    """Every number placing something on the chart; each must be finite."""
    found = re.findall(r'\s(?:c?[xy][12]?|points|r)="([^"]*)"', out.split("<svg", 1)[1])
    numbers = [float(n) for value in found for n in re.split(r"[ ,]+", value)]
    assert all(math.isfinite(n) for n in numbers), found
    return numbers


def test_all_equal_scores() -> None:
    history = _history(12, NAMES)
    for h in history:
        h["score"], h["record"] = "0.5", False
    data = _edge(history=history)
    out = report.html(data)
    page = _Page(out)
    assert _coordinates(out)
    ticks = re.findall(r'<text class="tick"[^>]*text-anchor="end">([^<]*)</text>', out)
    assert ticks == ["0.5"]  # one value: one label, not the same one twice
    ups = sum(h["improvement"] for h in history)
    assert len(page.marks("improvement")) == ups > 0
    chart = _mermaid(report.markdown(data))
    assert chart[3] == 'y-axis "accuracy" 0.45 --> 0.55'


def test_no_payout_no_round() -> None:
    data = _edge(payout=None, round=None)
    page = _Page(report.html(data))
    assert page.text["payout"].strip() == "PayoutNo reward pool."
    assert "<dt>round</dt>" not in report.html(data)
    assert "<dt>round</dt>" in report.html(_data())
    md = report.markdown(data)
    assert "## Payout\n\nNo reward pool." in md and "Round" not in md


def test_failed_verification_without_anchors_or_warnings() -> None:
    data = _edge(
        verification={"ok": False, "entries": 7, "head": "ab" * 32, "warnings": [], "anchors": []},
        direction="minimize",
        metric="rmse",
    )
    out = report.html(data)
    page = _Page(out)
    text = page.text["verification"]
    assert "verification failed" in text and "verified" not in text.replace("failed", "")
    assert "Not anchored." in text and "No warnings." in text
    assert '<span class="badge bad big">' in out
    assert "lower is better" in page.text["chart"]
    md = report.markdown(data)
    assert "verification failed" in md and "Not anchored." in md
    assert "lower is better" in _mermaid(md)[1]


def test_absent_optional_values_show_as_dashes() -> None:
    # What `git coop report` has before anything is anchored on a chain it can read back:
    # an empty ledger has no head, an unchecked anchor no chain id or block, a round no end.
    data = _edge(
        verification={
            "ok": True,
            "entries": 0,
            "head": None,
            "warnings": [],
            "anchors": [
                {"seq": 3, "tx": "0x" + "cd" * 32, "status": "broken", "detail": "no receipt"}
            ],
        },
        round={"name": "week-2", "start": "2026-01-08T00:00:00Z", "end": None, "closed": False},
    )
    page = _Page(report.html(data))
    assert "None" not in page.all_text
    assert "no receipt" in page.text["verification"] and "broken" in page.text["verification"]
    assert "open" in page.all_text.split("Leaderboard")[0]
    md = report.markdown(data)
    assert "None" not in md
    assert "| 3 | — | `0x" + "cd" * 32 + "` | — | broken (no receipt) |" in md


def test_minimize_draws_the_best_so_far_downwards() -> None:
    history = [
        {
            "commit": _commit(i),
            "score": s,
            "contributor": "A",
            "delta": None,
            "improvement": False,
            "record": False,
        }
        for i, s in enumerate(["5", "4", "6", "3"])
    ]
    out = report.html(_edge(history=history, direction="minimize"))
    best = re.search(r'<polyline class="best" points="([^"]*)"', out)
    assert best
    ys = [float(p.split(",")[1]) for p in best.group(1).split()]
    assert ys == sorted(ys)  # SVG y grows downwards: the best only ever goes down the page


# -- size ------------------------------------------------------------------------------


def test_ten_thousand_points_render_fast_and_keep_every_marker() -> None:
    data = _data(points=10_000)
    started = time.perf_counter()
    out = report.html(data)
    took = time.perf_counter() - started
    assert took < 1.0, f"{took:.2f} s"
    page = _Page(out)
    ups = sum(1 for h in data["history"] if h["improvement"] and not h["record"])
    records = sum(1 for h in data["history"] if h["record"])
    assert len(page.marks("improvement")) == ups and len(page.marks("record")) == records
    score = re.search(r'<polyline class="score" points="([^"]*)"', out)
    assert score and len(score.group(1).split()) < 4 * 900
    assert "Showing the last 200 of 10000" in report.markdown(data)


def test_csv_keeps_names_from_running_as_spreadsheet_formulas() -> None:
    import csv
    import io

    from gitcoop.render import csv_text

    text = csv_text(["name", "loss"], [['=HYPERLINK("x")', "-0.05"], ["@SUM(A1)", "0"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['\'=HYPERLINK("x")', "-0.05"]  # the number stays a number
    assert rows[2][0] == "'@SUM(A1)"
