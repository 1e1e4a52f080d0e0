"""An OpenAI-compatible judge endpoint on 127.0.0.1 that answers from a script.

It stands in for a remote LLM whose answers a test must control: garbage, partial JSON,
refusals, slow answers, overload. The judge backends talk to it over real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    refusal: str | None = None


@dataclass
class ScriptedJudge:
    replies: list[Reply]
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    model: str = "scripted-judge"

    def next_reply(self) -> Reply:
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        return self.replies[index]


def _handler(judge: ScriptedJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, {"object": "list", "data": [{"id": judge.model}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length))
            body["_path"] = self.path
            judge.requests.append(body)
            reply = judge.next_reply()
            if reply.delay:
                # A judge that answers late, for the client's timeout to run out: the
                # lateness itself is the behaviour under test, so time has to pass here.
                time.sleep(reply.delay)
            if reply.status != 200:
                self._send(reply.status, {"error": {"message": "scripted failure"}})
                return
            if self.path.endswith("/chat/completions"):
                message = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
                choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
            else:
                choice = {"index": 0, "text": reply.content, "finish_reason": "stop"}
            self._send(200, {"id": "x", "model": judge.model, "choices": [choice]})

    return Handler


@contextmanager
def scripted_judge(replies: list[Reply]) -> Iterator[ScriptedJudge]:
    judge = ScriptedJudge(list(replies))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(judge))
    server.daemon_threads = True
    judge.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield judge
    finally:
        server.shutdown()
        server.server_close()
