"""Workflow engine (lua-api.md §5): sequential, parallel, conditional and loop workflows on the IO loop."""
