"""The ``git coop`` command line: a thin typer layer over gitcoop.commands."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperOption

from gitcoop import __version__
from gitcoop.constants import DEFAULT_REMOTE
from gitcoop.errors import ConfigError, ExitCode, GitcoopError, os_failure, write_failed

if TYPE_CHECKING:
    from gitcoop.chain.check import Survey

app = typer.Typer(
    name="git coop",
    help="Git-native data-science challenges: every push scored, signed, credited, verifiable.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _flags_without_type() -> None:
    # typer 0.29.0 renders an option's type with TyperOption.display_type_rich and lost
    # 0.28's filter of boolean types, so every flag read `--json <bool>` in --help. A flag
    # takes no value: show none. Older and newer typers without the method are left alone.
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None:
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    setattr(TyperOption, "display_type_rich", display_type_rich)  # noqa: B010


_flags_without_type()
key_app = typer.Typer(
    help="Your signing key: show, generate, export or import it.", no_args_is_help=True
)
hook_app = typer.Typer(help="Install or remove the pre-push hook.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(hook_app, name="hook")
server_app = typer.Typer(
    help="Guard a server's repository: refuse ledger updates that are not valid appends.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")
challenge_app = typer.Typer(
    help="Change the challenge as a new signed version (maintainers).", no_args_is_help=True
)
app.add_typer(challenge_app, name="challenge")
round_app = typer.Typer(
    help="Fix a round's result (maintainers and evaluators).", no_args_is_help=True
)
app.add_typer(round_app, name="round")
ci_app = typer.Typer(help="Run gitcoop as a continuous-integration step.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")
anchor_contract_app = typer.Typer(
    help="The anchor contract, whose events list every anchor of a ledger.", no_args_is_help=True
)
app.add_typer(anchor_contract_app, name="anchor-contract")


class Direction(StrEnum):
    maximize = "maximize"
    minimize = "minimize"


PrivateDataOpt = Annotated[
    Path | None,
    typer.Option(
        "--private-data", help="The private split's data file (default: $GITCOOP_PRIVATE_DATA)."
    ),
]


class Bridge(StrEnum):
    dvc = "dvc"
    codalab = "codalab"
    ramp = "ramp"


class Split(StrEnum):
    public = "public"
    private = "private"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (stable, documented schema).")]
RpcOpt = Annotated[str, typer.Option("--rpc", help="The Ethereum node (JSON-RPC URL).")]
EthKeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="The sending account's key (hex, 0600; or GITCOOP_ETH_KEY)."),
]
RpcTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--rpc-timeout", min=0.1, help="Seconds to wait for each answer from the Ethereum node."
    ),
]


def _say(text: str) -> None:
    typer.echo(text)


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _dump(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except GitcoopError as exc:
        hint = f" (fix: {exc.hint})" if exc.hint else ""
        _err(f"gitcoop: error: {exc.message}{hint}")
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        _err("gitcoop: interrupted")
        raise typer.Exit(130) from None
    except OSError as exc:  # one no write site named: the disk's reason, not a traceback
        if os.environ.get("GITCOOP_DEBUG"):
            raise
        failure = os_failure(exc)
        _err(f"gitcoop: error: {failure.message} (fix: {failure.hint})")
        raise typer.Exit(int(failure.exit_code)) from None
    except Exception as exc:
        if os.environ.get("GITCOOP_DEBUG"):
            raise
        _err(
            f"gitcoop: internal error: {type(exc).__name__}: {exc} "
            "(please report it; GITCOOP_DEBUG=1 shows the traceback)"
        )
        raise typer.Exit(int(ExitCode.CHECK_FAILED)) from None


def _ledger_tip() -> str | None:
    from gitcoop import constants
    from gitcoop.git import open_repo

    try:
        return open_repo(".").ref(constants.LEDGER_REF)
    except GitcoopError:
        return None


def _refresh_notes() -> None:
    """Bring refs/notes/coop up to the ledger (display only): a failure is one warning."""
    from gitcoop import constants, notes
    from gitcoop.git import open_repo
    from gitcoop.workspace import local_dir

    try:
        repo = open_repo(".")
    except GitcoopError:
        return
    if repo.ref(constants.LEDGER_REF) is not None:
        notes.warn_on_failure(repo, local_dir(repo), _err)


@contextlib.contextmanager
def _watching_ledger(*, notes: bool, first_use: bool = True) -> Iterator[None]:
    """After the block, also when it fails (the ledger may have moved before the failure)
    but not when interrupted: say (with ``first_use``) when a fresh clone's ledger was
    taken on first use, and refresh the notes (always with ``notes``, else when the
    ledger moved)."""
    before = _ledger_tip()

    def after() -> None:
        now = _ledger_tip()
        if first_use and before is None and now is not None:
            _err("gitcoop: took the challenge's ledger from the remote (first use in this clone)")
        if notes or now != before:
            _refresh_notes()

    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException:
        after()
        raise
    after()


def _version(value: bool) -> None:
    if value:
        _say(f"gitcoop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Git-native data-science challenges."""


