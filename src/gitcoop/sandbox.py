"""Run a challenge's metric command, sandboxed, and read its score.

The metric is untrusted code from the challenge author or a participant, so it runs
without a shell, with a scrubbed environment and a home directory of its own, under a
wall-clock limit, an output limit and optional memory and CPU limits, in its own process
group; on Linux gitcoop also adopts whatever leaves that group, so that nothing it starts
can outlive it (docs/decisions/0018-metric-sandbox.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

from gitcoop import constants
from gitcoop.decimals import decimal_text
from gitcoop.errors import MetricError
from gitcoop.metric import (
    AUTO_NAME,
    MetricResult,
    MetricSpec,
    detect_metric_name,
    last_line,
    parse_metric_output,
    score_from_file,
    score_from_regex,
)
from gitcoop.reaper import Reaper, group_alive, kill_group, signal_group

_TAIL_BYTES = 64 * 1024  # the score is on the last line; older output only costs memory
_READ_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05  # how often to notice an exit while children still hold the pipes
_DRAIN_SECONDS = 0.2  # how long to keep reading after the main process has exited
_TERM_GRACE_SECONDS = 2.0  # time between SIGTERM and SIGKILL on timeout
_SETTLE_SECONDS = 0.1  # lets dying group members disappear before calling them leftovers
_STDERR_CHARS = 200

# What programs say when an allocation fails: Python, C (strerror), C++, glibc, BLAS.
_OUT_OF_MEMORY = re.compile(
    rb"MemoryError|out of memory|cannot allocate memory|bad_alloc|memory allocation",
    re.IGNORECASE,
)

# Credentials a metric must never see: git's own variables could redirect it at the
# caller's repository, gitcoop's locate or hold its keys, and tokens would let it act on
# the caller's behalf.
_SECRET_PREFIXES = ("GIT_", "GITCOOP_")
_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_KEY_FILE", "_KEY_PATH")
_SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_SECRET_NAMES = frozenset(
    {
        "TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        # An agent signs for whoever reaches its socket, and gitcoop signs with keys that
        # ssh-agent holds: with this variable a metric could sign attestations.
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "GPG_AGENT_INFO",
        "GNUPGHOME",
        "KRB5CCNAME",
        # They lead to the same agents (gpg-agent, gnome-keyring, systemd's ssh-agent) and
        # to the desktop's keyring.
        "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS",
    }
)


# --- environment -------------------------------------------------------------------------


def scrubbed_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``base`` without git, gitcoop and credential variables, plus ``extra``.

    Dropped (names compared in upper case): ``GIT_*`` and ``GITCOOP_*``; ``*_KEY``,
    ``*_TOKEN``, ``*_KEY_FILE``, ``*_KEY_PATH``; any name containing ``SECRET``,
    ``PASSWORD``, ``PASSWD`` or ``CREDENTIAL``; ``ACTIONS_*`` names containing ``TOKEN``;
    and the variables that lead to agents and keyrings (``SSH_AUTH_SOCK``,
    ``SSH_AGENT_PID``, ``GPG_AGENT_INFO``, ``GNUPGHOME``, ``KRB5CCNAME``,
    ``XDG_RUNTIME_DIR``, ``DBUS_SESSION_BUS_ADDRESS``). ``extra`` is applied afterwards, so
    it may set any of them deliberately.
    """
    env = {key: value for key, value in base.items() if not _is_secret(key)}
    env.update(extra or {})
    return env


def _is_secret(key: str) -> bool:
    name = key.upper()
    return (
        name.startswith(_SECRET_PREFIXES)
        or name.endswith(_SECRET_SUFFIXES)
        or name in _SECRET_NAMES
        or any(word in name for word in _SECRET_WORDS)
        or (name.startswith("ACTIONS_") and "TOKEN" in name)
    )


