"""Which modules a `git coop` command loads: run it in a fresh interpreter, as git would,
and list ``sys.modules`` at its end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['gitcoop'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('gitcoop', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('\\nMODULES', ' '.join(sorted(sys.modules)), file=sys.stderr)\n"
)


def loaded_modules(cwd: Path, *args: str, stdin: str = "") -> set[str]:
    """The modules ``python -m gitcoop args`` had loaded when it finished."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next(ln for ln in out.stderr.splitlines() if ln.startswith("MODULES"))
    return set(line.split()[1:])
