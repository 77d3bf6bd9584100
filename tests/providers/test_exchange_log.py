"""The process-wide exchange log keeps only what an open mark can still ask for.

It kept the last 10,000 exchanges whatever happened, so a kernel grew ~30 KB per webapp-creator run
(20 exchanges with their reply excerpts) for hundreds of runs.
"""

from __future__ import annotations

from llmspell.providers import traffic
from llmspell.providers.quality import Exchange


def _ex(n: int) -> Exchange:
    return Exchange(endpoint="chat", traffic="live", reply_excerpt=f"reply {n}")


def test_without_a_reader_nothing_is_kept() -> None:
    before = len(traffic._exchanges)
    for i in range(50):
        traffic.log_exchange(_ex(i))
    assert len(traffic._exchanges) == before == 0


def test_a_run_gets_its_exchanges_and_the_log_empties() -> None:
    mark = traffic.exchange_mark()
    for i in range(3):
        traffic.log_exchange(_ex(i))
    assert [e.reply_excerpt for e in traffic.exchanges_since(mark)] == ["reply 0", "reply 1", "reply 2"]
    assert traffic._exchanges == []


def test_nested_marks_each_see_their_own_span() -> None:
    outer = traffic.exchange_mark()
    traffic.log_exchange(_ex(1))
    inner = traffic.exchange_mark()
    traffic.log_exchange(_ex(2))
    assert [e.reply_excerpt for e in traffic.exchanges_since(inner)] == ["reply 2"]
    assert len(traffic._exchanges) == 2  # the outer mark still needs both
    traffic.log_exchange(_ex(3))
    assert [e.reply_excerpt for e in traffic.exchanges_since(outer)] == ["reply 1", "reply 2", "reply 3"]
    assert traffic._exchanges == []


def test_two_readers_on_the_same_mark() -> None:
    a = traffic.exchange_mark()
    b = traffic.exchange_mark()
    assert a == b
    traffic.log_exchange(_ex(1))
    assert len(traffic.exchanges_since(a)) == 1
    assert len(traffic.exchanges_since(b)) == 1
    assert traffic._exchanges == []


def test_a_mark_never_closed_is_still_bounded() -> None:
    mark = traffic.exchange_mark()
    try:
        for i in range(traffic.MAX_EXCHANGES + 10):
            traffic.log_exchange(_ex(i))
        assert len(traffic._exchanges) == traffic.MAX_EXCHANGES
    finally:
        traffic.exchanges_since(mark)
    assert traffic._exchanges == []
