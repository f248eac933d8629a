"""Hook installation keeps foreign hooks, respects core.hooksPath, and the protocol works."""

from __future__ import annotations

import sys

from testing.world import World, run


def test_existing_hook_is_kept_as_legacy_and_still_runs(world: World) -> None:
    m = world.maintainer(init_args=None)
    hook = m.repo / ".git/hooks/pre-push"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text('#!/bin/sh\ncat > "$(git rev-parse --git-dir)/legacy-ran"\nexit 0\n')
    hook.chmod(0o755)
    m.coop("init", "--metric", "python evaluate.py", "--direction", "maximize")
    assert (m.repo / ".git/hooks/pre-push.legacy").exists()
    assert "gitcoop-hook" in hook.read_text()
    m.commit_score("0.6")
    m.git("push", "-q", "origin", "main")
    seen = (m.repo / ".git/legacy-ran").read_text()
    assert "refs/heads/main" in seen  # the legacy hook got git's stdin
    m.coop("hook", "uninstall")
    assert "gitcoop-hook" not in hook.read_text()
    assert not (m.repo / ".git/hooks/pre-push.legacy").exists()


def test_failing_legacy_hook_refuses_the_push(world: World) -> None:
    m = world.maintainer()
    legacy = m.repo / ".git/hooks/pre-push.legacy"
    legacy.write_text("#!/bin/sh\necho legacy says no >&2\nexit 7\n")
    legacy.chmod(0o755)
    before = m.ref("refs/coop/ledger")
    m.commit_score("0.6")
    out = m.git("push", "origin", "main", check=False)
    assert out.returncode != 0 and "legacy says no" in out.stderr
    assert m.ref("refs/coop/ledger") == before


def test_core_hooks_path_is_refused_with_the_fix(world: World) -> None:
    m = world.maintainer(init_args=None)
    m.git("config", "core.hooksPath", ".githooks")
    out = m.coop("init", "--metric", "python evaluate.py", "--direction", "maximize", check=False)
    assert out.returncode == 2
    assert "core.hooksPath" in out.stderr and "--no-hooks" in out.stderr
    assert m.ref("refs/coop/ledger") is None
    assert m.git("status", "--porcelain").stdout == ""
    m.coop("init", "--metric", "python evaluate.py", "--direction", "maximize", "--no-hooks")
    assert m.ref("refs/coop/ledger") is not None


def test_new_branch_force_push_and_deletion(world: World) -> None:
    m = world.maintainer()
    m.commit_score("0.6")
    m.git("push", "-q", "origin", "main")
    n = int(m.git("rev-list", "--count", "refs/coop/ledger").stdout)
    m.git("reset", "-q", "--hard", "HEAD~1")
    forced = m.commit_score("0.65", "rewritten history")
    m.git("push", "-q", "--force", "origin", "main")
    assert int(m.git("rev-list", "--count", "refs/coop/ledger").stdout) == n + 1
    assert "0.65" in m.coop("show", forced).stdout
    m.git("push", "-q", "origin", "main:refs/heads/other")  # another branch: untouched
    m.git("push", "-q", "origin", ":refs/heads/other")  # deletion: untouched
    assert int(m.git("rev-list", "--count", "refs/coop/ledger").stdout) == n + 1


def test_push_with_a_url_instead_of_a_remote_name(world: World) -> None:
    m = world.maintainer()
    c = m.commit_score("0.6")
    m.git("push", "-q", str(world.remote), "main")
    assert run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip() == m.ref(
        "refs/coop/ledger"
    )
    assert "0.6" in m.coop("show", c).stdout


def test_an_unreachable_remote_refuses_the_push_with_git_s_reason(world: World) -> None:
    m = world.maintainer()
    before = m.ref("refs/coop/ledger")
    head = m.commit_score("0.6")
    stdin = f"refs/heads/main {head} refs/heads/main {m.head('HEAD~1')}\n".encode()
    gone = str(world.root / "gone.git")
    out = run(
        m.repo,
        sys.executable,
        "-m",
        "gitcoop",
        "hook-impl",
        "pre-push",
        gone,
        gone,
        env=m.env,
        input=stdin,
        check=False,
    )
    assert out.returncode != 0
    assert "git fetch failed" in out.stderr
    assert m.ref("refs/coop/ledger") == before
