"""Fixtures for the REPL tests."""

from tests.kernel.kernel_support import jupyter_env  # noqa: F401 - fixture
