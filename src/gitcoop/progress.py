"""A one-line progress bar on stderr for long runs (``evaluate``, ``rescore``), shown only
on a terminal, and the text formatting behind it. Standard library only: the CLI imports
it for the commands that score, never on the hook's path."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TextIO

INTERVAL = 0.1  # seconds between redraws: at most about ten a second
MIN_BAR = 5  # narrower than this, the bar is left out and the counts stay
MAX_BAR = 40
COMMIT_CHARS = 12


def wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to draw on ``stream`` by default: it is a terminal, ``CI`` is unset (or
    ``0``/``false``; GitHub Actions sets ``CI=true``) and ``TERM`` is not ``dumb``."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    ci = environ.get("CI", "").strip().lower() not in ("", "0", "false")
    return tty and not ci and environ.get("TERM") != "dumb"


def elapsed_text(seconds: float) -> str:
    """``12.3s`` under a minute, ``4m05s`` under an hour, ``2h03m`` after."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def bar_text(done: int, total: int, inner: int) -> str:
    """``[=====>    ]`` with ``inner`` characters between the brackets."""
    filled = inner * min(done, total) // total if total > 0 else 0
    if filled >= inner:
        return "[" + "=" * inner + "]"
    return "[" + "=" * filled + ">" + " " * (inner - filled - 1) + "]"


def line_text(label: str, done: int, total: int, elapsed: float, commit: str, width: int) -> str:
    """One frame, ``scoring  37/120 [=====>    ]  30%  12.3s  a1b2c3d4e5f6``, at most
    ``width - 1`` characters (the last column would wrap on some terminals).

    The bar takes the room left, up to MAX_BAR; it is left out when narrower than MIN_BAR,
    and for a total of 0 (unknown: the count alone) or 1. Then, while the line is still too
    long, the commit goes, the elapsed time, the percentage, and the count is cut."""
    room = max(width - 1, 0)
    count = f"  {done}" if total <= 0 else f"  {done:>{len(str(total))}}/{total}"
    pct = f" {min(done, total) * 100 // total:3d}%" if total > 1 else ""
    parts = [label + count, pct, f"  {elapsed_text(elapsed)}"]
    parts += [f"  {commit[:COMMIT_CHARS]}"] if commit else []
    full = len(parts)
    while len(parts) > 1 and sum(map(len, parts)) > room:
        parts.pop()
    inner = min(MAX_BAR, room - sum(map(len, parts)) - 3)  # " [" and "]"
    if pct and len(parts) == full and inner >= MIN_BAR:
        parts[0] += f" {bar_text(done, total, inner)}"
    return "".join(parts)[:room]


def columns(stream: TextIO) -> int:
    """The width of the terminal behind ``stream``; else ``COLUMNS`` or the width of the
    terminal on stdout, else 80 (shutil.get_terminal_size)."""
    try:
        found = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        found = 0
    # A terminal that never had its size set (a fresh pseudo-terminal) reports 0.
    return found if found > 0 else shutil.get_terminal_size().columns


class Progress:
    """A progress line redrawn in place with ``\\r`` on ``stream`` (default stderr).

    ``update(done, total, commit)`` records where the run is; the line is redrawn at most
    every INTERVAL seconds (a background thread keeps the elapsed time, counted from the
    first update, moving between updates), and always for the last count; updates after
    ``close`` are ignored. ``write(text)`` prints a line of output with
    the bar cleared first and redrawn after, so the two never share a line; ``close`` (or
    leaving the ``with`` block) clears it. Safe to call from several threads.

    ``enabled`` None decides by ``wanted(stream)``. Disabled, it draws nothing and starts
    no thread: ``write`` just prints the line.
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = sys.stderr if stream is None else stream
        self.enabled = wanted(self._stream) if enabled is None else enabled
        self._label = label
        self._interval = interval
        self._clock = clock
        self._started = 0.0  # set by the first update
        self._lock = threading.Lock()
        self._state: tuple[int, int, str] | None = None
        self._drawn_at = float("-inf")
        self._shown = 0  # characters of the bar on the screen now
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, done: int, total: int, commit: str) -> None:
        """Record ``done`` of ``total`` finished, ``commit`` the latest started or
        finished; redraw when due."""
        if not self.enabled:
            return
        with self._lock:
            if self._stop.is_set():  # a worker finishing after close: stay cleared
                return
            if self._ticker is None:  # the first update: the clock starts
                self._started = self._clock()
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()
            self._state = (done, total, commit)
            if 0 < total <= done or self._clock() - self._drawn_at >= self._interval:
                self._draw()

    def write(self, text: str) -> None:
        """Print ``text`` as a line of its own, the bar cleared around it."""
        with self._lock:
            self._clear()
            self._stream.write(text + "\n")
            if self._state is not None:
                self._draw()
            self._stream.flush()

    def close(self) -> None:
        """Stop redrawing and clear the line (idempotent)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()  # outside the lock: the ticker may be waiting for it
        with self._lock:
            self._state = None
            self._clear()

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                if self._state is None or self._clock() - self._drawn_at < self._interval:
                    continue
                try:
                    self._draw()
                except (OSError, ValueError):  # stderr went away: the run itself says so
                    return

    def _draw(self) -> None:
        assert self._state is not None
        now = self._clock()
        done, total, commit = self._state
        width = columns(self._stream)
        text = line_text(self._label, done, total, now - self._started, commit, width)
        # Blank what is left of a longer previous frame.
        text += " " * max(min(self._shown, width - 1) - len(text), 0)
        self._stream.write("\r" + text)
        self._stream.flush()
        self._shown = len(text)
        self._drawn_at = now

    def _clear(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * self._shown + "\r")
            self._stream.flush()
            self._shown = 0
