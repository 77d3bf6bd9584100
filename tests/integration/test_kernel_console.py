"""`llmspell kernel connect`'s line console (kernel/client.py) against a real kernel: results and `?name`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from llmspell.kernel.client import console
from llmspell.script.docs import lookup
from tests.kernel.kernel_support import jupyter_env, start_kernel, stop_kernel  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(120)


def test_console_shows_results_rendered_by_the_kernel_and_help_pages(tmp_path: Path, jupyter_env: Any) -> None:  # noqa: F811
    km, kc, _log = start_kernel(tmp_path, jupyter_env)
    out, err = io.StringIO(), io.StringIO()
    try:
        code = console(km.connection_file, stdin=io.StringIO("t = {2, 1}\nt\n?Tool.invoke\nt?\n"), stdout=out,
                       stderr=err, timeout=30)
    finally:
        stop_kernel(km, kc)
    text = out.getvalue()
    assert code == 0, err.getvalue()
    assert "Out[2]: [\n  2,\n  1\n]\n" in text
    assert str(lookup("Tool.invoke")) + "\n" in text
    assert "t: table = table: " in text  # an undocumented value: the shell describes it
