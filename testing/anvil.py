"""A real local Ethereum node for tests: anvil (npm @foundry-rs/anvil) on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "node_modules" / ".bin"


@dataclass(frozen=True)
class Node:
    url: str
    keys: list[str]  # the funded development accounts' private keys, 0x hex

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            answer = json.loads(r.read())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running() -> Iterator[Node]:
    """Start anvil, wait until it listens, stop it afterwards."""
    binary = BIN / "anvil"
    if not binary.exists():
        raise RuntimeError("anvil is not installed: run make test (it runs npm ci)")
    port = _free_port()
    proc = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    keys: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.match(r"\(\d+\) (0x[0-9a-f]{64})$", line.strip())
            if found:
                keys.append(found.group(1))
            if line.startswith("Listening on"):
                break
        else:
            raise RuntimeError("anvil stopped before listening")
        # anvil logs every request: keep its pipe drained, or it blocks once the pipe fills.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield Node(f"http://127.0.0.1:{port}", keys)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def fee_market(node: Node) -> Iterator[Node]:
    """Let a test stop mining (``evm_setAutomine``) and move the base fee; afterwards the
    pool is empty, mining automatic and the next base fee what it was: ``evm_revert``
    restores none of these."""
    base = node.call("eth_getBlockByNumber", "pending", False)["baseFeePerGas"]
    try:
        yield node
    finally:
        node.call("anvil_dropAllTransactions")
        node.call("evm_setAutomine", True)
        node.call("anvil_setNextBlockBaseFeePerGas", base)


def price_out(node: Node, fee: int) -> int:
    """Mine one block whose base fee is above ``fee`` (wei): a transaction offering at most
    that cannot be in it, and anvil drops it from its pool. Returns the next base fee."""
    node.call("anvil_setNextBlockBaseFeePerGas", hex(fee * 3 // 2))
    node.call("anvil_mine", "0x1")
    return int(node.call("eth_getBlockByNumber", "pending", False)["baseFeePerGas"], 16)
