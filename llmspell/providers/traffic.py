"""Traffic modes (live, record, replay, fault) as httpx transports installed on the global IO runtime.

The mode is process-wide: `LLMSPELL_TRAFFIC` selects it and `LLMSPELL_CASSETTE_DIR` names the
cassette directory. Cassettes are vcrpy YAML files (`<dir>/cassette.yaml`), written only by the
record mode against a real server, with secrets scrubbed. Replay matches requests by content
(method, endpoint, canonical JSON body without volatile fields), never by order, and serves a
cassette as many times as a process asks, so repeated and concurrent runs replay.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from llmspell.providers.base import ReplayMissError
from llmspell.runtime.io import get_io

log = logging.getLogger("llmspell.providers.traffic")

MODES = ("live", "record", "replay", "fault")
CASSETTE_FILE = "cassette.yaml"
#: Request/response headers never written to a cassette.
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie", "x-goog-api-key",
    "openai-organization", "openai-project", "anthropic-organization-id", "x-request-id", "request-id",
    "cf-ray", "x-amz-cf-id",
})
#: Query keys removed before recording and matching.
SECRET_QUERY_KEYS = frozenset({"key", "api_key", "apikey", "api-key", "access_token", "token", "sig", "signature"})
#: Body fields that change between runs and are ignored by the replay matcher.
VOLATILE_BODY_KEYS = frozenset({"user", "stream_options", "metadata", "request_id", "store"})
#: Endpoint suffixes recognised so that the host and base path do not matter for matching.
_ENDPOINT_SUFFIXES = ("/chat/completions", "/embeddings", "/v1/messages", "/api/chat", "/api/embed",
                      "/api/embeddings", "/completions")
#: Response headers dropped when recording (the body is stored decoded).
_HOP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "date",
                          "keep-alive", "server"})


def cassette_path(directory: str | os.PathLike[str]) -> Path:
    """The cassette file inside a cassette directory (what record writes and replay reads)."""
    return Path(directory) / CASSETTE_FILE


def current_mode(env: Mapping[str, str] | None = None) -> str:
    """The traffic mode named by LLMSPELL_TRAFFIC (default live); raises ValueError for an unknown one."""
    env = os.environ if env is None else env
    mode = (env.get("LLMSPELL_TRAFFIC") or "live").strip().lower()
    if mode not in MODES:
        raise ValueError(f"LLMSPELL_TRAFFIC={mode!r} is not one of {', '.join(MODES)}")
    return mode


def cassette_dir(env: Mapping[str, str] | None = None) -> Path:
    """The cassette directory from LLMSPELL_CASSETTE_DIR (default ./cassettes/default)."""
    env = os.environ if env is None else env
    return Path(env.get("LLMSPELL_CASSETTE_DIR") or os.path.join("cassettes", "default"))


# ---------------------------------------------------------------------------- matching
def scrub_url(url: str) -> str:
    """The URL without secret query keys."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SECRET_QUERY_KEYS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))


