"""In-memory vector index of one collection: exact numpy cosine search, HNSW (faiss) above a size.

Vectors are L2-normalised, so cosine is a dot product. Every vector has an integer label (its
SQLite row id), a namespace and an optional expiry; searches take a boolean mask of the positions
allowed (scope, metadata filter, expiry). Exact search scans the allowed rows; the HNSW graph
(faiss `IndexHNSWFlat`, inner product, labels as ids) is used when the collection has at least
`ann_threshold` vectors and the mask allows at least that many (a narrower search is cheaper and
exact by scanning). faiss cannot remove from an HNSW graph, so deleted labels are excluded by an
id selector until the graph is rebuilt (on save). The graph can be saved to and loaded from a
file; `load` refuses a file whose checksum or labels do not match, so the caller rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from llmspell.rag._blas import one_blas_thread
from llmspell.rag.embeddings import default_threads

log = logging.getLogger("llmspell.rag")

#: Above this many matrix elements an exact scan runs BLAS single-threaded (see _blas.py).
_ONE_THREAD_ELEMENTS = 4_000_000

F32 = NDArray[np.float32]
BoolMask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class AnnConfig:
    """`[rag.vector_storage]`: backend (auto, exact, hnsw), threshold and HNSW parameters."""

    backend: str = "auto"
    ann_threshold: int = 20_000
    m: int = 16
    ef_construction: int = 200
    ef_search: int = 64

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "exact", "hnsw"):
            raise ValueError(f"[rag.vector_storage] backend '{self.backend}' is not one of auto, exact, hnsw")

    def wants_graph(self, count: int) -> bool:
        """Whether a collection of `count` vectors keeps an HNSW graph."""
        if self.backend == "exact":
            return False
        if self.backend == "hnsw":
            return count > 0
        return count >= self.ann_threshold


class VectorIndex:
    """Vectors of one collection in a growable matrix, plus an optional HNSW graph over them."""

    def __init__(self, dim: int, ann: AnnConfig) -> None:
        self.dim = dim
        self.ann = ann
        self._mat: F32 = np.zeros((0, dim), dtype=np.float32)
        self.labels: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.alive: BoolMask = np.zeros(0, dtype=bool)
        self.expires: NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        self.namespace: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._ns_ids: dict[str, int] = {}
        self._pos: dict[int, int] = {}
        self.size = 0  # positions used (alive or not)
        self.count = 0  # alive vectors
        self.any_expiry = False
        self.graph: Any = None  # faiss.IndexIDMap over an IndexHNSWFlat (untyped C extension) or None
        self.graph_dirty = False
        self._graph_deleted = 0
        #: label -> chunk metadata, loaded by the store on the first filtered search (None: not loaded).
        self.meta: dict[int, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ contents
    def namespace_id(self, name: str) -> int:
        """A small int for a namespace string (-1 when no vector ever had it)."""
        return self._ns_ids.get(name, -1)

    def only_namespace(self, name: str) -> bool:
        """Whether every vector ever added is in namespace `name` (a search needs no scope mask)."""
        return len(self._ns_ids) == 1 and name in self._ns_ids

    def add(self, labels: list[int], vectors: F32, namespace: str, expires_at: float | None) -> None:
        """Append vectors (already normalised) with their labels."""
        n = len(labels)
        if n == 0:
            return
        if vectors.shape != (n, self.dim):
            raise ValueError(f"expected {n} vectors of {self.dim} dimensions, got shape {vectors.shape}")
        self._reserve(self.size + n)
        sl = slice(self.size, self.size + n)
        self._mat[sl] = vectors
        self.labels[sl] = labels
        self.alive[sl] = True
        self.expires[sl] = np.inf if expires_at is None else expires_at
        self.namespace[sl] = self._ns_ids.setdefault(namespace, len(self._ns_ids))
        for i, lab in enumerate(labels):
            self._pos[int(lab)] = self.size + i
        self.size += n
        self.count += n
        self.any_expiry = self.any_expiry or expires_at is not None
        if self.graph is not None:
            self._graph_add(np.asarray(labels, dtype=np.int64), vectors)
        elif self.ann.wants_graph(self.count):
            self.build_graph()

    def remove(self, labels: list[int]) -> int:
        """Forget vectors by label; returns how many were present."""
        removed = 0
        for lab in labels:
            pos = self._pos.pop(int(lab), None)
            if pos is None:
                continue
            if self.meta is not None:
                self.meta.pop(int(lab), None)
            self.alive[pos] = False
            removed += 1
            if self.graph is not None:  # faiss cannot remove from HNSW: searches exclude it by selector
                self._graph_deleted += 1
                self.graph_dirty = True
        self.count -= removed
        if removed and self.size > 1024 and self.count < self.size // 2:
            self._compact()
        return removed

    def _reserve(self, need: int) -> None:
        cap = self._mat.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2, 64)
        mat = np.zeros((new_cap, self.dim), dtype=np.float32)
        mat[: self.size] = self._mat[: self.size]
        self._mat = mat
        self.labels = np.resize(self.labels, new_cap)
        self.alive = np.concatenate([self.alive[: self.size], np.zeros(new_cap - self.size, dtype=bool)])
        self.expires = np.resize(self.expires, new_cap)
        self.namespace = np.resize(self.namespace, new_cap)

    def _compact(self) -> None:
        keep = np.flatnonzero(self.alive[: self.size])
        n = len(keep)
        self._mat[:n] = self._mat[keep]
        self.labels[:n] = self.labels[keep]
        self.expires[:n] = self.expires[keep]
        self.namespace[:n] = self.namespace[keep]
        self.alive[:n] = True
        self.alive[n:] = False
        self.size = n
        self._pos = {int(lab): i for i, lab in enumerate(self.labels[:n])}

    def vector(self, label: int) -> F32 | None:
        pos = self._pos.get(int(label))
        return None if pos is None else self._mat[pos]

    def mask(self, namespace: str | None, now: float) -> BoolMask:
        """Positions that are alive, in `namespace` (None: any) and not expired at `now`."""
        m = self.alive[: self.size].copy()
        if namespace is not None:
            m &= self.namespace[: self.size] == self.namespace_id(namespace)
        if self.any_expiry:
            m &= self.expires[: self.size] > now
        return m

    # ------------------------------------------------------------------ search
    def search(self, query: F32, k: int, allowed: BoolMask | None) -> list[tuple[int, float]]:
        """The `k` best (label, cosine) among allowed positions (None: all alive), best first."""
        if self.count == 0 or k <= 0:
            return []
        n_allowed = self.count if allowed is None else int(allowed.sum())
        if n_allowed == 0:
            return []
        if self.graph is not None and n_allowed >= min(self.ann.ann_threshold, self.count):
            return self._graph_search(query, k, allowed, n_allowed)
        return self._exact(query, k, allowed)

    def _exact(self, query: F32, k: int, allowed: BoolMask | None) -> list[tuple[int, float]]:
        mat = self._mat[: self.size]
        rows: NDArray[np.intp] | None = None
        if allowed is not None or self.count != self.size:
            mask = self.alive[: self.size] if allowed is None else allowed
            rows = np.flatnonzero(mask)
        n = self.size if rows is None else len(rows)
        with one_blas_thread() if n * self.dim >= _ONE_THREAD_ELEMENTS else nullcontext():
            scores = mat @ query if rows is None else mat[rows] @ query
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        pos = top if rows is None else rows[top]
        return [(int(self.labels[p]), float(scores[t])) for p, t in zip(pos, top, strict=True)]

    def _graph_search(self, query: F32, k: int, allowed: BoolMask | None,
                      n_allowed: int) -> list[tuple[int, float]]:
        faiss = _faiss()

        k = min(k, n_allowed)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ann.ef_search, k)
        keep: Any = None
        if allowed is not None and n_allowed < self.count:
            keep = np.ascontiguousarray(self.labels[: self.size][allowed], dtype=np.int64)
        elif self._graph_deleted:
            keep = np.ascontiguousarray(self.labels[: self.size][self.alive[: self.size]], dtype=np.int64)
        if keep is not None:
            selector = faiss.IDSelectorBatch(keep)  # (the ids of an IndexIDMap are our labels)
            params.sel = selector
        scores, labels = self.graph.search(query.reshape(1, -1).astype(np.float32, copy=False), k, params=params)
        pairs = [(int(lab), float(s)) for lab, s in zip(labels[0], scores[0], strict=True) if lab >= 0]
        if len(pairs) < k:  # fewer reachable than k (heavy filtering): scan instead
            return self._exact(query, k, allowed)
        return pairs

    # ------------------------------------------------------------------ graph
    def build_graph(self) -> None:
        """(Re)build the HNSW graph from the alive vectors."""
        faiss = _faiss()

        alive = np.flatnonzero(self.alive[: self.size])
        hnsw = faiss.IndexHNSWFlat(self.dim, self.ann.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self.ann.ef_construction
        g = faiss.IndexIDMap(hnsw)  # (faiss's wrapper keeps `hnsw` alive as long as `g`)
        if len(alive):
            _graph_add_parallel(g, np.ascontiguousarray(self._mat[alive]), np.ascontiguousarray(self.labels[alive]))
        self.graph = g
        self.graph_dirty = True
        self._graph_deleted = 0

    def _graph_add(self, labels: NDArray[np.int64], vectors: F32) -> None:
        _graph_add_parallel(self.graph, np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(labels))
        self.graph_dirty = True

    def save_graph(self, path: Path, generation: int) -> None:
        """Write the graph and a sidecar (checksum, labels count, generation) atomically."""
        faiss = _faiss()

        if self.graph is None:
            return
        if self._graph_deleted:  # a saved graph holds only live labels, so a reload can verify them
            self.build_graph()
        path.parent.mkdir(parents=True, exist_ok=True)
        graph = self.graph
        digest = ""

        def write_graph(tmp: str) -> None:
            nonlocal digest
            faiss.write_index(graph, tmp)
            digest = _sha256(Path(tmp))

        _replace(path, write_graph)
        side = {"sha256": digest, "count": self.count, "generation": generation, "dim": self.dim,
                "m": self.ann.m, "ef_construction": self.ann.ef_construction, "format": "faiss-hnsw-idmap"}
        _replace(_sidecar(path), lambda tmp: Path(tmp).write_text(json.dumps(side), encoding="utf-8"))
        self.graph_dirty = False

    def load_graph(self, path: Path, generation: int) -> bool:
        """Load a saved graph if it is intact and matches these vectors; False means rebuild it."""
        faiss = _faiss()

        side_path = _sidecar(path)
        if not path.is_file() or not side_path.is_file():
            return False
        try:
            side = json.loads(side_path.read_text(encoding="utf-8"))
            if (side.get("format") != "faiss-hnsw-idmap" or side.get("generation") != generation or
                    side.get("count") != self.count or side.get("dim") != self.dim or
                    side.get("sha256") != _sha256(path)):
                return False
            g = faiss.read_index(str(path))  # (already the IndexIDMap class; it owns the graph)
            if g.d != self.dim or not hasattr(g, "id_map"):
                return False
            ids = set(faiss.vector_to_array(g.id_map).tolist())
            if ids != set(self.labels[: self.size][self.alive[: self.size]].tolist()):
                return False
        except (OSError, ValueError, RuntimeError, TypeError) as e:
            log.warning("RAG index %s is unreadable (%s); rebuilding it from the stored vectors", path, e)
            return False
        self.graph = g
        self.graph_dirty = False
        self._graph_deleted = 0
        return True


def _faiss() -> Any:
    """The faiss module, imported on first use (it is large), with OpenMP on one thread: a single query
    gains nothing from more, and idle OpenMP workers spin against other processes on shared CPUs."""
    import faiss

    if not getattr(_faiss, "configured", False):
        faiss.omp_set_num_threads(1)
        _faiss.configured = True  # type: ignore[attr-defined]
    return faiss


def _graph_add_parallel(graph: Any, vectors: F32, labels: NDArray[np.int64]) -> None:
    """Insert into the graph with one OpenMP thread per usable CPU (at most 4); searches stay on one."""
    faiss = _faiss()
    threads = default_threads() if len(labels) >= 1000 else 1
    faiss.omp_set_num_threads(threads)
    try:
        graph.add_with_ids(vectors, labels)
    finally:
        faiss.omp_set_num_threads(1)


def _replace(path: Path, write: Callable[[str], object]) -> None:
    """Write `path` through a fresh temp file in its folder, then rename it into place.

    The temp file is created exclusively (mkstemp), so a symlink planted under a predictable name
    in the index folder is never written through; the rename replaces a planted link, not its target.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _sidecar(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
