"""``git coop join``: name your key in the challenge's trust list, as a commit to propose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import _faults, _fs, _gitcli, constants, keys, ledger, records, trust
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.git import Repo
from gitcoop.session import open_session, signer_for


@dataclass(frozen=True)
class Joined:
    """What ``join`` did: the trust-list line, and the commit that added it (None: the
    list already named the key, nothing changed)."""

    line: str
    commit: str | None


@dataclass(frozen=True)
class EthProof:
    """An Ethereum address and where its EIP-191 signature over the identity message comes
    from: made elsewhere (a wallet), or by the private key in ``key_file``."""

    address: str
    signature: str | None = None
    key_file: Path | None = None


IDENTITY_TAG = "gitcoop identity v1"  # domain separation: this text is signed for nothing else


def identity_message(public: str, address: str) -> str:
    """The text an Ethereum key signs (EIP-191 personal message) to bind itself to a
    gitcoop key."""
    return f"{IDENTITY_TAG}\nkey: {public}\naddress: {address}\n"


def message_for(path: str | Path, address: str) -> str:
    """The identity message for the user's key and ``address``, to sign with a wallet."""
    from gitcoop import eth

    s = open_session(path)
    key, _, _ = signer_for(s.repo, s.repo.workdir)
    return identity_message(key.public_openssh, eth.checksummed(address))


def join(path: str | Path = ".", eth: EthProof | None = None) -> Joined:
    """Add the user's principal and key to ``.coop/allowed_signers`` and commit that file
    alone; with ``eth``, the line also carries the address and its proof of holding it.
    Raises ConfigError outside a challenge's work tree, for a bad address or proof, or
    when the file has changes of the user's own that a commit would sweep in."""
    s = open_session(path)
    root = s.repo.workdir
    if root is None:
        raise ConfigError("git coop join needs a work tree", hint="run it in your clone")
    key, signer, _ = signer_for(s.repo, root)
    line = keys.signers_line(signer.principal, key.public_openssh)
    if eth is not None:
        address, signature = _eth_binding(key.public_openssh, eth)
        line += f" eth={address} eth-sig={signature}"
    target = root / constants.SIGNERS_FILE
    text = (_fs.read_or_none(target) or b"").decode("utf-8", errors="replace")
    if _gitcli.git(root, "status", "--porcelain", "--", constants.SIGNERS_FILE):
        # Only what is committed counts. A file holding exactly this join's change is a
        # run cut short between writing and committing it: finish that.
        committed = s.repo.blob_at(s.repo.head_commit(), constants.SIGNERS_FILE) or b""
        text, wanted = committed.decode("utf-8", errors="replace"), text
        new = _with_key(text, key.public_openssh, line, eth)
        if new is None:
            return Joined(line, None)
        if new != wanted:
            raise ConfigError(
                f"{constants.SIGNERS_FILE} has changes of your own",
                hint="commit or discard them first, then run git coop join again",
            )
    else:
        new = _with_key(text, key.public_openssh, line, eth)
        if new is None:
            return Joined(line, None)
        _fs.atomic_write(target, new.encode())
        _faults.hit("join", "after-write")  # the file changed, not committed
    try:
        _gitcli.commit_paths(root, [constants.SIGNERS_FILE], f"coop: join {signer.principal}")
    except GitcoopError:
        # A refused commit (a hook, no identity) leaves the file and the index as they were.
        _gitcli.git(root, "reset", "--quiet", "--", constants.SIGNERS_FILE)
        _fs.atomic_write(target, text.encode())
        raise
    return Joined(line, _gitcli.git(root, "rev-parse", "HEAD"))


def _with_key(text: str, public: str, line: str, eth: EthProof | None) -> str | None:
    """The trust list ``text`` with ``line`` for the key ``public``, or None when it names
    the key already (with that very line, when there is a proof to add). A new proof
    replaces the key's line; anything else in the file stays as it was."""
    lines = text.splitlines()
    kept = [ln for ln in lines if not _names(ln, public)]
    if line in lines or (eth is None and len(kept) < len(lines)):
        return None
    return "".join(f"{ln}\n" for ln in [*kept, line])


def _names(raw: str, public: str) -> bool:
    # A line names the key when its key fields match, whatever its principal or options.
    fields = raw.split()
    if raw.lstrip().startswith("#") or "ssh-ed25519" not in fields:
        return False
    at = fields.index("ssh-ed25519")
    return fields[at : at + 2] == public.split()


