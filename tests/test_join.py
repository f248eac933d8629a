"""`git coop join`: a contributor names their key in `.coop/allowed_signers` as one commit
of that file alone, which a guarded server then honours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _ada_with_wallet(world: World, tmp_path: Path, mode: int) -> tuple[Player, Any, Path]:
    """A contributor, an Ethereum account, and its private key in a file of ``mode``."""
    from eth_account import Account

    world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    wallet = Account.create()
    secret = tmp_path / "eth.key"
    secret.write_text(bytes(wallet.key).hex())
    secret.chmod(mode)
    return ada, wallet, secret


def _eth_line(p: Player) -> str:
    (line,) = [ln for ln in _signers(p).splitlines() if "ada@example.org" in ln]
    return line


def test_an_ethereum_address_is_bound_by_a_signature_anyone_can_check(
    world: World, tmp_path
) -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    ada, wallet, secret = _ada_with_wallet(world, tmp_path, 0o600)
    ada.coop("join", "--eth-address", wallet.address.lower(), "--eth-key-file", str(secret))
    line = _eth_line(ada)
    fields = dict(f.split("=", 1) for f in line.split() if f.startswith("eth"))
    assert fields["eth"] == wallet.address  # checksummed
    public = ada.coop("key", "export").stdout.split(" ", 2)[2].strip()
    text = f"gitcoop identity v1\nkey: {public}\naddress: {wallet.address}\n"
    printed = ada.coop("join", "--eth-address", wallet.address, "--print-message").stdout
    assert printed == text
    signer = Account.recover_message(encode_defunct(text=text), signature=fields["eth-sig"])
    assert signer == wallet.address


def test_a_wallet_signature_is_taken_and_a_wrong_one_refused(world: World) -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    wallet, other = Account.create(), Account.create()
    text = ada.coop("join", "--eth-address", wallet.address, "--print-message").stdout
    signed = Account.sign_message(encode_defunct(text=text), other.key).signature
    before = (ada.head(), _signers(ada))
    bad = ada.coop(
        "join",
        "--eth-address",
        wallet.address,
        "--eth-signature",
        "0x" + bytes(signed).hex(),
        check=False,
    )
    assert bad.returncode == 2 and f"made by {other.address}, not {wallet.address}" in bad.stderr
    for args, says in [
        (["--eth-address", "0x1234"], "is not an Ethereum address"),
        (["--eth-address", wallet.address], "nothing proves you hold"),
        (["--eth-address", wallet.address, "--eth-signature", "0xzz"], "malformed"),
    ]:
        out = ada.coop("join", *args, check=False)
        assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr
    assert (ada.head(), _signers(ada)) == before
    good = Account.sign_message(encode_defunct(text=text), wallet.key).signature
    ada.coop("join", "--eth-address", wallet.address, "--eth-signature", "0x" + bytes(good).hex())
    assert f"eth={wallet.address}" in _eth_line(ada)
    assert _signers(ada).count("ada@example.org") == 1  # the key's line was replaced


def test_an_ethereum_key_file_others_can_read_is_refused(world: World, tmp_path) -> None:

    ada, wallet, secret = _ada_with_wallet(world, tmp_path, 0o644)
    out = ada.coop(
        "join", "--eth-address", wallet.address, "--eth-key-file", str(secret), check=False
    )
    assert out.returncode == 2 and "UNPROTECTED PRIVATE KEY FILE" in out.stderr
    assert wallet.key.hex() not in out.stdout + out.stderr
