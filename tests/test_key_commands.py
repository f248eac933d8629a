"""`git coop key import|export`: bring an existing OpenSSH Ed25519 key, keep private keys
private, and sign through ssh-agent when the key has a passphrase."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testing.world import Player, World

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None or shutil.which("ssh-agent") is None,
    reason="needs OpenSSH (ssh-keygen, ssh-agent, ssh-add)",
)


def _keygen(path: Path, passphrase: str = "", kind: str = "ed25519") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "mine", "-f", str(path)],
        check=True,
    )
    return path


def _fingerprint(path: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True)
    return out.stdout.split()[1]


def _public(path: Path) -> str:
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def _refused(p: Player, *args: str, says: str) -> str:
    out = p.coop(*args, check=False)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert says in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


@pytest.fixture
def person(world: World) -> Player:
    return world.maintainer(init_args=None)  # a repository, and no gitcoop key yet


def _init(p: Player) -> None:
    p.coop("init", "--metric", "python evaluate.py", "--direction", "maximize")


def test_an_imported_key_is_copied_safely_and_signs(person: Player, tmp_path: Path) -> None:
    source = _keygen(tmp_path / "ssh" / "id_ed25519")
    out = person.coop("key", "import", str(source))
    assert "copied to" in out.stdout
    stored = person.home / "keys" / "id_ed25519"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert person.coop("key", "show").stdout.split()[-1] == _fingerprint(source)
    line = person.coop("key", "export").stdout.strip()
    assert line == f'maint@example.org namespaces="gitcoop" {_public(source)}'
    _init(person)
    assert _public(source) in (person.repo / ".coop" / "allowed_signers").read_text()
    assert _fingerprint(source) in person.coop("verify").stdout


def test_unsafe_or_unsuitable_key_files_are_refused_and_nothing_is_written(
    person: Player, tmp_path: Path
) -> None:
    loose = _keygen(tmp_path / "loose" / "id_ed25519")
    loose.chmod(0o644)
    _refused(person, "key", "import", str(loose), says="UNPROTECTED PRIVATE KEY FILE")
    ecdsa = _keygen(tmp_path / "ec" / "id_ecdsa", kind="ecdsa")
    _refused(person, "key", "import", str(ecdsa), says="not an Ed25519 key")
    _refused(person, "key", "import", str(tmp_path / "nothing"), says="no key file at")
    _refused(person, "key", "import", says="name one key to import")
    assert not (person.home / "keys" / "id_ed25519").exists()
    person.coop("key", "generate")
    mine = (person.home / "keys" / "id_ed25519").read_bytes()
    other = _keygen(tmp_path / "other" / "id_ed25519")
    _refused(person, "key", "import", str(other), says="a key already exists")
    assert (person.home / "keys" / "id_ed25519").read_bytes() == mine


def test_a_private_key_is_exported_to_a_new_file_only(person: Player, tmp_path: Path) -> None:
    person.coop("key", "generate")
    mine = (person.home / "keys" / "id_ed25519").read_bytes()
    dest = tmp_path / "backup" / "gitcoop_key"
    dest.parent.mkdir()
    out = person.coop("key", "export", "--private", str(dest))
    assert "PRIVATE KEY" not in out.stdout + out.stderr
    assert dest.read_bytes() == mine and stat.S_IMODE(dest.stat().st_mode) == 0o600
    dest.write_bytes(b"kept")
    _refused(person, "key", "export", "--private", str(dest), says="exists")
    assert dest.read_bytes() == b"kept"
    inside = person.repo / "my_key"
    _refused(person, "key", "export", "--private", str(inside), says="inside the work tree")
    assert not inside.exists()


def test_the_key_git_signs_commits_with_is_imported(person: Player, tmp_path: Path) -> None:
    source = _keygen(tmp_path / "ssh" / "id_ed25519")
    person.git("config", "user.signingKey", f"{source}.pub")
    _refused(person, "key", "import", "--from-git", says="gpg.format is unset")
    person.git("config", "gpg.format", "ssh")
    person.coop("key", "import", "--from-git")
    assert person.coop("key", "show").stdout.split()[-1] == _fingerprint(source)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[dict[str, str]]:
    sock = tmp_path / "agent.sock"
    proc = subprocess.run(
        ["ssh-agent", "-s", "-a", str(sock)], capture_output=True, text=True, check=True
    )
    pid = int(proc.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        yield {"SSH_AUTH_SOCK": str(sock)}
    finally:
        os.kill(pid, signal.SIGTERM)


def _ssh_add(key: Path, passphrase: str, env: dict[str, str], tmp_path: Path) -> None:
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n")
    askpass.chmod(0o700)
    extra = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    subprocess.run(
        ["ssh-add", "-q", str(key)],
        env={**os.environ, **env, **extra},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )


def test_a_passphrase_protected_key_signs_through_ssh_agent(
    person: Player, agent: dict[str, str], tmp_path: Path
) -> None:
    locked = _keygen(tmp_path / "ssh" / "id_ed25519", passphrase="open sesame")
    person.env.update(agent)
    _refused(person, "key", "import", str(locked), says="ssh-add")
    assert not (person.home / "keys").exists() or not any((person.home / "keys").iterdir())
    _ssh_add(locked, "open sesame", agent, tmp_path)
    out = person.coop("key", "import", str(locked))
    assert "held by ssh-agent" in out.stdout
    assert not (person.home / "keys" / "id_ed25519").exists()  # no private key copied
    _init(person)
    person.commit_score("0.7")
    person.coop("evaluate")
    verified = person.coop("verify").stdout
    assert _fingerprint(locked) in verified and "3 entries" in verified
    before = person.ref("refs/coop/ledger")
    subprocess.run(["ssh-add", "-D"], env={**os.environ, **agent}, capture_output=True, check=True)
    person.commit_score("0.8")
    _refused(person, "evaluate", says="ssh-agent does not hold the key")
    assert person.ref("refs/coop/ledger") == before
