"""The ingest pipeline with a cheap stand-in embedder: huge documents stream, interrupts roll back.

The real model is covered elsewhere; here a deterministic 8-dimension embedder keeps a multi-megabyte
document fast, so what is measured is the service's own streaming (chunk -> embed -> store).
"""

from __future__ import annotations

import hashlib
import re
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmspell.rag.embeddings import Embedded
from llmspell.rag.service import RagService

from .conftest import make_service


class HashEmbedder:
    """Word tokens; vectors from a hash of the text (same text, same vector)."""

    provider = "test"
    model = "hash-8"
    dimensions = 8
    max_text_tokens = 254

    def __init__(self) -> None:
        self.calls = 0

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]

    def count_tokens(self, text: str) -> int:
        return len(self.token_spans(text))

    def embed(self, texts: Sequence[str]) -> Embedded:
        self.calls += 1
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:32], dtype=np.uint8)[:8].astype(np.float32) + 1
                for t in texts]
        v = np.stack(rows) if rows else np.zeros((0, 8), dtype=np.float32)
        return Embedded(v / np.linalg.norm(v, axis=1, keepdims=True), sum(self.count_tokens(t) for t in texts))


def stub_service(tmp_path: Path) -> RagService:
    svc = make_service(tmp_path)
    svc._embedder = HashEmbedder()  # type: ignore[assignment]
    return svc


def _ingest_peak(svc: RagService, doc_id: str, doc: str) -> tuple[dict[str, Any], int]:
    tracemalloc.start()
    try:
        res = svc.ingest({"id": doc_id, "content": doc})
        return res, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_document_is_ingested_with_bounded_memory(tmp_path: Path) -> None:
    svc = stub_service(tmp_path)
    small = "the quick brown fox jumps over the lazy dog. " * 25_000  # 1.1 MB
    huge = "the quick brown fox jumps over the lazy dog. " * 100_000  # 4.5 MB
    try:
        svc.ingest("warm up the store and collection")
        _, peak_small = _ingest_peak(svc, "small", small)
        res, peak = _ingest_peak(svc, "huge", huge)
        assert res["chunks_created"] > 4000 and res["documents_processed"] == 1
        # No copy of the text and no list of all chunks: the peak grows only by the index's
        # per-vector bookkeeping (~150 bytes a chunk), a small fraction of the extra text.
        assert peak < len(huge) // 2, peak
        assert peak - peak_small < (len(huge) - len(small)) // 4, (peak_small, peak)
        assert svc.get_stats()["total_vectors"] > 5000
        last = svc.search("lazy dog", {"limit": 1, "metadata_filter": {"chunk_index": res["chunks_created"] - 1}})
        assert last[0]["metadata"]["end_char"] == len(huge.rstrip())
    finally:
        svc.close()


def test_interrupted_ingest_stores_nothing(tmp_path: Path) -> None:
    svc = stub_service(tmp_path)
    calls = {"n": 0}

    class Stop(Exception):
        pass

    def check() -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Stop

    svc.check = check
    try:
        svc.ingest({"id": "keep", "content": "kept document"})
        with pytest.raises(Stop):
            svc.ingest({"id": "big", "content": "word " * 50_000})
        stats = svc.get_stats()
        assert (stats["total_vectors"], stats["total_documents"]) == (1, 1)
        assert [h["document_id"] for h in svc.search("word", {"limit": 5})] == ["keep"]
    finally:
        svc.close()
