"""The RAG service end to end with the real embedder: ingest, semantic search, scopes, persistence, bad input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from llmspell.rag.service import RagError, RagService
from llmspell.rag.store import ChunkRow

from .conftest import make_service

PASSAGES = {
    "kyoto": "Kyoto is at its most beautiful in autumn, when the maple trees in its temple gardens turn red "
             "and gold; November is the best month to visit.",
    "sourdough": "To bake sourdough bread, feed the starter the night before, mix flour, water and salt, "
                 "and let the dough rise slowly before baking it in a hot oven.",
    "python": "Python's garbage collector frees memory with reference counting plus a cycle detector for "
              "objects that refer to each other.",
    "tides": "Ocean tides are caused mainly by the Moon's gravity pulling on the Earth's oceans, with a smaller "
             "contribution from the Sun.",
    "marathon": "Training for a marathon means building weekly mileage gradually, with one long run each week "
                "and enough rest days to avoid injury.",
    "vaccines": "Vaccines train the immune system to recognise a pathogen by exposing it to a harmless piece or "
                "weakened form of that pathogen.",
}

QUERIES = {
    "When should I travel to Japan to see the fall colours?": "kyoto",
    "How do I make bread with a starter?": "sourdough",
    "How does memory management work in Python?": "python",
    "Why does the sea level rise and fall every day?": "tides",
    "How should I prepare to run 42 kilometres?": "marathon",
    "How do immunisations protect people?": "vaccines",
}


def ingest_passages(svc: RagService, **opts: object) -> dict[str, object]:
    docs = [{"id": k, "content": v, "metadata": {"topic": k}} for k, v in PASSAGES.items()]
    return svc.ingest(docs, opts)


def test_semantic_search_ranks_the_relevant_passage_first(service: RagService) -> None:
    res = ingest_passages(service)
    assert res["documents_processed"] == 6 and res["vectors_created"] == 6 and res["skipped"] == 0
    assert res["ids"] == list(PASSAGES)
    for query, want in QUERIES.items():
        hits = service.search(query, {"limit": 3})
        assert hits[0]["document_id"] == want, (query, [(h["document_id"], h["score"]) for h in hits])
        assert hits[0]["score"] > hits[1]["score"]


def test_result_shape(service: RagService) -> None:
    ingest_passages(service, collection="c1")
    h = service.search("tides and the moon", {"collection": "c1", "limit": 1})[0]
    assert set(h) == {"id", "document_id", "chunk_index", "content", "text", "score", "metadata", "collection"}
    assert h["text"] == h["content"] == PASSAGES["tides"] and h["collection"] == "c1"
    assert h["metadata"]["topic"] == "tides" and h["metadata"]["text"] == h["text"]
    assert h["metadata"]["document_id"] == "tides" and h["metadata"]["chunk_index"] == 0
    assert isinstance(h["score"], float) and isinstance(h["chunk_index"], int)


def test_options_limit_threshold_and_filters(service: RagService) -> None:
    ingest_passages(service)
    assert len(service.search("bread", {"k": 2})) == 2
    assert len(service.search("bread", {"top_k": 4})) == 4
    assert all(h["score"] >= 0.3 for h in service.search("bread", {"threshold": 0.3}))
    assert service.search("bread", {"threshold": 0.99}) == []
    only = service.search("bread", {"metadata_filter": {"topic": "tides"}})
    assert [h["document_id"] for h in only] == ["tides"]
    anyof = service.search("bread", {"filters": {"topic": ["tides", "python"]}})
    assert {h["document_id"] for h in anyof} == {"tides", "python"}
    for bad in ({"limit": 0}, {"limit": -1}, {"limit": 1.5}, {"threshold": "x"}):
        with pytest.raises(RagError):
            service.search("bread", bad)  # type: ignore[arg-type]


def test_chunking_options_and_metadata_offsets(service: RagService) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(80))
    res = service.ingest({"id": "long", "content": text, "metadata": {"source": "gen.txt"}},
                         {"chunk_size": 50, "chunk_overlap": 10})
    assert res["chunks_created"] > 8 and res["total_tokens"] > 0
    hits = service.search("Sentence number 50", {"limit": 50})
    for h in hits:
        m = h["metadata"]
        assert m["source"] == "gen.txt" and text[m["start_char"]:m["end_char"]] == h["text"]
    with pytest.raises(RagError, match="chunk_overlap"):
        service.ingest("x", {"chunk_size": 10, "chunk_overlap": 10})
    res = service.ingest({"id": "s", "content": text}, {"chunking": {"chunk_size": 40, "overlap": 5,
                                                                     "strategy": "sentences"}})
    assert res["chunks_created"] > 8


def test_bad_documents(service: RagService) -> None:
    res = service.ingest([{"content": ""}, {"text": "   "}, "real text here"])
    assert res["skipped"] == 2 and res["documents_processed"] == 1
    with pytest.raises(RagError, match="document 2 requires 'content' or 'text'"):
        service.ingest([{"content": "a"}, {"metadata": {}}])
    with pytest.raises(RagError):
        service.ingest(42)
    with pytest.raises(RagError):
        service.search("")


def test_non_utf8_text_is_replaced_not_rejected(service: RagService) -> None:
    raw = b"caf\xe9 au lait \xff\xfe and croissants in Paris"
    res = service.ingest({"id": "bytes", "content": raw})
    assert res["documents_processed"] == 1
    hit = service.search("coffee and pastries in France", {"limit": 1})[0]
    assert "\ufffd" in hit["text"] and hit["document_id"] == "bytes"


def test_reingest_replaces_and_delete(service: RagService) -> None:
    ingest_passages(service)
    ingest_passages(service)  # same ids: replaced, not duplicated
    assert service.get_stats()["total_vectors"] == 6
    service.ingest("same text twice")
    service.ingest("same text twice")  # no id: a content hash id, so still one document
    assert service.get_stats()["total_documents"] == 7
    assert service.delete(["kyoto", "python"]) == 2
    assert service.delete({"metadata_filter": {"topic": ["tides", "vaccines"]}}) == 2
    assert service.delete(["nope"]) == 0
    assert [h["document_id"] for h in service.search("bread", {"limit": 10})][0] == "sourdough"
    assert service.get_stats()["total_vectors"] == 3


def test_scopes_are_isolated(service: RagService) -> None:
    service.ingest({"id": "g", "content": "global note about cats"})
    service.ingest({"id": "t", "content": "tenant note about cats"}, {"tenant_id": "acme"})
    service.ingest({"id": "s", "content": "session note about cats"}, {"scope": "session", "scope_id": "s1"})
    assert [h["document_id"] for h in service.search("cats")] == ["g"]
    assert [h["document_id"] for h in service.search("cats", {"tenant_id": "acme"})] == ["t"]
    assert [h["document_id"] for h in service.search("cats", {"scope": "tenant", "scope_id": "acme"})] == ["t"]
    assert [h["document_id"] for h in service.search("cats", {"scope": "session", "scope_id": "s1"})] == ["s"]
    usage = service.get_stats("tenant", "acme")
    assert usage == {"total_vectors": 1, "embeddings_generated": 3, "embedding_tokens": usage["embedding_tokens"],
                     "searches_performed": 2}
    assert service.cleanup_scope("tenant", "acme") == 1
    assert service.search("cats", {"tenant_id": "acme"}) == []
    with pytest.raises(RagError, match="scope_id"):
        service.search("cats", {"scope": "tenant"})
    with pytest.raises(RagError, match="scope_id needs scope"):
        service.search("cats", {"scope_id": "x"})
    with pytest.raises(RagError, match="unknown scope"):
        service.search("cats", {"scope": "planet", "scope_id": "x"})


def test_ttl_expiry(service: RagService, monkeypatch: pytest.MonkeyPatch) -> None:
    service.ingest({"id": "short", "content": "ephemeral fact about owls", "metadata": {"ttl_seconds": 60}})
    info = service.create_session_collection("sess", 30)
    assert info == {"session_id": "sess", "namespace": "session_sess", "ttl": 30, "created": True}
    service.ingest({"id": "sv", "content": "session fact about owls"}, {"scope": "session", "scope_id": "sess"})
    assert service.search("owls")[0]["document_id"] == "short"
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    assert service.search("owls") == []
    assert service.search("owls", {"scope": "session", "scope_id": "sess"}) == []
    assert service.configure_session({"session_id": "sess", "vector_ttl": 5}) == {
        "session_id": "sess", "vector_ttl": 5, "configured": True}


def test_stats_and_collections(service: RagService) -> None:
    empty = service.get_stats()
    assert empty["total_vectors"] == 0 and empty["collections"] == 0 and empty["dimensions"] == 384
    ingest_passages(service, collection="a")
    service.ingest("one more", {"collection": "b"})
    s = service.get_stats("a")
    assert (s["total_vectors"], s["total_documents"], s["collections"], s["collection"]) == (6, 6, 2, "a")
    assert s["total_storage_bytes"] > 6 * 384 * 4 and s["embedding_model"] == "all-MiniLM-L6-v2"
    assert service.get_stats("missing")["total_vectors"] == 0
    assert service.get_stats()["total_vectors"] == 7
    cols = service.list_collections()
    assert [(c["name"], c["vectors"], c["documents"], c["dimensions"]) for c in cols] == [
        ("a", 6, 6, 384), ("b", 1, 1, 384)]
    assert service.delete_collection("b") is True and service.delete_collection("b") is False
    assert service.search("one more", {"collection": "b"}) == []


def test_configure_sets_defaults_and_records_embedder_requests(service: RagService) -> None:
    ingest_passages(service, collection="notes")
    assert service.configure({"collection": "notes", "limit": 2, "provider": "openai",
                              "embedding_model": "text-embedding-3-small", "vector_dimensions": 1536}) is True
    assert len(service.search("bread")) == 2
    s = service.get_stats()
    assert s["requested_embedding"] == {"provider": "openai", "embedding_model": "text-embedding-3-small",
                                        "vector_dimensions": 1536}
    assert s["embedding_model"] == "all-MiniLM-L6-v2"
    with pytest.raises(RagError):
        service.configure({"chunk_size": 10, "chunk_overlap": 20})


def test_max_vectors(tmp_path: Path) -> None:
    svc = make_service(tmp_path, max_vectors=3)
    try:
        svc.ingest(["a b", "c d", "e f"])
        with pytest.raises(RagError, match="max_vectors"):
            svc.ingest("g h")
        assert svc.get_stats()["total_vectors"] == 3
        svc.ingest("a b")  # re-ingesting a stored document replaces it: still within the limit
    finally:
        svc.close()


def test_persists_across_services(tmp_path: Path) -> None:
    a = make_service(tmp_path)
    ingest_passages(a)
    a.close()
    b = make_service(tmp_path)
    try:
        assert b.search("How do I make bread with a starter?")[0]["document_id"] == "sourdough"
        assert b.get_stats()["total_vectors"] == 6
    finally:
        b.close()


def test_memory_backend_keeps_nothing(tmp_path: Path) -> None:
    cfg_state = {"backend": "memory"}
    a = make_service(tmp_path)
    a.config.set("state.backend", cfg_state["backend"])
    a.ingest("kept only in memory")
    assert a.get_stats()["total_vectors"] == 1
    a.close()
    b = make_service(tmp_path)
    b.config.set("state.backend", "memory")
    assert b.get_stats()["total_vectors"] == 0
    b.close()
    assert not (tmp_path / "state.sqlite3").exists()


def test_persistence_path_directory(tmp_path: Path) -> None:
    svc = make_service(tmp_path, persistence_path=str(tmp_path / "vectors"))
    svc.ingest("stored in its own directory")
    svc.close()
    assert (tmp_path / "vectors" / "rag.sqlite3").is_file()


def test_dimension_mismatch_names_both_models(service: RagService) -> None:
    store = service.store
    store.ensure_collection("legacy", "openai/text-embedding-3-small", 1536)
    store.replace_document(store.collection("legacy"), "global", "d",  # type: ignore[arg-type]
                           [ChunkRow(0, "old", {}, np.ones(1536, dtype=np.float32) / np.sqrt(1536))], None)
    for call in (lambda: service.search("anything", {"collection": "legacy"}),
                 lambda: service.ingest("new text", {"collection": "legacy"})):
        with pytest.raises(RagError) as e:
            call()
        msg = str(e.value)
        assert "openai/text-embedding-3-small (1536 dimensions)" in msg and "all-MiniLM-L6-v2 (384 dimensions)" in msg


def test_corrupt_index_file_is_rebuilt_not_lost(tmp_path: Path) -> None:
    hnsw = {"backend": "hnsw", "ann_threshold": 1, "hnsw": {"m": 8, "ef_construction": 50, "ef_search": 32}}
    a = make_service(tmp_path, vector_storage=hnsw)
    ingest_passages(a)
    a.close()
    files = sorted((tmp_path / "state.rag-index").glob("*.hnsw"))
    assert len(files) == 1
    files[0].write_bytes(b"\x00corrupt\x00" * 100)
    b = make_service(tmp_path, vector_storage=hnsw)
    try:
        assert b.search("How do immunisations protect people?")[0]["document_id"] == "vaccines"
        assert b.get_stats()["total_vectors"] == 6
    finally:
        b.close()
    files[0].unlink()
    (tmp_path / "state.rag-index" / (files[0].name + ".json")).unlink()
    c = make_service(tmp_path, vector_storage=hnsw)
    try:
        assert c.search("Why does the sea level rise and fall every day?")[0]["document_id"] == "tides"
    finally:
        c.close()
    assert files[0].is_file()  # rebuilt and written again


def test_list_providers(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    assert svc.list_providers()[0] == "local"


def test_writes_from_another_store_are_seen(tmp_path: Path) -> None:
    a, b = make_service(tmp_path), make_service(tmp_path)
    try:
        a.ingest({"id": "one", "content": "first document about herons"})
        assert [h["document_id"] for h in b.search("herons")] == ["one"]  # b loads its index now
        a.ingest({"id": "two", "content": "second document about herons"})
        assert {h["document_id"] for h in b.search("herons")} == {"one", "two"}  # reloaded after a's write
        b.delete(["one"])
        assert [h["document_id"] for h in a.search("herons")] == ["two"]
    finally:
        a.close()
        b.close()


def test_saved_graph_survives_writes_to_other_collections(tmp_path: Path) -> None:
    hnsw = {"backend": "hnsw", "ann_threshold": 1, "hnsw": {"m": 8, "ef_construction": 50, "ef_search": 32}}
    a = make_service(tmp_path, vector_storage=hnsw)
    ingest_passages(a, collection="big")
    a.close()
    graph = next((tmp_path / "state.rag-index").glob("big-*.hnsw"))
    written = graph.stat().st_mtime_ns
    b = make_service(tmp_path, vector_storage=hnsw)
    b.ingest("another collection entirely", {"collection": "other"})
    b.close()
    c = make_service(tmp_path, vector_storage=hnsw)
    try:
        assert c.search("How do I make bread with a starter?", {"collection": "big"})[0]["document_id"] == "sourdough"
        c.save()
    finally:
        c.close()
    assert graph.stat().st_mtime_ns == written  # loaded as saved, not rebuilt