@app.command()
def init(
    metric: Annotated[
        str | None, typer.Option(help='Metric command, e.g. "python evaluate.py".')
    ] = None,
    direction: Annotated[
        Direction | None, typer.Option(help="Whether higher or lower is better.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Challenge name (default: the directory name).")
    ] = None,
    timeout: Annotated[int, typer.Option(help="Metric timeout in seconds.", min=1)] = 600,
    protect: Annotated[
        list[str] | None, typer.Option(help="Evaluator files (glob); repeatable.")
    ] = None,
    branch: Annotated[
        str | None, typer.Option(help="Challenge branch (default: the current one).")
    ] = None,
    metric_name: Annotated[
        str | None,
        typer.Option(
            help="Key of the score in the metric's JSON output (default: the key it prints); "
            "with --from: the metrics file's dotted key, the leaderboard column or the score."
        ),
    ] = None,
    hooks: Annotated[
        bool, typer.Option("--hooks/--no-hooks", help="Install the pre-push hook.")
    ] = True,
    commit: Annotated[bool, typer.Option("--commit/--no-commit", help="Commit .coop/.")] = True,
    github: Annotated[
        bool,
        typer.Option("--github", help="Also write .github/workflows/coop.yml (GitHub Actions)."),
    ] = False,
    from_kind: Annotated[
        Bridge | None,
        typer.Option(
            "--from",
            help="Start from a DVC pipeline, a CodaLab/Codabench bundle or a RAMP kit.",
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Argument(help="With --from codalab: the bundle's directory (or its zip)."),
    ] = None,
    stage: Annotated[
        str | None, typer.Option(help="With --from dvc: the stage whose metrics hold the score.")
    ] = None,
) -> None:
    """Turn this repository into a challenge (or set up a clone of one)."""
    from gitcoop.commands.init import InitOptions
    from gitcoop.commands.init import init as run

    opts = InitOptions(
        metric,
        direction.value if direction else None,
        name,
        timeout,
        tuple(protect or ()),
        branch,
        metric_name,
        hooks,
        commit,
    )
    if source is not None and from_kind is None:
        _err("gitcoop: error: a source directory is taken with --from codalab")
        raise typer.Exit(int(ExitCode.USAGE))
    with _errors(), _watching_ledger(notes=True, first_use=False):
        if from_kind is None:
            result = run(".", opts)
        else:
            from gitcoop.bridges import Request
            from gitcoop.commands.init import from_bridge

            request = Request(
                Path("."), source, name, opts.direction, metric_name, metric, stage, timeout, branch
            )
            result = from_bridge(".", from_kind.value, request, opts)
            for note in result.notes:
                _say(f"note: {note}")
        if github:
            from gitcoop.commands.init import github_workflow

            workflow, written = github_workflow(".")
            _say(
                f"wrote {workflow}: commit it, and store the evaluator's private key as the "
                "repository secret GITCOOP_EVALUATOR_KEY"
                if written
                else f"{workflow} exists; left as it is"
            )
    if result.status == "exists":
        _say(f"challenge {result.name} already exists here; nothing changed")
        return
    if result.key_created:
        _say("created your signing key (see: git coop key show)")
    if result.status == "joined":
        _say(f"joined challenge {result.name}: ledger fetched, pre-push hook installed")
        return
    _say(
        f"created challenge {result.name}; baseline {str(result.baseline)[:12]} "
        f"scored {result.score}"
    )
    if result.hook:
        _say(f"installed the pre-push hook at {result.hook}")


ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show a progress bar on stderr (default: when stderr is a terminal, CI is not "
        "set and TERM is not dumb).",
        show_default=False,
    ),
]


@app.command()
def evaluate(
    revs: Annotated[
        list[str] | None, typer.Argument(help="Commits or A..B ranges to score (default: HEAD).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Metric runs in parallel.")] = 1,
    as_json: JsonOpt = False,
    progress: ProgressOpt = None,
) -> None:
    """Score commits, sign attestations and append them to the ledger."""
    from gitcoop.commands.evaluate import evaluate as run
    from gitcoop.commands.evaluate import first_error
    from gitcoop.progress import Progress
    from gitcoop.session import open_session, signer_for

    with _errors(), _watching_ledger(notes=True):
        s = open_session(".")
        commits = [c for r in (revs or ["HEAD"]) for c in s.repo.resolve_many(r)]
        key, signer, _ = signer_for(s.repo, s.repo.workdir)
        with Progress("scoring", enabled=progress) as bar:
            outcomes = run(
                s, commits, key, signer, jobs=jobs, report=bar.write, on_progress=bar.update
            )
        error = first_error(outcomes)
    if as_json:
        _dump(
            [
                {
                    "commit": o.commit,
                    "score": None if o.score is None else str(o.score),
                    "delta": None if o.delta is None else str(o.delta),
                    "cached": o.cached,
                    "attested": o.attested,
                    "error": o.error,
                }
                for o in outcomes
            ]
        )
    else:
        for o in outcomes:
            state = "attested" if o.attested else ("failed" if o.error else "already attested")
            delta = "" if o.delta is None else f" (delta {o.delta:+})"
            _say(f"{o.commit[:12]}  {o.score if o.score is not None else '-'}{delta}  {state}")
    if error is not None:
        _err(f"gitcoop: error: {error.message}")
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


MetricVersionOpt = Annotated[
    int | None,
    typer.Option(
        "--metric-version",
        min=1,
        help="The challenge version (1: the genesis; default: the one in force).",
    ),
]


