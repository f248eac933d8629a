"""`git coop join`: a contributor names their key in `.coop/allowed_signers` as one commit
of that file alone, which a guarded server then honours."""

from __future__ import annotations

from testing.world import Player, World, run

SIGNERS = ".coop/allowed_signers"


def _signers(p: Player) -> str:
    return (p.repo / SIGNERS).read_text()


def test_join_commits_the_trust_list_line_once(world: World) -> None:
    world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    line = ada.coop("key", "export").stdout.strip()
    before = ada.head()
    out = ada.coop("join")
    assert line in out.stdout and "push it" in out.stdout
    assert _signers(ada).endswith(f"{line}\n")
    assert ada.git("log", "-1", "--format=%s").stdout.strip() == "coop: join ada@example.org"
    changed = ada.git("diff", "--name-only", before, "HEAD").stdout.split()
    assert changed == [SIGNERS]
    joined = ada.head()
    again = ada.coop("join")
    assert "nothing changed" in again.stdout and ada.head() == joined
    assert _signers(ada).count(line) == 1


def test_join_leaves_a_file_with_changes_of_your_own_alone(world: World) -> None:
    world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    mine = _signers(ada) + "# my note\n"
    (ada.repo / SIGNERS).write_text(mine)
    before = ada.head()
    out = ada.coop("join", check=False)
    assert out.returncode == 2 and "changes of your own" in out.stderr
    assert _signers(ada) == mine and ada.head() == before


def test_a_refused_commit_puts_the_file_back(world: World) -> None:
    world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    hook = ada.repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'no commits today' >&2\nexit 1\n")
    hook.chmod(0o755)
    before, text = ada.head(), _signers(ada)
    out = ada.coop("join", check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert _signers(ada) == text and ada.head() == before
    assert ada.git("status", "--porcelain").stdout == ""


def test_a_guarded_server_takes_the_ledger_once_the_join_is_on_the_branch(
    world: World,
) -> None:
    m = world.maintainer()
    m.coop("server", "install", str(world.remote))
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.commit_score("0.8")
    ada.coop("evaluate")
    refused = ada.coop("sync", check=False)
    assert refused.returncode != 0 and "does not know" in refused.stderr
    ada.coop("join")
    ada.git("push", "-q", "--no-verify", "origin", "main")  # the join commit, as merged
    assert "pushed" in ada.coop("sync").stdout
    remote = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert remote == ada.ref("refs/coop/ledger")
