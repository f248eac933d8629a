"""Process groups, and what leaves them: the metric runs in a group of its own, which can
be signalled whole; on Linux, what leaves the group (setsid, setpgid) is adopted here and
killed (docs/decisions/0018-metric-sandbox.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


def kill_group(pgid: int) -> None:
    signal_group(pgid, signal.SIGKILL)


def signal_group(pgid: int, signum: signal.Signals) -> None:
    # Everyone may be gone already, or a member changed user and is beyond our reach.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def group_alive(pgid: int) -> bool:
    """Return whether the process group has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; where no init reaps orphans (some containers) they
    # would never go away, so ask /proc whether a live member remains.
    return _live_member_in_proc(pgid)


def _live_member_in_proc(pgid: int) -> bool:
    proc_root = Path("/proc")
    if not (proc_root / "self" / "stat").exists():
        return True  # no /proc: trust killpg
    for entry in proc_root.iterdir():
        if entry.name.isdigit() and _is_live_member(entry / "stat", pgid):
            return True
    return False


def _is_live_member(stat_path: Path, pgid: int) -> bool:
    try:
        stat = stat_path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False  # exited while we looked
    # The command name may contain spaces and parentheses; the fields after it cannot.
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")


_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
_STRAY_SECONDS = 2.0  # the most time spent stopping what left a metric's process group
_STRAY_PAUSE = 0.005  # lets killed processes die, and their children be adopted


class Reaper:
    """Finds and kills what a metric leaves running outside its process group.

    A process that calls setsid() or setpgid() is beyond the group kill, and once its parent
    exits, init adopts it, out of sight. While metrics run, this process is a child
    subreaper (Linux): the metric's orphans are adopted here instead. They are then children
    in a session other than this process's own, which nothing gitcoop starts has except the
    metrics themselves, known by their process groups. Attribution stops at the session:
    when runs overlap, a stray found by one run fails every run in progress.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[int, int] = {}  # process groups of metrics in progress, counted
        self._runs = 0
        self._adopting = False
        self._session = 0
        self._strays = 0  # live strays found so far, by any run

    def enter(self) -> int:
        """Start a run (adopting orphans from now on); returns what ``leave`` needs."""
        with self._lock:
            if self._runs == 0:
                self._adopting = _set_subreaper(True)
                self._session = os.getsid(0)
            self._runs += 1
            return self._strays

    def start(self, launch: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Start the metric with ``launch`` (in a process group of its own) and know its
        group before any sweep can look at it."""
        with self._lock:
            proc = launch()
            self._groups[proc.pid] = self._groups.get(proc.pid, 0) + 1
            return proc

    def leave(self, seen: int, group: int | None) -> bool:
        """End a run whose main process has been reaped: kill and reap what strayed from
        ``group``. Returns whether anything live strayed while the run was in progress."""
        try:
            if group is not None:
                with self._lock:
                    self._groups[group] -= 1
                    if not self._groups[group]:
                        del self._groups[group]
                if self._adopting:
                    self._clear(group)
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0 and self._adopting:
                    self._adopting = not _set_subreaper(False)
                found = self._strays != seen
        return found

    def _clear(self, group: int) -> None:
        # Each kill makes the killed process's children orphans, adopted here and found by
        # the next sweep: repeat until a sweep finds nothing and the group is gone.
        give_up = time.monotonic() + _STRAY_SECONDS
        while True:
            with self._lock:
                found = self._sweep()
            if not found and not group_alive(group):
                return
            if time.monotonic() >= give_up:
                return
            time.sleep(_STRAY_PAUSE)

    def _sweep(self) -> bool:
        """Reap or kill this process's children that no metric in progress owns and that
        gitcoop did not start; returns whether there were any. Called with the lock held."""
        found = False
        for pid in _children():
            if pid in self._groups:
                continue  # a metric's main process: its Popen reaps it
            ids = _group_and_session(pid)
            if ids is None or ids[1] == self._session:
                continue  # gone already, or started by gitcoop itself outside any metric
            group = ids[0]
            if group in self._groups:
                continue  # a metric in progress still owns its group
            found = True
            if _reap(pid):
                continue
            self._strays += 1
            # Unreaped, the child keeps its pid and its group's id: neither can be reused.
            signal_group(group, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return found


def _group_and_session(pid: int) -> tuple[int, int] | None:
    # From /proc rather than getpgid()/getsid(), which a security module may deny.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return (int(fields[2]), int(fields[3])) if len(fields) > 3 else None


def _reap(pid: int) -> bool:
    """Reap ``pid`` if it has exited; returns whether it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _children() -> list[int]:
    """This process's children, from every thread's /proc children list, or by a scan of
    /proc where the kernel has no such lists."""
    tasks = f"/proc/{os.getpid()}/task"
    pids: list[int] = []
    for tid in os.listdir(tasks):
        try:
            with open(f"{tasks}/{tid}/children", "rb") as fh:
                pids.extend(int(pid) for pid in fh.read().split())
        except FileNotFoundError:
            if tid == str(threading.get_native_id()):
                return _children_by_scan()
            # Otherwise the thread has just ended.
    return pids


def _children_by_scan() -> list[int]:
    me = str(os.getpid())
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read().decode("ascii", "replace")
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 1 and fields[1] == me:
                pids.append(int(entry))
    return pids


_prctl: Callable[[int, int], int] | None = None
_prctl_known = False


def _set_subreaper(on: bool) -> bool:
    """Make this process the reaper of its orphaned descendants, or stop; returns whether
    that worked (False where it is not available: not Linux, or prctl refused)."""
    global _prctl, _prctl_known
    if not _prctl_known:
        _prctl, _prctl_known = _find_prctl(), True
    return _prctl is not None and _prctl(_PR_SET_CHILD_SUBREAPER, int(on)) == 0


def _find_prctl() -> Callable[[int, int], int] | None:
    if sys.platform != "linux":
        return None
    try:
        # _ctypes alone loads in a fraction of the time ctypes takes, on every push that
        # runs a metric.
        import _ctypes

        address = _ctypes.dlsym(_ctypes.dlopen(None), "prctl")  # type: ignore[arg-type]
        call = _ctypes.call_function
    except (ImportError, OSError, AttributeError):
        return _find_prctl_ctypes()
    return lambda option, value: int(call(address, (option, value, 0, 0, 0)))


def _find_prctl_ctypes() -> Callable[[int, int], int] | None:
    try:
        import ctypes

        function = ctypes.CDLL(None).prctl
    except (ImportError, OSError, AttributeError):
        return None
    return lambda option, value: int(function(option, value, 0, 0, 0))
