"""A recording HTTP proxy in front of a real engine: every request is forwarded as is and its JSON body kept,
the reply streamed back chunk by chunk (SSE included), so a test can see what lorag sent to llama.cpp.

    proxy = RecordingProxy("http://127.0.0.1:8080").start()   # lorag's base_url: proxy.url + "/v1"
    proxy.bodies("/v1/chat/completions")                       # the JSON bodies sent there, in order
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, Any]] = []  # (path, parsed JSON body or None)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                import httpx

                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else None
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with proxy._lock:
                    proxy.requests.append((self.path, body))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                with httpx.stream(
                    self.command,
                    proxy.upstream + self.path,
                    content=raw,
                    headers=headers,
                    timeout=httpx.Timeout(300, connect=10),
                ) as r:
                    self.send_response(r.status_code)
                    for k, v in r.headers.items():
                        if k.lower() not in HOP_BY_HOP:
                            self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for part in r.iter_bytes():
                        if part:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [b for p, b in self.requests if p.split("?")[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
