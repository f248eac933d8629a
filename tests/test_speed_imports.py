"""Fast paths stay fast: no heavy imports in --help or in a hook with nothing to do."""

from __future__ import annotations

from testing.imports import loaded_modules
from testing.world import World

HEAVY = ("eth_account", "requests", "rich.progress", "web3")


def test_help_imports_nothing_heavy(tmp_path) -> None:
    mods = loaded_modules(tmp_path, "--help")
    assert "typer" in mods
    assert not [m for m in HEAVY if m in mods]


def test_idle_hook_imports_nothing_heavy(world: World) -> None:
    m = world.maintainer()
    m.git("push", "-q", "origin", "main")
    head = m.head()
    stdin = f"refs/heads/main {head} refs/heads/main {head}\n"
    mods = loaded_modules(m.repo, "hook-impl", "pre-push", "origin", str(world.remote), stdin=stdin)
    assert "gitcoop.commands.hook" in mods
    assert not [m for m in HEAVY if m in mods]
    assert "typer" not in mods  # the hook never loads the CLI framework
    # nothing to score or publish: neither verification nor sync is loaded
    assert not {"gitcoop.sync", "gitcoop.commands.verify", "gitcoop.notes"} & mods
