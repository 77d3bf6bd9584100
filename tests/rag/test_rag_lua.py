"""The RAG global from Lua: presence, result shapes, integer counts, errors, persistence across runtimes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from llmspell.script.engine import ScriptError


def run(rt: Any, code: str) -> list[Any]:
    return rt.run_string(code, "=test").values


def test_rag_is_absent_when_disabled(lua_runtime: Any) -> None:
    assert run(lua_runtime, "return RAG == nil") == [True]


def test_ingest_and_search_shapes(rag_runtime: Any) -> None:
    out = run(rag_runtime, """
      local r = RAG.ingest({
        {content = "Kyoto is best visited in autumn when the maple leaves turn red.", metadata = {topic = "travel"}},
        {text = "Sourdough bread needs a lively starter and a long slow rise.", metadata = {topic = "food"}, id = "bread"},
        {content = ""},
      }, {collection = "notes", chunk_size = 200})
      assert(r.success == true and r.collection == "notes")
      for _, k in ipairs({"documents_processed", "vectors_created", "chunks_created", "skipped", "total_tokens"}) do
        assert(math.type(r[k]) == "integer", k)
      end
      assert(r.documents_processed == 2 and r.skipped == 1 and r.ids[2] == "bread")
      local hits = RAG.search("best time to visit Kyoto", {limit = 3, collection = "notes"})
      assert(#hits == 2 and hits.total == 2 and math.type(hits.total) == "integer" and hits.success == true)
      assert(#hits.results == 2 and hits.results[1] == hits[1])
      local n = 0
      for i, h in ipairs(hits) do n = n + 1 end
      assert(n == 2)
      local h = hits[1]
      assert(h.metadata.topic == "travel" and h.text == h.content and h.metadata.text == h.text)
      assert(math.type(h.score) == "float" and math.type(h.chunk_index) == "integer" and h.collection == "notes")
      local none = RAG.search("anything", {collection = "empty"})
      assert(#none == 0 and none.total == 0 and none.success == true and #none.results == 0)
      return JSON.encode(none.results), hits[1].document_id
    """)
    assert out[0] == "[]"


def test_stats_configure_and_management(rag_runtime: Any) -> None:
    out = run(rag_runtime, """
      RAG.ingest("a note about owls", {collection = "birds"})
      RAG.ingest({content = "a note about trout", id = "fish1", metadata = {kind = "fish"}}, {collection = "fish"})
      local s = RAG.get_stats("birds")
      for _, k in ipairs({"total_vectors", "total_documents", "total_storage_bytes", "collections", "dimensions"}) do
        assert(math.type(s[k]) == "integer", k)
      end
      assert(s.total_vectors == 1 and s.collections == 2 and s.dimensions == 384 and s.collection == "birds")
      assert(RAG.get_stats().total_vectors == 2 and RAG.get_stats().collection == nil)
      assert(RAG.configure({collection = "fish", limit = 1, provider = "openai"}) == true)
      assert(RAG.get_stats().requested_embedding.provider == "openai")
      assert(#RAG.search("trout") == 1)
      assert(RAG.save() == true)
      local cols = RAG.list_collections()
      assert(#cols == 2 and cols[1].name == "birds" and math.type(cols[1].vectors) == "integer")
      assert(RAG.delete({metadata_filter = {kind = "fish"}}) == 1)
      assert(RAG.delete({"nothing"}) == 0)
      assert(RAG.delete_collection("birds") == true and RAG.delete_collection("birds") == false)
      local sc = RAG.create_session_collection("s1", 60)
      assert(sc.namespace == "session_s1" and sc.ttl == 60 and sc.created == true)
      local cs = RAG.configure_session({session_id = "s1", vector_ttl = 30})
      assert(cs.configured == true and cs.vector_ttl == 30)
      RAG.ingest("session scoped text", {scope = "session", scope_id = "s1"})
      local st = RAG.get_stats("session", "s1")
      assert(st.total_vectors == 1 and math.type(st.embeddings_generated) == "integer")
      assert(RAG.cleanup_scope("session", "s1") == 1)
      return RAG.list_providers()[1]
    """)
    assert out == ["local"]


@pytest.mark.parametrize(("code", "message"), [
    ('RAG.search("x", {limit = 0})', "RAG.search: limit must be a positive integer"),
    ('RAG.ingest({{metadata = {}}})', "RAG.ingest: document 1 requires 'content' or 'text'"),
    ('RAG.ingest("x", {chunk_size = 10, chunk_overlap = 10})', "RAG.ingest: chunk_overlap (10) must be smaller"),
    ('RAG.search("x", 5)', "RAG.search: opts must be a table"),
    ('RAG.search("x", {scope = "tenant"})', "RAG.search: scope 'tenant' needs scope_id"),
])
def test_misuse_raises_positioned_string_errors(rag_runtime: Any, code: str, message: str) -> None:
    with pytest.raises(ScriptError) as e:
        rag_runtime.run_string(code, "@main.lua")
    assert e.value.file == "main.lua" and e.value.line == 1
    assert e.value.message.startswith(message), e.value.message
    ok, err = run(rag_runtime, f"return pcall(function() {code} end)")
    assert ok is False and isinstance(err, str)


def test_non_utf8_lua_string_is_ingested(rag_runtime: Any) -> None:
    out = run(rag_runtime, r"""
      local r = RAG.ingest({content = "caf\xe9 cr\xe8me \xff br\xfbl\xe9e dessert", id = "latin1"})
      local h = RAG.search("dessert", {limit = 1})[1]
      return r.documents_processed, h.document_id, h.text:find("\u{FFFD}") ~= nil
    """)
    assert out == [1, "latin1", True]


def test_vectors_survive_a_new_runtime(rag_runtime: Any, tmp_path: Path) -> None:
    run(rag_runtime, 'RAG.ingest({content = "The tides follow the Moon.", id = "tides"}, {collection = "kb"})')
    rag_runtime.close()
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    rt2 = create_runtime(load_config(env=dict(os.environ)), stdout=BufferSink(), stderr=BufferSink())
    try:
        out = run(rt2, 'local h = RAG.search("what causes tides", {collection = "kb"}); return #h, h[1].document_id')
        assert out == [1, "tides"]
    finally:
        rt2.close()
    assert (tmp_path / "state.sqlite3").is_file()


def test_runtime_start_loads_nothing_heavy(rag_runtime: Any) -> None:
    svc = rag_runtime.services.rag
    assert "rag" in rag_runtime.installed_globals
    assert svc._embedder is None and svc._store is None  # model and database open on first use
