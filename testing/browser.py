"""Headless Chromium for tests: a screenshot and the rendered DOM of a local page, offline.

The page is opened from a file:// URL, and every name lookup fails and every proxied
request goes to a closed port, so a page that tries to fetch anything gets nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it
TIMEOUT = 60.0  # seconds; a cold start on a loaded 2-core machine takes a few


class BrowserError(RuntimeError):
    """Chromium is missing, timed out, or did not produce what was asked."""


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 2000) -> None:
    """Render ``html_path`` in a ``width`` x ``height`` window and write the PNG to
    ``png_path``; raises BrowserError with Chromium's stderr when no PNG appears."""
    png_path = png_path.resolve()
    png_path.unlink(missing_ok=True)
    done = _run(html_path, f"--window-size={width},{height}", f"--screenshot={png_path}")
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise BrowserError(
            f"chromium wrote no screenshot (exit {done.returncode}):\n{_tail(done.stderr)}"
        )


def dump_dom(html_path: Path, width: int = 1280, height: int = 2000) -> str:
    """Return the DOM Chromium serialises once ``html_path`` has loaded; raises
    BrowserError when it exits with an error or prints no document."""
    done = _run(html_path, f"--window-size={width},{height}", "--dump-dom")
    dom = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 or "<html" not in dom.lower():
        raise BrowserError(
            f"chromium printed no DOM (exit {done.returncode}):\n{_tail(done.stderr)}"
        )
    return dom


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    if not CHROMIUM.is_file():
        raise BrowserError(f"{CHROMIUM} is missing: install Debian's chromium package")
    with tempfile.TemporaryDirectory(prefix="gitcoop-chromium-") as profile:
        argv = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            # Host names resolve to nothing; IP literals go to a proxy on the discard port.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            *args,
            page.resolve().as_uri(),
        ]
        try:
            return subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(
                f"chromium did not finish in {TIMEOUT:.0f} s:\n{_tail(exc.stderr or b'')}"
            ) from None


def _tail(stderr: bytes, lines: int = 40) -> str:
    # Chromium logs D-Bus noise in containers; the last lines are the ones that matter.
    return "\n".join(stderr.decode("utf-8", "replace").splitlines()[-lines:])
