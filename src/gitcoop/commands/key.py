"""``git coop key``: the signing key a contributor brings, shows and moves."""

from __future__ import annotations

import os
from pathlib import Path

from gitcoop import keys
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.git import global_config_get, open_repo
from gitcoop.session import identity


def email_of(cwd: Path) -> str:
    """The git email of the repository at ``cwd`` (a placeholder outside one)."""
    try:
        return identity(open_repo(cwd))[1]
    except GitcoopError:
        return "unknown@localhost"


def trust_line(cwd: Path) -> str:
    """The line that names the user's key in a challenge's trust list."""
    key = keys.load(keys.gitcoop_home())
    return keys.signers_line(email_of(cwd), key.public_openssh)


def import_key(cwd: Path, source: Path | None, *, from_git: bool) -> keys.SigningKey:
    """Make an existing OpenSSH Ed25519 key the signing key: the file ``source``, or the key
    git signs commits with (``user.signingKey``)."""
    home = keys.gitcoop_home()
    worktree = keys.work_tree_of(cwd)
    keys.refuse_inside(home, worktree)
    comment = email_of(cwd)
    if from_git == (source is not None):
        raise ConfigError("name one key to import", hint="git coop key import FILE, or --from-git")
    if source is not None:
        return keys.import_file(home, source, comment=comment)
    value = _signing_key_setting(cwd)
    if value.startswith("key::"):  # git's form for a literal public key
        return keys.import_agent(home, value.removeprefix("key::"), comment=comment)
    path = Path(os.path.expanduser(value))
    if path.suffix == ".pub":
        private = path.with_suffix("")
        if private.exists():
            return keys.import_file(home, private, comment=comment)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path} (user.signingKey): {exc.strerror}") from None
        return keys.import_agent(home, text, comment=comment)
    return keys.import_file(home, path, comment=comment)


def _signing_key_setting(cwd: Path) -> str:
    try:
        repo = open_repo(cwd)
        fmt, value = repo.config_get("gpg.format"), repo.config_get("user.signingkey")
    except GitcoopError:  # outside a repository: the user's own settings
        fmt, value = global_config_get("gpg.format"), global_config_get("user.signingkey")
    if value is None or fmt != "ssh":
        raise ConfigError(
            "git does not sign commits with an SSH key here (user.signingKey, with "
            f"gpg.format ssh; gpg.format is {fmt or 'unset'})",
            hint="import the key file instead: git coop key import ~/.ssh/id_ed25519",
        )
    return value
