"""Forked workers: results in any order, failures named, no child left behind, and the
caller's own subprocesses keep their exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitcoop._forked import Pool, WorkerFailed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _job(value: int, pause: float = 0.0) -> tuple[int, int]:
    time.sleep(pause)
    return os.getpid(), value


def test_results_come_back_by_number_whatever_order_they_end_in(tmp_path: Path) -> None:
    with Pool[tuple[int, int]](tmp_path, 2) as pool:
        slow = pool.start(lambda: _job(1, 0.3))
        fast = pool.start(lambda: _job(2))
        later = pool.start(lambda: _job(3))  # waits for the slow one to end
        got = [pool.result(n) for n in (later, fast, slow)]
    assert [v for _pid, v in got] == [3, 2, 1]
    pids = {pid for pid, _v in got}
    assert len(pids) == 3 and os.getpid() not in pids  # each job in its own child
    assert list(tmp_path.iterdir()) == []  # every result file read and removed


def test_a_job_that_raises_is_reported_not_raised_in_the_child(tmp_path: Path) -> None:
    def boom() -> int:
        raise ValueError("no such thing")

    with Pool[int](tmp_path, 1) as pool:
        n = pool.start(boom)
        with pytest.raises(WorkerFailed, match="ValueError: no such thing"):
            pool.result(n)
        assert pool.result(pool.start(lambda: 7)) == 7  # the pool goes on


def test_a_child_killed_mid_job_is_a_failure(tmp_path: Path) -> None:
    with Pool[int](tmp_path, 1) as pool:
        n = pool.start(lambda: _job(os.kill(os.getpid(), signal.SIGKILL) or 0)[1])
        with pytest.raises(WorkerFailed, match="status"):
            pool.result(n)


def test_close_kills_and_reaps_what_still_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    pool = Pool[int](tmp_path, 2)

    def sleeper() -> int:
        marker.write_text(str(os.getpid()))
        time.sleep(60)
        return 0

    pool.start(sleeper)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = int(marker.read_text())
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 5
    assert not _pid_alive(pid)  # killed and reaped: not even a zombie


def test_a_subprocess_of_the_caller_keeps_its_exit_status(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2); exit(3)"])
    with Pool[int](tmp_path, 2) as pool:
        numbers = [pool.start(lambda: 1) for _ in range(4)]
        assert [pool.result(n) for n in numbers] == [1, 1, 1, 1]
    assert proc.wait() == 3  # the pool never reaped it