@app.command()
def rescore(
    version: MetricVersionOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Metric runs in parallel.")] = 1,
    progress: ProgressOpt = None,
) -> None:
    """Score the challenge branch's history under the challenge version in force."""
    from gitcoop.commands.evaluate import first_error
    from gitcoop.commands.update import rescore as run
    from gitcoop.progress import Progress
    from gitcoop.session import open_session

    with _errors(), _watching_ledger(notes=True), Progress("scoring", enabled=progress) as bar:
        number, outcomes = run(
            open_session("."), version, jobs=jobs, report=bar.write, on_progress=bar.update
        )
        error = first_error(outcomes)
    done = sum(o.attested for o in outcomes)
    _say(
        f"version {number}: {done} commits scored and attested, "
        f"{sum(not o.attested and not o.error for o in outcomes)} already attested"
    )
    if error is not None:
        _err(f"gitcoop: error: {error.message}")
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@app.command()
def show(
    rev: Annotated[str, typer.Argument(help="The commit to show.")] = "HEAD",
    as_json: JsonOpt = False,
) -> None:
    """Show a commit's attestations."""
    from gitcoop.commands.show import show as run

    with _errors(), _watching_ledger(notes=False):
        result = run(".", rev)
    if as_json:
        _dump(result)
        return
    if not result["attestations"]:
        _say(f"{result['commit'][:12]}: no attestations")
    for a in result["attestations"]:
        signer = a.get("signer") or {}
        _say(
            f"{result['commit'][:12]}  {a.get('metric')}={a.get('score')}  "
            f"delta {a.get('delta')}  #{a['seq']}  by {signer.get('principal')} "
            f"({signer.get('keyid')})  {a.get('time')}"
        )
    standing = result["assurance"]
    if standing is not None:
        counts = (
            "counts for credit" if standing["counts"] else f"earns nothing: {standing['reason']}"
        )
        _say(f"{result['commit'][:12]}  assurance {standing['level'] or '-'}, {counts}")
    for r in result["reviews"]:
        signer = r.get("signer") or {}
        _say(
            f"{result['commit'][:12]}  review: {r.get('result')} ({r.get('score')})  "
            f"#{r['seq']}  by {signer.get('principal')} ({signer.get('keyid')})  {r.get('time')}"
        )


