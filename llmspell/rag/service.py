"""The RAG service behind the `RAG` global (lua-api.md §7): options, ingest, search, stats, scopes.

Plain Python in and out, so the Lua global only converts values and shapes the result tables.
Errors are `RagError` with a message in the spec's `<what is wrong> (<what to do>)` form; the
global prefixes the function name. Nothing heavy happens at construction: the store opens and the
embedder loads on first use, so runtime start stays fast.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmspell.rag.chunking import DEFAULT_STRATEGY, Chunk, ChunkSpec, chunk_stream
from llmspell.runtime.errors import ServiceError
from llmspell.settings import settings_of

if TYPE_CHECKING:  # numpy-backed modules load on first use, keeping runtime start fast
    from llmspell.rag.embeddings import Embedder, LocalEmbedder, RemoteEmbedder
    from llmspell.rag.store import ChunkRow, VectorStore

log = logging.getLogger("llmspell.rag")

_EMBED_BATCH = 64
#: Chunks of short documents gathered for one embedding call and one transaction (RAG.ingest with a list).
_GROUP_CHUNKS = 256
_SCOPES = ("global", "session", "tenant")


@dataclass(slots=True)
class _Doc:
    """A short document waiting in a group: its id, metadata, expiry and all its chunks."""

    doc_id: str
    metadata: dict[str, Any]
    expires: float | None
    chunks: list[Chunk]


@dataclass(slots=True)
class _IngestRun:
    """Running totals of one RAG.ingest call."""

    projected: int = 0  # vectors stored once everything so far is written (for max_vectors)
    chunks: int = 0
    tokens: int = 0
    skipped: int = 0
    ids: list[str] = field(default_factory=list)

    def done(self, doc_id: str, chunks: int, tokens: int) -> None:
        self.projected += chunks
        self.tokens += tokens
        if chunks == 0:
            self.skipped += 1
            return
        self.chunks += chunks
        self.ids.append(doc_id)


class RagError(ServiceError):
    """Misuse or failed work in a RAG call; the message has no function prefix."""

    is_rag_error = True  # the Lua global (layer 2) recognises it without importing this package


@dataclass(slots=True)
class Defaults:
    """Per-runtime defaults: from `[rag]`, changed by `RAG.configure`."""

    collection: str = "default"
    chunk_size: int = 256
    chunk_overlap: int = 32
    strategy: str = DEFAULT_STRATEGY
    limit: int = 10
    threshold: float | None = None
    requested: dict[str, Any] = field(default_factory=dict)


def _int_opt(opts: Mapping[str, Any], key: str, default: int) -> int:
    v = opts.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not v.is_integer()):
        raise RagError(f"{key} must be an integer, got {v!r}")
    return int(v)


def _str_opt(opts: Mapping[str, Any], key: str, default: str) -> str:
    v = opts.get(key, default)
    if not isinstance(v, str) or not v:
        raise RagError(f"{key} must be a non-empty string, got {v!r}")
    return v


def namespace_of(opts: Mapping[str, Any]) -> str:
    """`global`, `session:<id>` or `tenant:<id>` from `scope`, `scope_id` and `tenant_id` options."""
    tenant = opts.get("tenant_id")
    scope = opts.get("scope")
    scope_id = opts.get("scope_id")
    if tenant is not None and scope in (None, "tenant"):
        return f"tenant:{tenant}"
    if scope is None:
        if scope_id is not None:
            raise RagError("scope_id needs scope ('session' or 'tenant'), e.g. {scope = 'session', scope_id = 'abc'}")
        return "global"
    if not isinstance(scope, str):
        raise RagError(f"scope must be a string ('global', 'session' or 'tenant'), got {scope!r}")
    if ":" in scope:
        kind, _, ident = scope.partition(":")
        if kind in ("session", "tenant") and ident:
            return f"{kind}:{ident}"
    if scope == "global":
        return "global"
    if scope not in _SCOPES:
        raise RagError(f"unknown scope '{scope}' (use 'global', 'session' or 'tenant')")
    if scope_id is None or scope_id == "":
        raise RagError(f"scope '{scope}' needs scope_id (e.g. {{scope = '{scope}', scope_id = 'abc'}})")
    return f"{scope}:{scope_id}"


def _doc_id(content: str) -> str:
    """A stable id for a document without one: re-ingesting the same text replaces it, never duplicates."""
    return "doc_" + hashlib.sha256(content.encode("utf-8", "replace")).hexdigest()[:20]


class RagService:
    """Ingest, search and manage vectors for one runtime (the object `build_rag` returns)."""

    def __init__(self, config: Any, services: Any = None) -> None:
        self.config = config
        self.services = services
        rag = settings_of(config).rag
        self.defaults = Defaults(
            collection=rag.default_collection, chunk_size=rag.chunk_size, chunk_overlap=rag.chunk_overlap,
            strategy=rag.chunking_strategy or DEFAULT_STRATEGY, limit=rag.search_limit, threshold=rag.search_threshold)
        self.max_vectors = rag.max_vectors
        self._embedder: LocalEmbedder | RemoteEmbedder | None = None
        self._store: VectorStore | None = None
        self._warned_requested = False
        #: Called between embedding batches on long ingests; the global sets it to the runtime's interrupt check.
        self.check: Callable[[], None] = lambda: None
        #: Runs a coroutine for remote embeddings (the global sets the runtime's interruptible block_on).
        self.runner: Callable[[Any], Any] | None = None

    # ------------------------------------------------------------------ parts, lazily
    @property
    def embedder(self) -> LocalEmbedder | RemoteEmbedder:
        if self._embedder is None:
            from llmspell.rag.embeddings import EmbeddingError, RemoteEmbedder, make_embedder

            try:
                emb = make_embedder(self.config, getattr(self.services, "providers", None))
            except EmbeddingError as e:
                raise RagError(str(e)) from None
            if isinstance(emb, RemoteEmbedder):
                emb.runner = self.runner
            self._embedder = emb
        return self._embedder

    @property
    def model_id(self) -> str:
        e = self.embedder
        return e.model if e.provider == "local" else f"{e.provider}/{e.model}"

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            from llmspell.rag.index import AnnConfig
            from llmspell.rag.store import VectorStore

            db, index_dir = self._locations()
            rag = settings_of(self.config).rag
            ann = AnnConfig(backend=rag.vector_backend, ann_threshold=rag.ann_threshold, m=rag.hnsw_m,
                            ef_construction=rag.hnsw_ef_construction, ef_search=rag.hnsw_ef_search)
            self._store = VectorStore(db, index_dir, ann)
        return self._store

    def _locations(self) -> tuple[Path | None, Path | None]:
        """Where vectors live: `[rag] persistence_path`, else the state database, else memory (`settings.rag`)."""
        rag = settings_of(self.config).rag
        return rag.database, rag.index_dir

    def _run(self, fn: Callable[[], Any]) -> Any:
        from llmspell.rag.embeddings import EmbeddingError
        from llmspell.rag.store import StoreError

        try:
            return fn()
        except (StoreError, EmbeddingError) as e:
            raise RagError(str(e)) from None
        except ValueError as e:
            raise RagError(str(e)) from None

    # ------------------------------------------------------------------ ingest
    def ingest(self, docs: Any, opts: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Chunk, embed and store documents (a string, a document table or an array of them)."""
        opts = dict(opts or {})
        documents = self._documents(docs)
        collection = _str_opt(opts, "collection", self.defaults.collection)
        spec = self._chunk_spec(opts)
        ns = namespace_of(opts)
        return self._run(lambda: self._ingest(documents, collection, spec, ns))

    def _documents(self, docs: Any) -> list[dict[str, Any]]:
        if isinstance(docs, str | bytes):
            docs = [{"content": docs}]
        elif isinstance(docs, Mapping):
            docs = [docs]
        elif not isinstance(docs, list):
            raise RagError(f"docs must be a string, a document table or an array of them, got {type(docs).__name__}")
        out = []
        for i, d in enumerate(docs, 1):
            if isinstance(d, str | bytes):
                d = {"content": d}
            if not isinstance(d, Mapping):
                raise RagError(f"document {i} must be a table or a string, got {type(d).__name__}")
            content = d.get("content", d.get("text"))
            if content is None:
                raise RagError(f"document {i} requires 'content' or 'text'")
            if isinstance(content, bytes):
                content = content.decode("utf-8", "replace")
            elif isinstance(content, int | float) and not isinstance(content, bool):
                content = str(content)
            if not isinstance(content, str):
                raise RagError(f"document {i}: content must be a string, got {type(content).__name__}")
            meta = d.get("metadata") or {}
            if not isinstance(meta, Mapping):
                raise RagError(f"document {i}: metadata must be a table, got {type(meta).__name__}")
            doc_id = d.get("id")
            if doc_id is not None and not isinstance(doc_id, str | int):
                raise RagError(f"document {i}: id must be a string, got {type(doc_id).__name__}")
            out.append({"content": content, "metadata": dict(meta),
                        "id": None if doc_id is None else str(doc_id)})
        return out

    def _chunk_spec(self, opts: Mapping[str, Any]) -> ChunkSpec:
        chunking = opts.get("chunking") or {}
        if not isinstance(chunking, Mapping):
            raise RagError("chunking must be a table {chunk_size, overlap, strategy}")
        size = _int_opt(opts, "chunk_size", _int_opt(chunking, "chunk_size", self.defaults.chunk_size))
        overlap = _int_opt(opts, "chunk_overlap", _int_opt(chunking, "overlap", self.defaults.chunk_overlap))
        strategy = _str_opt(chunking, "strategy", self.defaults.strategy)
        unit = _str_opt(chunking, "unit", "tokens")
        if overlap >= size:
            raise RagError(f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size})")
        if size <= 0:
            raise RagError(f"chunk_size must be positive, got {size}")
        if unit == "tokens":
            size = min(size, self.embedder.max_text_tokens)
            overlap = min(overlap, size - 1)
        try:
            return ChunkSpec(size=size, overlap=overlap, strategy=strategy, unit=unit)
        except ValueError as e:
            raise RagError(str(e)) from None

    def _ingest(self, documents: list[dict[str, Any]], collection: str, spec: ChunkSpec, ns: str) -> dict[str, Any]:
        """Short documents (up to `_EMBED_BATCH` chunks) are embedded together, one model call and one
        transaction per group of up to `_GROUP_CHUNKS` chunks; a longer one is streamed on its own, batch
        by batch, with bounded memory."""
        emb = self.embedder
        store = self.store
        info = store.ensure_collection(collection, self.model_id, emb.dimensions)
        ns_ttl = store.namespace_ttl(ns)
        run = _IngestRun(projected=store.count_vectors() if self.max_vectors else 0)
        group: list[_Doc] = []
        for doc in documents:
            content: str = doc["content"]
            if not content or content.isspace():  # (no stripped copy of a huge document)
                run.skipped += 1
                continue
            doc_id = doc["id"] or _doc_id(content)
            ttl = doc["metadata"].get("ttl_seconds", ns_ttl)
            expires = time.time() + float(ttl) if isinstance(ttl, int | float) and not isinstance(ttl, bool) else None
            if self.max_vectors:
                run.projected -= store.count_document(info.name, ns, doc_id)
            chunks = chunk_stream([content], spec, emb.token_spans)
            head = list(islice(chunks, _EMBED_BATCH + 1))
            if len(head) <= _EMBED_BATCH:  # a short document: it waits in the group
                if sum(len(d.chunks) for d in group) + len(head) > _GROUP_CHUNKS:
                    self._flush(group, info, ns, emb, run)
                group.append(_Doc(doc_id, doc["metadata"], expires, head))
                continue
            self._flush(group, info, ns, emb, run)  # keep document order: earlier short ones first
            counter = {"chunks": 0, "tokens": 0}
            rows = self._rows(chain(head, chunks), doc_id, doc["metadata"], emb, counter, run.projected)
            store.replace_document(info, ns, doc_id, rows, expires)
            run.done(doc_id, counter["chunks"], counter["tokens"])
        self._flush(group, info, ns, emb, run)
        if run.chunks:
            store.record_usage(ns, embeddings=run.chunks, tokens=run.tokens)
        return {"success": True, "documents_processed": len(run.ids), "vectors_created": run.chunks,
                "chunks_created": run.chunks, "skipped": run.skipped, "total_tokens": run.tokens,
                "collection": collection, "ids": run.ids}

    def _flush(self, group: list[_Doc], info: Any, ns: str, emb: Embedder, run: _IngestRun) -> None:
        """Embed the chunks of a group of short documents in one call and store them in one transaction."""
        from llmspell.rag.store import ChunkRow

        if not group:
            return
        self.check()
        texts = [c.text for d in group for c in d.chunks]
        self._check_limit(run.projected + len(texts))
        res = emb.embed(texts)
        vectors = iter(res.vectors)
        items = []
        for d in group:
            rows = []
            for c in d.chunks:
                m = dict(d.metadata)
                m.update(document_id=d.doc_id, chunk_index=c.index, start_char=c.start, end_char=c.end)
                rows.append(ChunkRow(chunk_index=c.index, text=c.text, metadata=m, vector=next(vectors)))
            items.append((d.doc_id, rows, d.expires))
        self.store.replace_documents(info, ns, items)
        for i, d in enumerate(group):
            run.done(d.doc_id, len(d.chunks), res.tokens if i == 0 else 0)
        group.clear()

    def _check_limit(self, would_have: int) -> None:
        if self.max_vectors and would_have > self.max_vectors:
            raise RagError(f"ingest would exceed [rag] max_vectors = {self.max_vectors} "
                           "(raise the limit or delete vectors)")

    def _rows(self, chunks: Iterable[Chunk], doc_id: str, meta: Mapping[str, Any], emb: Embedder,
              counter: dict[str, int], base_count: int) -> Iterator[ChunkRow]:
        """Chunk rows of one long document, embedded batch by batch as the store consumes them."""
        batch = []
        for chunk in chunks:
            batch.append(chunk)
            if len(batch) >= _EMBED_BATCH:
                yield from self._embed_batch(batch, doc_id, meta, emb, counter, base_count)
                batch = []
        if batch:
            yield from self._embed_batch(batch, doc_id, meta, emb, counter, base_count)

    def _embed_batch(self, batch: list[Any], doc_id: str, meta: Mapping[str, Any], emb: Embedder,
                     counter: dict[str, int], base_count: int) -> Iterator[ChunkRow]:
        from llmspell.rag.store import ChunkRow

        self.check()
        self._check_limit(base_count + counter["chunks"] + len(batch))
        res = emb.embed([c.text for c in batch])
        counter["tokens"] += res.tokens
        for c, v in zip(batch, res.vectors, strict=True):
            counter["chunks"] += 1
            m = dict(meta)
            m.update(document_id=doc_id, chunk_index=c.index, start_char=c.start, end_char=c.end)
            yield ChunkRow(chunk_index=c.index, text=c.text, metadata=m, vector=v)

    # ------------------------------------------------------------------ search
    def search(self, query: Any, opts: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Best chunks for `query`, best first, as result dicts."""
        opts = dict(opts or {})
        if not isinstance(query, str) or not query.strip():
            raise RagError(f"query must be a non-empty string, got {query!r}")
        limit_key = next((k for k in ("limit", "k", "top_k") if opts.get(k) is not None), None)
        limit = self.defaults.limit if limit_key is None else _int_opt(opts, limit_key, self.defaults.limit)
        if limit <= 0:
            raise RagError(f"limit must be a positive integer, got {limit} (e.g. {{limit = 5}})")
        threshold = opts.get("threshold", self.defaults.threshold)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
            raise RagError(f"threshold must be a number, got {threshold!r}")
        collection = _str_opt(opts, "collection", self.defaults.collection)
        flt = opts.get("metadata_filter", opts.get("filters"))
        if flt is not None and not isinstance(flt, Mapping):
            raise RagError("metadata_filter must be a table of key = value (or key = {any, of})")
        ns = namespace_of(opts)
        return self._run(lambda: self._search(query, limit, threshold, collection, flt, ns))

    def _search(self, query: str, limit: int, threshold: float | None, collection: str,
                flt: Mapping[str, Any] | None, ns: str) -> list[dict[str, Any]]:
        store = self.store
        emb = self.embedder
        info = store.check_model(collection, self.model_id, emb.dimensions)
        if info is None:
            store.record_usage(ns, searches=1)
            return []
        res = emb.embed([query])
        store.record_usage(ns, embeddings=1, tokens=res.tokens, searches=1)
        hits = store.search(info, ns, res.vectors[0], limit, threshold, flt or None)
        return [{"id": f"{h.document_id}#{h.chunk_index}", "document_id": h.document_id, "chunk_index": h.chunk_index,
                 "content": h.text, "text": h.text, "score": float(h.score), "metadata": h.metadata,
                 "collection": h.collection} for h in hits]

    # ------------------------------------------------------------------ stats and management
    def get_stats(self, name: Any = None, scope_id: Any = None) -> dict[str, Any]:
        if name is not None and not isinstance(name, str):
            raise RagError(f"name must be a collection name, 'global', 'tenant' or 'session', got {name!r}")
        if name in ("tenant", "session") and scope_id is not None:
            return self._run(lambda: self.store.usage(f"{name}:{scope_id}"))
        store = self.store

        def stats() -> dict[str, Any]:
            colls = store.collections()
            if name is None or (name == "global" and store.collection("global") is None):
                t = store.totals(None, "global" if name == "global" else None)
            else:
                t = store.totals(name)
            info = store.collection(name) if name not in (None, "global") else None
            out: dict[str, Any] = dict(t)
            out.update(collections=len(colls), dimensions=int(info.dimensions if info else self._dims()),
                       collection=name, embedding_model=info.embedding_model if info else self._model_name(),
                       requested_embedding=dict(self.defaults.requested) or None)
            return out

        return self._run(stats)

    def _dims(self) -> int:
        try:
            return int(self.embedder.dimensions)
        except RagError:
            return 0

    def _model_name(self) -> str:
        try:
            return self.model_id
        except RagError:
            return settings_of(self.config).rag.embedding.model or ""

    def configure(self, opts: Mapping[str, Any]) -> bool:
        """Change runtime defaults; embedder keys are only recorded (never switch the embedder)."""
        if not isinstance(opts, Mapping):
            raise RagError("opts must be a table, e.g. {collection = 'notes', limit = 5}")
        d = self.defaults
        if "collection" in opts:
            d.collection = _str_opt(opts, "collection", d.collection)
        size = _int_opt(opts, "chunk_size", d.chunk_size)
        overlap = _int_opt(opts, "chunk_overlap", d.chunk_overlap)
        if size <= 0 or overlap < 0 or overlap >= size:
            raise RagError(f"chunk_overlap ({overlap}) must be >= 0 and smaller than chunk_size ({size})")
        d.chunk_size, d.chunk_overlap = size, overlap
        if "limit" in opts:
            lim = _int_opt(opts, "limit", d.limit)
            if lim <= 0:
                raise RagError(f"limit must be a positive integer, got {lim}")
            d.limit = lim
        if "threshold" in opts:
            t = opts["threshold"]
            if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)):
                raise RagError(f"threshold must be a number, got {t!r}")
            d.threshold = None if t is None else float(t)
        req = {k: opts[k] for k in ("provider", "embedding_model", "vector_dimensions") if k in opts}
        if req:
            d.requested.update(req)
            self._warn_requested(req)
        return True

    def _warn_requested(self, req: Mapping[str, Any]) -> None:
        if self._warned_requested:
            return
        e = self.embedder
        differs = (("provider" in req and req["provider"] != e.provider) or
                   ("embedding_model" in req and str(req["embedding_model"]).split("/")[-1] != e.model) or
                   ("vector_dimensions" in req and req["vector_dimensions"] != e.dimensions))
        if differs:
            self._warned_requested = True
            log.warning("RAG.configure: %s recorded but not applied; the embedder stays %s (%d dimensions). "
                        "Choose the embedder in config: [rag.embedding]", ", ".join(sorted(req)), self.model_id,
                        e.dimensions)

    def save(self) -> bool:
        self._run(lambda: self._store.save() if self._store is not None else None)
        return True

    def delete(self, target: Any, opts: Mapping[str, Any] | None = None) -> int:
        """Delete by document ids (a list) or by `{metadata_filter = {...}}`; returns vectors deleted."""
        opts = dict(opts or {})
        collection = _str_opt(opts, "collection", self.defaults.collection)
        scoped = any(opts.get(k) is not None for k in ("scope", "scope_id", "tenant_id"))
        ns = namespace_of(opts) if scoped else None
        if isinstance(target, str | int) and not isinstance(target, bool):
            target = [target]
        if isinstance(target, list):
            ids = [str(x) for x in target]
            return int(self._run(lambda: self.store.delete_documents(collection, ns, ids)))
        if isinstance(target, Mapping):
            flt = target.get("metadata_filter", target.get("filters"))
            if not isinstance(flt, Mapping) or not flt:
                raise RagError("give an array of document ids or {metadata_filter = {key = value}}")
            return int(self._run(lambda: self.store.delete_where(collection, ns, flt)))
        raise RagError("give an array of document ids or {metadata_filter = {key = value}}")

    def list_collections(self) -> list[dict[str, Any]]:
        return list(self._run(self.store.collection_summaries))

    def delete_collection(self, name: Any) -> bool:
        if not isinstance(name, str) or not name:
            raise RagError(f"name must be a collection name, got {name!r}")
        return bool(self._run(lambda: self.store.delete_collection(name)))

    def cleanup_scope(self, scope: Any, scope_id: Any = None) -> int:
        ns = namespace_of({"scope": scope, "scope_id": scope_id})
        n = int(self._run(lambda: self.store.delete_namespace(ns)))
        if ns != "global":
            self._run(lambda: self.store.set_namespace_ttl(ns, None))
        return n

    def list_providers(self) -> list[str]:
        """`local` plus configured OpenAI-compatible providers that have what they need (a key or a local URL)."""
        out = ["local"]
        c = self.config
        names = c.provider_names() if hasattr(c, "provider_names") else []
        env = getattr(c, "env", {})
        for n in names:
            p = c.provider(n) if hasattr(c, "provider") else c.get(f"providers.{n}")
            if not isinstance(p, Mapping) or p.get("provider_type", "openai") == "anthropic":
                continue
            keyed = p.get("api_key") or (p.get("api_key_env") and env.get(p["api_key_env"]))
            if (keyed or p.get("api_key_required") is False) and n not in out:
                out.append(n)
        return out

    def create_session_collection(self, session_id: Any, ttl_seconds: Any = None) -> dict[str, Any]:
        sid = self._session_id(session_id)
        ttl = None if ttl_seconds is None else _int_opt({"ttl_seconds": ttl_seconds}, "ttl_seconds", 0)
        if ttl is not None and ttl <= 0:
            raise RagError(f"ttl_seconds must be a positive integer, got {ttl}")
        self._run(lambda: self.store.set_namespace_ttl(f"session:{sid}", ttl))
        return {"session_id": sid, "namespace": f"session_{sid}", "ttl": ttl, "created": True}

    def configure_session(self, opts: Any) -> dict[str, Any]:
        if not isinstance(opts, Mapping):
            raise RagError("expects a table {session_id = '...', vector_ttl = seconds}")
        sid = self._session_id(opts.get("session_id"))
        ttl_v = opts.get("vector_ttl")
        ttl = None if ttl_v is None else _int_opt(opts, "vector_ttl", 0)
        if ttl is not None and ttl <= 0:
            raise RagError(f"vector_ttl must be a positive integer, got {ttl}")
        self._run(lambda: self.store.set_namespace_ttl(f"session:{sid}", ttl))
        return {"session_id": sid, "vector_ttl": ttl, "configured": True}

    @staticmethod
    def _session_id(v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise RagError(f"session_id must be a non-empty string, got {v!r}")
        return v

    def close(self) -> None:
        """Save HNSW graphs and close the database (runtime shutdown)."""
        if self._store is not None:
            from llmspell.rag.store import StoreError

            try:
                self._store.close()
            except StoreError as e:
                log.warning("closing the RAG store: %s", e)

