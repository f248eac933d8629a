"""A JSON-RPC proxy in front of a real node that injects the faults a real node will not
produce on demand: HTTP errors, malformed answers, error objects, rewritten results,
answers that come too late, and standing rules such as a node's eth_getLogs range limit."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A fault: ("http", status) | ("malformed",) | ("error", code, message)
#        | ("forward-then-error", code, message) | ("rewrite", function of the result)
#        | ("stall", seconds): answer an error after the wait, never passing the call on
#        | ("forward-then-stall", seconds): pass the call on at once, answer after the wait
#        | ("raw", body): answer these bytes
Fault = tuple[Any, ...]


@dataclass
class Proxy:
    upstream: str
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    url: str = ""
    # Asked on every call before the queued faults: a fault to play (a node's standing
    # limit, say), or None.
    rule: Callable[[str, list[Any]], Fault | None] | None = None
    params: list[tuple[str, list[Any]]] = field(default_factory=list)

    def forward(self, raw: bytes) -> dict[str, Any]:
        request = urllib.request.Request(self.upstream, raw, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return dict(json.loads(r.read()))

    def answer(self, raw: bytes) -> tuple[int, bytes]:
        body = json.loads(raw)
        method = body["method"]
        self.calls.append(method)
        self.params.append((method, list(body.get("params") or [])))
        fault = self.rule(method, self.params[-1][1]) if self.rule else None
        if fault is None:
            queued = self.faults.get(method) or []
            fault = queued.pop(0) if queued else ("pass",)
        kind = fault[0]
        if kind == "forward-then-stall":
            got = self.forward(raw)
            time.sleep(fault[1])
            return 200, json.dumps(got).encode()
        if kind == "stall":
            time.sleep(fault[1])
            fault = kind, -32000, "answered too late"
        if kind == "http":
            return int(fault[1]), b'{"message": "scripted"}'
        if kind == "malformed":
            return 200, b"<html>not json</html>"
        if kind == "raw":
            return 200, bytes(fault[1])
        if kind in ("error", "forward-then-error", "stall"):
            if kind == "forward-then-error":
                self.forward(raw)
            error = {"code": fault[1], "message": fault[2]}
            return 200, json.dumps({"jsonrpc": "2.0", "id": body["id"], "error": error}).encode()
        got = self.forward(raw)
        if kind == "rewrite":
            rewrite: Callable[[Any], Any] = fault[1]
            got["result"] = rewrite(got["result"])
        return 200, json.dumps(got).encode()


@contextmanager
def proxying(proxy: Proxy) -> Iterator[Proxy]:
    """Serve ``proxy`` on 127.0.0.1 for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, data = proxy.answer(raw)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a client that stopped waiting: what the stall faults are for

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
