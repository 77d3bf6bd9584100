"""Split documents into overlapping chunks measured in embedder tokens or characters, streaming.

Text is consumed in windows of about `WINDOW_CHARS` characters cut at a safe boundary (whitespace
for token chunks, a sentence end for sentence chunks), so a huge document is chunked with memory
bounded by the window and one chunk, never by the document. Offsets are in characters (code
points) of the original text; chunk text is the original slice, so casing and spacing survive.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

WINDOW_CHARS = 32_768
_MAX_BUFFER = 4 * WINDOW_CHARS  # a window with no boundary at all is cut here anyway
_WS = re.compile(r"\s")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+|\n\s*\n")

Spans = Callable[[str], list[tuple[int, int]]]
#: Accepted strategy names -> what runs: token windows with overlap, or whole sentences packed into chunks.
#: `sliding_window` (the default), `semantic` and `sentence` are the reference's names (lua-api.md §20.7).
STRATEGIES = {"sliding_window": "tokens", "tokens": "tokens", "sentences": "sentences", "sentence": "sentences",
              "semantic": "sentences"}
DEFAULT_STRATEGY = "sliding_window"
UNITS = ("tokens", "characters")


def strategy_kind(name: str) -> str:
    """`tokens` or `sentences` for an accepted strategy name; ValueError naming the accepted ones otherwise."""
    kind = STRATEGIES.get(name)
    if kind is None:
        raise ValueError(f"unknown chunking strategy '{name}' (use one of {', '.join(STRATEGIES)})")
    return kind


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """How to chunk: `size` and `overlap` in `unit`s, packed by `strategy`."""

    size: int = 256
    overlap: int = 32
    strategy: str = DEFAULT_STRATEGY
    unit: str = "tokens"

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.size}")
        if self.overlap < 0:
            raise ValueError(f"chunk_overlap must be >= 0, got {self.overlap}")
        if self.overlap >= self.size:
            raise ValueError(f"chunk_overlap ({self.overlap}) must be smaller than chunk_size ({self.size})")
        strategy_kind(self.strategy)
        if self.unit not in UNITS:
            raise ValueError(f"unknown chunking unit '{self.unit}' (use 'tokens' or 'characters')")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its position in the document, text, character offsets and size in units."""

    index: int
    text: str
    start: int
    end: int
    units: int


def char_spans(text: str) -> list[tuple[int, int]]:
    """One span per character: chunking by characters."""
    return [(i, i + 1) for i in range(len(text))]


class _Source:
    """Text arriving in pieces, handed out as boundary-cut segments; keeps only what chunks still need."""

    def __init__(self, pieces: Iterable[str], boundary: re.Pattern[str]) -> None:
        self._pieces = pieces
        self._boundary = boundary
        self._kept: deque[tuple[int, str]] = deque()

    def segments(self) -> Iterator[tuple[int, str]]:
        buf = ""
        base = 0
        for piece in _windows(self._pieces):
            buf += piece
            while len(buf) >= WINDOW_CHARS:
                cut = self._cut(buf)
                if cut <= 0:
                    break
                yield self._keep(base, buf[:cut])
                base += cut
                buf = buf[cut:]
        if buf:
            yield self._keep(base, buf)

    def _cut(self, buf: str) -> int:
        last = -1
        for m in self._boundary.finditer(buf, max(0, len(buf) - _MAX_BUFFER)):
            last = m.end()
        if last > 0:
            return last
        if len(buf) < _MAX_BUFFER:
            return 0  # wait for more text
        ws = max(buf.rfind(" ", 0, _MAX_BUFFER), buf.rfind("\n", 0, _MAX_BUFFER))
        return ws + 1 if ws > 0 else _MAX_BUFFER  # no boundary at all: a space, else a hard cut

    def _keep(self, base: int, seg: str) -> tuple[int, str]:
        self._kept.append((base, seg))
        return base, seg

    def text(self, start: int, end: int) -> str:
        parts = []
        for b, s in self._kept:
            if b >= end:
                break
            if b + len(s) > start:
                parts.append(s[max(0, start - b):end - b])
        return "".join(parts)

    def release(self, before: int) -> None:
        """Forget text that ends before `before` (no future chunk starts there)."""
        while self._kept and self._kept[0][0] + len(self._kept[0][1]) <= before:
            self._kept.popleft()