@app.command()
def log(
    limit: Annotated[
        int | None, typer.Option("-n", "--max-count", min=1, help="Show at most N entries.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List ledger entries, newest first."""
    from gitcoop.commands.show import log as run

    with _errors(), _watching_ledger(notes=False):
        entries = run(".", limit=limit)
    if as_json:
        _dump(entries)
        return
    for e in entries:
        who = (e.get("signer") or {}).get("principal", "?")
        what = f"{e['commit'][:12]} {e.get('metric')}={e.get('score')}" if "commit" in e else ""
        _say(f"#{e['seq']:<5} {e['kind']:<12} {what:<32} {who}  {e.get('time', '')}")


@app.command()
def verify(
    full: Annotated[
        bool, typer.Option("--full", help="Re-check every entry, not only new ones.")
    ] = False,
    as_json: JsonOpt = False,
    chain: Annotated[
        bool, typer.Option("--chain", help="Also read every anchor back from the chain.")
    ] = False,
    rpc: Annotated[str | None, typer.Option("--rpc", help="The Ethereum node (JSON-RPC).")] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(
            min=1, help="Blocks on top that make an anchor final (default: the finalized tag)."
        ),
    ] = None,
    rpc_timeout: RpcTimeoutOpt = 10.0,
) -> None:
    """Check every ledger entry: links, signatures, subjects.

    Exit 1 when an entry is bad, 3 when verified history was rewritten."""
    from gitcoop.commands.verify import verify as run

    if chain:
        _verify_chain(rpc, confirmations, as_json, rpc_timeout)
        return
    with _errors(), _watching_ledger(notes=False):
        report = run(".", full=full)
    if as_json:
        _dump(report.to_json())
        return
    for w in report.warnings:
        _err(f"gitcoop: warning: {w}")
    head = report.head
    total = 0 if head is None else head.seq + 1
    _say(
        f"ledger OK: {total} entries, {report.checked} checked now "
        f"({total - report.checked} verified before), head #{head.seq if head else '-'} "
        f"sha256:{head.hash[:16] if head else '-'}"
    )
    for keyid, info in sorted(report.signers.items()):
        roles = ", ".join(info.get("roles") or ["not trusted"])  # type: ignore[arg-type]
        _say(f"  signer {info['principal']} ({keyid}, {roles}): {info['entries']} entries")


def _verify_chain(
    rpc: str | None, confirmations: int | None, as_json: bool, timeout: float
) -> None:
    from gitcoop.chain.check import check

    with _errors(), _watching_ledger(notes=False):
        if rpc is None:
            raise ConfigError("verify --chain needs --rpc URL", hint="name an Ethereum node")
        found = check(".", rpc, confirmations, timeout)
    if as_json:
        _dump([vars(a) for a in found])
    else:
        for a in found:
            _say(f"anchor #{a.entry} of entry #{a.seq}: {a.status} ({a.detail}), tx {a.tx}")
        if not found:
            _say("no anchors in this ledger")
    if any(a.status == "broken" for a in found):
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@app.command()
def anchor(
    rpc: RpcOpt,
    chain_id: Annotated[
        int, typer.Option("--chain-id", min=1, help="The chain to anchor on (checked first).")
    ],
    key_file: EthKeyFileOpt = None,
    confirmations: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Blocks on top before the anchor is recorded (default: the finalized tag).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and sign the transaction; send nothing.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(min=1, help="Seconds to wait for a receipt before replacing the transaction."),
    ] = 120,
    max_fee_gwei: Annotated[
        float | None,
        typer.Option(
            "--max-fee-gwei",
            min=0,
            help="Never sign a transaction whose maxFeePerGas is higher (gwei; default: "
            "three times the first estimate, kept in the journal).",
        ),
    ] = None,
    rpc_timeout: RpcTimeoutOpt = 10.0,
    contract: Annotated[
        str | None,
        typer.Option(
            "--contract",
            metavar="ADDRESS",
            help="Send to this anchor contract (it emits an event) instead of to the account "
            "itself; the same calldata.",
        ),
    ] = None,
) -> None:
    """Put the ledger head in an Ethereum transaction and record the anchor in the ledger."""
    from gitcoop.chain.anchor import anchor as run
    from gitcoop.commands.join import eth_secret

    with _errors(), _watching_ledger(notes=False):
        secret = eth_secret(key_file, os.environ.get("GITCOOP_ETH_KEY"))
        done = run(
            ".",
            rpc,
            secret,
            chain_id=chain_id,
            confirmations=confirmations,
            dry_run=dry_run,
            wait=wait,
            max_fee_gwei=max_fee_gwei,
            rpc_timeout=rpc_timeout,
            contract=contract,
            say=_err,
        )
    if done.state == "already":
        _say(f"entry #{done.seq} is anchored already; nothing to do")
    elif done.state == "prepared":
        _say(f"dry run: would send {done.tx} anchoring entry #{done.seq} ({done.head[:16]})")
    elif done.state == "included":
        _say(
            f"entry #{done.seq} is in block {done.block_number} (tx {done.tx}), not final yet: "
            "run git coop anchor again later to record it"
        )
    else:
        _say(
            f"anchored entry #{done.seq} in block {done.block_number} (tx {done.tx}); "
            f"recorded as ledger entry #{done.entry}: publish it with git coop sync"
        )


@app.command()
def anchors(
    rpc: RpcOpt,
    contract: Annotated[
        list[str] | None,
        typer.Option(
            "--contract",
            metavar="ADDRESS",
            help="An anchor contract to list (besides those this ledger's anchors went to).",
        ),
    ] = None,
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block", min=0, help="List from this block (default: the contract's first)."
        ),
    ] = None,
    rpc_timeout: RpcTimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """List every anchor of this ledger on the anchor contracts; a fork is exit 3."""
    from gitcoop.chain.check import survey

    with _errors(), _watching_ledger(notes=False):
        found = survey(".", rpc, contract or (), rpc_timeout, from_block)
    if as_json:
        _dump(
            {
                "contracts": found.listed,
                "skipped": found.skipped,
                "events": [vars(e) for e in found.events],
            }
        )
    else:
        _anchors_text(found)
    if any(e.status == "fork" for e in found.events):
        raise typer.Exit(int(ExitCode.SECURITY))


def _anchors_text(found: Survey) -> None:
    for why in found.skipped.values():
        _err(f"gitcoop: warning: not listed: {why}")
    for address, start in found.listed.items():
        mine = [e for e in found.events if e.contract == address.lower()]
        count = f"{len(mine)} anchor{'' if len(mine) == 1 else 's'}"
        _say(f"contract {address}, from block {start}: {count} of this ledger")
        for e in mine:
            _say(f"  {e.status.upper() if e.status == 'fork' else e.status}: {e.detail}")
    for e in found.events:
        if e.status == "ahead":
            _err(f"gitcoop: warning: an anchor names entry #{e.seq}, beyond this ledger: fetch")
        elif e.status == "foreign":
            _err(
                f"gitcoop: warning: {e.sender} anchored another entry #{e.seq} (an account "
                "this ledger never anchored with; anyone can call the contract)"
            )
    forks = sum(e.status == "fork" for e in found.events)
    if forks:
        _err(
            f"gitcoop: error: the account that anchors this ledger anchored {forks} other "
            f"histor{'y' if forks == 1 else 'ies'} of it: this ledger was rewritten, or that "
            "one (FORK above, both hashes)"
        )


@anchor_contract_app.command("deploy")
def anchor_contract_deploy(
    rpc: RpcOpt,
    chain_id: Annotated[
        int, typer.Option("--chain-id", min=1, help="The chain to deploy on (checked first).")
    ],
    key_file: EthKeyFileOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and sign the transaction; send nothing.")
    ] = False,
    wait: Annotated[float, typer.Option(min=1, help="Seconds to wait for the receipt.")] = 120,
    rpc_timeout: RpcTimeoutOpt = 10.0,
) -> None:
    """Deploy the anchor contract (contracts/CoopAnchor.sol as built) and print its address."""
    from gitcoop.chain.deploy import deploy
    from gitcoop.commands.join import eth_secret

    with _errors():
        secret = eth_secret(key_file, os.environ.get("GITCOOP_ETH_KEY"))
        done = deploy(
            ".",
            rpc,
            secret,
            chain_id=chain_id,
            wait=wait,
            dry_run=dry_run,
            rpc_timeout=rpc_timeout,
            say=_err,
        )
    if done.state == "prepared":
        _say(f"dry run: would send {done.tx} deploying the anchor contract")
        return
    if done.state == "already":
        _err("gitcoop: deployed already (the journal says so, and the code is there)")
    _say(f"{done.address}")
    _err(
        f"gitcoop: the anchor contract is at {done.address} (block {done.block_number}, tx "
        f"{done.tx}): anchor with git coop anchor --contract {done.address}"
    )


