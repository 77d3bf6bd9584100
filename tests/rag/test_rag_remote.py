"""Remote embeddings: an OpenAI-compatible /embeddings endpoint (mocked transport, real request code)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import numpy as np
import pytest
import respx

from llmspell.config import load_config
from llmspell.rag.embeddings import EmbeddingError, RemoteEmbedder, RemoteEndpoint, make_embedder
from llmspell.rag.service import RagError, RagService

BASE = "http://127.0.0.1:9/v1"


def fake_embeddings(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    assert request.headers.get("authorization") == "Bearer sk-test"
    data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0, float(i)]} for i, t in enumerate(body["input"])]
    return httpx.Response(200, json={"data": list(reversed(data)), "usage": {"prompt_tokens": 7}})


def embedder(dims: int = 4) -> RemoteEmbedder:
    return RemoteEmbedder("local-openai", "tiny-embed", dims, batch_size=2,
                          resolve=lambda: RemoteEndpoint("local-openai", BASE, "sk-test"))


@respx.mock
def test_remote_embeddings_are_ordered_normalised_and_batched() -> None:
    route = respx.post(f"{BASE}/embeddings").mock(side_effect=fake_embeddings)
    res = embedder().embed(["a", "bb", "ccc"])
    assert route.call_count == 2  # batch_size 2
    assert res.vectors.shape == (3, 4) and res.tokens == 14
    assert np.allclose(np.linalg.norm(res.vectors, axis=1), 1.0)
    assert res.vectors[2, 0] > res.vectors[0, 0]  # index order restored


@respx.mock
def test_remote_errors_are_clear() -> None:
    respx.post(f"{BASE}/embeddings").mock(return_value=httpx.Response(401, json={"error": "bad key"}))
    with pytest.raises(EmbeddingError, match="HTTP 401"):
        embedder().embed(["x"])


@respx.mock
def test_remote_dimension_mismatch_is_named() -> None:
    respx.post(f"{BASE}/embeddings").mock(side_effect=fake_embeddings)
    with pytest.raises(EmbeddingError, match="returned 4 dimensions but \\[rag.embedding\\] dimensions is 8"):
        embedder(8).embed(["x"])


def test_remote_chunking_counts_quarter_characters() -> None:
    e = embedder()
    assert e.count_tokens("abcdefghi") == 3 and e.token_spans("abcdefghi")[-1] == (8, 9)


@respx.mock
def test_service_with_remote_provider(tmp_path: Path) -> None:
    respx.post(f"{BASE}/embeddings").mock(side_effect=fake_embeddings)
    env = {**os.environ, "LLMSPELL_STATE_PATH": str(tmp_path / "s.sqlite3"), "LLMSPELL_RAG_ENABLED": "1",
           "LLMSPELL_PROVIDER_MYEMB_BASE_URL": BASE, "LLMSPELL_PROVIDER_MYEMB_API_KEY": "sk-test"}
    cfg = load_config(env=env)
    cfg.set("rag.embedding.provider", "myemb")
    cfg.set("rag.embedding.model", "tiny-embed")
    cfg.set("rag.embedding.dimensions", 4)
    svc = RagService(cfg)
    try:
        res = svc.ingest({"id": "d", "content": "x" * 40}, {"chunk_size": 5, "chunk_overlap": 1})
        assert res["chunks_created"] == 3  # 40 chars = 10 quarter-char tokens in windows of 5 with overlap 1
        assert svc.get_stats()["embedding_model"] == "myemb/tiny-embed"
        assert svc.search("query")[0]["document_id"] == "d"
        assert "myemb" in svc.list_providers()
    finally:
        svc.close()
    local = load_config(env=env)
    local_svc = RagService(local)
    try:  # the same collection searched with the local model: mismatch names both
        with pytest.raises(RagError, match="myemb/tiny-embed \\(4 dimensions\\).*all-MiniLM-L6-v2 \\(384"):
            local_svc.search("query")
    finally:
        local_svc.close()


def test_local_provider_rejects_other_models() -> None:
    cfg = load_config(env={})
    cfg.set("rag.embedding.model", "bge-small")
    with pytest.raises(EmbeddingError, match="not available locally"):
        make_embedder(cfg)


@respx.mock
def test_service_embeds_through_the_provider_registry(tmp_path: Path) -> None:
    from llmspell.bootstrap import build_services

    route = respx.post(f"{BASE}/embeddings").mock(side_effect=fake_embeddings)
    env = {**os.environ, "LLMSPELL_STATE_PATH": str(tmp_path / "s.sqlite3"), "LLMSPELL_RAG_ENABLED": "1",
           "LLMSPELL_PROVIDER_MYEMB_BASE_URL": BASE, "LLMSPELL_PROVIDER_MYEMB_API_KEY": "sk-test"}
    cfg = load_config(env=env)
    cfg.set("rag.embedding.provider", "myemb")
    cfg.set("rag.embedding.model", "tiny-embed")
    cfg.set("rag.embedding.dimensions", 4)
    services = build_services(cfg)
    svc = services.rag
    try:
        assert hasattr(services.providers, "embed")
        res = svc.ingest({"id": "d", "content": "y" * 20})
        assert res["chunks_created"] == 1 and res["total_tokens"] == 7  # usage reported by the endpoint
        assert route.call_count == 1
    finally:
        svc.close()
