"""The base class of every service's error, so a binding catches one type instead of importing each."""

from __future__ import annotations


class ServiceError(Exception):
    """Misuse or failed work inside a service (state, sessions, events, hooks, RAG, tools, providers...).

    Each service keeps its own subclass (StateError, SessionError, ...) with its own message; the Lua
    bindings catch this base where they only need to turn the message into a Lua error.
    """