RoundOpt = Annotated[
    str | None,
    typer.Option(
        "--round",
        help="Only this round (rounds: in challenge.yaml); a closed round as it was closed.",
    ),
]


@app.command()
def credit(
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    as_json: JsonOpt = False,
    rev: Annotated[
        str | None, typer.Option(help="Branch or commit (default: the challenge branch).")
    ] = None,
    version: MetricVersionOpt = None,
    round_name: RoundOpt = None,
) -> None:
    """Who improved the score, and by how much (verifies the ledger first)."""
    from gitcoop.commands.credit import credit as run
    from gitcoop.render import credit_text

    with _errors(), _watching_ledger(notes=False):
        report = run(".", rev=rev, version=version, round_name=round_name).to_json()
    if as_json or fmt is Format.json:
        _dump(report)
    else:
        _say(credit_text(report, fmt.value))


@app.command()
def join(
    rev: Annotated[
        str | None,
        typer.Argument(help="With --accept: the commit whose trust list to accept."),
    ] = None,
    accept: Annotated[
        bool,
        typer.Option(
            "--accept",
            help="As a maintainer: make the trust list at REV (default: the challenge "
            "branch) the one in force, with a signed trust-update entry.",
        ),
    ] = False,
    eth_address: Annotated[
        str | None,
        typer.Option("--eth-address", help="An Ethereum address rewards may go to."),
    ] = None,
    eth_signature: Annotated[
        str | None,
        typer.Option("--eth-signature", help="Its EIP-191 signature of the --print-message text."),
    ] = None,
    eth_key_file: Annotated[
        Path | None,
        typer.Option("--eth-key-file", help="Sign with the address's private key (hex, 0600)."),
    ] = None,
    print_message: Annotated[
        bool,
        typer.Option("--print-message", help="Print the text to sign for --eth-address."),
    ] = False,
) -> None:
    """Name your key in the challenge's trust list.

    The change is a commit to push or to propose, optionally with an Ethereum address you
    prove you hold."""
    from gitcoop.commands.join import EthProof, message_for
    from gitcoop.commands.join import join as run

    if accept or rev is not None:
        _accept(rev, accept)
        return
    eth = None if eth_address is None else EthProof(eth_address, eth_signature, eth_key_file)
    with _errors(), _watching_ledger(notes=False):
        if print_message:
            if eth_address is None:
                raise ConfigError("--print-message needs --eth-address", hint="name the address")
            sys.stdout.write(message_for(".", eth_address))
            return
        result = run(".", eth)
    if result.commit is None:
        _say(f"{result.line}\nalready in the trust list; nothing changed")
        return
    _say(
        f"{result.line}\nadded to .coop/allowed_signers in commit {result.commit[:12]}: "
        "push it to the challenge branch, or propose it as a pull request"
    )


