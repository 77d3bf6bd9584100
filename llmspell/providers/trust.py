"""The trust step for a config file found in the working directory (issue 17.6).

A `./llmspell.toml` comes with whatever directory the user runs in (a cloned repository, a
download), so until the user trusts it, it may not decide where the user's keys go: it may not
name a key source (`api_key_env`) other than the provider's standard variable, nor point a
provider at a host other than its default while a key from the environment would be sent there.
A loopback host gets no key from the environment instead (local servers need none, §2.4).
`llmspell config trust [PATH]` records the file's SHA-256 in the user config directory; any edit
of the file makes it untrusted again. Files named by `-c` or `$LLMSPELL_CONFIG`, and the files in
the home and XDG config directories, are the user's own and need no trust step.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmspell.config import digest, is_loopback, is_trusted, trusted_hashes
from llmspell.providers.base import ProviderError
from llmspell.settings import trust_store_file

__all__ = ["Claim", "CwdGate", "UntrustedConfigError", "claims_of", "digest", "gate_for", "is_trusted", "trust",
           "trust_store"]

log = logging.getLogger("llmspell.providers")

_ALIASES = {"api_base": "base_url", "endpoint": "base_url", "api_base_env": "base_url_env"}


class UntrustedConfigError(ProviderError):
    """A working-directory config tried to route a key it does not own; never retried."""


def trust_store(env: Mapping[str, str]) -> Path:
    """Where trusted config hashes are kept (`llmspell.settings.trust_store_file`: <config dir>/trusted-configs.json)."""
    return trust_store_file(env)


def trust(path: Path, env: Mapping[str, str], *, remove: bool = False) -> str:
    """Record (or with `remove`, forget) the file's hash; returns the hash. Written 0600, atomically."""
    real = path.resolve()
    store = trusted_hashes(env)
    h = digest(real)
    if remove:
        store.pop(str(real), None)
    else:
        store[str(real)] = h
    target = trust_store(env)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"trusted": store}, f, indent=2, sort_keys=True)
    os.replace(tmp, target)
    return h


@dataclass(frozen=True)
class Claim:
    """What the file itself says about one provider's key and host."""

    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    api_key: str | None = None


@dataclass
class CwdGate:
    """Vets, per provider, the key an untrusted working-directory config would route."""

    path: Path
    claims: dict[str, Claim]
    env: Mapping[str, str]
    _warned: set[str] = field(default_factory=set)

    def vet(self, name: str, url: str, key: str | None, *, explicit: bool, standard_env: str | None,
            default_url: str | None) -> str | None:
        """The key to send to `url`; None drops it (loopback); raises UntrustedConfigError."""
        claim = self.claims.get(name)
        if claim is None or key is None or explicit or (claim.api_key and key == claim.api_key):
            return key
        problems: list[str] = []
        if claim.api_key_env and claim.api_key_env != standard_env:
            problems.append(f"names the key source ${claim.api_key_env}")
        file_url = claim.base_url or (self.env.get(claim.base_url_env) if claim.base_url_env else None)

        if file_url and _host(url) == _host(file_url) and not (default_url and _host(url) == _host(default_url)):
            if not problems and is_loopback(url):
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("provider '%s': %s is not trusted; no key from the environment is sent to %s "
                                "(run `llmspell config trust %s` to allow it)", name, self.path, url, self.path)
                return None
            problems.append(f"sends it to {_host(url)} instead of the provider's default host")
        if not problems:
            return key
        raise UntrustedConfigError(
            f"provider '{name}': {self.path} (found in the working directory, not trusted) "
            f"{' and '.join(problems)}; refused",
            provider=name,
            hint=f"check that file, then run `llmspell config trust {self.path}` (or pass it with -c)")


def _host(url: str) -> str:
    """scheme://host[:port] of a URL (a bare host gets http://, as base URLs do)."""
    p = urlsplit(url if "://" in url else "http://" + url)
    return f"{p.scheme}://{(p.hostname or '').lower()}{':' + str(p.port) if p.port else ''}"


def claims_of(raw: Mapping[str, Any]) -> dict[str, Claim]:
    """Provider claims of a raw TOML document (both layouts; the nested one wins)."""
    section = raw.get("providers")
    if not isinstance(section, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    nested = section.get("providers")
    for source in (section, nested if isinstance(nested, dict) else {}):
        for name, entry in source.items():
            if name == "providers" or not isinstance(entry, dict):
                continue
            norm = out.setdefault(str(name), {})
            for k, v in entry.items():
                norm[_ALIASES.get(str(k), str(k))] = v
    return {n: Claim(*(str(e[k]) if isinstance(e.get(k), str) and e.get(k) else None
                       for k in ("base_url", "base_url_env", "api_key_env", "api_key")))
            for n, e in out.items()}


def gate_for(config: Any, env: Mapping[str, str]) -> CwdGate | None:
    """A gate when the config came from the working directory and is not trusted; else None."""
    path = getattr(config, "path", None)
    if getattr(config, "origin", "") != "cwd" or path is None:
        return None
    p = Path(path)
    if is_trusted(p, env):
        return None
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    claims = claims_of(raw)
    return CwdGate(p.resolve(), claims, env) if claims else None
