"""``git coop join``: name your key in the challenge's trust list, as a commit to propose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import _fs, _gitcli, constants, keys
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.git import open_repo
from gitcoop.session import open_session, signer_for


@dataclass(frozen=True)
class Joined:
    """What ``join`` did: the trust-list line, and the commit that added it (None: the
    list already named the key, nothing changed)."""

    line: str
    commit: str | None


def join(path: str | Path = ".") -> Joined:
    """Add the user's principal and key to ``.coop/allowed_signers`` and commit that file
    alone. Raises ConfigError outside a challenge's work tree, or when the file has
    changes of the user's own that a commit would sweep in."""
    s = open_session(path)
    root = open_repo(path).workdir
    if root is None:
        raise ConfigError("git coop join needs a work tree", hint="run it in your clone")
    key, signer, _ = signer_for(s.repo, root)
    line = keys.signers_line(signer.principal, key.public_openssh)
    target = root / constants.SIGNERS_FILE
    text = (_fs.read_or_none(target) or b"").decode("utf-8", errors="replace")
    if _lists(text, key.public_openssh):
        return Joined(line, None)
    if _gitcli.git(root, "status", "--porcelain", "--", constants.SIGNERS_FILE):
        raise ConfigError(
            f"{constants.SIGNERS_FILE} has changes of your own",
            hint="commit or discard them first, then run git coop join again",
        )
    ending = "" if not text or text.endswith("\n") else "\n"
    _fs.atomic_write(target, f"{text}{ending}{line}\n".encode())
    try:
        _gitcli.commit_paths(root, [constants.SIGNERS_FILE], f"coop: join {signer.principal}")
    except GitcoopError:
        # A refused commit (a hook, no identity) leaves the file and the index as they were.
        _gitcli.git(root, "reset", "--quiet", "--", constants.SIGNERS_FILE)
        _fs.atomic_write(target, text.encode())
        raise
    return Joined(line, _gitcli.git(root, "rev-parse", "HEAD"))


def _lists(text: str, public: str) -> bool:
    # A line names the key when its key fields match, whatever its principal or options.
    wanted = public.split()
    for raw in text.splitlines():
        fields = raw.split()
        if raw.lstrip().startswith("#") or "ssh-ed25519" not in fields:
            continue
        at = fields.index("ssh-ed25519")
        if fields[at : at + 2] == wanted:
            return True
    return False
