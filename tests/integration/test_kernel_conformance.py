"""jupyter_kernel_test's conformance suite against the installed llmspell kernelspec, with Lua samples.

Two of its tests (completion, is_complete) wait without a timeout if a kernel fails to reply, so the
module runs under pytest-timeout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import jupyter_kernel_test as jkt
import pytest
from jupyter_client.manager import start_new_kernel

from tests.kernel.kernel_support import KERNEL_NAME, install_kernelspec, kernel_env

pytestmark = pytest.mark.timeout(180)


class LlmspellKernelTests(jkt.KernelTests):
    """Every check jupyter_kernel_test has, with Lua samples (display_data: the kernel has none)."""

    kernel_name = KERNEL_NAME
    language_name = "lua"
    file_extension = ".lua"

    code_hello_world = "print('hello, world')"
    code_stderr = "io.stderr:write('to stderr\\n')"

    completion_samples = [
        {"text": "pri", "matches": {"print"}},
        {"text": "re", "matches": {"repeat", "require", "return"}},
        {"text": "Agent.bu", "matches": {"builder"}},
        {"text": "JSON.str", "matches": {"stringify"}},
        {"text": "string.up", "matches": {"upper"}},
    ]

    complete_code_samples = ["print('hello, world')", "function f() function g() end end", "x = 1", "6*7"]
    incomplete_code_samples = ["print('hello", "local t = {", "for i = 1, 3 do", "function f()", 'print("a" ..']
    invalid_code_samples = ["x = = 1", "local 1 = 2", "a!=b)"]

    code_page_something = "?print"
    code_generate_error = "error('boom')"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'a' .. 'b'", "result": "ab"},
        {"code": "1+2+3", "result": "6"},
    ]
    code_history_pattern = "1+2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "print"

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = Path(tempfile.mkdtemp(prefix="llmspell-jkt-"))
        data = install_kernelspec(cls._tmp / "prefix")
        runtime = cls._tmp / "runtime"
        runtime.mkdir()
        cls._saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
        os.environ["JUPYTER_PATH"] = str(data)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
        home = cls._tmp / "home"
        home.mkdir()
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, startup_timeout=60,
                                          env={**kernel_env(home), "JUPYTER_PATH": str(data)})

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            for k, v in cls._saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(cls._tmp, ignore_errors=True)

    def test_io_write_is_one_exact_stdout_stream(self) -> None:
        """From xeus-lua's suite: io.write('3') gives one stdout stream with text exactly '3'."""
        self.flush_channels()
        reply, output_msgs = self.execute_helper(code="io.write('3')")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual([(m["msg_type"], m["content"]["text"]) for m in output_msgs], [("stream", "3")])

    def test_invalid_code_gives_one_error_output(self) -> None:
        self.flush_channels()
        reply, output_msgs = self.execute_helper(code="a!=b)")
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual([m["msg_type"] for m in output_msgs], ["error"])
