"""Cost from the compact price table: the same answers as genai-prices for every model it knows, no slow import.

prices.json is generated from genai-prices (python -m llmspell.providers.cost --write); the
lookup re-implements genai-prices' matching over it, so the tests compare the two on every model
id of the installed genai-prices, with and without a provider id.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import orjson
import pytest

from llmspell.providers import cost


def _refs() -> list[tuple[str, str | None]]:
    from genai_prices.data_snapshot import get_snapshot

    refs: set[tuple[str, str | None]] = {(m.id, p.id) for p in get_snapshot().providers for m in p.models}
    refs |= {(model, None) for model, _ in refs}
    refs |= {("gpt-4o-mini-2024-07-18", "openai"), ("claude-3-5-haiku-20241022", None), ("GPT-4O-MINI", "openai"),
             ("gemma3-270m", None), ("no-such-model", "openai"), ("gpt-4o-mini", "no-such-provider")}
    return sorted(refs, key=str)


def test_the_table_prices_every_model_as_genai_prices_does() -> None:
    differ = []
    for model, pid in _refs():
        ours, theirs = cost.table_lookup(model, pid), cost._genai_lookup(model, pid)
        if (ours is None) != (theirs is None) or (ours and theirs and
                                                  (abs(ours[0] - theirs[0]) > 1e-15 or abs(ours[1] - theirs[1]) > 1e-15)):
            differ.append((model, pid, ours, theirs))
    assert not differ, f"{len(differ)} lookups differ, e.g. {differ[:5]}"


def test_the_shipped_table_is_current_for_the_installed_genai_prices() -> None:
    shipped = orjson.loads(cost.PRICE_FILE.read_bytes())
    if shipped["source"] != f"genai-prices {version('genai-prices')}":
        pytest.xfail(f"prices.json is from {shipped['source']}: regenerate with python -m llmspell.providers.cost --write")
    fresh = cost.build_table()
    assert shipped["providers"] == fresh["providers"], "regenerate with python -m llmspell.providers.cost --write"


def test_known_and_unknown_models() -> None:
    cost._unit_prices.cache_clear()
    price = cost.price_usd("gpt-4o-mini", 1_000_000, 1_000_000, "openai")
    assert price is not None and price > 0
    assert cost.price_usd("gemma3-270m", 10, 10, "local") is None
    assert cost.price_usd("", 10, 10, "openai") is None


def test_a_bad_clause_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown price match clause"):
        cost.clause_matches({"glob": "gpt-*"}, "gpt-4")


def test_pricing_a_call_does_not_import_genai_prices() -> None:
    code = ("import sys; from llmspell.providers.cost import price_usd; "
            "assert price_usd('gpt-4o-mini', 10, 10, 'openai') > 0; "
            "assert price_usd('unknown-model', 10, 10, None) is None; "
            "print('genai_prices' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
