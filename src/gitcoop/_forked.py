"""Jobs run in forked children, a few at a time, results read back in any order.

Each job is a fresh ``fork`` of the caller: it inherits the job's data instead of
receiving it pickled, and nothing of ``multiprocessing`` is imported (about 20 ms, as
much as verifying a few hundred entries). A child hands its result back as a pickle in a
file of the pool's folder and leaves with ``os._exit``, so it never runs the caller's
cleanup code or flushes the caller's buffers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

from gitcoop.errors import GitcoopError

T = TypeVar("T")


class WorkerFailed(GitcoopError):
    """A child died or raised instead of returning its result."""


class Pool(Generic[T]):
    """At most ``limit`` children at once; ``start`` waits for the oldest to end when all
    slots are taken (jobs of about equal size keep every core busy that way).

    Only this pool's own children are ever waited for: a ``subprocess`` the caller runs
    meanwhile keeps its exit status.
    """

    def __init__(self, folder: Path, limit: int) -> None:
        self._folder = folder
        self._limit = max(1, limit)
        self._running: dict[int, int] = {}  # job -> pid, oldest first
        self._status: dict[int, int] = {}  # job -> wait status, once it ended
        self._jobs = 0

    def start(self, job: Callable[[], T]) -> int:
        """Run ``job`` in a new child; return its number (0, 1, ...)."""
        if len(self._running) >= self._limit:
            self._reap(next(iter(self._running)))
        number, self._jobs = self._jobs, self._jobs + 1
        pid = os.fork()
        if pid == 0:
            self._child(job, self._file(number))
        self._running[number] = pid
        return number

    def result(self, number: int) -> T:
        """The result of job ``number`` (waiting for it); raises WorkerFailed, or the
        GitcoopError the job raised."""
        if number not in self._status:
            self._reap(number)
        status, path = self._status.pop(number), self._file(number)
        try:
            if os.waitstatus_to_exitcode(status) != 0:
                raise WorkerFailed(f"a worker process ended with status {status:#x}")
            ok, value = pickle.loads(path.read_bytes())  # noqa: S301 - written by our child
        finally:
            path.unlink(missing_ok=True)
        if not ok and isinstance(value, GitcoopError):
            raise value
        if not ok:
            raise WorkerFailed(f"a worker process failed: {value}")
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop and reap the children still running (after an error or an interrupt)."""
        for pid in self._running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self._running:
            self._reap(next(iter(self._running)))

    def __enter__(self) -> Pool[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _file(self, number: int) -> Path:
        return self._folder / f"{number}.result"

    def _reap(self, number: int) -> None:
        # Forgotten only once reaped: an interrupted wait leaves the child to ``close``.
        _pid, status = os.waitpid(self._running[number], 0)
        del self._running[number]
        self._status[number] = status

    @staticmethod
    def _child(job: Callable[[], T], path: Path) -> None:
        code = 1
        try:
            try:
                data = pickle.dumps((True, job()))
            except GitcoopError as exc:  # raised again in the parent, as it was meant
                data = pickle.dumps((False, exc))
            except BaseException as exc:  # reported to the parent as text, never raised here
                data = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
            path.write_bytes(data)
            code = 0
        finally:
            os._exit(code)