def _eth_binding(public: str, proof: EthProof) -> tuple[str, str]:
    """(checksummed address, 0x signature) once the signature proves the address signed
    the identity message; raises ConfigError otherwise."""
    from gitcoop import eth

    address = eth.checksummed(proof.address)
    text = identity_message(public, address)
    if proof.key_file is not None:
        signature = eth.sign_text(text, _eth_secret(proof.key_file))
    elif proof.signature is not None:
        signature = proof.signature
    else:
        raise ConfigError(
            f"nothing proves you hold {address}",
            hint="pass --eth-key-file FILE, or sign the text `git coop join --eth-address "
            f"{address} --print-message` prints with that wallet and pass --eth-signature",
        )
    signer = eth.signer_of(text, signature)
    if signer != address:
        raise ConfigError(
            f"the Ethereum signature was made by {signer}, not {address}",
            hint="sign the identity message with the key of the address you name",
        )
    return address, signature


def eth_secret(path: Path | None, text: str | None) -> bytes:
    """An Ethereum private key from a file only its owner can read, else from ``text``
    (an environment variable's value); raises ConfigError naming both when neither."""
    if path is not None:
        return _eth_secret(path)
    if text:
        try:
            return bytes.fromhex(text.strip().removeprefix("0x"))
        except ValueError:
            raise ConfigError(
                "GITCOOP_ETH_KEY does not hold an Ethereum private key",
                hint="write it as 64 hex digits",
            ) from None
    raise ConfigError(
        "no Ethereum key: pass --key-file FILE or set GITCOOP_ETH_KEY",
        hint="the account that sends the anchoring transaction",
    )


def _eth_secret(path: Path) -> bytes:
    """The private key (hex, 0x optional) in a file only its owner can read."""
    try:
        keys.check_private_file(path)
        text = path.read_text(encoding="ascii").strip()
        return bytes.fromhex(text.removeprefix("0x"))
    except FileNotFoundError:
        raise ConfigError(f"no key file at {path}") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(
            f"{path} does not hold an Ethereum private key", hint="write it as 64 hex digits"
        ) from None


@dataclass(frozen=True)
class Accepted:
    """What ``join --accept`` did: the keys the new list adds, drops and changes (by
    principal and fingerprint), and the seq of the trust-update entry (None: the file
    says what the list in force says, nothing appended)."""

    source: str
    added: list[str]
    removed: list[str]
    changed: list[str]
    seq: int | None


def accept(path: str | Path = ".", rev: str | None = None) -> Accepted:
    """Make the trust list in ``.coop/allowed_signers`` at ``rev`` (default: the
    challenge branch) the list in force, with a ``trust-update`` entry signed by the
    user's key, which must be a maintainer's in the list in force. Raises ConfigError
    when it is not, when the file is missing, or when the new list names no maintainer;
    VerificationError or SecurityError when the ledger does not verify."""
    report = verify_mod.verify(path)
    s = open_session(path)
    timeline = trust.Timeline(report.trust)
    key, signer, _ = signer_for(s.repo, s.repo.workdir)
    trust.require(timeline, key.keyid, "accepts joins")
    source = s.repo.resolve(rev or f"refs/heads/{s.pinned.challenge.branch}")
    lines = _proposed(s.repo, source)
    new, old = timeline.members(lines), timeline.names()
    if not any(m.has(trust.MAINTAINER) for m in new.values()):
        raise ConfigError(
            f"{constants.SIGNERS_FILE} at {source[:12]} names no maintainer: accepting it "
            "would leave nobody able to change the list again",
            hint='keep at least one line with namespaces="gitcoop,gitcoop-maintainer"',
        )
    added = [_who(m) for k, m in new.items() if k not in old]
    removed = [_who(m) for k, m in old.items() if k not in new]
    changed = [_who(m) for k, m in new.items() if k in old and _differs(m, old[k])]
    if not (added or removed or changed):
        return Accepted(source, [], [], [], None)
    head = s.head
    body = records.trust_update_body(
        head.entry.challenge, head.origin, list(lines), timeline.in_force(), source
    )
    event = records.Event("trust-update", body, signer, records.now())
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    _faults.hit("join", "after-sign")  # signed, seen by nobody: lost, signed again
    appended = ledger.append(s.repo, "trust-update", key.public_openssh, envelope, after=head)
    return Accepted(source, added, removed, changed, appended.entry.seq)


def _proposed(repo: Repo, commit: str) -> tuple[str, ...]:
    blob = repo.blob_at(commit, constants.SIGNERS_FILE)
    if blob is None:
        raise ConfigError(
            f"{commit[:12]} has no {constants.SIGNERS_FILE}",
            hint="name a commit of the challenge branch that holds the trust list",
        )
    return trust.lines_of(blob.decode("utf-8", errors="replace"))


def _who(member: trust.Member) -> str:
    about = ", ".join([",".join(sorted(member.roles)), *([member.window()] * member.windowed)])
    return f"{member.principal} ({member.keyid}; {about})"


def _differs(a: trust.Member, b: trust.Member) -> bool:
    return (a.principal, a.roles, a.window()) != (b.principal, b.roles, b.window())
