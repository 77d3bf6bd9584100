"""Built-in tools (lua-api.md §19): catalog, registry, invocation pipeline and one module per tool family."""
