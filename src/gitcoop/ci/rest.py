"""The GitHub REST calls gitcoop makes from a workflow: one sticky pull-request comment.

Transient failures (5xx, secondary rate limits, an exhausted rate limit) are retried a few
times with the wait GitHub asks for, bounded; a 403 that is not a rate limit means the
token may not write (a fork's pull request), which the caller turns into report-only mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gitcoop import __version__
from gitcoop.errors import GitOperationError

MARKER = "<!-- gitcoop:pull-request-report -->"  # finds our comment again; never shown
_RETRIES = 4
_MAX_WAIT = 30.0  # seconds: a job waits no longer than this for one retry


class ReadOnly(GitOperationError):
    """The token may read but not write (a fork's pull request)."""


class Api:
    """A small GitHub REST client (requests), bound to one repository."""

    def __init__(
        self,
        base_url: str,
        token: str,
        repository: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests

        self._base = base_url.rstrip("/")
        self._repo = repository
        self._sleep = sleep
        self._http = requests.Session()
        self._http.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"gitcoop/{__version__}",
            }
        )

    def __repr__(self) -> str:  # never the token
        return f"Api({self._base!r}, {self._repo!r})"

    def sticky_comment(self, number: int, body: str) -> tuple[str, int]:
        """Create the pull request's gitcoop comment, or update it when an earlier run
        left one; return ("created" | "updated", its id)."""
        text = f"{MARKER}\n{body}"
        for comment in self._comments(number):
            if MARKER in str(comment.get("body") or ""):
                cid = int(comment["id"])
                self._call("PATCH", f"/repos/{self._repo}/issues/comments/{cid}", {"body": text})
                return "updated", cid
        made = self._call("POST", f"/repos/{self._repo}/issues/{number}/comments", {"body": text})
        return "created", int(made["id"])

    def _comments(self, number: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = f"{self._base}/repos/{self._repo}/issues/{number}/comments?per_page=100"
        while url is not None:
            response = self._send("GET", url, None)
            out += response.json()
            url = response.links.get("next", {}).get("url")
        return out

    def _call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        return self._send(method, self._base + path, body).json()

    def _send(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        import requests

        for attempt in range(_RETRIES + 1):
            last = attempt == _RETRIES
            try:
                r = self._http.request(method, url, json=body, timeout=30)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise GitOperationError(
                        f"GitHub API unreachable: {type(exc).__name__}", hint="retry the job"
                    ) from None
                self._sleep(_backoff(attempt))
                continue
            if _transient(r) and not last:
                self._sleep(_wait(r, attempt))
                continue
            return _checked(r, method)
        raise AssertionError("unreachable")  # the last attempt returns or raises


def _transient(r: Any) -> bool:
    limited = r.status_code in (403, 429) and (
        r.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in r.headers
    )
    return r.status_code >= 500 or limited


def _wait(r: Any, attempt: int) -> float:
    if "retry-after" in r.headers:
        return min(_MAX_WAIT, max(0.0, float(r.headers["retry-after"])))
    reset = r.headers.get("x-ratelimit-reset")
    if reset is not None and r.headers.get("x-ratelimit-remaining") == "0":
        return min(_MAX_WAIT, max(0.0, float(reset) - time.time()))
    return _backoff(attempt)


def _backoff(attempt: int) -> float:
    return min(_MAX_WAIT, 0.5 * float(2**attempt))


def _checked(r: Any, method: str) -> Any:
    if r.status_code == 403 and not _transient(r):
        raise ReadOnly(
            f"GitHub refused {method} ({r.status_code}): this job's token is read-only here",
            hint="a fork's pull request gets a read-only token; its report is in the job summary",
        )
    if r.status_code >= 400:
        raise GitOperationError(
            f"GitHub API {method} {r.request.path_url.split('?')[0]} failed with {r.status_code}",
            hint="check the workflow's permissions (pull-requests: write)",
        )
    return r
