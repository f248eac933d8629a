"""Build real repositories, bare remotes and contributors for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

BIN = str(Path(sys.executable).parent)

# The metric reads score.txt, so a test moves the score by committing a new value.
EVALUATE = textwrap.dedent(
    """\
    import json, pathlib, sys
    print("evaluating", file=sys.stderr)
    text = pathlib.Path("score.txt").read_text().strip()
    print("some log line")
    print(json.dumps({"accuracy": float(text)}) if text[0].isdigit() else text)
    """
)


def run(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure the assertion shows its output."""
    proc = subprocess.run(
        list(args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        input=None if input is None else input.decode(),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Player:
    """One person: an identity, a GITCOOP_HOME and a clone."""

    name: str
    email: str
    home: Path
    repo: Path
    env: dict[str, str] = field(default_factory=dict)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run git in this player's clone as this player."""
        return run(self.repo, "git", *args, env=self.env, check=check)

    def coop(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``git coop`` in this player's clone as this player."""
        return run(self.repo, "git", "coop", *args, env=self.env, check=check)

    def commit_score(self, value: str, message: str | None = None, path: str = "score.txt") -> str:
        """Commit a new score file; return the commit id."""
        (self.repo / path).write_text(value + "\n")
        self.git("add", path)
        self.git("commit", "-q", "-m", message or f"score {value}")
        return self.git("rev-parse", "HEAD").stdout.strip()

    def head(self, ref: str = "HEAD") -> str:
        """Resolve a ref in this clone."""
        return self.git("rev-parse", ref).stdout.strip()

    def ref(self, ref: str) -> str | None:
        """A ref's target, or None."""
        out = self.git("rev-parse", "-q", "--verify", ref, check=False)
        return out.stdout.strip() or None


def player_env(base: dict[str, str], name: str, email: str, home: Path) -> dict[str, str]:
    """Environment for a player: own keys, own identity, everything else shared."""
    env = dict(base)
    env.update(
        {
            "GITCOOP_HOME": str(home),
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
    )
    return env


@dataclass
class World:
    """A temporary world: a bare remote, the maintainer's repository and contributors."""

    root: Path
    base_env: dict[str, str]
    remote: Path
    players: dict[str, Player] = field(default_factory=dict)

    def maintainer(
        self,
        *,
        init_args: tuple[str, ...] | None = ("--protect", "evaluate.py"),
        score: str = "0.5",
    ) -> Player:
        """Create the maintainer's repository with the test metric and (by default) init it."""
        p = self._player("maint", "Maintainer", "maint@example.org")
        p.repo.mkdir()
        p.git("init", "-q", "-b", "main")
        p.git("config", "user.name", p.name)
        p.git("config", "user.email", p.email)
        (p.repo / "evaluate.py").write_text(EVALUATE)
        (p.repo / "score.txt").write_text(score + "\n")
        p.git("add", ".")
        p.git("commit", "-q", "-m", "baseline model")
        p.git("remote", "add", "origin", str(self.remote))
        if init_args is not None:
            p.coop(
                "init",
                "--metric",
                "python evaluate.py",
                "--direction",
                "maximize",
                "--name",
                "toy",
                *init_args,
            )
            p.git("push", "-q", "-u", "origin", "main")
        return p

    def contributor(self, key: str, name: str, email: str, *, join: bool = True) -> Player:
        """Clone the remote as a new person and (by default) join the challenge."""
        p = self._player(key, name, email)
        run(self.root, "git", "clone", "-q", str(self.remote), str(p.repo), env=p.env)
        p.git("config", "user.name", name)
        p.git("config", "user.email", email)
        if join:
            p.coop("init")
        return p

    def accept(self, p: Player, maintainer: Player | None = None, *, join: bool = True) -> None:
        """Have ``p`` join (a commit on the challenge branch; ``join=False``: pushed
        already) and the maintainer accept it with a trust-update entry; both clones end
        synced."""
        m = maintainer or self.players["maint"]
        if join:
            p.coop("join")
            p.git("push", "-q", "origin", "HEAD:main")
        m.git("pull", "-q", "--ff-only", "origin", "main")
        m.coop("join", "--accept")
        m.coop("sync", "origin")
        p.coop("sync", "origin")

    def _player(self, key: str, name: str, email: str) -> Player:
        home = self.root / f"home-{key}"
        p = Player(name, email, home, self.root / key, player_env(self.base_env, name, email, home))
        self.players[key] = p
        return p


def add_evaluator(m: Player) -> str:
    """Give a new key the evaluator role, as the maintainer ``m`` (a commit to the trust
    list, accepted and pushed); return its private key as the CI secret holds it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gitcoop import keys

    private = Ed25519PrivateKey.generate()
    line = keys.signers_line(
        "ci@example.org", keys.public_openssh(private.public_key()), "gitcoop,gitcoop-evaluator"
    )
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    signers = m.repo / ".coop/allowed_signers"
    signers.write_text(signers.read_text() + line + "\n")
    m.git("commit", "-qam", "the evaluator")
    m.coop("join", "--accept")
    m.git("push", "-q", "origin", "main")
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def diverged(world: World) -> tuple[Player, Player, str, str]:
    """The maintainer and a contributor, Ada, each with an attested commit of their own
    on a branch of their own and neither synced: (maintainer, Ada, Ada's, maintainer's)."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.git("checkout", "-q", "-b", "ada-try")
    a = ada.commit_score("0.61", "ada tries")
    ada.coop("evaluate", a)
    m.git("checkout", "-q", "-b", "maint-try")
    b = m.commit_score("0.62", "maintainer tries")
    m.coop("evaluate", b)
    return m, ada, a, b


def make_world(root: Path) -> World:
    """A world with an empty bare remote under ``root``."""
    remote = root / "remote.git"
    run(root, "git", "init", "-q", "--bare", "-b", "main", str(remote))
    return World(root, dict(os.environ), remote)
