"""The metric sandbox: whatever a metric starts dies with it, even outside its process
group; memory and CPU limits; no secret reachable through its environment; and, end to
end through the pre-push hook, no attestation from a run that broke any of it."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from testing.world import Player, World, run

from gitcoop import keys, sandbox
from gitcoop.errors import ConfigError, MetricError
from gitcoop.metric import MetricResult, MetricSpec
from gitcoop.sandbox import key_dirs, metric_env, run_metric, scrubbed_env

MARK = "SANDBOX_TEST_MARK"  # every process of a run carries it, setsid or not
LINUX = pytest.mark.skipif(sys.platform != "linux", reason="orphans are adopted on Linux only")

STRAYED = (
    "metric left processes running outside its process group (killed them) (a metric must "
    "not detach what it starts (setsid, daemons) and must wait for it)"
)
LEFTOVER = "metric left processes running (killed them); wait for its children before exiting"


def _survivors(mark: str) -> list[int]:
    """Live processes whose environment carries ``mark``."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat[stat.rfind(")") + 2] not in "ZX":
            found.append(int(entry))
    return found


def _run(tmp_path: Path, body: str, **spec: object) -> tuple[str, MetricResult | MetricError]:
    """Run ``body`` as the metric; return the run's mark and its result or error."""
    script = tmp_path / "metric.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    spec.setdefault("timeout", 10.0)
    mark = uuid.uuid4().hex
    full = MetricSpec(argv=(sys.executable, str(script)), name="score", **spec)  # type: ignore[arg-type]
    try:
        return mark, run_metric(full, tmp_path, extra_env={MARK: mark})
    except MetricError as exc:
        return mark, exc


def _failure(tmp_path: Path, body: str, **spec: object) -> str:
    """The run's error message, once nothing of the run is left alive."""
    mark, outcome = _run(tmp_path, body, **spec)
    assert isinstance(outcome, MetricError), outcome
    assert _survivors(mark) == []
    return str(outcome)


def _is_subreaper() -> bool:
    import ctypes

    flag = ctypes.c_int(-1)
    assert ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
    return flag.value == 1


# A stray: a process that leaves the metric's process group and outlives the metric.
_STRAY_WAYS = {
    "setsid": "os.setsid()",
    "setpgid": "os.setpgid(0, 0)",
    "double-fork": "os.setsid()\n    if os.fork():\n        os._exit(0)",
}
_LEAVES_A_STRAY = """
import os, pathlib, sys, time
{setup}
if os.fork() == 0:
    {way}
    pathlib.Path("stray.pid").write_text(str(os.getpid()))
    time.sleep(60)
    os._exit(0)
while not pathlib.Path("stray.pid").exists():
    time.sleep(0.01)
{finish}
"""


@LINUX
@pytest.mark.parametrize("way", sorted(_STRAY_WAYS))
def test_a_stray_fails_the_run_and_is_killed(tmp_path: Path, way: str) -> None:
    body = _LEAVES_A_STRAY.format(way=_STRAY_WAYS[way], setup="", finish="print(0.5)")
    assert _failure(tmp_path, body) == STRAYED
    assert not Path(f"/proc/{(tmp_path / 'stray.pid').read_text()}").exists()
    assert not _is_subreaper()


@LINUX
def test_a_stray_of_a_metric_that_times_out_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "_TERM_GRACE_SECONDS", 0.3)
    setup = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    way = _STRAY_WAYS["double-fork"]
    body = _LEAVES_A_STRAY.format(way=way, setup=setup, finish="time.sleep(60)")
    started = time.monotonic()
    message = _failure(tmp_path, body, timeout=0.5)
    assert message.startswith("metric timed out after 0.5s")
    assert time.monotonic() - started < 5


