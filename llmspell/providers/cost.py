"""USD cost of a call from the bundled `genai-prices` data (offline), priced for the model the script named."""

from __future__ import annotations

import functools
import logging

log = logging.getLogger("llmspell.providers")

#: Provider names whose ids genai-prices knows under the same name.
_PRICE_PROVIDERS = {"openai", "anthropic", "groq", "mistral", "deepseek", "openrouter", "together", "google"}
_ALIASES = {"gemini": "google"}


@functools.lru_cache(maxsize=1024)
def _unit_prices(model: str, provider: str | None) -> tuple[float, float] | None:
    """USD per input token and per output token, or None when the model has no known price."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # pragma: no cover - declared dependency
        return None
    pid = _ALIASES.get(provider or "", provider)
    pid = pid if pid in _PRICE_PROVIDERS else None
    for provider_id in ((pid, None) if pid else (None,)):
        try:
            one_in = calc_price(Usage(input_tokens=1_000_000, output_tokens=0), model_ref=model, provider_id=provider_id)
            one_out = calc_price(Usage(input_tokens=0, output_tokens=1_000_000), model_ref=model,
                                 provider_id=provider_id)
        except Exception:  # noqa: BLE001 - LookupError for unknown models; never fail a call for pricing
            continue
        return (float(one_in.total_price) / 1e6, float(one_out.total_price) / 1e6)
    return None


def price_usd(model: str, input_tokens: int, output_tokens: int, provider: str | None = None) -> float | None:
    """Cost in USD for the given token counts, or None when the price is unknown."""
    if not model:
        return None
    unit = _unit_prices(model, provider)
    if unit is None:
        return None
    return input_tokens * unit[0] + output_tokens * unit[1]
