"""The vector store: collections and namespaces persisted in SQLite, searched through `VectorIndex`.

SQLite (the state database, or `<persistence_path>/rag.sqlite3`, or `:memory:`) is the source of
truth: every chunk row holds its vector as float32 bytes, so an HNSW file that is missing, stale or
corrupt is rebuilt from it. Writes commit per call (WAL). A `rag_meta.generation` counter changes
on every write, so a store notices writes made by another process; each collection also has its own
generation, so only the collections that changed are reloaded, and a saved HNSW file is only
trusted for the collection generation it was written at.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from llmspell.rag.index import AnnConfig, VectorIndex
from llmspell.runtime.errors import ServiceError
from llmspell.runtime.files import ensure_private_file

log = logging.getLogger("llmspell.rag")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rag_collections(
  name TEXT PRIMARY KEY, embedding_model TEXT NOT NULL, dimensions INTEGER NOT NULL, created_at REAL NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rag_vectors(
  label INTEGER PRIMARY KEY AUTOINCREMENT,
  collection TEXT NOT NULL, namespace TEXT NOT NULL, document_id TEXT NOT NULL, chunk_index INTEGER NOT NULL,
  text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL, created_at REAL NOT NULL, expires_at REAL);
CREATE INDEX IF NOT EXISTS rag_vectors_doc ON rag_vectors(collection, namespace, document_id);
CREATE INDEX IF NOT EXISTS rag_vectors_ns ON rag_vectors(namespace);
CREATE INDEX IF NOT EXISTS rag_vectors_exp ON rag_vectors(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS rag_usage(
  namespace TEXT PRIMARY KEY, embeddings_generated INTEGER NOT NULL DEFAULT 0,
  embedding_tokens INTEGER NOT NULL DEFAULT 0, searches_performed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rag_namespace_ttl(namespace TEXT PRIMARY KEY, ttl_seconds INTEGER NOT NULL);
"""

_PURGE_EVERY_S = 5.0


class StoreError(ServiceError):
    """A storage problem (cannot open the database, model mismatch, limits)."""


class ModelMismatchError(StoreError):
    """A collection was built with another embedding model than the one in use."""


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A collection and the embedding model it is bound to."""

    name: str
    embedding_model: str
    dimensions: int


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """One chunk to store: its position, text, metadata and vector."""

    chunk_index: int
    text: str
    metadata: Mapping[str, Any]
    vector: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    label: int
    score: float
    collection: str
    namespace: str
    document_id: str
    chunk_index: int
    text: str
    metadata: dict[str, Any]


def compile_filter(flt: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """A metadata predicate: equality per key; a list value means any of its items (a set when hashable)."""
    tests: list[tuple[str, bool, Any]] = []
    for k, want in flt.items():
        if isinstance(want, list):
            try:
                tests.append((k, True, frozenset(want)))
            except TypeError:  # unhashable items (tables): compare one by one
                tests.append((k, True, want))
        else:
            tests.append((k, False, want))

    def pred(meta: Mapping[str, Any]) -> bool:
        for k, many, want in tests:
            have = meta.get(k)
            if many:
                if isinstance(have, list):
                    if not any(_in(h, want) for h in have):
                        return False
                elif not _in(have, want):
                    return False
            elif isinstance(have, list):
                if want not in have:
                    return False
            elif have != want:
                return False
        return True

    return pred


def _in(value: Any, pool: Any) -> bool:
    try:
        return value in pool
    except TypeError:  # an unhashable value against a set
        return any(value == p for p in pool)


def matches(meta: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    """Whether `meta` passes the metadata filter `flt` (see compile_filter)."""
    return compile_filter(flt)(meta)


def _safe_name(name: str) -> str:
    """A file name for a collection: readable part plus a stable digest (names may hold any character)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] + "-" + hashlib.sha1(name.encode("utf-8", "replace")).hexdigest()[:10]