@LINUX
def test_strays_that_keep_forking_are_all_killed(tmp_path: Path) -> None:
    # Each stray keeps starting strays of its own while gitcoop kills them.
    body = """
        import os, pathlib, time
        def breed(depth):
            for _ in range(6):
                if os.fork() == 0:
                    os.setsid()
                    if depth < 2:
                        breed(depth + 1)
                    time.sleep(60)
                    os._exit(0)
                time.sleep(0.005)
        if os.fork() == 0:
            os.setsid()
            pathlib.Path("started").write_text("")
            breed(0)
            time.sleep(60)
            os._exit(0)
        while not pathlib.Path("started").exists():
            time.sleep(0.01)
        time.sleep(0.05)
        print(0.5)
    """
    assert _failure(tmp_path, body) == STRAYED


@LINUX
def test_detached_children_that_are_done_are_no_stray(tmp_path: Path) -> None:
    body = """
        import os, subprocess, sys, time
        subprocess.run([sys.executable, "-c", "pass"], start_new_session=True, check=True)
        if os.fork() == 0:  # a daemon that finishes on its own before the metric does
            os.setsid()
            if os.fork() == 0:
                os._exit(0)
            os._exit(0)
        os.wait()
        time.sleep(0.2)
        print(0.5)
    """
    mark, outcome = _run(tmp_path, body)
    assert isinstance(outcome, MetricResult) and outcome.text == "0.5"
    assert _survivors(mark) == []
    assert not _is_subreaper()