def metric_env(
    base: Mapping[str, str], home: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a metric runs with: ``scrubbed_env(base)`` with ``home`` as HOME,
    ``home/.config`` as XDG_CONFIG_HOME, then ``extra``.

    gitcoop finds its key directory through ``GITCOOP_HOME``, ``XDG_CONFIG_HOME`` or
    ``HOME`` (see ``keys.gitcoop_home``); none of them leads the metric there. The cache
    directory and the Python user base stay where ``base`` has them, since a metric must not
    download its models again, or lose packages installed with ``pip install --user``, on
    every run. Any variable whose value is the key directory or a directory above it is
    dropped.
    """
    real = base.get("HOME") or os.path.expanduser("~")
    env = scrubbed_env(base)
    env["XDG_CACHE_HOME"] = base.get("XDG_CACHE_HOME") or os.path.join(real, ".cache")
    env["PYTHONUSERBASE"] = base.get("PYTHONUSERBASE") or os.path.join(real, ".local")
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    keydirs = key_dirs(base)
    env = {k: v for k, v in env.items() if not any(_leads_to(v, d) for d in keydirs)}
    env.update(extra or {})
    return env


def key_dirs(base: Mapping[str, str]) -> list[str]:
    """Where gitcoop keeps keys by the rules of ``keys.gitcoop_home`` applied to ``base``,
    and the default place as well when ``GITCOOP_HOME`` points elsewhere (it may still
    hold a key)."""
    real = base.get("HOME") or os.path.expanduser("~")
    config = base.get("XDG_CONFIG_HOME") or os.path.join(real, ".config")
    found = {
        base.get(constants.HOME_ENV) or "",
        os.path.join(config, "gitcoop"),
        os.path.join(real, ".config", "gitcoop"),
    }
    return sorted(os.path.normpath(d) for d in found if os.path.isabs(d))


def _leads_to(value: str, keydir: str) -> bool:
    if not os.path.isabs(value):
        return False
    path = os.path.normpath(value)
    return keydir == path or keydir.startswith(path.rstrip(os.sep) + os.sep)


# --- running -----------------------------------------------------------------------------


@dataclass
class _Output:
    """The last bytes of stdout and stderr, and how many bytes were printed in total."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, tail: bytearray, chunk: bytes) -> None:
        self.total += len(chunk)
        tail += chunk
        if len(tail) > _TAIL_BYTES:
            del tail[: len(tail) - _TAIL_BYTES]


def run_metric(
    spec: MetricSpec,
    cwd: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> MetricResult:
    """Run the metric in ``cwd`` and return its score.

    The command gets the environment of ``metric_env`` plus ``extra_env``, no stdin, its
    own process group, and the spec's memory and CPU limits. Its home directory is
    ``home``, emptied before and after the run, which the caller must not share with a run
    in progress; without it, a new temporary directory, removed afterwards. Raises
    MetricError if it cannot be started, times out, prints more than ``spec.output_limit``
    bytes, leaves processes running (in its group, or on Linux outside it), exits
    unsuccessfully, or prints no usable score.
    """
    if spec.file is not None:
        # A copy committed with the code must never pass for this run's result.
        with contextlib.suppress(IsADirectoryError, NotADirectoryError):
            (cwd / spec.file).unlink(missing_ok=True)
    with _home(home) as path:
        env = metric_env(os.environ, path, extra_env)
        started = time.monotonic()
        output, returncode = _supervise(spec, cwd, env, started + spec.timeout)
    duration_ms = int((time.monotonic() - started) * 1000)
    _check_status(returncode, output.stderr, spec)
    stdout = bytes(output.stdout)
    name = detect_metric_name(stdout) if spec.name == AUTO_NAME else spec.name
    if spec.file is not None:
        value = score_from_file(cwd, spec.file, spec.key or name, spec.output_limit)
    elif spec.regex is not None:
        value = score_from_regex(stdout, spec.regex)
    else:
        value = parse_metric_output(stdout, name)
    return MetricResult(value=value, text=decimal_text(value), duration_ms=duration_ms, name=name)


@contextlib.contextmanager
def _home(given: Path | None) -> Iterator[str]:
    if given is None:
        import shutil
        import tempfile

        made = tempfile.mkdtemp(prefix="gitcoop-metric-home-")
        try:
            yield made
        finally:
            shutil.rmtree(made, ignore_errors=True)
        return
    # Reused, since removing a directory can cost milliseconds (file systems mounted with
    # discard); emptied, since what one commit's code leaves there must not reach the next.
    given.mkdir(mode=0o700, exist_ok=True)
    _empty(given)
    try:
        yield str(given)
    finally:
        _empty(given)


def _empty(path: Path) -> None:
    import shutil

    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
    except OSError as exc:
        raise MetricError(
            f"cannot empty the metric's home directory {str(path)!r}: {exc.strerror or exc}",
            hint="remove what is in it by hand",
        ) from None


def _supervise(
    spec: MetricSpec, cwd: Path, env: dict[str, str], deadline: float
) -> tuple[_Output, int]:
    """Run the metric to its end; return its output and exit status. Raises MetricError
    when it breaks a limit or leaves anything running."""
    seen = _REAPER.enter()
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = _REAPER.start(lambda: _start(_command(spec), spec.argv[0], cwd, env))
        try:
            output = _capture(proc, spec, deadline)
            _reject_leftovers(proc.pid)
        except BaseException:
            # Also on KeyboardInterrupt or a bug here: nothing the metric started may outlive it.
            kill_group(proc.pid)
            raise
        finally:
            _close(proc)
    finally:
        strays = _REAPER.leave(seen, None if proc is None else proc.pid)
    if strays:
        raise MetricError(
            "metric left processes running outside its process group (killed them)",
            hint="a metric must not detach what it starts (setsid, daemons) and must wait for it",
        )
    return output, proc.returncode


def _command(spec: MetricSpec) -> list[str]:
    if spec.memory_mb is None and spec.cpu_seconds is None:
        return list(spec.argv)
    memory, cpu = str((spec.memory_mb or 0) * 1024 * 1024), str(spec.cpu_seconds or 0)
    return [sys.executable, "-I", "-S", "-c", _LIMITS, memory, cpu, *spec.argv]


# Runs in the child in place of the metric, then execs it: limits set here hold from the
# metric's first instruction, which prlimit() on a started child cannot promise, and unlike
# preexec_fn it is safe in a process with threads. No core file: a metric stopped by its CPU
# limit must not leave one in the checkout.
_LIMITS = """\
import os, resource, sys
def cap(kind, soft, hard):
    top = resource.getrlimit(kind)[1]
    if top != resource.RLIM_INFINITY:
        soft, hard = min(soft, top), min(hard, top)
    resource.setrlimit(kind, (soft, hard))
cap(resource.RLIMIT_CORE, 0, 0)
memory, cpu = int(sys.argv[1]), int(sys.argv[2])
if memory:
    cap(resource.RLIMIT_DATA, memory, memory)
if cpu:
    cap(resource.RLIMIT_CPU, cpu, cpu + 1)
try:
    os.execvp(sys.argv[3], sys.argv[3:])
except OSError as exc:
    sys.stderr.write(f"cannot run metric command {sys.argv[3]!r}: {exc.strerror}\\n")
    sys.exit(127)
"""


def _start(
    command: list[str], program: str, cwd: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: we can signal everything it starts
            close_fds=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        if exc.filename is not None and str(exc.filename) == str(cwd):
            raise MetricError(f"cannot run metric in {str(cwd)!r}: {exc.strerror}") from None
        raise MetricError(
            f"cannot run metric command {program!r}: {exc.strerror}",
            hint="check the metric command in the challenge and that the program is installed",
        ) from None
    except (OSError, ValueError) as exc:
        raise MetricError(f"cannot run metric command {program!r}: {exc}") from None


def _capture(proc: subprocess.Popen[bytes], spec: MetricSpec, deadline: float) -> _Output:
    """Read both pipes until EOF or shortly after exit; enforce the time and output limits."""
    output = _Output()
    with selectors.DefaultSelector() as selector:
        _register(selector, proc.stdout, output.stdout)
        _register(selector, proc.stderr, output.stderr)
        _pump(selector, proc, spec, deadline, output)
    _wait(proc, spec, deadline)
    return output


def _register(selector: selectors.BaseSelector, pipe: IO[bytes] | None, tail: bytearray) -> None:
    if pipe is not None:
        selector.register(pipe, selectors.EVENT_READ, tail)


def _pump(
    selector: selectors.BaseSelector,
    proc: subprocess.Popen[bytes],
    spec: MetricSpec,
    deadline: float,
    output: _Output,
) -> None:
    # Children may inherit the pipes and keep them open after the metric exits, so EOF is
    # not a reliable end: stop a little after the main process is gone.
    stop_at: float | None = None
    while selector.get_map():
        now = time.monotonic()
        if stop_at is None and proc.poll() is not None:
            stop_at = now + _DRAIN_SECONDS
        if stop_at is None and now >= deadline:
            _fail_timeout(proc, spec)
        if stop_at is not None and now >= stop_at:
            return
        until = deadline if stop_at is None else stop_at
        for key, _ in selector.select(min(until - now, _POLL_SECONDS)):
            _read(selector, key, output)
        if output.total > spec.output_limit:
            kill_group(proc.pid)
            raise MetricError(
                f"metric printed more than {spec.output_limit} bytes",
                hint="print less, or write details to a file and only the score to stdout",
            )


def _read(selector: selectors.BaseSelector, key: selectors.SelectorKey, output: _Output) -> None:
    chunk = os.read(key.fd, _READ_CHUNK)
    if chunk:
        output.add(key.data, chunk)
    else:
        selector.unregister(key.fileobj)


def _wait(proc: subprocess.Popen[bytes], spec: MetricSpec, deadline: float) -> None:
    # The metric may have closed its pipes and still be running.
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _fail_timeout(proc, spec)


def _fail_timeout(proc: subprocess.Popen[bytes], spec: MetricSpec) -> NoReturn:
    _stop_group(proc)
    raise MetricError(
        f"metric timed out after {spec.timeout:g}s",
        hint="make the metric faster or raise its timeout in the challenge",
    )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Ask the whole group to terminate, then kill whatever is left after a grace period."""
    signal_group(proc.pid, signal.SIGTERM)
    give_up = time.monotonic() + _TERM_GRACE_SECONDS
    while time.monotonic() < give_up:
        proc.poll()  # reap the leader so it stops counting as a member
        if not group_alive(proc.pid):
            return
        time.sleep(0.02)
    kill_group(proc.pid)


def _reject_leftovers(pgid: int) -> None:
    """Kill the group and raise MetricError if anything outlived the metric's main process."""
    settle_until = time.monotonic() + _SETTLE_SECONDS
    while group_alive(pgid):
        if time.monotonic() >= settle_until:
            kill_group(pgid)
            raise MetricError(
                "metric left processes running (killed them); wait for its children before exiting"
            )
        time.sleep(0.01)


_REAPER = Reaper()


def _close(proc: subprocess.Popen[bytes]) -> None:
    proc.wait()  # at most a moment: the process has exited or its group was just killed
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _check_status(returncode: int, stderr: bytearray, spec: MetricSpec) -> None:
    if returncode == 0:
        return
    detail = _last_stderr_line(stderr)
    suffix = f": {detail}" if detail else " (nothing on stderr)"
    if spec.cpu_seconds is not None and returncode == -signal.SIGXCPU:
        raise MetricError(
            f"metric used up its CPU time limit of {spec.cpu_seconds} s",
            hint=f"raise metric.cpu_seconds in {constants.CHALLENGE_FILE} if it needs more",
        )
    if spec.memory_mb is not None and _OUT_OF_MEMORY.search(bytes(stderr)):
        raise MetricError(
            f"metric ran out of memory under its limit of {spec.memory_mb} MiB{suffix}",
            hint=f"raise metric.memory_mb in {constants.CHALLENGE_FILE} if it needs more",
        )
    if returncode < 0:
        raise MetricError(f"metric was killed by {_signal_name(-returncode)}{suffix}")
    raise MetricError(f"metric exited with status {returncode}{suffix}")


def _last_stderr_line(stderr: bytearray) -> str:
    line = last_line(bytes(stderr))
    if len(line) > _STDERR_CHARS:
        line = line[: _STDERR_CHARS - 3] + "..."
    return line


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