@app.command()
def review(
    rev: Annotated[str, typer.Argument(help="The attested commit to review.")],
    reproduce: Annotated[
        bool,
        typer.Option(
            "--reproduce",
            help="Re-run the metric on REV (never from the score cache) and compare.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reproduce someone else's score and append a signed review.

    Exit 0 when reproduced, 1 when not (the review is appended either way)."""
    from gitcoop.commands.review import review as run

    with _errors(), _watching_ledger(notes=False):
        if not reproduce:
            raise ConfigError(
                "git coop review needs --reproduce", hint="git coop review REV --reproduce"
            )
        result = run(".", rev)
    if as_json:
        _dump(result.to_json())
    else:
        verdict = "reproduced" if result.reproduced else "NOT reproduced"
        _say(
            f"{result.commit[:12]}: {verdict}: {result.score} here, {result.theirs} by "
            f"{result.by} (tolerance {result.tolerance}); review appended as ledger entry "
            f"#{result.seq}: publish it with git coop sync (or your next git push)"
        )
    if not result.reproduced:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@challenge_app.command("update")
def challenge_update(
    rev: Annotated[
        str | None,
        typer.Argument(help="The commit holding the new challenge (default: the branch)."),
    ] = None,
) -> None:
    """Pin the challenge at REV as the next version, with a signed challenge-update entry."""
    from gitcoop.commands.update import update as run

    with _errors(), _watching_ledger(notes=True):
        result = run(".", rev)
    if result.seq is None:
        _say(
            f"the challenge at {result.source[:12]} is version {result.version}, the one in "
            "force; nothing appended"
        )
        return
    _say(
        f"challenge version {result.version} ({result.digest[:19]}) pinned by ledger entry "
        f"#{result.seq}: scores under it start afresh (git coop rescore scores the history); "
        "publish it with git coop sync (or your next git push)"
    )


@ci_app.command("github")
def ci_github() -> None:
    """Score a pull request in a GitHub Actions job.

    The pull request is scored against its merge base; the step writes the job summary
    and the outputs score and delta, and keeps one report comment."""
    from gitcoop.ci.github import run

    with _errors(), _watching_ledger(notes=False):
        code = run(".", os.environ, _err)
    if code:
        raise typer.Exit(code)


@ci_app.command("plan")
def ci_plan(
    shards: Annotated[
        int, typer.Option("--shards", min=1, max=256, help="Most shards to cut the work into.")
    ] = 4,
) -> None:
    """List the commits no evaluator has scored, cut into shards.

    The shards are a GitHub Actions matrix, also written to GITHUB_OUTPUT as matrix and
    count."""
    from gitcoop.ci.batch import matrix, plan, write_outputs
    from gitcoop.session import open_session

    with _errors(), _watching_ledger(notes=False):
        cut = plan(open_session("."), shards)
        output = os.environ.get("GITHUB_OUTPUT")
        write_outputs(Path(output) if output else None, cut)
    _say(matrix(cut))


@ci_app.command("score")
def ci_score(
    out: Annotated[Path, typer.Option("--out", help="Where to write the results file.")],
    commits: Annotated[
        list[str] | None,
        typer.Argument(help="The commits to score (a plan shard; private: default all due)."),
    ] = None,
    split: Annotated[Split, typer.Option("--split", help="Which split to score.")] = (Split.public),
    private_data: PrivateDataOpt = None,
    round_name: Annotated[
        str | None,
        typer.Option("--round", help="With --split private: the round that has ended."),
    ] = None,
) -> None:
    """Score commits with the pinned evaluator into a results file, signing nothing.

    The file is for git coop ci sign."""
    from gitcoop.ci.batch import score
    from gitcoop.session import open_session

    if split is Split.public and not commits:
        _err("gitcoop: error: name the commits to score (a shard of git coop ci plan)")
        raise typer.Exit(int(ExitCode.USAGE))
    with _errors(), _watching_ledger(notes=False):
        s = open_session(".")
        results = score(
            s, commits or [], out, split=split.value, data=private_data, round_name=round_name
        )
    if split is Split.private and not results:
        _say("nothing to score on the private split")
    for r in results:
        _say(f"{r.commit[:12]}  {r.score if r.score is not None else 'failed: ' + str(r.error)}")


@ci_app.command("sign")
def ci_sign(
    files: Annotated[list[Path], typer.Argument(help="Results files of git coop ci score.")],
    push: Annotated[
        bool, typer.Option("--push/--no-push", help="Publish the ledger afterwards.")
    ] = True,
    remote: Annotated[str, typer.Option(help="Where to publish.")] = DEFAULT_REMOTE,
) -> None:
    """Check scored results against the repository and sign them.

    The key is the evaluator's (the GITCOOP_EVALUATOR_KEY secret); the metric never runs
    here."""
    from gitcoop.ci.batch import load_key, sign
    from gitcoop.session import open_session

    with _errors(), _watching_ledger(notes=True):
        s = open_session(".")
        done = sign(s, files, load_key(os.environ))
        if push and done.attested:
            from gitcoop.sync import sync

            sync(s.repo, s.repo.workdir or s.repo.common_dir, remote)
    _say(
        f"signed {len(done.attested)}, already signed {len(done.already)}, "
        f"failed {len(done.failed)}{' and published' if push and done.attested else ''}"
    )
    for commit, error in done.failed:
        _err(f"gitcoop: warning: {commit[:12]} was not scored: {error}")


def _accept(rev: str | None, accept: bool) -> None:
    from gitcoop.commands.join import accept as run

    with _errors(), _watching_ledger(notes=True):
        if not accept:
            raise ConfigError(
                f"a revision ({rev}) is only taken with --accept", hint="add --accept"
            )
        result = run(".", rev)
    if result.seq is None:
        _say(f"the trust list at {result.source[:12]} is the one in force; nothing appended")
        return
    for label, keys_ in (("adds", result.added), ("drops", result.removed)):
        for who in keys_:
            _say(f"{label} {who}")
    for who in result.changed:
        _say(f"changes {who}")
    _say(
        f"trust-update appended as ledger entry #{result.seq}: publish it with "
        "git coop sync (or your next git push)"
    )


@app.command()
def sync(
    remote: Annotated[str, typer.Argument(help="The remote.")] = DEFAULT_REMOTE,
    retrust: Annotated[
        bool,
        typer.Option(
            "--retrust",
            help="Accept the remote's ledger even though it does not extend the one this "
            "clone verified there (after checking why, by other means).",
        ),
    ] = False,
) -> None:
    """Fetch, verify and merge the remote's ledger, then publish the local one."""
    from gitcoop.git import open_repo
    from gitcoop.incoming import take_early
    from gitcoop.sync import sync as run

    with _errors(), _watching_ledger(notes=True):
        started = take_early(remote)
        repo = open_repo(".")
        result = run(
            repo, repo.workdir or repo.common_dir, remote, retrust=retrust, started=started
        )
    _say(
        f"fetched {result.fetched}, re-linked {result.relinked}, "
        f"{'pushed' if result.pushed else 'nothing to push'}"
    )
    if result.dropped:
        _err(
            f"gitcoop: warning: dropped {result.dropped} local entries made under a challenge "
            "version the remote has replaced (run git coop evaluate to score again)"
        )


@key_app.command("show")
def key_show() -> None:
    """Print your public key and its fingerprint."""
    from gitcoop import keys

    with _errors():
        k = keys.load(keys.gitcoop_home())
    _say(f"{k.public_openssh}\n{k.keyid}")


@key_app.command("generate")
def key_generate() -> None:
    """Create your signing key (refuses to overwrite one)."""
    from gitcoop import keys
    from gitcoop.commands.key import email_of

    with _errors():
        k = keys.generate(keys.gitcoop_home(), comment=email_of(Path(".")))
    _say(f"created {k.path}\n{k.public_openssh}\n{k.keyid}")


@key_app.command("export")
def key_export(
    private: Annotated[
        Path | None,
        typer.Option(
            "--private",
            help="Copy the private key to this new file (0600, outside any work tree) "
            "instead of printing the public line.",
        ),
    ] = None,
) -> None:
    """Print your trust-list line (principal and public key), or copy your private key."""
    from gitcoop import keys
    from gitcoop.commands.key import trust_line

    with _errors():
        if private is None:
            _say(trust_line(Path(".")))
            return
        written = keys.export_private(keys.gitcoop_home(), private)
    _say(f"wrote {written} (keep it private: it signs as you)")


@key_app.command("import")
def key_import(
    path: Annotated[
        Path | None,
        typer.Argument(help="An OpenSSH Ed25519 private key file, e.g. ~/.ssh/id_ed25519."),
    ] = None,
    from_git: Annotated[
        bool,
        typer.Option("--from-git", help="The key git signs your commits with (user.signingKey)."),
    ] = False,
) -> None:
    """Sign with an Ed25519 key you already have.

    A key protected by a passphrase signs through ssh-agent."""
    from gitcoop.commands.key import import_key

    with _errors():
        k = import_key(Path("."), path, from_git=from_git)
    where = "held by ssh-agent, named in" if k.in_agent else "copied to"
    _say(f"{where} {k.path}\n{k.public_openssh}\n{k.keyid}")


@server_app.command("install")
def server_install(
    path: Annotated[str, typer.Argument(help="The server's repository (bare or not).")] = ".",
) -> None:
    """Install the pre-receive guard in a repository that clones push to."""
    from gitcoop.commands.server import install

    with _errors():
        hook = install(path)
    _say(f"installed {hook}")


@hook_app.command("install")
def hook_install() -> None:
    """Install the pre-push hook (an existing hook is kept as pre-push.legacy)."""
    from gitcoop import hooks
    from gitcoop.commands.init import _workdir
    from gitcoop.git import open_repo

    with _errors():
        path = hooks.install(_workdir(open_repo(".")))
    _say(f"installed {path}")


@hook_app.command("uninstall")
def hook_uninstall() -> None:
    """Remove the pre-push hook and restore a kept legacy hook."""
    from gitcoop import hooks
    from gitcoop.commands.init import _workdir
    from gitcoop.git import open_repo

    with _errors():
        hooks.uninstall(_workdir(open_repo(".")))
    _say("removed the gitcoop pre-push hook")


@app.command()
def leaderboard(
    as_json: JsonOpt = False,
    round_name: RoundOpt = None,
    version: MetricVersionOpt = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show the top N commits.")] = 10,
) -> None:
    """The best score per contributor and per commit, ranked; scores rounded to min_delta."""
    from gitcoop.commands.leaderboard import leaderboard as run
    from gitcoop.render import leaderboard_text

    with _errors(), _watching_ledger(notes=False):
        board = run(".", round_name=round_name, version=version).to_json()
    if as_json:
        _dump(board)
    else:
        _say(leaderboard_text(board, top))


@app.command()
def payout(
    round_name: RoundOpt = None,
    version: MetricVersionOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    with_merkle: Annotated[
        bool,
        typer.Option(
            "--merkle",
            help="Print the Merkle root of the payees with a proven Ethereum address, and "
            "each one's proof (OpenZeppelin StandardMerkleTree of address, uint256).",
        ),
    ] = False,
) -> None:
    """Split the reward pool by the challenge's rule: whole units that sum to the pool."""
    from gitcoop.commands.payout import csv_text, merkle
    from gitcoop.commands.payout import payout as run
    from gitcoop.render import payout_text

    if sum((as_json, as_csv, with_merkle)) > 1:
        _err("gitcoop: error: choose one of --json, --csv and --merkle")
        raise typer.Exit(int(ExitCode.USAGE))
    with _errors(), _watching_ledger(notes=False):
        report = run(".", round_name=round_name, version=version)
        tree = merkle(report) if with_merkle else None
    if tree is not None:
        _dump(tree)
    elif as_json:
        _dump(report.to_json())
    elif as_csv:
        sys.stdout.write(csv_text(report))
    else:
        _say(payout_text(report.to_json()))


@app.command()
def report(
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write one self-contained HTML page here.")
    ] = None,
    md_out: Annotated[
        Path | None, typer.Option("--markdown", help="Write Markdown here (- for stdout).")
    ] = None,
    round_name: RoundOpt = None,
    version: MetricVersionOpt = None,
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="Check each anchor against this node.")
    ] = None,
    rpc_timeout: RpcTimeoutOpt = 10.0,
) -> None:
    """A report to look at: leaderboard, score chart, credit, payout, verification."""
    from gitcoop.commands.report import data, write

    if (html_out is None) == (md_out is None):
        _err("gitcoop: error: give one of --html FILE and --markdown FILE")
        raise typer.Exit(int(ExitCode.USAGE))
    options: dict[str, Any] = {
        "round_name": round_name,
        "version": version,
        "rpc": rpc,
        "rpc_timeout": rpc_timeout,
    }
    with _errors(), _watching_ledger(notes=False):
        if md_out is not None and str(md_out) == "-":
            from gitcoop.report import markdown

            sys.stdout.write(markdown(data(".", **options)))
            return
        out = html_out or md_out
        assert out is not None
        write(".", out, markdown=md_out is not None, **options)
    _say(f"wrote {out}")