class VectorStore:
    """Collections of chunk vectors with namespaces, filters, TTL and SQLite persistence."""

    def __init__(self, db_path: Path | None, index_dir: Path | None, ann: AnnConfig) -> None:
        self.db_path = db_path
        self.index_dir = index_dir
        self.ann = ann
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._indexes: dict[str, VectorIndex] = {}
        self._generation = -1
        self._loaded_gen: dict[str, int] = {}  # collection generation each in-memory index reflects
        self._last_purge = 0.0

    # ------------------------------------------------------------------ connection
    @property
    def durable(self) -> bool:
        return self.db_path is not None

    def _conn(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            if self.db_path is None:
                db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            else:
                ensure_private_file(self.db_path)  # 0600, in a 0700 directory when created here
                db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None,
                                     timeout=30.0)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO rag_meta(key, value) VALUES ('generation', 0)")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the RAG vector store at {self.db_path}: {e} "
                             "(check [rag] persistence_path or [state] path)") from None
        self._db = db
        self._generation = self._read_generation()
        return db

    def _read_generation(self) -> int:
        assert self._db is not None
        row = self._db.execute("SELECT value FROM rag_meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _sync(self) -> sqlite3.Connection:
        """The connection, with in-memory indexes dropped when another process changed the store."""
        db = self._conn()
        gen = self._read_generation()
        if gen != self._generation:  # another connection wrote: drop the indexes of changed collections
            current = dict(db.execute("SELECT name, generation FROM rag_collections").fetchall())
            for name in list(self._indexes):
                if current.get(name) != self._loaded_gen.get(name):
                    self._indexes.pop(name, None)
            self._generation = gen
        now = time.time()
        if now - self._last_purge >= _PURGE_EVERY_S:
            self._last_purge = now
            self._purge_expired(db, now)
        return db

    def _bump(self, db: sqlite3.Connection, collection: str) -> None:
        """Record a write to `collection` (inside the caller's transaction)."""
        db.execute("UPDATE rag_meta SET value = value + 1 WHERE key='generation'")
        db.execute("UPDATE rag_collections SET generation = generation + 1 WHERE name=?", (collection,))
        self._generation += 1
        if collection in self._loaded_gen:
            self._loaded_gen[collection] += 1

    def close(self) -> None:
        """Save HNSW graphs and close the database."""
        with self._lock:
            if self._db is None:
                return
            try:
                self.save()
            finally:
                self._db.close()
                self._db = None
                self._indexes.clear()

    def save(self) -> None:
        """Write changed HNSW graphs beside the database (vectors are already committed)."""
        with self._lock:
            if self.index_dir is None or self._db is None:
                return
            for name, idx in self._indexes.items():
                if idx.graph is not None and idx.graph_dirty:
                    try:
                        idx.save_graph(self._graph_path(name), self._loaded_gen.get(name, -1))
                    except (OSError, RuntimeError) as e:
                        log.warning("cannot save the RAG index of collection '%s': %s", name, e)

    def _graph_path(self, collection: str) -> Path:
        assert self.index_dir is not None
        return self.index_dir / f"{_safe_name(collection)}.hnsw"

    # ------------------------------------------------------------------ collections
    def collection(self, name: str) -> CollectionInfo | None:
        with self._lock:
            row = self._conn().execute(
                "SELECT name, embedding_model, dimensions FROM rag_collections WHERE name=?", (name,)).fetchone()
        return CollectionInfo(row[0], row[1], int(row[2])) if row else None

    def collections(self) -> list[CollectionInfo]:
        with self._lock:
            rows = self._conn().execute(
                "SELECT name, embedding_model, dimensions FROM rag_collections ORDER BY name").fetchall()
        return [CollectionInfo(r[0], r[1], int(r[2])) for r in rows]

    def check_model(self, name: str, model: str, dimensions: int) -> CollectionInfo | None:
        """Raise ModelMismatchError when collection `name` exists with another model or dimension."""
        info = self.collection(name)
        if info is not None and (info.embedding_model != model or info.dimensions != dimensions):
            raise ModelMismatchError(
                f"collection '{name}' was built with {info.embedding_model} ({info.dimensions} dimensions) but "
                f"the embedder in use is {model} ({dimensions} dimensions) (use another collection, or "
                "configure [rag.embedding] to match, or delete the collection)")
        return info

    def ensure_collection(self, name: str, model: str, dimensions: int) -> CollectionInfo:
        with self._lock:
            info = self.check_model(name, model, dimensions)
            if info is not None:
                return info
            db = self._sync()
            db.execute("INSERT INTO rag_collections(name, embedding_model, dimensions, created_at) "
                       "VALUES (?, ?, ?, ?)", (name, model, dimensions, time.time()))
            self._bump(db, name)
            return CollectionInfo(name, model, dimensions)

    def delete_collection(self, name: str) -> bool:
        with self._lock:
            db = self._sync()
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute("DELETE FROM rag_collections WHERE name=?", (name,))
                db.execute("DELETE FROM rag_vectors WHERE collection=?", (name,))
                existed = cur.rowcount > 0
                if existed:
                    self._bump(db, name)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._indexes.pop(name, None)
            self._loaded_gen.pop(name, None)
            if existed and self.index_dir is not None:
                for p in (self._graph_path(name), self._graph_path(name).with_suffix(".hnsw.json")):
                    p.unlink(missing_ok=True)
            return existed

    # ------------------------------------------------------------------ index loading
    def _index(self, name: str, dim: int) -> VectorIndex:
        idx = self._indexes.get(name)
        if idx is not None:
            return idx
        db = self._conn()
        row = db.execute("SELECT generation FROM rag_collections WHERE name=?", (name,)).fetchone()
        self._loaded_gen[name] = int(row[0]) if row else 0
        idx = VectorIndex(dim, AnnConfig(self.ann.backend, self.ann.ann_threshold, self.ann.m,
                                         self.ann.ef_construction, self.ann.ef_search))
        saved_ann = idx.ann
        idx.ann = AnnConfig("exact")  # load without building a graph row by row
        now = time.time()
        rows = db.execute("SELECT label, namespace, vector, expires_at FROM rag_vectors WHERE collection=? "
                          "AND (expires_at IS NULL OR expires_at > ?) ORDER BY namespace, label", (name, now))
        batch: list[tuple[int, str, bytes, float | None]] = []
        for r in rows:
            if batch and (r[1] != batch[-1][1] or len(batch) >= 4096):
                self._load_batch(idx, batch)
                batch = []
            batch.append(r)
        if batch:
            self._load_batch(idx, batch)
        idx.ann = saved_ann
        if saved_ann.wants_graph(idx.count):
            path = self._graph_path(name) if self.index_dir is not None else None
            if path is None or not idx.load_graph(path, self._loaded_gen[name]):
                if path is not None and path.exists():
                    log.warning("RAG index file %s does not match the stored vectors of collection '%s'; "
                                "rebuilding it from them", path, name)
                idx.build_graph()
                if path is not None:
                    try:
                        idx.save_graph(path, self._loaded_gen[name])
                    except (OSError, RuntimeError) as e:
                        log.warning("cannot save the RAG index of collection '%s': %s", name, e)
        self._indexes[name] = idx
        return idx

    @staticmethod
    def _load_batch(idx: VectorIndex, batch: list[tuple[int, str, bytes, float | None]]) -> None:
        """Add rows of one namespace; rows with different expiries are added one expiry at a time."""
        by_exp: dict[float | None, list[tuple[int, bytes]]] = {}
        for label, _ns, blob, exp in batch:
            by_exp.setdefault(exp, []).append((label, blob))
        for exp, rows in by_exp.items():
            vecs = np.frombuffer(b"".join(b for _, b in rows), dtype=np.float32).reshape(len(rows), idx.dim)
            idx.add([lab for lab, _ in rows], vecs, batch[0][1], exp)

    # ------------------------------------------------------------------ writes
    def count_vectors(self, collection: str | None = None) -> int:
        with self._lock:
            db = self._sync()
            if collection is None:
                return int(db.execute("SELECT COUNT(*) FROM rag_vectors").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM rag_vectors WHERE collection=?",
                                  (collection,)).fetchone()[0])

    def count_document(self, collection: str, namespace: str, document_id: str) -> int:
        """Vectors stored for one document (what re-ingesting it would replace)."""
        with self._lock:
            return int(self._sync().execute(
                "SELECT COUNT(*) FROM rag_vectors WHERE collection=? AND namespace=? AND document_id=?",
                (collection, namespace, document_id)).fetchone()[0])

    def replace_document(self, info: CollectionInfo, namespace: str, document_id: str,
                         chunks: Iterable[ChunkRow], expires_at: float | None) -> list[int]:
        """Store a document's chunks, replacing any earlier version of it; returns the new labels."""
        return self.replace_documents(info, namespace, [(document_id, chunks, expires_at)])[0]

    def replace_documents(self, info: CollectionInfo, namespace: str,
                          docs: Iterable[tuple[str, Iterable[ChunkRow], float | None]]) -> list[list[int]]:
        """Store several documents (id, chunks, expiry) in one transaction, each replacing its earlier
        version; returns the new labels per document. Chunks may be a lazy iterator (a long document
        is embedded batch by batch as it is stored)."""
        with self._lock:
            db = self._sync()
            idx = self._index(info.name, info.dimensions)
            now = time.time()
            added: list[int] = []
            replaced: list[int] = []
            out: list[list[int]] = []
            db.execute("BEGIN IMMEDIATE")
            try:
                for document_id, chunks, expires_at in docs:
                    old = [r[0] for r in db.execute(
                        "SELECT label FROM rag_vectors WHERE collection=? AND namespace=? AND document_id=?",
                        (info.name, namespace, document_id))]
                    if old:
                        db.execute("DELETE FROM rag_vectors WHERE collection=? AND namespace=? AND document_id=?",
                                   (info.name, namespace, document_id))
                        replaced += old
                    out.append(self._insert_chunks(db, idx, info, namespace, document_id, chunks, expires_at,
                                                   now, added))
                self._bump(db, info.name)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                idx.remove(added)
                raise
            idx.remove(replaced)  # (labels added and replaced within this call are among them)
            return out

    @staticmethod
    def _insert_chunks(db: sqlite3.Connection, idx: VectorIndex, info: CollectionInfo, namespace: str,
                       document_id: str, chunks: Iterable[ChunkRow], expires_at: float | None, now: float,
                       added: list[int]) -> list[int]:
        """Insert one document's rows and add their vectors to the index (in bounded batches)."""
        labels: list[int] = []
        pending: list[tuple[int, NDArray[np.float32]]] = []

        def flush() -> None:
            idx.add([lab for lab, _ in pending], np.stack([x for _, x in pending]), namespace, expires_at)
            added.extend(lab for lab, _ in pending)
            pending.clear()

        for c in chunks:
            v = np.ascontiguousarray(c.vector, dtype=np.float32)
            if v.shape != (info.dimensions,):
                raise ModelMismatchError(f"vector of {v.shape[-1]} dimensions for collection '{info.name}' "
                                         f"of {info.dimensions} dimensions ({info.embedding_model})")
            meta_json = json.dumps(dict(c.metadata), ensure_ascii=False)
            cur = db.execute(
                "INSERT INTO rag_vectors(collection, namespace, document_id, chunk_index, text, metadata,"
                " vector, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (info.name, namespace, document_id, c.chunk_index, c.text, meta_json, v.tobytes(), now, expires_at))
            labels.append(int(cur.lastrowid or 0))
            pending.append((labels[-1], v))
            if idx.meta is not None:  # keep the filter cache current (as stored: JSON round trip)
                idx.meta[labels[-1]] = json.loads(meta_json)
            if len(pending) >= 256:  # the index grows as we go: memory stays bounded per batch
                flush()
        if pending:
            flush()
        return labels

    def delete_documents(self, collection: str, namespace: str | None, document_ids: list[str]) -> int:
        with self._lock:
            db = self._sync()
            ns_sql, ns_args = ("", ()) if namespace is None else (" AND namespace=?", (namespace,))
            labels: list[int] = []
            for doc in document_ids:
                labels += [r[0] for r in db.execute(
                    f"SELECT label FROM rag_vectors WHERE collection=? AND document_id=?{ns_sql}",
                    (collection, doc, *ns_args))]
            return self._delete_labels(db, collection, labels)

    def delete_where(self, collection: str | None, namespace: str | None, flt: Mapping[str, Any]) -> int:
        """Delete vectors whose metadata matches `flt` (in one collection, or all when None)."""
        with self._lock:
            db = self._sync()
            where, args = _scope_filter(collection, namespace)
            sql = "SELECT label, collection, metadata FROM rag_vectors WHERE 1=1" + where
            by_coll: dict[str, list[int]] = {}
            pred = compile_filter(flt)
            for label, coll, meta in db.execute(sql, args):
                if pred(json.loads(meta)):
                    by_coll.setdefault(coll, []).append(label)
            return sum(self._delete_labels(db, c, labs) for c, labs in by_coll.items())

    def delete_namespace(self, namespace: str) -> int:
        """Delete every vector of a namespace in every collection."""
        with self._lock:
            db = self._sync()
            by_coll: dict[str, list[int]] = {}
            for label, coll in db.execute("SELECT label, collection FROM rag_vectors WHERE namespace=?", (namespace,)):
                by_coll.setdefault(coll, []).append(label)
            return sum(self._delete_labels(db, c, labs) for c, labs in by_coll.items())

    def _delete_labels(self, db: sqlite3.Connection, collection: str, labels: list[int]) -> int:
        if not labels:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            n = 0
            for i in range(0, len(labels), 500):
                part = labels[i:i + 500]
                cur = db.execute(f"DELETE FROM rag_vectors WHERE label IN ({','.join('?' * len(part))})", part)
                n += cur.rowcount
            self._bump(db, collection)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        idx = self._indexes.get(collection)
        if idx is not None:
            idx.remove(labels)
        return n

    def _purge_expired(self, db: sqlite3.Connection, now: float) -> None:
        by_coll: dict[str, list[int]] = {}
        for label, coll in db.execute("SELECT label, collection FROM rag_vectors "
                                      "WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)):
            by_coll.setdefault(coll, []).append(label)
        for coll, labs in by_coll.items():
            self._delete_labels(db, coll, labs)

    # ------------------------------------------------------------------ search
    def search(self, info: CollectionInfo, namespace: str, query: NDArray[np.float32], limit: int,
               threshold: float | None, flt: Mapping[str, Any] | None) -> list[Hit]:
        """Best `limit` chunks of a namespace by cosine, optionally filtered by metadata."""
        with self._lock:
            db = self._sync()
            idx = self._index(info.name, info.dimensions)
            if idx.count == 0:
                return []
            now = time.time()
            allowed = idx.mask(namespace, now)
            if flt:
                allowed = self._filter_mask(db, idx, allowed, flt)
            all_alive = idx.only_namespace(namespace) and not idx.any_expiry and not flt
            pairs = idx.search(query.astype(np.float32, copy=False), limit, None if all_alive else allowed)
            if threshold is not None:
                pairs = [(lab, s) for lab, s in pairs if s >= threshold]
            if not pairs:
                return []
            rows = {r[0]: r for r in db.execute(
                f"SELECT label, namespace, document_id, chunk_index, text, metadata FROM rag_vectors "
                f"WHERE label IN ({','.join('?' * len(pairs))})", [lab for lab, _ in pairs])}
        hits = []
        for lab, score in pairs:
            r = rows.get(lab)
            if r is None:
                continue
            meta = json.loads(r[5])
            meta["text"] = r[4]
            hits.append(Hit(label=lab, score=float(score), collection=info.name, namespace=r[1], document_id=r[2],
                            chunk_index=int(r[3]), text=r[4], metadata=meta))
        return hits

    def _filter_mask(self, db: sqlite3.Connection, idx: VectorIndex, allowed: NDArray[np.bool_],
                     flt: Mapping[str, Any]) -> NDArray[np.bool_]:
        """Narrow `allowed` to positions whose metadata matches (metadata cached on first use)."""
        meta = idx.meta
        if meta is None:
            meta = {}
            labels = idx.labels[: idx.size][idx.alive[: idx.size]].tolist()
            for i in range(0, len(labels), 900):
                part = labels[i:i + 900]
                for label, m in db.execute(
                        f"SELECT label, metadata FROM rag_vectors WHERE label IN ({','.join('?' * len(part))})", part):
                    meta[int(label)] = json.loads(m)
            idx.meta = meta
        pos = np.flatnonzero(allowed)
        labels_at = idx.labels[pos].tolist()
        pred = compile_filter(flt)
        empty: dict[str, Any] = {}
        keep = np.fromiter((pred(meta.get(lab, empty)) for lab in labels_at), dtype=bool, count=len(pos))
        out = allowed.copy()
        out[pos[~keep]] = False
        return out

    # ------------------------------------------------------------------ usage and stats
    def record_usage(self, namespace: str, *, embeddings: int = 0, tokens: int = 0, searches: int = 0) -> None:
        with self._lock:
            db = self._conn()
            db.execute("INSERT INTO rag_usage(namespace, embeddings_generated, embedding_tokens, searches_performed)"
                       " VALUES (?,?,?,?) ON CONFLICT(namespace) DO UPDATE SET"
                       " embeddings_generated = embeddings_generated + excluded.embeddings_generated,"
                       " embedding_tokens = embedding_tokens + excluded.embedding_tokens,"
                       " searches_performed = searches_performed + excluded.searches_performed",
                       (namespace, embeddings, tokens, searches))

    def usage(self, namespace: str) -> dict[str, int]:
        with self._lock:
            db = self._sync()
            row = db.execute("SELECT embeddings_generated, embedding_tokens, searches_performed FROM rag_usage "
                             "WHERE namespace=?", (namespace,)).fetchone()
            n = db.execute("SELECT COUNT(*) FROM rag_vectors WHERE namespace=?", (namespace,)).fetchone()[0]
        e, t, s = (int(x) for x in row) if row else (0, 0, 0)
        return {"total_vectors": int(n), "embeddings_generated": e, "embedding_tokens": t, "searches_performed": s}

    def totals(self, collection: str | None = None, namespace: str | None = None) -> dict[str, int]:
        """Vector, document and byte counts (one collection or all; one namespace or all)."""
        sql = ("SELECT COUNT(*), COUNT(DISTINCT namespace || char(0) || document_id), "
               "COALESCE(SUM(length(vector) + length(CAST(text AS BLOB)) + length(CAST(metadata AS BLOB))), 0) "
               "FROM rag_vectors WHERE 1=1")
        where, args = _scope_filter(collection, namespace)
        sql += where
        with self._lock:
            row = self._sync().execute(sql, args).fetchone()
        return {"total_vectors": int(row[0]), "total_documents": int(row[1]), "total_storage_bytes": int(row[2])}

    def collection_summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            db = self._sync()
            counts = {r[0]: (int(r[1]), int(r[2])) for r in db.execute(
                "SELECT collection, COUNT(*), COUNT(DISTINCT namespace || char(0) || document_id) "
                "FROM rag_vectors GROUP BY collection")}
        return [{"name": c.name, "vectors": counts.get(c.name, (0, 0))[0], "documents": counts.get(c.name, (0, 0))[1],
                 "embedding_model": c.embedding_model, "dimensions": c.dimensions} for c in self.collections()]

    def namespace_ttl(self, namespace: str) -> int | None:
        with self._lock:
            row = self._conn().execute("SELECT ttl_seconds FROM rag_namespace_ttl WHERE namespace=?",
                                       (namespace,)).fetchone()
        return int(row[0]) if row else None

    def set_namespace_ttl(self, namespace: str, ttl_seconds: int | None) -> None:
        with self._lock:
            db = self._conn()
            if ttl_seconds is None:
                db.execute("DELETE FROM rag_namespace_ttl WHERE namespace=?", (namespace,))
            else:
                db.execute("INSERT INTO rag_namespace_ttl(namespace, ttl_seconds) VALUES (?, ?) "
                           "ON CONFLICT(namespace) DO UPDATE SET ttl_seconds = excluded.ttl_seconds",
                           (namespace, int(ttl_seconds)))


def _scope_filter(collection: str | None, namespace: str | None) -> tuple[str, list[Any]]:
    """SQL conditions (and their arguments) for an optional collection and an optional namespace."""
    sql, args = "", []
    if collection is not None:
        sql += " AND collection=?"
        args.append(collection)
    if namespace is not None:
        sql += " AND namespace=?"
        args.append(namespace)
    return sql, args
