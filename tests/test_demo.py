"""The bundled example plays end to end, as `make demo` runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "digits" / "demo.py"


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    out = subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "ledger OK" in text
    for person in ("ada@example.org", "grace@example.org", "alan@example.org"):
        assert person in text
    credit = text[text.index("git coop credit") :]
    assert "-0." in credit  # someone's change made the score worse: a loss is shown
    payout = text[text.index("git coop payout") :].splitlines()[:10]
    amounts = [int(m[1]) for ln in payout if (m := re.match(r"\s+\S+\s+SHA256:\S+\s+(\d+)", ln))]
    assert sum(amounts) == 1000  # the whole pool, in whole points
    assert "wrote " in text and "report.html" in text
