"""The one way to reach packaged files (hooks, templates, examples)."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "_data"
# In a source checkout (editable install) the files sit at the project root.
_SOURCE = Path(__file__).resolve().parents[2]


def path(*parts: str) -> Path:
    """Return the path of a packaged resource such as ``path("hooks", "pre-push")``.

    Raises FileNotFoundError when the resource is in neither the wheel nor the checkout.
    """
    for root in (_PACKAGED, _SOURCE):
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError("/".join(parts))


def read_text(*parts: str) -> str:
    """Return a packaged text resource; raises FileNotFoundError when it is missing."""
    return path(*parts).read_text(encoding="utf-8")
