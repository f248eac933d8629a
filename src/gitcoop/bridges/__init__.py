"""Bridges: turn a challenge kept in another tool's format (a DVC pipeline, a CodaLab or
Codabench bundle, a RAMP kit) into a gitcoop challenge, keeping its evaluation code as it
is. Each bridge reads what is there and proposes the challenge file and the files to add;
``git coop init --from KIND`` writes and commits them, then starts the challenge as for a
hand-written challenge file."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from gitcoop.errors import ConfigError, GitcoopError

KINDS = ("dvc", "codalab", "ramp")


@dataclass(frozen=True)
class Request:
    """What the user asked for: the repository's root, the source (a bundle directory,
    or None for what is in the repository) and the options that override what the
    bridge would propose."""

    root: Path
    source: Path | None = None
    name: str | None = None
    direction: str | None = None  # "maximize" | "minimize"
    metric_name: str | None = None  # which score, when the source has several
    metric: str | None = None  # the metric command, overriding the proposed one
    stage: str | None = None  # dvc: the stage whose metrics file holds the score
    timeout: int = 600
    branch: str | None = None  # the challenge branch (None: the current one)


@dataclass(frozen=True)
class Proposal:
    """A challenge file and the files that go with it, relative to the repository root."""

    challenge: str  # the text of .coop/challenge.yaml
    files: dict[str, bytes] = field(default_factory=dict)  # to write (never over a file)
    notes: list[str] = field(default_factory=list)  # what the user should know


def branch_of(request: Request) -> str:
    """The challenge branch: the one asked for, else the repository's current one."""
    if request.branch:
        return request.branch
    from gitcoop import _gitcli

    try:
        return _gitcli.git(request.root, "symbolic-ref", "--short", "-q", "HEAD") or "main"
    except GitcoopError:
        return "main"


def propose(kind: str, request: Request) -> Proposal:
    """The bridge ``kind``'s proposal; raises ConfigError naming what is missing."""
    if kind not in KINDS:
        raise ConfigError(f"no bridge from {kind!r}", hint=f"choose one of: {', '.join(KINDS)}")
    module = importlib.import_module(f"gitcoop.bridges.{kind}")
    proposal: Proposal = module.propose(request)
    return proposal
