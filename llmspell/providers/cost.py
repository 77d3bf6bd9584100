"""USD cost of a call, priced for the model the script named, from a compact table of genai-prices data.

Importing genai-prices costs ~150 ms (pydantic models over 1.6 MB of price data), which would land
on the first agent call of every process. Instead `prices.json` (package data, regenerated with
`python -m llmspell.providers.cost --write`) holds, for each genai-prices provider, its matching
rules and each model's price per input and output token, and this module applies the same lookup
genai-prices does (provider by id, else by model name; first matching model; one step of fallback
providers). genai-prices itself is imported only to regenerate the table, or when it is missing.
"""

from __future__ import annotations

import argparse
import functools
import logging
import re
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("llmspell.providers")

PRICE_FILE = Path(__file__).with_name("prices.json")

#: Provider names whose ids genai-prices knows under the same name.
_PRICE_PROVIDERS = {"openai", "anthropic", "groq", "mistral", "deepseek", "openrouter", "together", "google"}
_ALIASES = {"gemini": "google"}
_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")
_MTOK = 1_000_000


# ------------------------------------------------------------------------------------------ matching
def clause_matches(clause: dict[str, Any], text: str) -> bool:
    """One genai-prices match clause (equals, starts_with, ends_with, contains, regex, or, and) against text."""
    kind, value = next(iter(clause.items()))
    if kind == "equals":
        return text.lower() == str(value).lower()
    if kind == "starts_with":
        return text.lower().startswith(str(value).lower())
    if kind == "ends_with":
        return text.lower().endswith(str(value).lower())
    if kind == "contains":
        return str(value).lower() in text.lower()
    if kind == "regex":
        return re.search(str(value), text) is not None
    if kind == "or":
        return any(clause_matches(c, text) for c in value)
    if kind == "and":
        return all(clause_matches(c, text) for c in value)
    raise ValueError(f"unknown price match clause {kind!r}")


def _normalize_compact_date(ref: str) -> str:
    """gpt-5.2-20251211 -> gpt-5.2-2025-12-11 (retried when a ref does not match as written)."""
    import datetime

    def repl(m: re.Match[str]) -> str:
        try:
            datetime.date(int(m.group(2)), int(m.group(3)), int(m.group(4)))
        except ValueError:
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}-{m.group(3)}-{m.group(4)}"

    return _COMPACT_DATE.sub(repl, ref)


@functools.cache
def _table() -> dict[str, Any] | None:
    """The compact price table (None when the file is missing: genai-prices is then used directly)."""
    try:
        raw = PRICE_FILE.read_bytes()
    except OSError:
        return None
    import orjson

    table: dict[str, Any] = orjson.loads(raw)
    table["by_id"] = {p["id"]: p for p in table["providers"]}
    return table


def _find_provider(table: dict[str, Any], model_ref: str, provider_id: str | None) -> dict[str, Any] | None:
    if provider_id is not None:
        pid = provider_id.lower().strip()
        if pid in table["by_id"]:
            return table["by_id"][pid]  # type: ignore[no-any-return]
        return next((p for p in table["providers"] if p.get("provider_match") and
                     clause_matches(p["provider_match"], pid)), None)
    return next((p for p in table["providers"] if p.get("model_match") and
                 clause_matches(p["model_match"], model_ref)), None)


def _match_model(table: dict[str, Any], provider: dict[str, Any], ref: str, fallback: bool) -> dict[str, Any] | None:
    for model in provider["models"]:
        if clause_matches(model["match"], ref):
            return model  # type: ignore[no-any-return]
    if fallback:
        for pid in provider.get("fallback", ()):
            other = table["by_id"].get(pid)
            if other is not None and (model := _match_model(table, other, ref, False)) is not None:
                return model
    return None


def table_lookup(model: str, provider_id: str | None) -> tuple[float, float] | None:
    """USD per input and per output token from the compact table, or None when no price applies."""
    table = _table()
    if table is None:
        raise FileNotFoundError(PRICE_FILE)
    ref = model.lower()
    provider = _find_provider(table, ref, provider_id)
    if provider is None:
        return None
    found = _match_model(table, provider, ref, True)
    if found is None and (normalized := _normalize_compact_date(ref)) != ref:
        found = _match_model(table, provider, normalized, True)
    if found is None or found.get("input") is None or found.get("output") is None:
        return None
    return (float(found["input"]), float(found["output"]))


