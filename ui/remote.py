"""The `lorag` CLI talking to a running `lorag ui` app of the same data folder.

The embedded store belongs to one process. While the app runs, it holds the store and leaves a note,
`<data_dir>/app.json` (its URL and process id); a CLI command that needs the store finds the note, checks
that the process lives and answers `/healthz`, and then does its work through the app's API with the
configured credentials (ui.username/ui.password) — `docs list`, `docs rm`, `ingest`, `ask`, `adapters
list/show/promote`, and `synth`, `train`, `eval` as the app's jobs (with the options the app offers),
followed until they end. Only when no app answers is the lock reported. `ingest` has the app read the files
where they are: the note (0600) holds a token only the app's own user can read, which the app asks for
before it reads a path it is given; without one the files are uploaded.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from assistant.errors import LoragError, StoreLockedError, UnknownDomainError

NOTE = "app.json"
TOKEN_HEADER = "X-Lorag-Local-Token"  # the app note's token, sent by the CLI of the app's own user


def note_path(settings: Any) -> Path:
    return Path(settings.paths.data_dir) / NOTE


def write_note(settings: Any, url: str, token: str | None = None) -> Path:
    """Written by `lorag ui` once it listens; removed when it stops. Readable by its owner only (0600): `token`
    lets a CLI command of the same user have the app read local files by their paths (POST /v1/documents/local)."""
    from ui.settings_fingerprint import settings_digests

    note = {"url": url, "pid": os.getpid(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    note["settings"] = settings_digests(settings)  # fingerprints only: a CLI names the settings it differs in
    if token:
        note["token"] = token
    return write_private_json(note_path(settings), note)


def write_private_json(path: Path, data: dict[str, Any]) -> Path:
    """`data` as JSON at `path`, readable by this user only (0600), replaced in one step (a note that holds a
    token: the app's, the keep-warm worker's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
    return path


def remove_note(settings: Any) -> None:
    path = note_path(settings)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def find_app(settings: Any) -> "AppClient | None":
    """The running app that holds this data folder's embedded store, if one answers; None otherwise (a
    Qdrant server store needs no app: every process opens it)."""
    if settings.qdrant.url:
        return None
    try:
        note = json.loads(note_path(settings).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or not _alive(note.get("pid")) or not note.get("url"):
        return None
    u = settings.ui
    password = u.password.get_secret_value() if u.password is not None else None
    client = AppClient(str(note["url"]), (u.username, password) if u.username and password else None)
    client.token = str(note["token"]) if note.get("token") else None
    client.settings_digests = note.get("settings")
    return client if client.healthy() else None


def app_error(err: Any, fallback: str) -> LoragError:
    """The app's error object (OpenAI's, with lorag's `hint`) as the error the command raises without the app: its
    message without the hint the API appends for other clients, the hint on its own line, an unknown domain as
    UnknownDomainError. `fallback`: the message when the body holds no error object."""
    if not isinstance(err, dict) or not err.get("message"):
        return LoragError(fallback)
    message, hint = str(err["message"]), err.get("hint") if isinstance(err.get("hint"), str) else None
    if hint:
        message = message.removesuffix(f" — {hint}")
    cls = UnknownDomainError if err.get("code") == UnknownDomainError.code else LoragError
    return cls(message, hint=hint)


def job_error(kind: str, job_id: str, job: dict[str, Any]) -> LoragError:
    """A job of the app that did not finish, as the CLI reports it: a failed one as the error it raised, as the
    command run without the app says it (its message, its hint on its own line); else (interrupted) what became
    of it."""
    error, hint = job.get("error"), job.get("hint")
    if job.get("status") == "failed" and error:
        return LoragError(str(error).removesuffix(f" — {hint}") if hint else str(error), hint=hint or None)
    return LoragError(f"the app's {kind} job {job_id} {job.get('status')}: {error or ''}".strip())


class _Reply:
    def __init__(self, status: int, data: bytes):
        self.status_code, self.data = status, data

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.data)


class AppClient:
    """The few API calls the CLI makes, with bounded waits. Over the standard library's http.client (its import
    costs milliseconds, httpx's most of a second: this is on the path of every `lorag ask` through a worker);
    httpx only for the multipart upload."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.worker_pid: int | None = None  # set when this is the keep-warm worker (ui/warm.py), not a `lorag ui` app
        self.token: str | None = None  # the app note's token: the app then reads local files by path
        self.settings_digests: dict[str, str] | None = None  # the app's settings, fingerprinted (its note)

    def _client(self, timeout: float | None = None) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, auth=self.auth, timeout=timeout or self.timeout)

    def _connect(self, timeout: float | None) -> Any:
        import http.client
        from urllib.parse import urlsplit

        u = urlsplit(self.url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        return cls(u.hostname or "127.0.0.1", u.port, timeout=timeout or self.timeout)

    def _headers(self, body: bytes | None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if body is not None:
            h["Content-Type"] = "application/json"
        if self.token:
            h[TOKEN_HEADER] = self.token
        if self.auth:
            import base64

            h["Authorization"] = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return h

    def _open(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        """(connection, response with its headers read); the caller reads the body and closes the connection."""
        import http.client

        data = json.dumps(body).encode() if body is not None else None
        conn = self._connect(timeout)
        try:
            conn.request(method, path, body=data, headers=self._headers(data))
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise LoragError(f"the lorag app at {self.url} did not answer: {e or type(e).__name__}") from None

    def _send(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> _Reply:
        import http.client

        conn, r = self._open(method, path, body, timeout)
        try:
            return _Reply(r.status, r.read())
        except (OSError, http.client.HTTPException) as e:
            raise LoragError(f"the lorag app at {self.url} did not answer: {e or type(e).__name__}") from None
        finally:
            conn.close()

    def healthy(self, path: str = "/healthz", timeout: float = 2.0) -> bool:
        try:
            return self._send("GET", path, timeout=timeout).status_code == 200
        except LoragError:
            return False

    def _check(self, r: Any) -> Any:
        if r.status_code == 401:
            raise StoreLockedError(
                f"the lorag app at {self.url} holds the store and refused this command's credentials",
                hint="set ui.username and ui.password (or LORAG_UI__USERNAME / LORAG_UI__PASSWORD) as the app has them",
            )
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            err = (body or {}).get("error") if isinstance(body, dict) else None
            raise app_error(err, r.text[:300] or f"HTTP {r.status_code}")
        return body

    def get(self, path: str, **params: Any) -> Any:
        from urllib.parse import urlencode

        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self._check(self._send("GET", path + (f"?{query}" if query else "")))

    def post(self, path: str, body: Any = None, timeout: float | None = None) -> Any:
        return self._check(self._send("POST", path, body if body is not None else {}, timeout))

    # -- the commands' calls ----------------------------------------------------------------------
    def documents(self, domain: str | None) -> list[dict[str, Any]]:
        return self.get("/v1/documents", domain=domain)["data"]

    def remove_documents(self, domain: str, names: list[str], all_docs: bool = False) -> list[dict[str, Any]]:
        return self.post("/v1/documents/delete", {"domain": domain, "documents": names, "all": all_docs})["removed"]

    def upload(self, domain: str, files: list[tuple[str, Path]]) -> str:
        handles = [f.open("rb") for _, f in files]
        try:
            parts = [("files", (name, fh)) for (name, _), fh in zip(files, handles)]
            with self._client(600.0) as c:
                return self._check(c.post("/v1/documents", data={"domain": domain}, files=parts))["job"]
        finally:
            for fh in handles:
                fh.close()

    def ingest_paths(self, domain: str, paths: list[Path], sync: bool = False) -> str:
        """Have the app ingest local files and folders where they are (as `lorag ingest` run alone would: the
        same document ids, `--sync` included); needs the app note's token. The ingest job's id."""
        body = {"domain": domain, "paths": [str(Path(p).resolve()) for p in paths], "sync": sync}
        return self.post("/v1/documents/local", body)["job"]

    def start_job(self, kind: str, **params: Any) -> str:
        return self.post("/v1/jobs", {"kind": kind, **{k: v for k, v in params.items() if v is not None}})["job"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, on_progress: Any = None, poll_s: float = 0.5) -> dict[str, Any]:
        while True:
            state = self.job(job_id)
            if on_progress is not None:
                on_progress(state)
            if state.get("status") != "running":
                return state
            time.sleep(poll_s)

    def adapters(self) -> list[dict[str, Any]]:
        return self.get("/v1/adapters")["data"]

    def adapter(self, name: str) -> dict[str, Any]:
        return self.get(f"/v1/adapters/{name}")

    def promote(self, name: str, force: bool) -> str:
        return self.post(f"/v1/adapters/{name}/promote", {"force": force})["message"]

    def ask(self, question: str, domain: str | None, adapter: str, top_k: int | None) -> Iterator[Any]:
        """Text pieces as they stream, then the answer as `lorag ask --json` prints it."""
        body: dict[str, Any] = {"model": adapter, "messages": [{"role": "user", "content": question}], "stream": True}
        if domain:
            body["domain"] = domain
        if top_k:
            body["top_k"] = top_k
        import http.client

        text, last = "", None
        conn, r = self._open("POST", "/v1/chat/completions", body, timeout=600.0)
        try:
            if r.status >= 400:
                self._check(_Reply(r.status, r.read()))
            for raw in r:  # server-sent events: one `data: ...` line each, blank lines between
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise app_error(chunk["error"], "the app failed while answering")
                choice = (chunk.get("choices") or [{}])[0]
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    text += piece
                    yield piece
                if choice.get("finish_reason"):
                    last = chunk
        except (OSError, http.client.HTTPException) as e:
            raise LoragError(f"the lorag app at {self.url} stopped answering: {e or type(e).__name__}") from None
        finally:
            conn.close()
        if last is None:
            raise LoragError(f"the app at {self.url} ended the answer without its final chunk")
        extra = last.get("lorag", {})
        usage = last.get("usage") or {}
        yield {
            "question": extra.get("question", question),
            "answer": text.strip(),
            "citations": last.get("citations", []),
            "passages": extra.get("passages", []),
            "domains": extra.get("domains", []),
            "relevant": extra.get("relevant", True),
            "adapter": last.get("model") if extra.get("relevant", True) else None,
            "route": extra.get("route", {}),
            "tokens": usage.get("completion_tokens", 0),
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "finish_reason": (last.get("choices") or [{}])[0].get("finish_reason"),
            "search_query": extra.get("search_query", question),
            "similarity": extra.get("similarity"),  # the best passage's cosine, against retrieval.min_relevance
            "timings_ms": extra.get("timings_ms", {}),
            "answered_by_app": self.url,
        }
