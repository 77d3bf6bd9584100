"""Secrets out of cassettes, and cassettes read with the safe YAML loader only (issue 17.5).

`register_provider_secrets` teaches the redactor (runtime/redact.py) every key and configured header
value a provider registry can send; `scrub_interaction` applies it to a recorded exchange before
it is kept or written (URL, headers, bodies); `parse_cassette` reads a cassette with
`yaml.safe_load`, so a crafted file with a `!!python/object` tag is refused with a clear error
instead of constructing anything.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

from llmspell.providers.base import ProviderError
from llmspell.runtime.redact import (
    REDACTED,
    redact_value,
    register_header_name,
    register_if_secret,
    register_secret,
    scrub,
    secret_header_names,
)


class CassetteFormatError(ProviderError):
    """A cassette that is not plain YAML of the vcrpy shape (refused, never half-loaded)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="cassettes hold plain data only; re-record it with the record command "
                                       "(LLMSPELL_TRAFFIC=record, or python -m harness record <app>)")


#: Environment variable names whose values are secrets (as environment_reader masks them).
_SECRET_ENV = ("KEY", "TOKEN", "SECRET", "PASSWORD")
#: Header names whose configured values are secrets whatever they look like.
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "pass", "sig", "cookie", "session", "credential")


def register_config_secrets(data: Any, env: Any = None) -> None:
    """Register secret-named config values (api_key, *token*, *secret*, *password*) and secret-named env values."""
    from llmspell.config import is_secret_key

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and is_secret_key(str(k)):
                    register_if_secret(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    for name, value in dict(env or {}).items():
        if any(w in str(name).upper() for w in _SECRET_ENV):
            register_if_secret(value)


def register_provider_secrets(registry: Any, config: Any = None) -> None:
    """Register every key the registry could send, every configured header value (and name), and the
    config's and environment's secret-named values."""
    register_config_secrets(getattr(config, "data", None), getattr(registry, "env", None))
    for name, spec in getattr(registry, "specs", {}).items():
        for value in (spec.api_key, spec.api_key_override):
            register_secret(value)
        with suppress(Exception):  # a broken entry must not stop the others from registering
            register_secret(registry.find_key(name))
        for header, value in (spec.headers or {}).items():
            register_header_name(header)  # its value is replaced in recorded requests whatever it is
            if any(w in str(header).lower() for w in _SECRET_HEADER_WORDS):
                register_secret(value)
            else:
                register_if_secret(value)


def _scrub_headers(headers: Any) -> dict[str, Any]:
    names = secret_header_names()
    out: dict[str, Any] = {}
    for k, v in dict(headers or {}).items():
        if str(k).lower() in names:
            out[k] = [REDACTED] if isinstance(v, list) else REDACTED
        else:
            out[k] = redact_value(v)[0]
    return out


def scrub_interaction(request: Any, response: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A copy of a recorded (vcr Request, response dict) with every known and key-shaped secret replaced."""
    from vcr.request import Request as VcrRequest

    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    clean_req = VcrRequest(request.method, scrub(str(request.uri)), scrub(body) if isinstance(body, str) else body,
                           _scrub_headers(request.headers))
    clean_resp = dict(redact_value(response)[0])
    if isinstance(response.get("headers"), dict):
        clean_resp["headers"] = _scrub_headers(response["headers"])
    return clean_req, clean_resp


def parse_cassette(path: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    """(requests, responses) of a vcrpy YAML cassette, parsed with yaml.safe_load only."""
    import yaml
    from vcr.request import Request as VcrRequest
    from vcr.serializers import compat

    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        raise CassetteFormatError(
            f"cassette {path}: refused, it holds a YAML tag the safe loader does not construct "
            f"({e.problem or e})") from None
    except yaml.YAMLError as e:
        raise CassetteFormatError(f"cassette {path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteFormatError(f"cassette {path}: not a vcrpy cassette (no 'interactions' list)")
    requests: list[Any] = []
    responses: list[dict[str, Any]] = []
    for i, item in enumerate(data["interactions"]):
        req = item.get("request") if isinstance(item, dict) else None
        resp = item.get("response") if isinstance(item, dict) else None
        if not isinstance(req, dict) or not isinstance(resp, dict):
            raise CassetteFormatError(f"cassette {path}: interaction {i} lacks a request or response mapping")
        try:
            requests.append(VcrRequest(str(req["method"]), str(req["uri"]), req.get("body"),
                                       req.get("headers") or {}))
        except KeyError as e:
            raise CassetteFormatError(f"cassette {path}: interaction {i} request lacks {e}") from None
        responses.append(compat.convert_to_bytes(resp))
    return requests, responses
