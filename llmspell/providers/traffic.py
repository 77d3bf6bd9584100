"""Traffic modes (live, record, replay, fault) as httpx transports installed on the global IO runtime.

The mode is process-wide: `LLMSPELL_TRAFFIC` selects it and `LLMSPELL_CASSETTE_DIR` names the
cassette directory. Cassettes are vcrpy YAML files (`<dir>/cassette.yaml`), written only by the
record mode against a real server, with secrets scrubbed. Replay matches requests by content
(method, endpoint, canonical JSON body without volatile fields; never the server's host:port),
never by order, and serves a cassette as many times as a process asks, so repeated and concurrent
runs replay.

Recording keeps the client-measured latency of each exchange in its response entry
(`response.llmspell.latency_ms`), so a replay can show and budget on it. Every exchange in every
mode is judged by `quality.analyse` and kept, while a reader's mark is open, in a process-wide log
(`exchange_mark`, `exchanges_since`) with how it was served: HIT or MISS (replay), LIVE, RECORD.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from llmspell.providers import scrub
from llmspell.providers.base import ReplayMissError
from llmspell.providers.quality import Exchange, Traffic, analyse
from llmspell.runtime.io import get_io
from llmspell.settings import TrafficSettings

log = logging.getLogger("llmspell.providers.traffic")

MODES = ("live", "record", "replay", "fault")
CASSETTE_FILE = "cassette.yaml"
#: Key of llmspell's own fields in a recorded response entry (vcrpy ignores it).
RECORD_META_KEY = "llmspell"
#: Server-reported processing time some OpenAI-compatible servers send (used when the cassette has no timing).
SERVER_TIMING_HEADER = "openai-processing-ms"
#: Exchanges kept in the process-wide log.
MAX_EXCHANGES = 10_000
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


def cassette_path(directory: str | os.PathLike[str], file_name: str = CASSETTE_FILE) -> Path:
    """The cassette file inside a cassette directory (what record writes and replay reads)."""
    return Path(directory) / file_name


# ---------------------------------------------------------------------------- exchange log
_log_lock = threading.Lock()
_exchanges: list[tuple[int, Exchange]] = []
_next_seq = 0
#: Open marks (sequence number -> how many readers hold it). The log keeps only what an open mark
#: can still ask for: a kernel that kept every exchange grew ~30 KB per app run up to MAX_EXCHANGES.
_marks: dict[int, int] = {}


def log_exchange(ex: Exchange) -> None:
    """Keep one judged exchange while some reader holds a mark (oldest dropped beyond MAX_EXCHANGES)."""
    global _next_seq
    with _log_lock:
        if _marks:
            _exchanges.append((_next_seq, ex))
        _next_seq += 1
        if len(_exchanges) > MAX_EXCHANGES:
            del _exchanges[: len(_exchanges) - MAX_EXCHANGES]


def exchange_mark() -> int:
    """Open a mark in the exchange log: `exchanges_since(mark)` returns what came after it, once."""
    with _log_lock:
        _marks[_next_seq] = _marks.get(_next_seq, 0) + 1
        return _next_seq


def exchanges_since(mark: int) -> list[Exchange]:
    """The exchanges logged since `mark`, oldest first; closes the mark and drops what no mark needs."""
    with _log_lock:
        out = [ex for seq, ex in _exchanges if seq >= mark]
        n = _marks.get(mark, 0)
        if n > 1:
            _marks[mark] = n - 1
        else:
            _marks.pop(mark, None)
        oldest = min(_marks, default=_next_seq)
        if _exchanges and _exchanges[0][0] < oldest:
            _exchanges[:] = [(seq, ex) for seq, ex in _exchanges if seq >= oldest]
        return out


def recorded_latency(response: dict[str, Any]) -> tuple[float | None, str]:
    """The latency a cassette entry was recorded with, and where it came from ('' when absent)."""
    meta = response.get(RECORD_META_KEY)
    if isinstance(meta, dict) and isinstance(meta.get("latency_ms"), int | float):
        return float(meta["latency_ms"]), "cassette"
    for k, vs in (response.get("headers") or {}).items():
        if k.lower() == SERVER_TIMING_HEADER:
            v = vs[0] if isinstance(vs, list) and vs else vs
            try:
                return float(v), f"server header {SERVER_TIMING_HEADER}"
            except (TypeError, ValueError):
                break
    return None, ""


def _observe(request: httpx.Request, body: bytes, traffic: Traffic, status: int, content: bytes,
             content_type: str, started: float, error: str = "",
             recorded: tuple[float | None, str] = (None, "")) -> None:
    """Judge and log one exchange; a bug in the judging is logged, never breaks the traffic."""
    try:
        ex = analyse(_endpoint(str(request.url)), traffic.value, body, status, content, content_type,
                     (time.perf_counter() - started) * 1000.0, error)
        ex.recorded_latency_ms, ex.recorded_latency_source = recorded
        log_exchange(ex)
    except Exception:  # noqa: BLE001 - observation must not change what the caller gets
        log.exception("could not judge an exchange with %s", request.url)


@contextmanager
def _failures_observed(request: httpx.Request, body: bytes, traffic: Traffic, started: float,
                       observe: bool = True) -> Iterator[None]:
    """A transport error inside is judged as a failed exchange of this mode (when `observe`) and re-raised."""
    try:
        yield
    except httpx.HTTPError as e:
        if observe:
            _observe(request, body, traffic, 0, b"", "", started, error=f"{type(e).__name__}: {e}")
        raise


def current_mode(env: Mapping[str, str]) -> str:
    """The traffic mode named by LLMSPELL_TRAFFIC in `env` (default live); raises ValueError for an unknown one."""
    mode = (env.get("LLMSPELL_TRAFFIC") or "live").strip().lower()
    if mode not in MODES:
        raise ValueError(f"LLMSPELL_TRAFFIC={mode!r} is not one of {', '.join(MODES)}")
    return mode


DEFAULT_CASSETTE_DIR = os.path.join("cassettes", "default")


def cassette_dir(env: Mapping[str, str]) -> Path:
    """The cassette directory from LLMSPELL_CASSETTE_DIR in `env` (default ./cassettes/default)."""
    return Path(env.get("LLMSPELL_CASSETTE_DIR") or DEFAULT_CASSETTE_DIR)


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
        if not user and isinstance(data.get("prompt"), str):  # text completions: the prompt's end says most
            tail = " ".join(data["prompt"].split())
            tail = tail if len(tail) <= 60 else "…" + tail[-59:]
            return f"{method.upper()} {scrub_url(url)} (model '{model}', prompt ending: \"{tail}\")"
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
        c = cls(path)
        requests, responses = scrub.parse_cassette(path)  # yaml.safe_load only
        for req, resp in zip(requests, responses, strict=False):
            c._items.append(_Interaction(req, resp, match_key(req.method, req.uri, req.body)))
        c.loaded = True
        return c

    def __len__(self) -> int:
        return len(self._items)

    def append(self, request: Any, response: dict[str, Any]) -> None:
        with self._lock:
            key = match_key(request.method, request.uri, request.body)
            self._items.append(_Interaction(*scrub.scrub_interaction(request, response), key))
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
        started = time.perf_counter()
        try:
            cassette = self._store.for_replay()
        except ReplayMissError as e:
            _observe(request, body, Traffic.MISS, 0, b"", "", started, error=str(e))
            raise
        started = time.perf_counter()  # the replayed latency is the serving, not the one-time cassette load
        key = match_key(request.method, str(request.url), body)
        data = cassette.play(key)
        if data is None:
            _observe(request, body, Traffic.MISS, 0, b"", "", started, error="not in the cassette")
            near = cassette.nearest(key)
            raise ReplayMissError(
                f"replay: no recorded response for {describe_request(request.method, str(request.url), body)} "
                f"in {cassette.path} ({len(cassette)} recorded)" + (f"; {near}" if near else ""),
                hint=f"re-record with the record command (LLMSPELL_TRAFFIC=record "
                     f"LLMSPELL_CASSETTE_DIR={cassette.path.parent}, e.g. llmspell run --traffic record ..., "
                     "or python -m harness record <app>)")
        response = _response_from_dict(data, request)
        _observe(request, body, Traffic.HIT, response.status_code, response.content,
                 response.headers.get("content-type", ""), started, recorded=recorded_latency(data))
        return response


class RecordTransport(httpx.AsyncBaseTransport):
    """Sends for real and appends each exchange, with secrets scrubbed, to the cassette."""

    def __init__(self, store: _CassetteStore, inner: httpx.AsyncBaseTransport) -> None:
        self._store = store
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from vcr.request import Request as VcrRequest

        body = await request.aread()
        started = time.perf_counter()
        with _failures_observed(request, body, Traffic.RECORD, started):
            resp = await self._inner.handle_async_request(request)
            raw = httpx.Response(resp.status_code, headers=resp.headers, stream=resp.stream, request=request,
                                 extensions=resp.extensions)
            content = await raw.aread()  # decoded (gzip etc. removed)
            await raw.aclose()
        latency_ms = round((time.perf_counter() - started) * 1000.0, 1)
        req_headers = {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}
        vreq = VcrRequest(request.method, scrub_url(str(request.url)), body.decode("utf-8", "replace"), req_headers)
        resp_headers: dict[str, list[str]] = {}
        for k, v in raw.headers.multi_items():
            if k.lower() in SECRET_HEADERS or k.lower() in _HOP_HEADERS:
                continue
            resp_headers.setdefault(k, []).append(v)
        vresp = {"status": {"code": raw.status_code, "message": raw.reason_phrase},
                 "headers": resp_headers, "body": {"string": content.decode("utf-8", "replace")},
                 RECORD_META_KEY: {"latency_ms": latency_ms}}
        self._store.for_record().append(vreq, vresp)
        _observe(request, body, Traffic.RECORD, raw.status_code, content, raw.headers.get("content-type", ""),
                 started, recorded=(latency_ms, "cassette"))
        return httpx.Response(raw.status_code, headers=[(k, v) for k, vs in resp_headers.items() for v in vs],
                              content=content, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ObservedStream(httpx.AsyncByteStream):
    """Passes a live response body through chunk by chunk (streaming stays live) and judges it at the end."""

    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[bytes], None]) -> None:
        self._inner = inner
        self._done = done
        self._chunks: list[bytes] = []
        self._reported = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._chunks.append(chunk)
            yield chunk
        self._report()

    def _report(self) -> None:
        if not self._reported:
            self._reported = True
            self._done(b"".join(self._chunks))

    async def aclose(self) -> None:
        self._report()
        await self._inner.aclose()


class LiveTransport(httpx.AsyncBaseTransport):
    """Sends for real and judges each model exchange once its body has been read by the caller."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        started = time.perf_counter()
        with _failures_observed(request, body, Traffic.LIVE, started, observe=_is_provider_call(request)):
            resp = await self._inner.handle_async_request(request)
        if not _is_provider_call(request) or not isinstance(resp.stream, httpx.AsyncByteStream):
            return resp  # other HTTP (tools, web pages) is not a model exchange

        def done(raw: bytes) -> None:
            try:
                decoded = httpx.Response(resp.status_code, headers=resp.headers, content=raw).read()
            except httpx.DecodingError:
                decoded = raw
            _observe(request, body, Traffic.LIVE, resp.status_code, decoded, resp.headers.get("content-type", ""),
                     started)

        return httpx.Response(resp.status_code, headers=resp.headers, stream=_ObservedStream(resp.stream, done),
                              request=request, extensions=resp.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _is_provider_call(request: httpx.Request) -> bool:
    """True for a request to a model endpoint (chat, completions, messages, embeddings)."""
    return not _endpoint(str(request.url)).startswith(("http://", "https://"))


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

    def __init__(self, directory: Path, file_name: str = CASSETTE_FILE) -> None:
        self.path = cassette_path(directory, file_name)
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
    file_name: str = CASSETTE_FILE


_installed = TrafficState()
#: False until the first install: the default state (live) still needs its observing transport set up.
_applied = False
_install_lock = threading.Lock()
_store: _CassetteStore | None = None
#: Record stores by cassette file: installing record for the same file again (the harness's judge
#: switches to it per call) appends to this process's recording instead of starting it over.
_record_stores: dict[Path, _CassetteStore] = {}


def installed() -> TrafficState:
    """The traffic state currently installed in this process."""
    return _installed


def _live_transport(base_url: str = "") -> httpx.AsyncBaseTransport:
    """A pooled network transport; its TLS context is the process's one (an http:// base URL's never verifies)."""
    from llmspell.runtime.io import tls_context

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)
    return httpx.AsyncHTTPTransport(limits=limits, verify=tls_context(plain_http=base_url.startswith("http://")))


