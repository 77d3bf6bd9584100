"""murmur2 against the vectors computed with ipykernel's murmur2_x86 (jupyter-protocol-notes §2.5)."""

from __future__ import annotations

import pytest

from llmspell.debug.murmur2 import DEFAULT_SEED, murmur2


@pytest.mark.parametrize(("code", "expected"), [
    ("", 3990065800),
    ("x = 1", 3427300630),
    ('print("hello, world")', 1621485185),
    ("local t = {}\nfor i = 1, 3 do\n  t[i] = i * i\nend\n", 1634150274),
    ("é", 2171970256),
])
def test_vectors(code: str, expected: int) -> None:
    assert murmur2(code, DEFAULT_SEED) == expected


def test_bytes_and_str_agree() -> None:
    assert murmur2("é".encode()) == murmur2("é")
