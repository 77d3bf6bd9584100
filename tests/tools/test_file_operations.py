"""file_operations (§19.2): every operation, aliases, graceful write failures, sandbox and limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.tools.conftest import invoke, invoke_error, lua


def test_write_read_append_creates_parents(rt: Any, tmp_path: Path) -> None:
    p = tmp_path / "a" / "b" / "c.txt"
    w = invoke(rt, "file_operations", f'{{operation = "write", path = "{p}", input = "hi"}}')
    assert w["text"] == f"Wrote 2 bytes to {p}" and w["success"] is True
    assert w["metadata"]["operation"] == "write" and w["metadata"]["tool"] == "file_operations"
    assert w["metadata"]["response"]["success"] is True and w["metadata"]["response"]["metadata"]["file_path"] == str(p)
    assert isinstance(w["metadata"]["duration_ms"], int) and isinstance(w["metadata"]["execution_time_ms"], int)
    a = invoke(rt, "file_operations", f'{{operation = "append", path = "{p}", content = " there"}}')
    assert a["text"] == f"Appended 6 bytes to {p}"
    r = invoke(rt, "file_operations", f'{{operation = "read", path = "{p}"}}')
    assert r["text"] == "hi there" and r["success"] is True
    w2 = invoke(rt, "file_operations", f'{{operation = "write", path = "{p}", input = "new"}}')
    assert w2["success"] and p.read_text() == "new"
    ap = tmp_path / "fresh" / "log.txt"
    invoke(rt, "file_operations", f'{{operation = "append", path = "{ap}", input = "x"}}')
    assert ap.read_text() == "x"


def test_relative_paths_resolve_against_cwd(rt: Any, tmp_path: Path) -> None:
    w = invoke(rt, "file_operations", '{operation = "write", path = "rel/x.txt", input = "r"}')
    assert w["text"] == f"Wrote 1 bytes to {tmp_path / 'rel' / 'x.txt'}"


def test_bytes_follow_the_conversion_rules(rt: Any, tmp_path: Path) -> None:
    p = tmp_path / "bin.txt"
    # parameters are converted by §1.8: invalid UTF-8 becomes U+FFFD, NUL survives
    lua(rt, f'Tool.invoke("file_operations", {{operation = "write", path = "{p}", input = "a\\255b\\0c"}})')
    assert p.read_bytes() == b"a\xef\xbf\xbdb\x00c"
    # reading gives the file's exact bytes back to Lua
    p.write_bytes(b"a\xffb")
    assert lua(rt, f'return Tool.invoke("file_operations", {{operation = "read", path = "{p}"}}).text == "a\\255b"')


def test_directories_list_copy_move_delete(rt: Any, tmp_path: Path) -> None:
    d = tmp_path / "d"
    mk = invoke(rt, "file_operations", f'{{operation = "mkdir", path = "{d}/x/y", recursive = false}}')
    assert mk["text"] == f"Created directory: {d}/x/y"
    invoke(rt, "file_operations", f'{{operation = "create_dir", path = "{d}/x/y"}}')  # exists: fine
    (d / "f.txt").write_text("12345")
    ls = invoke(rt, "file_operations", f'{{operation = "ls", path = "{d}"}}')
    assert ls["success"] and ls["result"]["count"] == 2
    names = {e["name"]: e for e in ls["result"]["entries"]}
    assert names["f.txt"]["type"] == "file" and names["f.txt"]["size"] == 5 and names["x"]["type"] == "dir"
    rec = invoke(rt, "file_operations", f'{{operation = "list_dir", path = "{d}", recursive = true}}')
    assert {e["name"] for e in rec["result"]["entries"]} == {"f.txt", "x", "x/y"}
    cp = invoke(rt, "file_operations", f'{{operation = "cp", source_path = "{d}/f.txt", target_path = "{d}/g.txt"}}')
    assert cp["text"] == f"Copied {d}/f.txt to {d}/g.txt" and (d / "g.txt").read_text() == "12345"
    mv = invoke(rt, "file_operations", f'{{operation = "rename", source_path = "{d}/g.txt", target_path = "{d}/h.txt"}}')
    assert mv["text"] == f"Moved {d}/g.txt to {d}/h.txt" and not (d / "g.txt").exists()
    md = invoke(rt, "file_operations", f'{{operation = "stat", path = "{d}/h.txt"}}')
    res = md["result"]
    assert res["exists"] is True and res["type"] == "file" and res["size"] == 5 and res["is_symlink"] is False
    assert len(res["permissions"]) == 3 and res["modified"].endswith("Z")
    ex = invoke(rt, "file_operations", f'{{operation = "exists", path = "{d}/nope"}}')
    assert ex["result"] == {"path": f"{d}/nope", "exists": False}
    de = invoke(rt, "file_operations", f'{{operation = "delete", path = "{d}/h.txt"}}')
    assert de["text"] == f"Deleted {d}/h.txt"
    msg = invoke_error(rt, "file_operations", f'{{operation = "delete", path = "{d}"}}')
    assert "is a directory (pass recursive = true)" in msg
    invoke(rt, "file_operations", f'{{operation = "delete", path = "{d}", recursive = true}}')
    assert not d.exists()


def test_graceful_write_failures(rt: Any, tmp_path: Path) -> None:
    out = invoke(rt, "file_operations", '{operation = "write", path = "/etc/llmspell_nope.txt", input = "x"}')
    assert out["success"] is False
    assert out["text"].startswith("Operation 'write' failed: path '/etc/llmspell_nope.txt' is outside the allowed paths")
    assert "add it to [tools.file_operations] allowed_paths" in out["text"]
    missing = invoke(rt, "file_operations", f'{{operation = "write", path = "{tmp_path}/m.txt"}}')
    assert missing["success"] is False and "missing 'input'" in missing["text"]
    table = invoke(rt, "file_operations", f'{{operation = "append", path = "{tmp_path}/t.txt", input = {{a = 1}}}}')
    assert table["success"] is False and "JSON.stringify" in table["text"]
    (tmp_path / "dir").mkdir()
    oserr = invoke(rt, "file_operations", f'{{operation = "write", path = "{tmp_path}/dir", input = "x"}}')
    assert oserr["success"] is False and oserr["text"].startswith("Operation 'write' failed:")


def test_other_operations_raise(rt: Any, tmp_path: Path) -> None:
    assert "outside the allowed paths" in invoke_error(rt, "file_operations", '{operation = "read", path = "/etc/hostname"}')
    assert "no such file" in invoke_error(rt, "file_operations", f'{{operation = "read", path = "{tmp_path}/none"}}')
    assert "invalid operation 'explode'" in invoke_error(rt, "file_operations", '{operation = "explode", path = "x"}')
    assert "missing required parameter 'operation'" in invoke_error(rt, "file_operations", '{path = "x"}')
    msg = invoke_error(rt, "file_operations", f'{{operation = "copy", source_path = "{tmp_path}/none", target_path = "/etc/x"}}')
    assert "outside the allowed paths" in msg or "no such file" in msg


def test_dotdot_and_symlink_escape_are_refused(make_rt: Any, tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (tmp_path / "secret.txt").write_text("s")
    rt = make_rt(f'[tools.file_operations]\nallowed_paths = ["{box}"]\n')
    link = box / "escape"
    os.symlink(tmp_path, link)
    assert "outside the allowed paths" in invoke_error(rt, "file_operations", f'{{operation = "read", path = "{link}/secret.txt"}}')
    sneaky = f"{box}/../secret.txt"
    assert "outside the allowed paths" in invoke_error(rt, "file_operations", f'{{operation = "read", path = "{sneaky}"}}')


def test_configured_allowed_paths_and_limits(make_rt: Any, tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    rt = make_rt(f'[tools.file_operations]\nallowed_paths = ["{box}"]\nmax_file_size = 10\nblocked_extensions = ["exe"]\n')
    ok = invoke(rt, "file_operations", f'{{operation = "write", path = "{box}/a.txt", input = "small"}}')
    assert ok["success"] is True
    outside = invoke(rt, "file_operations", f'{{operation = "write", path = "{tmp_path}/b.txt", input = "x"}}')
    assert outside["success"] is False and str(box) in outside["text"]
    big = invoke(rt, "file_operations", f'{{operation = "write", path = "{box}/big.txt", input = string.rep("x", 11)}}')
    assert big["success"] is False and "max_file_size" in big["text"]
    exe = invoke(rt, "file_operations", f'{{operation = "write", path = "{box}/a.exe", input = "x"}}')
    assert exe["success"] is False and "blocked" in exe["text"]


@pytest.mark.parametrize("toml,needle", [
    ("[tools.file_operations]\nenabled = false\n", "tool 'file_operations' is disabled by config"),
    ("[tools]\nenabled = false\n", "disabled by config"),
    ("[runtime.security]\nallow_file_access = false\n", "allow_file_access = false"),
])
def test_disabled_by_config(make_rt: Any, tmp_path: Path, toml: str, needle: str) -> None:
    rt = make_rt(toml)
    assert needle in invoke_error(rt, "file_operations", f'{{operation = "exists", path = "{tmp_path}"}}')