def _endpoint(url: str) -> str:
    """Provider endpoints without host and base path (routing may differ); other URLs keep their host."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if path.endswith(suffix):
            path = suffix
            break
    else:
        path = f"{parts.scheme}://{parts.netloc}{path}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if k.lower() not in SECRET_QUERY_KEYS)
    return path + ("?" + urlencode(query) if query else "")


#: Generated default agent names (`agent_<8 hex>`, §2.2) differ per run; they match any such name.
_GENERATED_NAME = re.compile(r"\bagent_[0-9a-f]{8}\b")


def canonical_body(body: bytes | str | None) -> str:
    """Sorted-key JSON without volatile fields or generated agent names (raw text for non-JSON bodies)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in VOLATILE_BODY_KEYS}
    return _GENERATED_NAME.sub("agent_*", json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def match_key(method: str, url: str, body: bytes | str | None) -> tuple[str, str, str]:
    """What replay matches on: method, endpoint (host and base path ignored), canonical body."""
    return (method.upper(), _endpoint(url), canonical_body(body))


def describe_request(method: str, url: str, body: bytes | str | None) -> str:
    """`POST <url> (model 'm', user: "first words…")` for error messages."""
    model, user = "", ""
    try:
        data = json.loads(body or b"{}")
        model = str(data.get("model", ""))
        for m in data.get("messages") or []:
            if isinstance(m, dict) and m.get("role") == "user":
                c = m.get("content")
                user = c if isinstance(c, str) else json.dumps(c)
                break
        if not user and "input" in data:
            user = json.dumps(data["input"])[:60]
    except (ValueError, AttributeError, TypeError):
        pass
    user = " ".join(user.split())
    user = user if len(user) <= 60 else user[:59] + "…"
    return f"{method.upper()} {scrub_url(url)} (model '{model}', user: \"{user}\")"


# ---------------------------------------------------------------------------- cassette
@dataclass
class _Interaction:
    request: Any  # vcr.request.Request
    response: dict[str, Any]
    key: tuple[str, str, str]
    plays: int = 0


class Cassette:
    """A vcrpy-format cassette held in memory; thread-safe; saved after every recorded interaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: list[_Interaction] = []
        self._lock = threading.Lock()
        self.loaded = False

    @classmethod
    def load(cls, path: Path) -> Cassette:
        from vcr.serialize import deserialize
        from vcr.serializers import yamlserializer

        c = cls(path)
        result = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
        requests, responses = result[0], result[1]
        for req, resp in zip(requests, responses, strict=False):
            c._items.append(_Interaction(req, resp, match_key(req.method, req.uri, req.body)))
        c.loaded = True
        return c

    def __len__(self) -> int:
        return len(self._items)

    def append(self, request: Any, response: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(_Interaction(request, response, match_key(request.method, request.uri, request.body)))
            self._save_locked()

    def _save_locked(self) -> None:
        from vcr.serialize import serialize
        from vcr.serializers import yamlserializer

        text = serialize({"requests": [i.request for i in self._items],
                          "responses": [i.response for i in self._items]}, yamlserializer)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)

    def nearest(self, key: tuple[str, str, str]) -> str | None:
        """Where the closest recorded request of the same endpoint first differs from `key` (for misses)."""
        best: tuple[int, _Interaction] | None = None
        for it in self._items:
            if it.key[:2] != key[:2]:
                continue
            a, b = it.key[2], key[2]
            n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            if best is None or n > best[0]:
                best = (n, it)
        if best is None:
            return None
        n, it = best
        theirs, ours = it.key[2][max(0, n - 30): n + 50], key[2][max(0, n - 30): n + 50]
        return f"the nearest recording differs at body offset {n}: recorded …{theirs}… vs sent …{ours}…"

    def play(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        """The least-played recorded response for this request (so repeats cycle in recorded order)."""
        with self._lock:
            best: _Interaction | None = None
            for it in self._items:
                if it.key == key and (best is None or it.plays < best.plays):
                    best = it
            if best is None:
                return None
            best.plays += 1
            return best.response


# ---------------------------------------------------------------------------- transports
def _response_from_dict(data: dict[str, Any], request: httpx.Request) -> httpx.Response:
    headers = [(k, v) for k, vs in (data.get("headers") or {}).items() for v in (vs if isinstance(vs, list) else [vs])]
    body = (data.get("body") or {}).get("string") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return httpx.Response(int(data["status"]["code"]), headers=headers, content=body, request=request)


class ReplayTransport(httpx.AsyncBaseTransport):
    """Serves responses from a cassette; a request with no recorded match raises ReplayMissError."""

    def __init__(self, store: _CassetteStore) -> None:
        self._store = store

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        cassette = self._store.for_replay()
        key = match_key(request.method, str(request.url), body)
        data = cassette.play(key)
        if data is None:
            near = cassette.nearest(key)
            raise ReplayMissError(
                f"replay: no recorded response for {describe_request(request.method, str(request.url), body)} "
                f"in {cassette.path} ({len(cassette)} recorded)" + (f"; {near}" if near else ""),
                hint=f"re-record with the record command (LLMSPELL_TRAFFIC=record "
                     f"LLMSPELL_CASSETTE_DIR={cassette.path.parent}, e.g. llmspell run --traffic record ..., "
                     "or python -m harness record <app>)")
        return _response_from_dict(data, request)


class RecordTransport(httpx.AsyncBaseTransport):
    """Sends for real and appends each exchange, with secrets scrubbed, to the cassette."""

    def __init__(self, store: _CassetteStore, inner: httpx.AsyncBaseTransport) -> None:
        self._store = store
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from vcr.request import Request as VcrRequest

        body = await request.aread()
        resp = await self._inner.handle_async_request(request)
        raw = httpx.Response(resp.status_code, headers=resp.headers, stream=resp.stream, request=request,
                             extensions=resp.extensions)
        content = await raw.aread()  # decoded (gzip etc. removed)
        await raw.aclose()
        req_headers = {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}
        vreq = VcrRequest(request.method, scrub_url(str(request.url)), body.decode("utf-8", "replace"), req_headers)
        resp_headers: dict[str, list[str]] = {}
        for k, v in raw.headers.multi_items():
            if k.lower() in SECRET_HEADERS or k.lower() in _HOP_HEADERS:
                continue
            resp_headers.setdefault(k, []).append(v)
        vresp = {"status": {"code": raw.status_code, "message": raw.reason_phrase},
                 "headers": resp_headers, "body": {"string": content.decode("utf-8", "replace")}}
        self._store.for_record().append(vreq, vresp)
        return httpx.Response(raw.status_code, headers=[(k, v) for k, vs in resp_headers.items() for v in vs],
                              content=content, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class FaultTransport(httpx.AsyncBaseTransport):
    """Injects the faults named in LLMSPELL_FAULTS (e.g. "429,500,timeout") on successive requests.

    Tokens: an HTTP status (`429`, `429@2` with Retry-After 2 s, `500`, `503`...), `timeout` (read
    timeout), `connect` (connect error), `malformed` (200 with a non-JSON body). After the schedule
    is used up, requests go to `inner` (replay when a cassette directory is set, else live).
    """

    def __init__(self, faults: list[str], inner: httpx.AsyncBaseTransport) -> None:
        self._faults = list(faults)
        self._inner = inner
        self._lock = threading.Lock()
        self.injected = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            if fault is not None:
                self.injected += 1
        if fault is None:
            return await self._inner.handle_async_request(request)
        if fault == "timeout":
            raise httpx.ReadTimeout("injected read timeout", request=request)
        if fault == "connect":
            raise httpx.ConnectError("injected connection error", request=request)
        if fault == "malformed":
            return httpx.Response(200, content=b"{not json", request=request)
        status, _, after = fault.partition("@")
        headers = {"retry-after": after} if after else {}
        body = {"error": {"message": f"injected fault {status}", "type": "injected", "code": None}}
        return httpx.Response(int(status), json=body, headers=headers, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CassetteStore:
    """The one cassette of this process for a directory: loaded lazily for replay, created fresh for record."""

    def __init__(self, directory: Path) -> None:
        self.path = cassette_path(directory)
        self._replay: Cassette | None = None
        self._record: Cassette | None = None
        self._lock = threading.Lock()

    def for_replay(self) -> Cassette:
        with self._lock:
            if self._replay is None:
                if not self.path.is_file():
                    raise ReplayMissError(
                        f"replay: no cassette at {self.path}",
                        hint=f"record it first: LLMSPELL_TRAFFIC=record LLMSPELL_CASSETTE_DIR={self.path.parent} "
                             "(e.g. llmspell run --traffic record ..., or python -m harness record <app>)")
                self._replay = Cassette.load(self.path)
            return self._replay

    def for_record(self) -> Cassette:
        with self._lock:
            if self._record is None:
                self._record = Cassette(self.path)  # a fresh recording replaces the old cassette
            return self._record


# ---------------------------------------------------------------------------- installation
@dataclass(frozen=True)
class TrafficState:
    """What is installed on the IO runtime."""

    mode: str = "live"
    directory: str | None = None
    faults: tuple[str, ...] = ()


_installed = TrafficState()
_install_lock = threading.Lock()
_store: _CassetteStore | None = None


def installed() -> TrafficState:
    """The traffic state currently installed in this process."""
    return _installed


def _live_transport() -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)
    return httpx.AsyncHTTPTransport(limits=limits)


def install(mode: str = "live", directory: str | os.PathLike[str] | None = None,
            faults: list[str] | tuple[str, ...] | None = None) -> TrafficState:
    """Make `mode` the process's traffic mode (no-op when already installed); returns the previous state."""
    global _installed, _store
    if mode not in MODES:
        raise ValueError(f"unknown traffic mode {mode!r} (use one of {', '.join(MODES)})")
    if mode in ("record", "replay") and directory is None:
        directory = cassette_dir()
    state = TrafficState(mode, str(Path(directory).resolve()) if directory is not None else None,
                         tuple(faults or ()))
    with _install_lock:
        previous = _installed
        if state == previous:
            return previous
        store = _CassetteStore(Path(state.directory)) if state.directory else None
        _store = store
        factory: Callable[[str], httpx.AsyncBaseTransport] | None
        if mode == "live":
            factory = None
        elif mode == "replay":
            assert store is not None
            factory = lambda _base: ReplayTransport(store)  # noqa: E731
        elif mode == "record":
            assert store is not None
            factory = lambda _base: RecordTransport(store, _live_transport())  # noqa: E731
        else:
            schedule = list(state.faults or ("429", "500", "timeout"))
            shared = FaultTransport(schedule, ReplayTransport(store) if store else _live_transport())
            factory = lambda _base: shared  # noqa: E731
        get_io().set_transport_factory(factory)
        _installed = state
        log.debug("traffic mode %s (cassettes: %s)", mode, state.directory)
        return previous


def install_from_env(env: Mapping[str, str] | None = None) -> TrafficState:
    """Install the mode named by LLMSPELL_TRAFFIC / LLMSPELL_CASSETTE_DIR / LLMSPELL_FAULTS."""
    env = os.environ if env is None else env
    mode = current_mode(env)
    directory = env.get("LLMSPELL_CASSETTE_DIR") or None
    if mode in ("record", "replay") and directory is None:
        directory = str(cassette_dir(env))
    faults = [f.strip() for f in (env.get("LLMSPELL_FAULTS") or "").split(",") if f.strip()]
    install(mode, directory, faults)
    return _installed


@contextmanager
def use(mode: str, directory: str | os.PathLike[str] | None = None,
        faults: list[str] | None = None) -> Iterator[TrafficState]:
    """Install a mode for a block and restore the previous one (tests)."""
    previous = install(mode, directory, faults)
    try:
        yield _installed
    finally:
        install(previous.mode, previous.directory, list(previous.faults))
