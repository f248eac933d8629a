"""The crash tests' tally (tests/test_crash.py): the SIGKILLs the repositories survived, by
command and point, for pytest's summary (tests/conftest.py)."""

from __future__ import annotations

from collections import Counter

RANDOM = "a random moment"
kills: Counter[str] = Counter()  # "<command> at <point or RANDOM>" -> kills survived
locks: Counter[str] = Counter()  # git lock files a kill left, removed as the user is told to


def summary() -> str:
    """One line: kills survived, at named points and at random moments, and locks removed."""
    total = sum(kills.values())
    at_random = sum(n for how, n in kills.items() if how.endswith(RANDOM))
    line = (
        f"crash tests: {total} kills survived ({total - at_random} at named fault points, "
        f"{at_random} at random moments)"
    )
    if locks:
        line += "; stale git locks removed: " + ", ".join(f"{k} x{n}" for k, n in locks.items())
    return line
