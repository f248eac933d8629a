"""Fault injection for the crash tests: ``GITCOOP_FAULT=<area>:<point>`` kills the process
with SIGKILL when it reaches that named point (docs/cli.md, "Fault injection").

Unset, a point costs one environment look-up. Nothing is imported here that the pre-push
hook does not already load.
"""

from __future__ import annotations

import os

ENV = "GITCOOP_FAULT"


def hit(area: str, point: str) -> None:
    """Die here, as a crash would (nothing flushed, no ``finally`` run, no lock released
    by us), when ``GITCOOP_FAULT`` names ``area:point``; otherwise do nothing."""
    wanted = os.environ.get(ENV)
    if wanted is not None and wanted == f"{area}:{point}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
