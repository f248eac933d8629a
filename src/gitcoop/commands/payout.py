"""``git coop payout``: the reward pool split by the challenge's rule, from verified credit,
with the Ethereum address each payee proved they hold (where they did)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitcoop import rewards, trust
from gitcoop.commands.credit import CreditReport, credit
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.render import spreadsheet_safe


@dataclass(frozen=True)
class Payee:
    """One line of the payout table."""

    name: str
    email: str
    keyid: str
    amount: int
    address: str | None  # None: no proven address


@dataclass
class PayoutReport:
    """The payout table, what it was computed from, and what it does not say."""

    credit: CreditReport
    pool: int
    unit: str
    rule: str
    rows: list[Payee]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented ``payout --json`` object: amounts are decimal integer strings."""
        state = self.credit.round
        return {
            "challenge": self.credit.challenge,
            "version": self.credit.version,
            "round": None if state is None else state.to_json(),
            "pool": str(self.pool),
            "unit": self.unit,
            "rule": self.rule,
            "payees": [
                {
                    "name": p.name,
                    "email": p.email,
                    "keyid": p.keyid,
                    "amount": str(p.amount),
                    "address": p.address,
                }
                for p in self.rows
            ],
            "notes": self.notes,
        }


def payout(
    path: str | Path = ".", *, round_name: str | None = None, version: int | None = None
) -> PayoutReport:
    """Verify the ledger, credit it (one round when ``round_name`` is given) and split the
    challenge's reward pool. Raises ConfigError when the challenge has no rewards, and
    VerificationError when nobody earned anything."""
    return split(credit(path, version=version, round_name=round_name))


def split(report: CreditReport) -> PayoutReport:
    """Split the reward pool of the challenge ``report`` credited; raises ConfigError when
    it has none, VerificationError when nobody earned anything."""
    ch = report.rules
    assert ch is not None
    if ch.rewards is None:
        raise ConfigError(
            "the challenge has no reward pool",
            hint="add rewards: {pool: N, unit: NAME, rule: proportional} to "
            ".coop/challenge.yaml (a challenge update)",
        )
    w = ch.rewards
    split = rewards.allocate(w.pool, rewards.claims(report.credit, w.rule))
    notes = list(report.notes)
    rows = []
    for who, amount in split:
        member = report.members.get(who.keyid)
        address = None if member is None else _address(member, notes)
        rows.append(Payee(who.name, who.email, who.keyid, amount, address))
    return PayoutReport(report, w.pool, w.unit, w.rule, rows, notes)


def _address(member: trust.Member, notes: list[str]) -> str | None:
    """The address the member's trust line names, once its signature over the member's
    key is checked; a line with a bad proof is noted and pays to no address."""
    fields = member.line.split()
    options = dict(f.split("=", 1) for f in fields if f.startswith(("eth=", "eth-sig=")))
    address, signature = options.get("eth"), options.get("eth-sig")
    if address is None or signature is None:
        return None
    from gitcoop import eth  # loads eth-account: only for payees who named an address
    from gitcoop.commands.join import identity_message

    try:
        at = fields.index("ssh-ed25519")
        public = " ".join(fields[at : at + 2])
        if eth.signer_of(identity_message(public, address), signature) == address:
            return address
    except (ValueError, GitcoopError):
        pass
    notes.append(
        f"{member.principal}: the address {address} in the trust list is not proved "
        "by its signature; paid to no address"
    )
    return None


def csv_text(report: PayoutReport) -> str:
    """The payout table as CSV (RFC 4180), a header line first."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["name", "email", "keyid", "amount", "unit", "address"])
    for p in report.rows:
        row = [p.name, p.email, p.keyid, str(p.amount), report.unit, p.address or ""]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()


def merkle(report: PayoutReport) -> dict[str, Any]:
    """The Merkle root of the payees with a proven address (OpenZeppelin's
    StandardMerkleTree of (address, uint256)), with each one's proof, so the table can be
    anchored and claimed on chain; payees without an address are listed apart."""
    from gitcoop import merkle as merkle_mod  # keccak: only for --merkle

    paid = [p for p in report.rows if p.address is not None and p.amount > 0]
    out: dict[str, Any] = {
        "encoding": ["address", "uint256"],
        "root": None,
        "claims": [],
        "without_address": [p.keyid for p in report.rows if p.address is None],
    }
    if paid:
        tree = merkle_mod.build([(p.address or "", p.amount) for p in paid])
        out["root"] = tree.root
        out["claims"] = [
            {"address": leaf[0], "amount": str(leaf[1]), "keyid": p.keyid, "proof": list(proof)}
            for p, leaf, proof in zip(paid, tree.leaves, tree.proofs, strict=True)
        ]
    return out