def install(mode: str = "live", directory: str | os.PathLike[str] | None = None,
            faults: list[str] | tuple[str, ...] | None = None, file_name: str = CASSETTE_FILE) -> TrafficState:
    """Make `mode` the process's traffic mode (no-op when already installed); returns the previous state.

    `file_name` picks the cassette inside the directory (the harness's judge uses `judge.yaml`).
    """
    global _installed, _store, _applied
    if mode not in MODES:
        raise ValueError(f"unknown traffic mode {mode!r} (use one of {', '.join(MODES)})")
    if mode in ("record", "replay") and directory is None:
        directory = DEFAULT_CASSETTE_DIR
    state = TrafficState(mode, str(Path(directory).resolve()) if directory is not None else None,
                         tuple(faults or ()), file_name)
    with _install_lock:
        previous = _installed
        if state == previous and _applied:
            return previous
        store = None
        if state.directory and mode == "record":
            path = cassette_path(state.directory, file_name)
            store = _record_stores.setdefault(path, _CassetteStore(Path(state.directory), file_name))
        elif state.directory:
            store = _CassetteStore(Path(state.directory), file_name)
        _store = store
        factory: Callable[[str], httpx.AsyncBaseTransport] | None
        if mode == "live":
            factory = lambda base: LiveTransport(_live_transport(base))  # noqa: E731
        elif mode == "replay":
            assert store is not None
            factory = lambda _base: ReplayTransport(store)  # noqa: E731
        elif mode == "record":
            assert store is not None
            factory = lambda base: RecordTransport(store, _live_transport(base))  # noqa: E731
        else:
            schedule = list(state.faults or ("429", "500", "timeout"))
            shared = FaultTransport(schedule, ReplayTransport(store) if store else LiveTransport(_live_transport()))
            factory = lambda _base: shared  # noqa: E731
        get_io().set_transport_factory(factory)
        _installed = state
        _applied = True
        log.debug("traffic mode %s (cassettes: %s)", mode, state.directory)
        return previous


def install_settings(settings: TrafficSettings) -> TrafficState:
    """Install the mode a configuration names (`config.settings.traffic`; record/replay default to ./cassettes/default)."""
    install(settings.mode, settings.cassette_dir, list(settings.faults))
    return _installed


@contextmanager
def use(mode: str, directory: str | os.PathLike[str] | None = None,
        faults: list[str] | None = None, file_name: str = CASSETTE_FILE) -> Iterator[TrafficState]:
    """Install a mode for a block and restore the previous one (tests, the harness's judge)."""
    previous = install(mode, directory, faults, file_name)
    try:
        yield _installed
    finally:
        install(previous.mode, previous.directory, list(previous.faults), previous.file_name)
