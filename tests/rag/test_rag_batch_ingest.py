"""RAG.ingest with a list embeds short documents in groups (issue 21.5): fewer model calls, same results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmspell.rag.service import RagError

from .conftest import make_service
from .test_rag_pipeline import HashEmbedder, stub_service


def _docs(n: int, prefix: str = "d") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "content": f"note {i} about topic {i % 7} in room {i % 3}",
             "metadata": {"n": i}} for i in range(n)]


def test_a_list_of_short_documents_uses_few_embedding_calls(tmp_path: Path) -> None:
    svc = stub_service(tmp_path)
    emb: HashEmbedder = svc._embedder  # type: ignore[assignment]
    try:
        res = svc.ingest(_docs(600))
        assert res["documents_processed"] == 600 and res["chunks_created"] == 600
        assert res["ids"] == [f"d{i}" for i in range(600)]  # document order kept
        assert emb.calls == 3  # groups of 256 chunks, not one call per document
        assert svc.get_stats()["total_documents"] == 600
        hit = svc.search("note 599 about topic 4 in room 2", {"limit": 1})[0]
        assert hit["document_id"] == "d599" and hit["metadata"]["n"] == 599 and hit["score"] > 0.999
    finally:
        svc.close()


def test_order_duplicates_empties_and_long_documents_in_one_list(tmp_path: Path) -> None:
    svc = stub_service(tmp_path)
    long_doc = " ".join(f"w{i}" for i in range(20_000))  # ~90 chunks: streamed on its own
    docs: list[Any] = [{"id": "a", "content": "first version"}, "  ", {"id": "b", "content": "short b"},
                       {"id": "long", "content": long_doc}, {"id": "a", "content": "second version of a"},
                       {"id": "c", "content": "short c"}]
    try:
        res = svc.ingest(docs)
        assert res["ids"] == ["a", "b", "long", "a", "c"] and res["skipped"] == 1
        stats = svc.get_stats()
        assert stats["total_documents"] == 4  # the second "a" replaced the first
        assert stats["total_vectors"] == res["chunks_created"] - 1
        texts = [h["text"] for h in svc.search("version", {"limit": 50, "metadata_filter": {"document_id": "a"}})]
        assert texts == ["second version of a"]
    finally:
        svc.close()


def test_max_vectors_is_enforced_across_groups(tmp_path: Path) -> None:
    svc = stub_service(tmp_path)
    svc.max_vectors = 300
    try:
        with pytest.raises(RagError, match="max_vectors = 300"):
            svc.ingest(_docs(400))
        assert svc.get_stats()["total_vectors"] <= 300
        svc.max_vectors = 1000
        assert svc.ingest(_docs(400))["documents_processed"] == 400  # re-ingesting replaces, never doubles
        assert svc.get_stats()["total_vectors"] == 400
    finally:
        svc.close()


def test_grouped_vectors_equal_one_at_a_time_with_the_real_model(tmp_path: Path) -> None:
    docs = _docs(40)
    together = make_service(tmp_path / "a")
    alone = make_service(tmp_path / "b")
    try:
        together.ingest(docs)
        for d in docs:
            alone.ingest(d)
        for q in ("topic 3 in room 1", "note 17"):
            a = [(h["document_id"], round(h["score"], 4)) for h in together.search(q, {"limit": 5})]
            b = [(h["document_id"], round(h["score"], 4)) for h in alone.search(q, {"limit": 5})]
            assert a == b
        va = together.store._index("default", 384)
        vb = alone.store._index("default", 384)
        assert np.allclose(np.sort(va._mat[: va.size], axis=0), np.sort(vb._mat[: vb.size], axis=0), atol=1e-4)
    finally:
        together.close()
        alone.close()


def test_lua_list_ingest(rag_runtime: Any) -> None:
    out = rag_runtime.run_string("""
        local docs = {}
        for i = 1, 120 do docs[i] = {id = "n" .. i, content = "meeting note number " .. i} end
        local r = RAG.ingest(docs, {collection = "notes"})
        return r.documents_processed, r.chunks_created, #r.ids, r.ids[120]
    """, "=t").values
    assert list(out) == [120, 120, 120, "n120"]
