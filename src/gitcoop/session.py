"""What most commands open first: the repository, the ledger head and the pinned challenge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import _fs, constants, keys, ledger, pinned, records
from gitcoop.errors import ConfigError
from gitcoop.git import Repo, open_repo
from gitcoop.workspace import local_dir


@dataclass(frozen=True)
class Session:
    """An open challenge: repository, ledger head and the challenge in force."""

    repo: Repo
    head: ledger.Head
    pinned: pinned.Pinned
    local: Path

    @property
    def baseline(self) -> str:
        """The commit the challenge started from (the genesis entry's baseline)."""
        return genesis_baseline(self.repo)


def open_session(path: str | Path = ".") -> Session:
    """Open the challenge of the repository at ``path``.

    Raises NotARepository, or ConfigError when no ledger exists.
    """
    repo = open_repo(path)
    head = ledger.head(repo) or fetch_first(repo)
    if head is None:
        raise ConfigError(
            "this repository has no gitcoop ledger",
            hint="run: git coop init --metric CMD --direction maximize|minimize",
        )
    local = local_dir(repo)
    pin = pinned.load(repo, head.pinned_tree, head.entry.challenge, local / "challenges")
    return Session(repo, head, pin, local)


def fetch_first(repo: Repo) -> ledger.Head | None:
    """In a clone of a challenge that has no ledger yet, take it from the remotes (the
    first gitcoop command there does what ``git coop init`` would); None when none has it.

    Raises SecurityError or VerificationError for a ledger that does not verify, and
    GitOperationError when a remote cannot be reached.
    """
    root = repo.workdir
    if root is None or not (root / constants.CHALLENGE_FILE).exists():
        return None
    from gitcoop import _gitcli, sync

    for remote in _gitcli.git(root, "remote").split():
        sync.sync(repo, root, remote, push=False)
        head = ledger.head(repo)
        if head is not None:
            return head
    return None


def genesis_baseline(repo: Repo) -> str:
    """Return the baseline commit named in the ledger's genesis entry (cached locally)."""
    tip = repo.ref(constants.LEDGER_REF)
    assert tip is not None
    cache = local_dir(repo) / "baseline"
    head = ledger.head(repo)
    assert head is not None
    cached = (_fs.read_or_none(cache) or b"").decode().split()
    if len(cached) == 2 and cached[0] == head.origin:
        return cached[1]
    baseline = _read_baseline(ledger.genesis(repo, tip))
    _fs.atomic_write(cache, f"{head.origin} {baseline}\n".encode())
    return baseline


def _read_baseline(rec: ledger.Record) -> str:
    obj, _ = records.open_envelope(rec.entry.envelope, rec.entry.key, constants.EVENT_PAYLOAD_TYPE)
    event = records.parse_event(obj, "genesis")
    return records.genesis_fields(event.body)[2]


def identity(repo: Repo) -> tuple[str, str]:
    """The user's (name, email) from git config, with safe fallbacks."""
    name = repo.config_get("user.name") or "unknown"
    email = repo.config_get("user.email") or "unknown@localhost"
    return name, email


def signer_for(repo: Repo, worktree: Path | None) -> tuple[keys.SigningKey, records.Signer, bool]:
    """Load (or create on first use) the user's signing key; returns key, signer, created."""
    home = keys.gitcoop_home()
    keys.refuse_inside(home, worktree)
    name, email = identity(repo)
    key, created = keys.load_or_create(home, comment=email)
    return key, records.Signer(key.keyid, email, name), created