def _genai_lookup(model: str, provider_id: str | None) -> tuple[float, float] | None:
    """The same figures straight from genai-prices (slow to import; used when the table is missing)."""
    from genai_prices import Usage, calc_price

    try:
        one_in = calc_price(Usage(input_tokens=_MTOK, output_tokens=0), model_ref=model, provider_id=provider_id)
        one_out = calc_price(Usage(input_tokens=0, output_tokens=_MTOK), model_ref=model, provider_id=provider_id)
    except Exception:  # noqa: BLE001 - LookupError for unknown models; never fail a call for pricing
        return None
    return (float(one_in.total_price) / _MTOK, float(one_out.total_price) / _MTOK)


@functools.lru_cache(maxsize=1024)
def _unit_prices(model: str, provider: str | None) -> tuple[float, float] | None:
    """USD per input token and per output token, or None when the model has no known price."""
    pid = _ALIASES.get(provider or "", provider)
    pid = pid if pid in _PRICE_PROVIDERS else None
    lookup = table_lookup if _table() is not None else _genai_lookup
    for provider_id in ((pid, None) if pid else (None,)):
        unit = lookup(model, provider_id)
        if unit is not None:
            return unit
    return None


def price_usd(model: str, input_tokens: int, output_tokens: int, provider: str | None = None) -> float | None:
    """Cost in USD for the given token counts, or None when the price is unknown."""
    if not model:
        return None
    unit = _unit_prices(model, provider)
    if unit is None:
        return None
    return input_tokens * unit[0] + output_tokens * unit[1]


# ------------------------------------------------------------------------------------ the table itself
def _clause(logic: Any) -> dict[str, Any]:
    """A genai-prices clause object as a one-key dict."""
    for kind in ("equals", "starts_with", "ends_with", "contains", "regex"):
        if hasattr(logic, kind):
            return {kind: getattr(logic, kind)}
    if hasattr(logic, "or_"):
        return {"or": [_clause(c) for c in logic.or_]}
    if hasattr(logic, "and_"):
        return {"and": [_clause(c) for c in logic.and_]}
    raise ValueError(f"unknown genai-prices clause {logic!r}")


def build_table() -> dict[str, Any]:
    """The compact table from the installed genai-prices: current prices per token at 1M-token usage."""
    import datetime
    from importlib.metadata import version

    from genai_prices import Usage
    from genai_prices.data_snapshot import get_snapshot

    now = datetime.datetime.now(tz=datetime.UTC)
    providers = []
    for p in get_snapshot().providers:
        models = []
        for m in p.models:
            unit: list[float | None] = []
            for usage in (Usage(input_tokens=_MTOK, output_tokens=0), Usage(input_tokens=0, output_tokens=_MTOK)):
                try:
                    unit.append(float(m.calc_price(usage, p, genai_request_timestamp=now).total_price) / _MTOK)
                except Exception:  # noqa: BLE001 - a model without that price: no figure
                    unit.append(None)
            models.append({"id": m.id, "match": _clause(m.match), "input": unit[0], "output": unit[1]})
        providers.append({"id": p.id,
                          "provider_match": _clause(p.provider_match) if p.provider_match else None,
                          "model_match": _clause(p.model_match) if p.model_match else None,
                          "fallback": list(p.fallback_model_providers or ()), "models": models})
    return {"source": f"genai-prices {version('genai-prices')}", "priced_at": now.date().isoformat(),
            "providers": providers}


def main(argv: list[str] | None = None) -> int:
    """`python -m llmspell.providers.cost --write`: regenerate prices.json from the installed genai-prices."""
    p = argparse.ArgumentParser(prog="python -m llmspell.providers.cost",
                                description="Regenerate the compact price table (prices.json) from genai-prices.")
    p.add_argument("--write", action="store_true", help=f"write {PRICE_FILE}")
    args = p.parse_args(argv)
    import orjson

    data = orjson.dumps(build_table(), option=orjson.OPT_SORT_KEYS)
    if args.write:
        PRICE_FILE.write_bytes(data + b"\n")
        print(f"wrote {PRICE_FILE} ({len(data) // 1024} KiB)")
    else:
        sys.stdout.write(data.decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
