"""Metadata filter semantics: equality per key, arrays mean any of, list-valued metadata."""

from __future__ import annotations

from llmspell.rag.store import matches


def test_equality_and_any_of() -> None:
    meta = {"topic": "travel", "year": 2024, "tags": ["japan", "autumn"], "nested": {"a": 1}}
    assert matches(meta, {"topic": "travel"})
    assert not matches(meta, {"topic": "food"})
    assert matches(meta, {"topic": ["food", "travel"], "year": 2024})
    assert not matches(meta, {"topic": ["food"], "year": 2024})
    assert matches(meta, {"tags": "japan"})  # a list-valued field contains the value
    assert matches(meta, {"tags": ["spring", "autumn"]})  # or any of them
    assert not matches(meta, {"tags": ["spring"]})
    assert not matches(meta, {"missing": "x"})
    assert matches(meta, {"nested": {"a": 1}})
    assert matches(meta, {"nested": [{"a": 1}, {"b": 2}]})  # unhashable items are compared one by one
    assert matches(meta, {})
