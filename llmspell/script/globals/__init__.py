"""One module per Lua global; each exposes `install(rt: ScriptRuntime) -> bool | None`.

`install` returns False when the global is not present in this configuration (RAG when disabled,
Session/Artifact when sessions are disabled).
"""
