"""Harness profiles: the app's config.toml with provider routing laid over it, written as TOML."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

#: Default address of the local model server. Replay matches requests without host or port, so
#: record and live may use any free port (`--local-server` picks one); this one is only a default.
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 18080
LOCAL_MODEL = "gemma-3-270m"
#: The OpenAI-compatible endpoints a routed server may be called on.
APIS = ("completions", "chat")


def local_overlay(port: int = LOCAL_PORT, base_url: str | None = None, model: str = LOCAL_MODEL,
                  api: str = "completions") -> dict[str, Any]:
    """Route every model the apps name (openai/..., anthropic/...) to one OpenAI-compatible server.

    `base_url` (e.g. http://127.0.0.1:8000/v1) replaces the local server's address; `model` is the
    model name sent to it whatever the app asked for; `api` is "completions" (a base model such as
    gemma3-270m continues plain prompts; chat prompts come back echoed) or "chat" (an instruction-tuned
    model behind /v1/chat/completions).
    """
    if api not in APIS:
        raise ValueError(f"unknown provider api '{api}' (known: {', '.join(APIS)})")
    base = base_url.rstrip("/") if base_url else f"http://{LOCAL_HOST}:{port}/v1"
    route = {"provider_type": "openai", "base_url": base, "force_model": model,
             "api_key_required": False, "timeout_seconds": 600, "max_retries": 0,
             "api": api}
    return {"providers": {"openai": dict(route), "anthropic": dict(route)}}


PROFILES: dict[str, Any] = {"none": None, "local": local_overlay}


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `overlay` into a copy of `base` (tables merge, other values replace)."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def to_toml(data: dict[str, Any], _prefix: str = "") -> str:
    """Serialize a plain dict (tables, scalars, arrays) as TOML."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_scalar(value)}")
    text = "\n".join(lines)
    for key, table in tables:
        name = f"{_prefix}.{_key(key)}" if _prefix else _key(key)
        body = to_toml(table, name)
        text += ("\n\n" if text else "") + f"[{name}]\n" + body
    return text.strip("\n") + "\n" if _prefix == "" else text


def effective_config(app_config: Path, profile: str, dest: Path, base_url: str | None = None,
                     model: str = LOCAL_MODEL, api: str = "completions") -> Path:
    """The config file a kernel gets: the app's own file, or a copy with the profile laid over it.

    A `base_url` routes every provider to that OpenAI-compatible server, whatever the profile.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown harness profile '{profile}' (known: {', '.join(PROFILES)})")
    factory = PROFILES[profile]
    if factory is None and base_url is None:
        return app_config
    data = tomllib.loads(app_config.read_text(encoding="utf-8"))
    overlay = local_overlay(base_url=base_url, model=model, api=api)
    dest.parent.mkdir(parents=True, exist_ok=True)
    how = f"routed to {base_url}" if base_url else f"with the harness profile '{profile}'"
    dest.write_text(f"# {app_config} {how}\n" + to_toml(merge(data, overlay)), encoding="utf-8")
    return dest
