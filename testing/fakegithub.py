"""A local stand-in for GitHub's REST API: records every request and answers from a
script, so tests can assert the exact calls (and make some of them fail)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    path: str
    body: Any
    auth: str


@dataclass
class FakeGitHub:
    """Comments live in ``comments``; ``fail`` queues (status, headers) answers that are
    given, in order, to the next requests with that method instead of the real answer."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    page_size: int = 100
    url: str = ""

    def answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        queued = self.fail.get(method) or []
        if queued:
            status, headers = queued.pop(0)
            return status, headers, {"message": "scripted failure"}
        if method == "GET" and path.startswith("/repos/octo/toy/issues/5/comments"):
            found = re.search(r"[?&]page=([0-9]+)", path)
            page = int(found.group(1)) if found else 1
            chunk = self.comments[(page - 1) * self.page_size : page * self.page_size]
            headers = {}
            if page * self.page_size < len(self.comments):
                nxt = f"{self.url}/repos/octo/toy/issues/5/comments?per_page=100&page={page + 1}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            return 200, headers, chunk
        if method == "POST" and path == "/repos/octo/toy/issues/5/comments":
            made = {"id": 100 + len(self.comments), "body": body["body"]}
            self.comments.append(made)
            return 201, {}, made
        if method == "PATCH" and path.startswith("/repos/octo/toy/issues/comments/"):
            cid = int(path.rsplit("/", 1)[1])
            for c in self.comments:
                if c["id"] == cid:
                    c["body"] = body["body"]
                    return 200, {}, c
        return 404, {}, {"message": "Not Found"}


@contextmanager
def serving(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve ``fake`` on 127.0.0.1 for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(size) if size else b""
            body = json.loads(raw) if raw else None
            fake.calls.append(
                Call(self.command, self.path, body, self.headers.get("Authorization", ""))
            )
            status, headers, reply = fake.answer(self.command, self.path, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _handle

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
