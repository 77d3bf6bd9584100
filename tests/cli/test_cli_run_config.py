"""`llmspell run|exec|config` as real subprocesses: output, exit codes 0/1/2/130, bad input messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

LLMSPELL = [sys.executable, "-m", "llmspell.cli.main"]


def cli(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, LLMSPELL_STATE_BACKEND="memory", PYTHONUNBUFFERED="1")
    return subprocess.run([*LLMSPELL, *args], cwd=cwd, env=env, capture_output=True, timeout=timeout,
                          input=stdin.encode() if stdin is not None else None)


def text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# ----------------------------------------------------------------------------- run / exec
def test_exec_prints(tmp_path: Path) -> None:
    r = cli("exec", "print(1+1)", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"2\n", b"")


def test_run_script_with_print_json_args_config(tmp_path: Path) -> None:
    (tmp_path / "llmspell.toml").write_text('[providers]\ndefault_provider = "anthropic"\n')
    (tmp_path / "app.lua").write_text(
        'print(JSON.stringify({input = ARGS.input, verbose = ARGS.verbose, out = ARGS.out, first = ARGS[1]}))\n'
        'print(Config.get("providers.default_provider"), #arg, arg[0])\n'
        'io.write(3.0, " ", 0.1, "\\n")\n')
    r = cli("run", "app.lua", "--", "--input", "data.txt", "--verbose", "--out=/tmp/x", "pos1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert text(r.stdout).splitlines() == [
        '{"first":"pos1","input":"data.txt","out":"/tmp/x","verbose":"true"}', "anthropic\t5\tapp.lua", "3 0.1"]


def test_run_output_json(tmp_path: Path) -> None:
    (tmp_path / "r.lua").write_text('print("hi")\nreturn {answer = 42}\n')
    r = cli("--output", "json", "run", "r.lua", cwd=tmp_path)
    assert r.returncode == 0
    payload = json.loads(r.stdout)
    assert payload["success"] is True and payload["output"] == "hi\n" and payload["result"] == {"answer": 42}
    assert payload["exit_code"] == 0 and "stats" in payload


def test_non_utf8_output_bytes_are_exact(tmp_path: Path) -> None:
    r = cli("exec", "io.write('\\xff\\xfe') print('x\\x80')", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == b"\xff\xfex\x80\n"


def test_os_exit_code(tmp_path: Path) -> None:
    r = cli("exec", "print('a') os.exit(3) print('b')", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (3, b"a\n")


def test_missing_file(tmp_path: Path) -> None:
    r = cli("run", "nope.lua", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == b""
    assert text(r.stderr) == "Error: cannot open nope.lua: no such file\n"


def test_unreadable_file(tmp_path: Path) -> None:
    r = cli("run", ".", cwd=tmp_path)
    assert r.returncode == 1 and "Error: cannot open .: is a directory" in text(r.stderr)
    if os.geteuid() == 0:
        # root reads files of mode 000; /proc/self/mem fails to read at offset 0 (EIO) even for root
        r3 = cli("run", "/proc/self/mem", cwd=tmp_path)
        assert r3.returncode == 1 and r3.stdout == b""
        assert text(r3.stderr) == "Error: cannot open /proc/self/mem: Input/output error\n"
        return
    f = tmp_path / "secret.lua"
    f.write_text("print(1)")
    f.chmod(0)
    r2 = cli("run", "secret.lua", cwd=tmp_path)
    assert r2.returncode == 1 and "Error: cannot open secret.lua: Permission denied" in text(r2.stderr)


def test_non_utf8_script(tmp_path: Path) -> None:
    (tmp_path / "latin1.lua").write_bytes(b"print('ok')\nprint('caf\xe9')\n")
    r = cli("run", "latin1.lua", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == b""
    assert "Error: latin1.lua:2: script is not valid UTF-8 (byte 0xe9 at column 11)" in text(r.stderr)


def test_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "bad.lua").write_text("print('ok')\nlocal x = = 2\n")
    r = cli("run", "bad.lua", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == b""
    assert text(r.stderr).startswith("Error: syntax error: bad.lua:2: unexpected symbol near '='")


def test_runtime_error_in_nested_function(tmp_path: Path) -> None:
    (tmp_path / "main.lua").write_text(
        "print('start')\nlocal function inner(t)\n  return t.x.y\nend\n"
        "local function outer() local v = inner({}) return v end\nouter()\n")
    r = cli("run", "main.lua", cwd=tmp_path)
    err = text(r.stderr)
    assert r.returncode == 1 and r.stdout == b"start\n"
    assert err.startswith("Error: main.lua:3: attempt to index a nil value (field 'x')\n")
    assert "stack traceback:" in err and "main.lua:5: in local 'outer'" in err and "main.lua:6: in main chunk" in err
    assert "<python>" not in err and "xpcall" not in err


def test_error_object_that_is_a_table(tmp_path: Path) -> None:
    r = cli("exec", "error({code = 7, message = 'custom failure'})", cwd=tmp_path)
    assert r.returncode == 1 and text(r.stderr).startswith("Error: custom failure")
    r2 = cli("exec", "error({code = 7})", cwd=tmp_path)
    assert r2.returncode == 1 and "error object is a table: {code=7}" in text(r2.stderr)


def test_api_misuse_error_has_line(tmp_path: Path) -> None:
    (tmp_path / "m.lua").write_text("\n\nlocal v = JSON.parse('{oops')\n")
    r = cli("run", "m.lua", cwd=tmp_path)
    assert r.returncode == 1 and text(r.stderr).startswith("Error: m.lua:3: JSON.parse: ")


def _run_until_ready(tmp_path: Path, code: str) -> subprocess.Popen[bytes]:
    (tmp_path / "loop.lua").write_text(code)
    env = dict(os.environ, LLMSPELL_STATE_BACKEND="memory", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*LLMSPELL, "run", "loop.lua"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = threading.Event()
    lines: list[bytes] = []

    def reader() -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        lines.append(line)
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        pytest.fail("script never printed its ready line")
    assert lines == [b"ready\n"]
    return proc


@pytest.mark.parametrize("body", ["while true do end", "while true do pcall(function() end) end",
                                  "Utils.sleep(600000)"])
def test_sigint_stops_a_script_with_exit_130(tmp_path: Path, body: str) -> None:
    proc = _run_until_ready(tmp_path, f"print('ready')\n{body}\n")
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130
    assert text(err).strip().endswith("interrupted")


def test_script_timeout_from_config(tmp_path: Path) -> None:
    (tmp_path / "llmspell.toml").write_text("[runtime]\nscript_timeout_seconds = 0.2\n")
    r = cli("exec", "while true do end", cwd=tmp_path)
    assert r.returncode == 124 and "script timed out after 0.2 s" in text(r.stderr)  # 124 as GNU timeout


# ----------------------------------------------------------------------------- config problems
def test_invalid_toml_exits_2_with_position(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[state]\nbackend = sqlite\n")
    r = cli("-c", "bad.toml", "exec", "print(1)", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == b""
    err = text(r.stderr)
    assert "config bad.toml: invalid TOML:" in err and "at line 2 column" in err


def test_wrong_typed_key_exits_2(tmp_path: Path) -> None:
    (tmp_path / "llmspell.toml").write_text('[engines.lua]\nmax_memory_bytes = "lots"\n')
    r = cli("exec", "print(1)", cwd=tmp_path)
    assert r.returncode == 2
    err = text(r.stderr)
    assert "llmspell.toml" in err and "engines.lua.max_memory_bytes" in err and "integer" in err and "fix:" in err


def test_missing_explicit_config_exits_2(tmp_path: Path) -> None:
    r = cli("--config", "nope.toml", "exec", "print(1)", cwd=tmp_path)
    assert r.returncode == 2 and "config file nope.toml not found" in text(r.stderr)


def test_unknown_keys_warn_but_run(tmp_path: Path) -> None:
    (tmp_path / "llmspell.toml").write_text("[runtime]\nname = 'x'\n[state]\ncache_size_mb = 1\n")
    r = cli("exec", "print('ran')", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == b"ran\n"
    assert "ignored unknown keys: runtime.name, state.cache_size_mb" in text(r.stderr)


def test_bad_trace_level_exits_2(tmp_path: Path) -> None:
    r = cli("--trace", "loud", "exec", "print(1)", cwd=tmp_path)
    assert r.returncode == 2 and "invalid log level 'loud'" in text(r.stderr)


def test_trace_debug_logs_the_root_span(tmp_path: Path) -> None:
    r = cli("--trace", "warn,llmspell.run=debug", "exec", "print(1)", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == b"1\n"
    assert "span run" in text(r.stderr) and "app.layer=1" in text(r.stderr)


# ----------------------------------------------------------------------------- llmspell config
def test_config_init_show_validate(tmp_path: Path) -> None:
    r = cli("config", "init", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "llmspell.toml").is_file()
    again = cli("config", "init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in text(again.stderr)
    forced = cli("config", "init", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    v = cli("config", "validate", cwd=tmp_path)
    assert v.returncode == 0 and text(v.stdout).endswith("llmspell.toml: ok\n") and v.stderr == b""
    s = cli("config", "show", cwd=tmp_path)
    assert s.returncode == 0 and "[rag.embedding]" in text(s.stdout)


def test_config_show_masks_secrets_in_every_format(tmp_path: Path) -> None:
    (tmp_path / "llmspell.toml").write_text("[providers.local]\nbase_url = 'http://127.0.0.1:1/v1'\n"
                                            "api_key = 'sk-very-secret'\n")
    for fmt in ("toml", "json", "yaml"):
        r = cli("config", "show", "--format", fmt, cwd=tmp_path)
        assert r.returncode == 0
        assert "sk-very-secret" not in text(r.stdout) and "***" in text(r.stdout)
    j = cli("--output", "json", "config", "show", "providers.local", cwd=tmp_path)
    data = json.loads(j.stdout)
    assert data["api_key"] == "***" and data["base_url"] == "http://127.0.0.1:1/v1"


def test_config_validate_bad_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[workflows]\nmax_concurrent = 'x'\n")
    r = cli("config", "validate", "bad.toml", cwd=tmp_path)
    assert r.returncode == 2 and "workflows.max_concurrent" in text(r.stderr)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["exec", "--help"], ["config", "--help"],
                                  ["config", "show", "--help"]])
def test_help_everywhere(tmp_path: Path, args: list[str]) -> None:
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 0 and b"usage:" in r.stdout
