"""Exact search, HNSW recall against exact, and saved graph files that are checked before use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmspell.rag.index import AnnConfig, VectorIndex


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def embedding_like(rng: np.random.Generator, n: int, d: int = 384, latent: int = 16) -> np.ndarray:
    """Random vectors shaped like sentence embeddings: a low-dimensional signal plus noise, normalised."""
    basis = np.linalg.qr(np.random.default_rng(7).standard_normal((d, latent)))[0].T.astype(np.float32)
    x = rng.standard_normal((n, latent)).astype(np.float32) @ basis
    x += 0.05 * np.sqrt(latent / d) * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    x = unit(rng, 500, 32)
    idx = VectorIndex(32, AnnConfig(backend="exact"))
    idx.add(list(range(100, 600)), x, "global", None)
    q = unit(rng, 1, 32)[0]
    got = idx.search(q, 5, None)
    want = np.argsort(-(x @ q))[:5] + 100
    assert [lab for lab, _ in got] == want.tolist()
    assert got[0][1] == pytest.approx(float(x[want[0] - 100] @ q), abs=1e-6)


def test_remove_mask_and_namespaces() -> None:
    rng = np.random.default_rng(2)
    idx = VectorIndex(8, AnnConfig(backend="exact"))
    idx.add([1, 2, 3], unit(rng, 3, 8), "global", None)
    idx.add([4, 5], unit(rng, 2, 8), "tenant:a", None)
    q = unit(rng, 1, 8)[0]
    assert {lab for lab, _ in idx.search(q, 10, idx.mask("tenant:a", 0.0))} == {4, 5}
    assert idx.remove([2, 99]) == 1
    assert {lab for lab, _ in idx.search(q, 10, idx.mask("global", 0.0))} == {1, 3}
    assert idx.search(q, 10, idx.mask("tenant:none", 0.0)) == []


def test_expired_vectors_are_masked() -> None:
    rng = np.random.default_rng(3)
    idx = VectorIndex(8, AnnConfig(backend="exact"))
    idx.add([1], unit(rng, 1, 8), "global", 100.0)
    idx.add([2], unit(rng, 1, 8), "global", None)
    assert {lab for lab, _ in idx.search(unit(rng, 1, 8)[0], 5, idx.mask("global", 50.0))} == {1, 2}
    assert {lab for lab, _ in idx.search(unit(rng, 1, 8)[0], 5, idx.mask("global", 150.0))} == {2}


def test_graph_is_saved_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = unit(rng, 300, 16)
    idx = VectorIndex(16, AnnConfig(backend="hnsw"))
    idx.add(list(range(1, 301)), x, "global", None)
    assert idx.graph is not None
    path = tmp_path / "c.hnsw"
    idx.save_graph(path, generation=7)
    fresh = VectorIndex(16, AnnConfig(backend="exact"))
    fresh.add(list(range(1, 301)), x, "global", None)
    assert fresh.load_graph(path, generation=7)
    assert not fresh.load_graph(path, generation=8)  # stale: written for another state of the store
    data = bytearray(path.read_bytes())
    data[100:200] = b"\xff" * 100
    path.write_bytes(bytes(data))
    assert not fresh.load_graph(path, generation=7)  # checksum mismatch: never handed to faiss
    path.write_bytes(b"garbage")
    assert not fresh.load_graph(path, generation=7)
    path.unlink()
    assert not fresh.load_graph(path, generation=7)


def test_hnsw_with_filter_returns_only_allowed() -> None:
    rng = np.random.default_rng(5)
    idx = VectorIndex(16, AnnConfig(backend="hnsw", ann_threshold=10))
    idx.add(list(range(1, 201)), unit(rng, 200, 16), "global", None)
    idx.add(list(range(201, 401)), unit(rng, 200, 16), "tenant:t", None)
    hits = idx.search(unit(rng, 1, 16)[0], 10, idx.mask("tenant:t", 0.0))
    assert len(hits) == 10 and all(201 <= lab <= 400 for lab, _ in hits)


@pytest.mark.slow
def test_hnsw_recall_at_10_on_50k_vectors() -> None:
    """Recall@10 of the HNSW graph (spec defaults M=16, ef_construction=200, ef_search=64) vs exact.

    The 50k random vectors are embedding-like (a 16-dimensional signal in 384 dimensions plus noise;
    measured 0.996). Isotropic Gaussian vectors in 384 dimensions have no neighbourhood structure at
    all, and no HNSW setting near the defaults reaches 0.95 on them (measured 0.15 at ef 64, 0.79 at
    ef 1000), so they would test the data, not the index.
    """
    rng = np.random.default_rng(0)
    n, d = 50_000, 384
    x = embedding_like(rng, n, d)
    idx = VectorIndex(d, AnnConfig())  # auto: 50k >= ann_threshold 20k, so the graph is built
    idx.add(list(range(1, n + 1)), x, "global", None)
    assert idx.graph is not None
    queries = embedding_like(rng, 200, d)
    recalls = []
    for q in queries:
        exact = {lab for lab, _ in idx._exact(q, 10, None)}
        approx = {lab for lab, _ in idx.search(q, 10, None)}
        recalls.append(len(exact & approx) / 10)
    assert float(np.mean(recalls)) >= 0.95, np.mean(recalls)