@round_app.command("close")
def round_close(
    name: Annotated[str, typer.Argument(help="The round, as challenge.yaml names it.")],
    private_data: PrivateDataOpt = None,
    evaluator: Annotated[
        bool,
        typer.Option(
            "--evaluator", help="Sign with the evaluator key in $GITCOOP_EVALUATOR_KEY (CI)."
        ),
    ] = False,
) -> None:
    """Fix the round's result with a signed round-close entry, after the round's end.

    With a private split, an evaluator scores it first."""
    from gitcoop.commands.round_close import close

    with _errors(), _watching_ledger(notes=False):
        key = None
        if evaluator:
            from gitcoop.ci.batch import load_key

            key = load_key(os.environ)
        done = close(".", name, private_data=private_data, key=key)
    if done.revealed:
        _say(f"scored {done.revealed} commits on the private split")
    _say(
        f"closed round {done.name} at {done.tip[:12]} (result sha256 {done.result[:16]}); "
        f"recorded as ledger entry #{done.seq}: publish it with git coop sync"
    )


def command_tree() -> Any:
    """Return the click command tree of ``git coop``: the man pages and the tests walk it."""
    return typer.main.get_command(app)


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(help="The shell: bash, zsh or fish.")],
) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Loaded in the shell, TAB completes git coop's commands, options and choices."""
    from gitcoop.completion import script

    sys.stdout.write(script(shell.value))


