"""A JSON-RPC client for one Ethereum node (requests), with bounded retries.

Connection failures, timeouts, HTTP 429 and 5xx are retried with backoff; a JSON-RPC error
object is the node's answer and is raised at once as ``RpcError`` (its code and message
kept, so callers can tell "already known" from "nonce too low"); anything that is not a
JSON-RPC answer is ``GitOperationError`` naming the node.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from gitcoop.errors import ConfigError, GitOperationError

_RETRIES = 3
DEFAULT_TIMEOUT = 10.0


class RpcError(GitOperationError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, text: str) -> None:
        super().__init__(f"the Ethereum node refused {method}: {text} (code {code})")
        self.code = code
        self.text = text


class Rpc:
    """Calls one node's JSON-RPC endpoint."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests

        self.url = url
        self._timeout = timeout
        self._sleep = sleep
        self._http = requests.Session()
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"Rpc({self.url!r})"

    def call(self, method: str, *params: Any) -> Any:
        """The result of ``method(params)``; raises RpcError or GitOperationError."""
        import requests

        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": list(params),
        }
        problem = ""
        for attempt in range(_RETRIES + 1):
            if attempt:
                self._sleep(min(5.0, 0.25 * 2**attempt))
            try:
                r = self._http.post(self.url, json=body, timeout=self._timeout)
            except requests.Timeout:
                problem = f"no answer within {self._timeout:g} s"
                continue
            except requests.ConnectionError:
                problem = "could not connect"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                problem = f"HTTP {r.status_code}"
                continue
            return _result(method, r, self.url)
        raise GitOperationError(
            f"the Ethereum node at {self.url} did not answer {method} ({problem}, "
            f"{_RETRIES + 1} tries)",
            hint="check --rpc, or try again later (--rpc-timeout waits longer); "
            "the ledger was not changed",
        )


def _result(method: str, r: Any, url: str) -> Any:
    try:
        answer = r.json()
    except (ValueError, RecursionError):  # not JSON, or nested past any JSON-RPC answer
        answer = None
    if r.status_code >= 400 or not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
        raise GitOperationError(
            f"the Ethereum node at {url} sent no JSON-RPC answer to {method} "
            f"(HTTP {r.status_code})",
            hint="check that --rpc names a JSON-RPC endpoint",
        )
    if "error" in answer:
        err = answer["error"] if isinstance(answer["error"], dict) else {}
        raise RpcError(method, int(err.get("code", 0)), str(err.get("message", "error")))
    if "result" not in answer:
        raise GitOperationError(f"the Ethereum node at {url} answered {method} without a result")
    return answer["result"]


class Finality:
    """When a block counts as final: at or below the node's ``finalized`` block, or, with
    ``confirmations`` given (a chain without the tag), that many blocks deep."""

    def __init__(self, rpc: Rpc, confirmations: int | None) -> None:
        self.latest = int(rpc.call("eth_blockNumber"), 16)
        self._depth = confirmations
        self._finalized = None if confirmations is not None else _finalized(rpc)

    def final(self, block_number: int) -> bool:
        """Whether the block ``block_number`` is final."""
        if self._depth is not None:
            return self.latest - block_number + 1 >= self._depth
        assert self._finalized is not None
        return block_number <= self._finalized

    def depth(self, block_number: int) -> int:
        """Blocks on top of ``block_number``, counting it."""
        return self.latest - block_number + 1


def _finalized(rpc: Rpc) -> int:
    try:
        block = rpc.call("eth_getBlockByNumber", "finalized", False)
    except RpcError:
        block = None
    if not isinstance(block, dict) or "number" not in block:
        raise GitOperationError(
            f"the node at {rpc.url} names no finalized block",
            hint="on a chain without the finalized tag, pass --confirmations N",
        )
    return int(block["number"], 16)


def check_chain(rpc: Rpc, chain_id: int) -> None:
    """Raise ConfigError unless the node serves chain ``chain_id``: checked before
    anything is signed, so a wrong node costs nothing."""
    node = int(rpc.call("eth_chainId"), 16)
    if node != chain_id:
        raise ConfigError(
            f"the node at {rpc.url} is on chain {node}, not {chain_id}",
            hint="check --rpc and --chain-id; nothing was signed",
        )