@LINUX
def test_overlapping_runs_each_keep_their_own_process_and_share_a_stray(tmp_path: Path) -> None:
    # A stray cannot be traced back to its run once it has left the session: while runs
    # overlap, every run in progress fails. The other run's main process, in a session of
    # its own as well, is never taken for a stray.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    slow = "import time\ntime.sleep(1.0)\nprint(0.25)\n"
    stray = _LEAVES_A_STRAY.format(way=_STRAY_WAYS["setsid"], setup="", finish="print(0.5)")
    outcomes: dict[str, object] = {}

    def score(name: str, body: str) -> None:
        outcomes[name] = _run(tmp_path / name, body)[1]

    threads = [threading.Thread(target=score, args=("a", slow))]
    threads.append(threading.Thread(target=score, args=("b", stray)))
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert [str(outcomes[name]) for name in "ab"] == [STRAYED, STRAYED]
    threads = [threading.Thread(target=score, args=(name, slow)) for name in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [outcomes[name].text for name in "ab"] == ["0.25", "0.25"]  # type: ignore[attr-defined]
    assert not _is_subreaper()


# --- the runaway metrics of old, now with no survivors -----------------------------------

_RUNAWAY = {
    "forks-children": (
        """
        import subprocess, sys
        for _ in range(3):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(0.5)
        """,
        LEFTOVER,
    ),
    "ignores-sigterm": (
        """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(60)
        """,
        "metric timed out after 0.5s",
    ),
    "sleeps-forever": (
        """
        import os, time
        if os.fork() == 0:
            time.sleep(60)
        time.sleep(60)
        """,
        "metric timed out after 0.5s",
    ),
    "floods-output": (
        """
        import os, sys
        os.fork()
        while True:
            sys.stdout.write("x" * 1000 + "\\n")
        """,
        "metric printed more than 100000 bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(_RUNAWAY))
def test_a_runaway_metric_leaves_no_survivors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(sandbox, "_TERM_GRACE_SECONDS", 0.3)
    body, expected = _RUNAWAY[case]
    message = _failure(tmp_path, body, timeout=0.5, output_limit=100_000)
    assert message.startswith(expected)


# --- resource limits ---------------------------------------------------------------------


def test_limits_hold_from_the_metric_s_first_instruction(tmp_path: Path) -> None:
    body = """
        import json, pathlib, resource
        names = ("RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_CORE")
        limits = {n: resource.getrlimit(getattr(resource, n)) for n in names}
        pathlib.Path("limits.json").write_text(json.dumps(limits))
        print(1)
    """
    _, outcome = _run(tmp_path, body, memory_mb=300, cpu_seconds=7)
    assert isinstance(outcome, MetricResult)
    limits = json.loads((tmp_path / "limits.json").read_text())
    assert limits == {
        "RLIMIT_DATA": [300 << 20, 300 << 20],
        "RLIMIT_CPU": [7, 8],
        "RLIMIT_CORE": [0, 0],
    }


def test_a_metric_over_its_memory_limit_is_named(tmp_path: Path) -> None:
    body = """
        import sys
        print("loading", file=sys.stderr)
        hog = bytearray(400 << 20)
        print(0.5)
    """
    assert _failure(tmp_path, body, memory_mb=100) == (
        "metric ran out of memory under its limit of 100 MiB: MemoryError "
        "(raise metric.memory_mb in .coop/challenge.yaml if it needs more)"
    )


def test_a_metric_over_its_cpu_limit_is_named(tmp_path: Path) -> None:
    started = time.monotonic()
    message = _failure(tmp_path, "while True:\n    pass\n", cpu_seconds=1, timeout=30)
    assert message == (
        "metric used up its CPU time limit of 1 s "
        "(raise metric.cpu_seconds in .coop/challenge.yaml if it needs more)"
    )
    assert time.monotonic() - started < 15


def test_a_missing_program_is_named_under_limits_too(tmp_path: Path) -> None:
    spec = MetricSpec(("gitcoop-no-such-metric", "x"), "score", 5.0, memory_mb=100)
    with pytest.raises(MetricError) as info:
        run_metric(spec, tmp_path)
    assert str(info.value) == (
        "metric exited with status 127: cannot run metric command 'gitcoop-no-such-metric': "
        "No such file or directory"
    )


@pytest.mark.parametrize("field", ["memory_mb", "cpu_seconds"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_limits_must_be_positive_whole_numbers(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match="must be a positive whole number"):
        MetricSpec(("python",), "score", 1.0, **{field: value})  # type: ignore[arg-type]


# --- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_CACHE_TOKEN_V2",
        "GITCOOP_ETH_KEY",
        "GITCOOP_EVALUATOR_KEY",
        "GITCOOP_HOME",
        "GIT_DIR",
        "OPENAI_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "DB_PASSWORD",
        "my_secret",
        "SIGNING_KEY_FILE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "GNUPGHOME",
        "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS",
    ],
)
def test_scrubbed_env_drops_secrets_and_what_leads_to_them(name: str) -> None:
    assert scrubbed_env({name: "x", "PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


@pytest.mark.parametrize(
    "name", ["PATH", "LANG", "TOKENIZERS_PARALLELISM", "CUDA_VISIBLE_DEVICES", "KEYBOARD"]
)
def test_scrubbed_env_keeps_what_is_no_secret(name: str) -> None:
    assert scrubbed_env({name: "x"}) == {name: "x"}


def test_metric_env_moves_home_and_keeps_caches_and_user_packages() -> None:
    base = {
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/home/u/.config",
        "SSH_AUTH_SOCK": "/tmp/ssh-x/agent.1",
        "PWD": "/home/u",  # a directory above the key directory
        "WORK": "/home/u/src/repo",
        "PATH": "/home/u/.local/bin:/usr/bin",
    }
    env = metric_env(base, "/tmp/h", {"COOP_COMMIT": "c"})
    assert env == {
        "HOME": "/tmp/h",
        "XDG_CONFIG_HOME": "/tmp/h/.config",
        "XDG_CACHE_HOME": "/home/u/.cache",
        "PYTHONUSERBASE": "/home/u/.local",
        "WORK": "/home/u/src/repo",
        "PATH": "/home/u/.local/bin:/usr/bin",
        "COOP_COMMIT": "c",
    }


def test_metric_env_drops_a_cache_that_holds_the_keys() -> None:
    base = {"HOME": "/home/u", "GITCOOP_HOME": "/home/u/.cache/keys", "PYTHONUSERBASE": "/opt/py"}
    env = metric_env(base, "/tmp/h")
    assert "XDG_CACHE_HOME" not in env and env["PYTHONUSERBASE"] == "/opt/py"


@pytest.mark.parametrize(
    "env",
    [
        {"HOME": "/home/u"},
        {"HOME": "/home/u", "XDG_CONFIG_HOME": "/cfg"},
        {"HOME": "/home/u", "XDG_CONFIG_HOME": "/cfg", "GITCOOP_HOME": "/keys"},
    ],
)
def test_key_dirs_knows_where_gitcoop_keeps_keys(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name in ("XDG_CONFIG_HOME", "GITCOOP_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert str(keys.gitcoop_home()) in key_dirs(os.environ)
    assert "/home/u/.config/gitcoop" in key_dirs(os.environ)


_LOOKS_FOR_SECRETS = """
import json, os, pathlib, socket, sys
print(json.dumps(dict(os.environ)))
print(json.dumps(dict(os.environ)), file=sys.stderr)
found = {}
places = [os.environ.get("GITCOOP_HOME")]
places += [os.path.join(os.environ.get("XDG_CONFIG_HOME", ""), "gitcoop")]
places += [os.path.join(os.environ.get("HOME", ""), ".config", "gitcoop")]
for root in [p for p in places if p] + [os.environ.get("HOME", "")]:
    for path in pathlib.Path(root).rglob("*") if os.path.isdir(root) else []:
        if path.is_file():
            found[str(path)] = path.read_text(errors="replace")
sock = os.environ.get("SSH_AUTH_SOCK")
if sock:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock)
        found["agent"] = sock
seen = {"found": found, "env": dict(os.environ)}
pathlib.Path("found.json").write_text(json.dumps(seen))
print(0.5)
"""


@pytest.mark.parametrize("how", ["xdg", "gitcoop-home"])
def test_a_metric_finds_no_secret_through_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    home = tmp_path / "home"
    keydir = home / ".config" / "gitcoop"
    (keydir / "keys").mkdir(parents=True)
    (keydir / "keys" / "id_ed25519").write_text("KEY-MATERIAL")
    (home / ".gitconfig").write_text("[user]\n")
    agent = tmp_path / "agent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(agent))
    listener.listen()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    if how == "gitcoop-home":
        monkeypatch.setenv("GITCOOP_HOME", str(keydir))
    else:
        monkeypatch.delenv("GITCOOP_HOME", raising=False)
    secrets = {
        "GITHUB_TOKEN": "ghs_token_value",
        "GITCOOP_ETH_KEY": "0xeth_key_value",
        "DEPLOY_PASSWORD": "password_value",
        "SSH_AUTH_SOCK": str(agent),
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "work"
    work.mkdir()
    try:
        _, outcome = _run(work, _LOOKS_FOR_SECRETS)
    finally:
        listener.close()
    assert isinstance(outcome, MetricResult) and outcome.text == "0.5"
    seen = json.loads((work / "found.json").read_text())
    assert seen["found"] == {}
    env = seen["env"]
    assert not env["HOME"].startswith(str(home))
    assert not Path(env["HOME"]).exists()  # removed after the run
    assert not [v for v in env.values() for s in secrets.values() if s in v]
    # (an empty value, as make exports MAKEFLAGS, names no directory)
    assert not [v for v in env.values() if v and str(keydir).startswith(v)]


def test_a_printed_token_reaches_no_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_token_value")
    body = """
        import os, sys
        print("token:", os.environ.get("GITHUB_TOKEN", "none"), file=sys.stderr)
        sys.exit(1)
    """
    assert _failure(tmp_path, body) == "metric exited with status 1: token: none"


def test_a_given_home_is_emptied_before_and_after_each_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "planted").write_text("from a killed run")
    script = tmp_path / "metric.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, pathlib
            home = pathlib.Path(os.environ["HOME"])
            before = sorted(p.name for p in home.iterdir())
            (home / ".config" / "x").mkdir(parents=True)
            (home / ".config" / "x" / "rc").write_text("left for the next commit")
            (home / ".link").symlink_to(os.environ["KEEP"])
            print(len(before))
            """
        )
    )
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file").write_text("outside")
    spec = MetricSpec((sys.executable, str(script)), "score", 10.0)
    for _ in range(2):
        result = run_metric(spec, tmp_path, extra_env={"KEEP": str(keep)}, home=home)
        assert result.text == "0"
        assert list(home.iterdir()) == []
    assert (keep / "file").read_text() == "outside"


# --- end to end: no attestation ----------------------------------------------------------

_EVALUATOR = """\
import json, os, pathlib, signal, subprocess, sys, time
mode = pathlib.Path("score.txt").read_text().strip()
print(json.dumps(dict(os.environ)), file=sys.stderr)
if mode == "runaway":  # forks a child, ignores SIGTERM, sleeps forever
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(60)
if mode == "stray":
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            pathlib.Path(os.environ["STRAY_FILE"]).write_text(str(os.getpid()))
            time.sleep(60)
        os._exit(0)
    os.wait()
    while not pathlib.Path(os.environ["STRAY_FILE"]).exists():
        time.sleep(0.01)
if mode == "hog":
    hog = bytearray(1 << 30)
print(json.dumps(dict(os.environ)))
print(json.dumps({"accuracy": 0.7 if mode == "secrets" else float(mode)}))
"""


def _sandboxed(world: World, tmp_path: Path) -> Player:
    m = world.maintainer(init_args=None)
    (m.repo / "evaluate.py").write_text(_EVALUATOR)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(
        "version: 1\nname: toy\nmetric:\n  command: python evaluate.py\n  name: accuracy\n"
        "  direction: maximize\n  timeout: 1\n  memory_mb: 256\nprotect: [evaluate.py]\n"
    )
    m.git("add", ".")
    m.git("commit", "-qm", "challenge by hand")
    m.env[MARK] = uuid.uuid4().hex
    m.env["STRAY_FILE"] = str(tmp_path / "stray.pid")
    m.coop("init")
    m.git("push", "-q", "origin", "main")
    return m


def _ledgers(world: World, m: Player) -> tuple[str | None, str]:
    remote = run(world.remote, "git", "rev-parse", "refs/coop/ledger", "main").stdout
    return m.ref("refs/coop/ledger"), remote


@LINUX
def test_a_push_whose_metric_breaks_the_sandbox_is_refused_and_attests_nothing(
    world: World, tmp_path: Path
) -> None:
    m = _sandboxed(world, tmp_path)
    for mode, expected in [
        ("runaway", "metric timed out after 1s"),
        ("stray", "metric left processes running outside its process group"),
        ("hog", "metric ran out of memory under its limit of 256 MiB: MemoryError"),
    ]:
        before = _ledgers(world, m)
        m.commit_score(mode)
        push = m.git("push", "origin", "main", check=False)
        assert push.returncode != 0, mode
        assert expected in push.stderr, push.stderr
        assert _ledgers(world, m) == before
        assert _survivors(m.env[MARK]) == []
        m.git("reset", "-q", "--hard", "HEAD~1")
    stray = int((tmp_path / "stray.pid").read_text())
    assert not Path(f"/proc/{stray}").exists()


def test_secrets_in_the_pusher_s_environment_reach_neither_the_ledger_nor_the_output(
    world: World, tmp_path: Path
) -> None:
    m = _sandboxed(world, tmp_path)
    secrets = {"GITHUB_TOKEN": "ghs_token_value", "GITCOOP_ETH_KEY": "0xeth_key_value"}
    m.env.update(secrets)
    m.commit_score("secrets")
    push = m.git("push", "origin", "main")
    shown = json.loads(m.coop("show", "HEAD", "--json").stdout)
    assert shown["attestations"][0]["score"] == "0.7"
    ledger = m.git("log", "-p", "--format=%B", "refs/coop/ledger").stdout
    revealed = [str(m.home), *secrets.values()]
    for text in (push.stdout, push.stderr, ledger, json.dumps(shown)):
        assert not [value for value in revealed if value in text]