def _run(complete_var: str) -> int:
    """Run the app, a bad command line rendered as the one error line every other error
    is; returns the exit code."""
    try:
        code = app(prog_name="git coop", complete_var=complete_var, standalone_mode=False)
    except typer.Abort as exc:
        return _aborted(exc.__cause__)
    except Exception as exc:
        # Typer's usage errors (vendored click's UsageError: an unknown option, a bad value,
        # an extra argument) are no public type: they are the exceptions with exit code 2
        # and a message. Without arguments a group raises one after printing its help.
        if getattr(exc, "exit_code", None) != ExitCode.USAGE or not hasattr(exc, "format_message"):
            raise
        if type(exc).__name__ != "NoArgsIsHelpError":
            ctx = getattr(exc, "ctx", None)
            fix = f" (fix: see {ctx.command_path} -h)" if ctx is not None else ""
            _err(f"gitcoop: error: {' '.join(exc.format_message().split())}{fix}")
        return int(ExitCode.USAGE)
    return code if isinstance(code, int) else 0


def _aborted(cause: BaseException | None) -> int:
    # Typer turns Ctrl-C, and an EOFError raised anywhere (a prompt's closed input, but also
    # a truncated .pyc met by an import), into a bare Abort: name what happened.
    if cause is None or isinstance(cause, KeyboardInterrupt):
        _err("gitcoop: interrupted")
        return 130
    if os.environ.get("GITCOOP_DEBUG"):
        raise cause
    _err(
        f"gitcoop: internal error: {type(cause).__name__}: {cause} "
        "(please report it; GITCOOP_DEBUG=1 shows the traceback)"
    )
    return int(ExitCode.CHECK_FAILED)


def main() -> int:
    """Run the CLI; returns the exit code."""
    from gitcoop.completion import COMPLETE_VAR

    if os.environ.get(COMPLETE_VAR):
        # A completion request from the scripts of `git coop completion`. With
        # add_completion=False typer registers no shells, so do it here, only then: the
        # classes live in a private module and cost an import on every other run.
        from typer._completion_classes import completion_init

        completion_init()
    try:
        code = _run(COMPLETE_VAR)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OSError as exc:  # every other one was caught: the output could not be written
        return _output_failed(exc)
    try:
        sys.stdout.flush()  # now, while a failure can still be told
    except OSError as exc:
        return _output_failed(exc)
    return code


def _output_failed(exc: OSError) -> int:
    """Say (unless the reader just went away) that the standard output could not be
    written, as a redirection to a full disk fails; return the exit code."""
    import errno

    with contextlib.suppress(OSError):  # else the interpreter's last flush fails again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if exc.errno != errno.EPIPE:
        if os.environ.get("GITCOOP_DEBUG"):
            raise exc
        failure = write_failed(exc, "the standard output", after="the output is incomplete")
        _err(f"gitcoop: error: {failure.message} (fix: {failure.hint})")
    return int(ExitCode.CHECK_FAILED)


if __name__ == "__main__":
    sys.exit(main())