def _windows(pieces: Iterable[str]) -> Iterator[str]:
    """Re-cut incoming pieces so no single piece is larger than a window."""
    for p in pieces:
        for i in range(0, len(p), WINDOW_CHARS):
            yield p[i:i + WINDOW_CHARS]


def chunk_text(text: str, spec: ChunkSpec, spans: Spans) -> Iterator[Chunk]:
    """Chunks of one in-memory document (streamed window by window)."""
    return chunk_stream([text], spec, spans)


def chunk_stream(pieces: Iterable[str], spec: ChunkSpec, spans: Spans) -> Iterator[Chunk]:
    """Chunks of a document given as successive pieces of text (a file read in blocks, say)."""
    if spec.unit == "characters":
        spans = char_spans
    if strategy_kind(spec.strategy) == "sentences":
        return _sentence_chunks(pieces, spec, spans)
    return _token_chunks(pieces, spec, spans)


def _token_chunks(pieces: Iterable[str], spec: ChunkSpec, spans: Spans) -> Iterator[Chunk]:
    src = _Source(pieces, _WS)
    win: deque[tuple[int, int]] = deque()
    fresh = 0
    index = 0
    for base, seg in src.segments():
        for s, e in spans(seg):
            win.append((base + s, base + e))
            fresh += 1
            if len(win) == spec.size:
                yield _make(src, index, list(win))
                index += 1
                for _ in range(spec.size - spec.overlap):
                    win.popleft()
                fresh = 0
                src.release(win[0][0] if win else base + e)
    if win and fresh:
        yield _make(src, index, list(win))


def _sentences(src: _Source, spans: Spans) -> Iterator[list[tuple[int, int]]]:
    """Token spans of each sentence, in order."""
    for base, seg in src.segments():
        pos = 0
        bounds = [m.end() for m in _SENTENCE_END.finditer(seg)] + [len(seg)]
        for end in bounds:
            if end <= pos:
                continue
            sent = seg[pos:end]
            toks = [(base + pos + s, base + pos + e) for s, e in spans(sent)]
            if toks:
                yield toks
            pos = end


def _sentence_chunks(pieces: Iterable[str], spec: ChunkSpec, spans: Spans) -> Iterator[Chunk]:
    src = _Source(pieces, _SENTENCE_END)
    cur: deque[list[tuple[int, int]]] = deque()
    cur_units = 0
    carried = 0  # sentences at the front of `cur` repeated from the previous chunk
    fresh = False
    index = 0
    for sent in _sentences(src, spans):
        if len(sent) > spec.size:  # one sentence longer than a chunk: cut it by units
            if cur and fresh:
                yield _make(src, index, [t for s in cur for t in s])
                index += 1
            cur.clear()
            cur_units = carried = 0
            fresh = False
            step = spec.size - spec.overlap
            for i in range(0, len(sent), step):
                part = sent[i:i + spec.size]
                yield _make(src, index, part)
                index += 1
                if i + spec.size >= len(sent):
                    break
            src.release(sent[-1][1])
            continue
        while carried and cur_units + len(sent) > spec.size:  # overlap gives way to new text first
            cur_units -= len(cur.popleft())
            carried -= 1
        if cur_units + len(sent) > spec.size and fresh:
            yield _make(src, index, [t for s in cur for t in s])
            index += 1
            fresh = False
            while cur and cur_units > spec.overlap:  # keep trailing sentences that fit in the overlap
                cur_units -= len(cur.popleft())
            carried = len(cur)
            while cur and cur_units + len(sent) > spec.size:
                cur_units -= len(cur.popleft())
                carried -= 1
        cur.append(sent)
        cur_units += len(sent)
        fresh = True
        src.release(cur[0][0][0])
    if cur and fresh:
        yield _make(src, index, [t for s in cur for t in s])


def _make(src: _Source, index: int, toks: list[tuple[int, int]]) -> Chunk:
    start, end = toks[0][0], toks[-1][1]
    return Chunk(index=index, text=src.text(start, end), start=start, end=end, units=len(toks))
