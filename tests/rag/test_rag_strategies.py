"""Chunking strategy names of the reference (issue 21.1): sliding_window (default), semantic, sentence; unknown fatal."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from llmspell.config import ConfigError, load_config
from llmspell.rag.chunking import ChunkSpec, chunk_text
from llmspell.rag.service import RagError

from .conftest import make_service


def words(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


TOKENS = " ".join(f"w{i}" for i in range(40))
SENTENCES = ("The tide rises twice a day. The Moon pulls the oceans. Bread needs a starter and time. "
             "Ovens should be hot. Maples turn red in autumn.")


def _texts(spec: ChunkSpec, text: str) -> list[str]:
    return [c.text for c in chunk_text(text, spec, words)]


def test_sliding_window_is_token_windows_with_the_overlap() -> None:
    chunks = list(chunk_text(TOKENS, ChunkSpec(size=10, overlap=4, strategy="sliding_window"), words))
    assert [c.text.split()[0] for c in chunks] == ["w0", "w6", "w12", "w18", "w24", "w30"]
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.text.split()[-4:] == b.text.split()[:4]  # consecutive windows share exactly `overlap` tokens
    assert _texts(ChunkSpec(size=10, overlap=4, strategy="tokens"), TOKENS) == [c.text for c in chunks]


def test_sliding_window_is_the_default() -> None:
    assert ChunkSpec().strategy == "sliding_window"
    assert _texts(ChunkSpec(size=10, overlap=4), TOKENS) == _texts(ChunkSpec(size=10, overlap=4, strategy="tokens"),
                                                                   TOKENS)


@pytest.mark.parametrize("name", ["semantic", "sentence"])
def test_semantic_and_sentence_pack_whole_sentences(name: str) -> None:
    got = _texts(ChunkSpec(size=12, overlap=0, strategy=name), SENTENCES)
    assert got == _texts(ChunkSpec(size=12, overlap=0, strategy="sentences"), SENTENCES)
    assert all(t.endswith(".") for t in got)  # never cut inside a sentence
    assert got != _texts(ChunkSpec(size=12, overlap=0, strategy="sliding_window"), SENTENCES)


@pytest.mark.parametrize("name", ["windows", "Semantic", "", "paragraph"])
def test_unknown_strategy_raises_listing_the_accepted(name: str) -> None:
    with pytest.raises(ValueError, match="unknown chunking strategy .*sliding_window.*semantic"):
        ChunkSpec(strategy=name)


def _cfg(tmp_path: Path, strategy: str) -> Any:
    f = tmp_path / "llmspell.toml"
    f.write_text(f'[rag]\nenabled = true\n[rag.chunking]\nstrategy = "{strategy}"\nchunk_size = 64\noverlap = 8\n')
    return load_config(f, env={**os.environ, "LLMSPELL_STATE_PATH": str(tmp_path / "s.sqlite3")})


@pytest.mark.parametrize("name", ["sliding_window", "semantic", "sentence", "sentences", "tokens"])
def test_config_accepts_the_reference_names(tmp_path: Path, name: str) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.script.engine import BufferSink

    rt = create_runtime(_cfg(tmp_path, name), stdout=BufferSink(), stderr=BufferSink())
    try:
        res = rt.run_string('local r = RAG.ingest({content = "' + SENTENCES + '"}) return r.chunks_created', "=t")
        assert res.values[0] >= 1
    finally:
        rt.close()


def test_config_unknown_strategy_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="strategy"):
        _cfg(tmp_path, "windowed")


def test_ingest_option_names(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    try:
        text = " ".join(SENTENCES.split() * 6)
        sem = svc.ingest({"content": text, "id": "a"}, {"chunking": {"strategy": "semantic", "chunk_size": 20,
                                                                      "overlap": 0}})
        win = svc.ingest({"content": text, "id": "b"}, {"chunking": {"strategy": "sliding_window", "chunk_size": 20,
                                                                      "overlap": 5}})
        assert sem["chunks_created"] >= 2 and win["chunks_created"] > sem["chunks_created"]
        with pytest.raises(RagError, match="unknown chunking strategy 'fixed'"):
            svc.ingest({"content": text}, {"chunking": {"strategy": "fixed"}})
    finally:
        svc.close()
