"""llmspell.rag: offline embeddings, chunking, a persistent vector store and the service behind `RAG`.

`build_rag(config, services)` is the factory listed in `llmspell.bootstrap.SERVICE_FACTORIES`. It
returns None when RAG is disabled (so the `RAG` global is absent) and otherwise a `RagService` that
opens its store and loads its model only on first use.
"""

from __future__ import annotations

from typing import Any

from llmspell.settings import settings_of


def rag_enabled(config: Any) -> bool:
    """`[rag] enabled` as config parsed it (`--rag` and `LLMSPELL_RAG_ENABLED` applied there)."""
    return settings_of(config).rag.enabled


def build_rag(config: Any, services: Any) -> Any:
    """The runtime's RAG service, or None when RAG is disabled."""
    if not rag_enabled(config):
        return None
    from llmspell.rag.service import RagService

    return RagService(config, services)
