"""MurmurHash2 (32-bit, x86) over UTF-8 bytes: how JupyterLab names cell source files."""

from __future__ import annotations

#: The seed ipykernel reports in debugInfo (0xC70F6907); JupyterLab hashes with what we report.
DEFAULT_SEED = 3339675911

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: str | bytes, seed: int = DEFAULT_SEED) -> int:
    """The 32-bit MurmurHash2 of `data` (a str is hashed as its UTF-8 bytes)."""
    key = data.encode("utf-8") if isinstance(data, str) else data
    length = len(key)
    h = (seed ^ length) & _MASK
    i = 0
    while length - i >= 4:
        k = key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
        i += 4
    rest = length - i
    if rest == 3:
        h ^= key[i + 2] << 16
    if rest >= 2:
        h ^= key[i + 1] << 8
    if rest >= 1:
        h ^= key[i]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h
