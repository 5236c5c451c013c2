"""HTTP to an OpenAI-compatible engine: `GET /models`, `POST /chat/completions` (whole or streamed).

Every failure becomes one `EngineError` naming the URL and the cause, with an HTTP status hint for the
API: 502 (unreachable, an HTTP error, a malformed reply) or 504 (too slow). Nothing waits without a
bound: connect and read timeouts per request, a total deadline per request, a bounded wait for one of
`max_concurrency` request slots. Non-streaming requests are retried with exponential backoff after a
connection error, 429 or 5xx (generation requests are idempotent); a stream is never retried, since
its tokens may already have been shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any, Iterator

from assistant.engines.sse import iter_data
from assistant.errors import EngineError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def error_detail(text: str, limit: int = 300) -> str:
    """The message of an error body: OpenAI's {"error": {"message"}}, Ollama's {"error": "..."},
    FastAPI's {"detail": ...}, or the text itself."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        body = None
    if isinstance(body, dict):  # OpenAI, llama.cpp: {"error": {...}}; Ollama: {"error": "..."}; vLLM: {"message": ...}
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err)
    text = " ".join(str(text).split())
    return text[:limit] + ("…" if len(text) > limit else "")


class EngineClient:
    """One engine's base URL, credentials, limits and a pooled httpx client, shared by threads."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Any = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        total_timeout_s: float = 600.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        max_concurrency: int = 8,
        label: str = "engine",
        setting: str = "models.endpoint",  # the settings section named in hints about base_url and api_key
        fields: dict[str, str] | None = None,  # a setting's own name where it is not "<setting>.<field>"
        http: Any = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key  # SecretStr | str | None; None: $OPENAI_API_KEY, read at each request
        self.connect_timeout_s, self.read_timeout_s, self.total_timeout_s = (
            connect_timeout_s,
            read_timeout_s,
            total_timeout_s,
        )
        self.max_retries, self.retry_backoff_s = max_retries, retry_backoff_s
        self.max_concurrency = max_concurrency
        self.label, self.setting, self.fields = label, setting, dict(fields or {})
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._http = http  # an httpx.Client; tests may pass one with a mock transport
        self._http_lock = threading.Lock()

    @classmethod
    def from_settings(cls, endpoint: Any, **kw: Any) -> "EngineClient":
        """From `EndpointSettings` (models.endpoint)."""
        if not endpoint.base_url:
            raise EngineError("no engine configured", hint="set models.endpoint.base_url and models.endpoint.model")
        return cls(
            endpoint.base_url,
            api_key=endpoint.api_key,
            connect_timeout_s=endpoint.connect_timeout_s,
            read_timeout_s=endpoint.read_timeout_s,
            total_timeout_s=endpoint.total_timeout_s,
            max_retries=endpoint.max_retries,
            retry_backoff_s=endpoint.retry_backoff_s,
            max_concurrency=endpoint.max_concurrency,
            **kw,
        )

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def http(self) -> Any:
        if self._http is None:
            import httpx

            with self._http_lock:
                if self._http is None:
                    limits = httpx.Limits(
                        max_connections=self.max_concurrency + 4, max_keepalive_connections=self.max_concurrency
                    )
                    self._http = httpx.Client(limits=limits, follow_redirects=True)
        return self._http

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def root_url(self, path: str) -> str:
        """A path at the server's root rather than under its /v1 (llama.cpp's /lora-adapters)."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        return root + "/" + path.lstrip("/")

    def headers(self) -> dict[str, str]:
        key = _secret(self._api_key) or os.environ.get("OPENAI_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _timeout(self) -> Any:
        import httpx

        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)

    @contextlib.contextmanager
    def _slot(self, url: str) -> Iterator[None]:
        """One of `max_concurrency` request slots, waited for at most total_timeout_s."""
        if not self._slots.acquire(timeout=self.total_timeout_s):
            raise EngineError(
                f"{self.label} {url}: all {self.max_concurrency} request slots stayed busy for "
                f"{self.total_timeout_s:g} s",
                status=504,
                hint=f"raise {self.field('max_concurrency')} if the engine can take more",
            )
        try:
            yield
        finally:
            self._slots.release()

    def field(self, name: str) -> str:
        """The setting a hint names for one of this client's fields."""
        if name in self.fields:
            return self.fields[name]
        if name == "max_concurrency" and self.setting != "models.endpoint":
            name = "concurrency"
        return f"{self.setting}.{name}"

    def transport_error(self, e: Exception, url: str) -> EngineError:
        import httpx

        cause = str(e) or type(e).__name__
        if isinstance(e, httpx.ConnectTimeout):
            return EngineError(
                f"{self.label} {url}: no connection within {self.connect_timeout_s:g} s "
                "(models.endpoint.connect_timeout_s)",
                status=504,
                hint="is the engine running and reachable?",
            )
        if isinstance(e, httpx.TimeoutException):
            return EngineError(
                f"{self.label} {url}: no reply within {self.read_timeout_s:g} s (models.endpoint.read_timeout_s)",
                status=504,
                hint="the engine is overloaded or stuck; raise models.endpoint.read_timeout_s for slow models",
            )
        if isinstance(e, httpx.ConnectError):
            return EngineError(
                f"{self.label} {url}: cannot connect ({cause})",
                hint=f"is the engine running? check {self.field('base_url')}",
            )
        return EngineError(f"{self.label} {url}: {type(e).__name__}: {cause}")

    def http_error(self, status: int, text: str, url: str) -> EngineError:
        detail = error_detail(text)
        hint = None
        if status in (401, 403):
            hint = f"check {self.field('api_key')} (or $OPENAI_API_KEY)"
        elif status == 404:
            hint = (
                f"is {self.field('base_url')} the engine's /v1 URL, and does it serve this model? (`lorag "
                "config --check`)"
            )
        elif "repetition_penalty" in text or "repeat_penalty" in text:
            hint = "this engine does not take that field: set models.endpoint.repetition_penalty_field: none"
        return EngineError(
            f"{self.label} {url}: HTTP {status}: {detail}",
            hint=hint,
            code="engine_timeout" if status == 504 else None,
            status=504 if status == 504 else 502,
        )

    def malformed(self, url: str, what: str, sample: Any) -> EngineError:
        text = sample if isinstance(sample, str) else json.dumps(sample, default=str)
        return EngineError(
            f"{self.label} {url}: malformed reply: {what} (got {text[:160]!r})",
            hint="is base_url an OpenAI-compatible /v1 endpoint?",
        )

    # -- requests -------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, url: str | None = None) -> Any:
        """A non-streaming request, retried after connection errors, 429 and 5xx; the reply's JSON. `url`: a
        whole URL instead of `path` under base_url."""
        import httpx

        url = url or self.url(path)
        deadline = time.monotonic() + self.total_timeout_s
        attempt = 0
        with self._slot(url):
            while True:
                retry_after = None
                try:
                    r = self.http.request(method, url, json=body, headers=self.headers(), timeout=self._timeout())
                except httpx.TransportError as e:
                    err = self.transport_error(e, url)
                    retryable = isinstance(
                        e, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
                    )
                else:
                    if 200 <= r.status_code < 300:
                        try:
                            return r.json()
                        except (json.JSONDecodeError, ValueError):
                            raise self.malformed(url, "not JSON", r.text) from None
                    err = self.http_error(r.status_code, r.text, url)
                    retryable = r.status_code in RETRY_STATUSES
                    retry_after = _retry_after(r.headers.get("retry-after"))
                wait = retry_after if retry_after is not None else self.retry_backoff_s * 2**attempt
                if not retryable or attempt >= self.max_retries or time.monotonic() + wait > deadline:
                    if attempt:
                        err.args = (f"{err.args[0]} (after {attempt} retr{'y' if attempt == 1 else 'ies'})",)
                    raise err
                time.sleep(wait)
                attempt += 1

    def models(self) -> list[dict[str, Any]]:
        """GET /models: the engine's model entries (each has at least an `id`)."""
        url = self.url("models")
        data = self.request("GET", "models")
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
        ):
            raise self.malformed(url, 'GET /models did not return {"data": [{"id": ...}, ...]}', data)
        return entries

    def lora_adapters(self) -> list[dict[str, Any]]:
        """llama.cpp server's GET /lora-adapters: [{"id", "path", "scale"}, ...], the --lora files it loaded."""
        url = self.root_url("lora-adapters")
        data = self.request("GET", "", url=url)
        if not isinstance(data, list) or not all(
            isinstance(e, dict) and isinstance(e.get("id"), int) and isinstance(e.get("path"), str) for e in data
        ):
            raise self.malformed(
                url,
                'GET /lora-adapters did not return [{"id": ..., "path": ...}, ...] '
                "(is this llama.cpp's server? models.endpoint.adapter_api: llamacpp is for it)",
                data,
            )
        return data

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions, whole reply (retried); the reply checked for choices[0].message."""
        url = self.url("chat/completions")
        data = self.request("POST", "chat/completions", {**body, "stream": False})
        try:
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self.malformed(url, "no choices[0].message", data) from None
        if content is not None and not isinstance(content, str):
            raise self.malformed(url, "message.content is not text", data)
        return data

    def chat_stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST /chat/completions with `stream: true`: each chunk as a dict, in order. Raises EngineError
        for an error status, an error event, a chunk that is not a JSON object, or a stream that ends
        before [DONE] and before any finish_reason."""
        import httpx

        url = self.url("chat/completions")
        deadline = time.monotonic() + self.total_timeout_s
        with self._slot(url):
            try:
                with self.http.stream(
                    "POST", url, json={**body, "stream": True}, headers=self.headers(), timeout=self._timeout()
                ) as r:
                    if r.status_code != 200:
                        r.read()
                        raise self.http_error(r.status_code, r.text, url)
                    finished = False
                    for data in iter_data(_until(r.iter_lines(), deadline, self, url)):
                        if data.strip() == "[DONE]":
                            return
                        try:
                            chunk = json.loads(data)
                        except (json.JSONDecodeError, ValueError):
                            raise self.malformed(url, "a stream chunk is not JSON", data) from None
                        if not isinstance(chunk, dict):
                            raise self.malformed(url, "a stream chunk is not a JSON object", data)
                        if "error" in chunk or chunk.get("object") == "error":
                            raise EngineError(f"{self.label} {url}: error in the stream: {error_detail(data)}")
                        choices = chunk.get("choices")
                        if choices is not None and not isinstance(choices, list):
                            raise self.malformed(url, "choices is not a list", chunk)
                        finished = finished or any(
                            isinstance(c, dict) and c.get("finish_reason") for c in choices or []
                        )
                        yield chunk
                    if not finished:
                        raise EngineError(
                            f"{self.label} {url}: the stream ended before the answer finished "
                            "(no finish_reason, no [DONE])"
                        )
            except httpx.TransportError as e:
                raise self.transport_error(e, url) from e

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def _until(lines: Iterator[str], deadline: float, client: EngineClient, url: str) -> Iterator[str]:
    """The lines, checking the request's total deadline at each one (keep-alives included)."""
    for line in lines:
        if time.monotonic() > deadline:
            raise EngineError(
                f"{client.label} {url}: the answer took longer than {client.total_timeout_s:g} s "
                "(models.endpoint.total_timeout_s)",
                status=504,
            )
        yield line


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None
