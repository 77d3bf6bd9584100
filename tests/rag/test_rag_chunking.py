"""Chunking by tokens, characters and sentences; offsets; streaming with bounded memory."""

from __future__ import annotations

import re
import tracemalloc

import pytest

from llmspell.rag.chunking import WINDOW_CHARS, ChunkSpec, chunk_stream, chunk_text


def words(text: str) -> list[tuple[int, int]]:
    """A cheap stand-in tokenizer: one token per word."""
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


TEXT = " ".join(f"w{i}" for i in range(100))


def test_token_chunks_have_size_and_overlap() -> None:
    chunks = list(chunk_text(TEXT, ChunkSpec(size=10, overlap=3), words))
    assert [c.units for c in chunks[:-1]] == [10] * (len(chunks) - 1)
    assert chunks[0].text.split() == [f"w{i}" for i in range(10)]
    assert chunks[1].text.split()[:3] == ["w7", "w8", "w9"]
    assert chunks[-1].text.split()[-1] == "w99"
    for c in chunks:
        assert TEXT[c.start:c.end] == c.text
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_no_tail_chunk_made_only_of_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(17))  # 10 then 7 more (3 overlap + 7 new): exactly 2 chunks
    assert len(list(chunk_text(text, ChunkSpec(size=10, overlap=3), words))) == 2


def test_character_unit() -> None:
    chunks = list(chunk_text("abcdefghij", ChunkSpec(size=4, overlap=1, unit="characters"), words))
    assert [c.text for c in chunks] == ["abcd", "defg", "ghij"]


def test_sentence_strategy_packs_whole_sentences() -> None:
    text = "One two three. Four five six seven. Eight nine. Ten eleven twelve thirteen fourteen."
    chunks = list(chunk_text(text, ChunkSpec(size=8, overlap=2, strategy="sentences"), words))
    assert chunks[0].text == "One two three. Four five six seven."
    for c in chunks:
        assert c.units <= 8 and text[c.start:c.end] == c.text
    assert chunks[-1].text.endswith("fourteen.")


def test_long_sentence_is_cut() -> None:
    text = "Short one. " + " ".join(["long"] * 25) + ". End."
    chunks = list(chunk_text(text, ChunkSpec(size=8, overlap=2, strategy="sentences"), words))
    assert all(c.units <= 8 for c in chunks)
    assert "End." in chunks[-1].text


@pytest.mark.parametrize("bad", [dict(size=5, overlap=5), dict(size=0), dict(strategy="x"), dict(unit="bytes")])
def test_bad_specs(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ChunkSpec(**bad)  # type: ignore[arg-type]


def test_empty_and_whitespace_give_no_chunks() -> None:
    assert list(chunk_text("", ChunkSpec(), words)) == []
    assert list(chunk_text(" \n\t ", ChunkSpec(), words)) == []


def test_stream_of_pieces_equals_whole_text() -> None:
    text = ("alpha beta gamma. " * 5000)
    whole = [(c.start, c.end, c.text) for c in chunk_text(text, ChunkSpec(50, 5), words)]
    pieces = [text[i:i + 777] for i in range(0, len(text), 777)]
    assert [(c.start, c.end, c.text) for c in chunk_stream(pieces, ChunkSpec(50, 5), words)] == whole


def _peak_while_chunking(blocks: int) -> tuple[int, int, int]:
    """(chunks, last end offset, peak traced bytes) for a generated document of `blocks` x 64 KB."""
    def pieces():  # generated piece by piece: the document is never held whole
        block = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do. " * 1000
        for _ in range(blocks):
            yield block

    tracemalloc.start()
    try:
        n = last_end = 0
        for c in chunk_stream(pieces(), ChunkSpec(256, 32), words):
            n += 1
            last_end = c.end
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return n, last_end, peak


def test_huge_document_uses_bounded_memory() -> None:
    n_small, _, peak_small = _peak_while_chunking(10)
    n, last_end, peak = _peak_while_chunking(50)  # ~3.2 MB of text
    assert n > 1000 and last_end > 3_000_000 and n > 4 * n_small
    assert peak < 40 * WINDOW_CHARS * 2, peak  # a few windows, below the size of the document
    assert peak < 1.5 * peak_small + 100_000, (peak_small, peak)  # does not grow with the document


def test_non_utf8_replacement_characters_are_plain_text() -> None:
    text = "caf\ufffd au lait \ufffd\ufffd end"
    chunks = list(chunk_text(text, ChunkSpec(3, 1), words))
    assert chunks[0].text == "caf\ufffd au lait"


def test_text_without_any_boundary_is_still_chunked() -> None:
    text = "x" * (5 * WINDOW_CHARS) + " tail words here"
    chunks = list(chunk_text(text, ChunkSpec(size=4, overlap=1, strategy="sentences"), words))
    assert "".join(c.text for c in chunks).startswith("x" * 1000)
    assert chunks[-1].text.endswith("here")
    for c in chunks:
        assert text[c.start:c.end] == c.text
