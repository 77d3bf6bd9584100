"""The other built-in tools: utility, data, filesystem and system tools (§19.5)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from llmspell.tools.calc import CalcError, evaluate
from llmspell.tools.jq import JqError, run_query
from tests.tools.conftest import invoke, invoke_error


@pytest.mark.parametrize("expr,value", [("2 + 3 * 4", 14), ("2 ^ 3 ^ 2", 512), ("-2 ^ 2", -4), ("(1 + 2) * 3", 9),
                                        ("10 / 4", 2.5), ("7 % 3", 1), ("sqrt(16) + abs(-2)", 6), ("max(1, 5, 3)", 5),
                                        ("round(2.6)", 3), ("log10(1000)", 3), ("pi > 3", True), ("2 ** 10", 1024)])
def test_calculator_evaluator(expr: str, value: Any) -> None:
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr", ["__import__('os')", "1 / 0", "2 +", "foo(1)", "x + 1", "9 ^ 99999", "a.b"])
def test_calculator_rejects(expr: str) -> None:
    with pytest.raises(CalcError):
        evaluate(expr)


def test_calculator_tool(rt: Any) -> None:
    r = invoke(rt, "calculator", '{input = "x * 2 + y", variables = {x = 3, y = 0.5}}')
    assert r["result"] == {"result": 6.5, "expression": "x * 2 + y"}
    assert invoke(rt, "calculator", '{input = "4 / 2"}')["result"]["result"] == 2
    assert invoke(rt, "calculator", '{operation = "validate", input = "1 +"}')["result"]["valid"] is False
    assert "sqrt" in invoke(rt, "calculator", '{operation = "functions"}')["result"]["functions"]
    bad = invoke(rt, "calculator", '{input = "1 / 0"}')
    assert bad["success"] is False and "division by zero" in bad["error"]


def test_base64_hash_uuid(rt: Any, tmp_path: Path) -> None:
    assert invoke(rt, "base64_encoder", '{operation = "encode", input = "hi?>"}')["result"]["output"] == "aGk/Pg=="
    assert invoke(rt, "base64_encoder", '{operation = "encode", input = "hi?>", variant = "url_safe"}')["result"]["output"] == "aGk_Pg=="
    assert invoke(rt, "base64_encoder", '{operation = "decode", input = "aGk/Pg"}')["result"]["output"] == "hi?>"
    out = tmp_path / "o.b64"
    w = invoke(rt, "base64_encoder", f'{{operation = "encode", input = "x", output_file = "{out}"}}')
    assert w["result"]["bytes"] == 4 and out.read_text() == "eA=="
    assert "invalid base64" in invoke_error(rt, "base64_encoder", '{operation = "decode", input = "!!!"}')
    h = invoke(rt, "hash_calculator", '{operation = "hash", input = "abc"}')["result"]
    assert h["hash"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" and h["algorithm"] == "sha256"
    assert invoke(rt, "hash_calculator", '{operation = "hash", input = "abc", algorithm = "md5", format = "base64"}')["result"]["hash"] == "kAFQmDzST7DWlj99KOF/cg=="
    v = invoke(rt, "hash_calculator", '{operation = "verify", input = "abc", algorithm = "md5", '
                                      'expected_hash = "900150983CD24FB0D6963F7D28E17F72"}')
    assert v["result"]["valid"] is True
    f = tmp_path / "h.txt"
    f.write_text("abc")
    assert invoke(rt, "hash_calculator", f'{{operation = "hash", input_type = "file", file = "{f}", algorithm = "sha1"}}')["result"]["hash"] == "a9993e364706816aba3e25717850c26c9cd0d89d"
    u = invoke(rt, "uuid_generator", "{}")["result"]
    assert len(u["uuid"]) == 36 and u["version"] == 4
    assert invoke(rt, "uuid_generator", '{version = 7}')["result"]["version"] == 7
    d1 = invoke(rt, "uuid_generator", '{operation = "deterministic", name = "n"}')["result"]["uuid"]
    assert d1 == invoke(rt, "uuid_generator", '{operation = "deterministic", name = "n"}')["result"]["uuid"]
    assert invoke(rt, "uuid_generator", '{format = "simple"}')["result"]["uuid"].isalnum()
    assert invoke(rt, "uuid_generator", f'{{operation = "validate", uuid = "{d1}"}}')["result"] == {"valid": True, "version": 5}
    assert invoke(rt, "uuid_generator", '{operation = "component_id", prefix = "agent"}')["result"]["uuid"].startswith("agent_")
    assert "invalid version 3" in invoke_error(rt, "uuid_generator", "{version = 3}")


def test_date_time_handler(rt: Any) -> None:
    p = invoke(rt, "date_time_handler", '{operation = "parse", input = "2024-03-10T12:30:00Z"}')["result"]
    assert p["datetime"] == "2024-03-10T12:30:00Z" and p["timestamp"] == 1710073800 and p["weekday"] == "Sunday"
    c = invoke(rt, "date_time_handler", '{operation = "convert_timezone", input = "2024-03-10T12:30:00Z", '
                                        'target_timezone = "Asia/Tokyo"}')["result"]
    assert c["datetime"] == "2024-03-10T21:30:00+09:00" and c["timezone"] == "Asia/Tokyo"
    a = invoke(rt, "date_time_handler", '{operation = "subtract", input = "2024-03-10", amount = 2, unit = "hours"}')
    assert a["result"]["datetime"] == "2024-03-09T22:00:00Z"
    d = invoke(rt, "date_time_handler", '{operation = "difference", start = "2024-01-01", ["end"] = "2024-01-01T00:01:30Z"}')
    assert d["result"]["seconds"] == 90 and d["result"]["human"] == "1 minute, 30 seconds"
    n = invoke(rt, "date_time_handler", '{operation = "now", format = "%Y"}')["result"]
    assert isinstance(n["timestamp"], int) and len(n["formatted"]) == 4
    assert invoke(rt, "datetime_handler", '{operation = "formats"}')["success"] is True
    assert "cannot parse" in invoke_error(rt, "date_time_handler", '{operation = "parse", input = "soonish"}')
    assert "unknown timezone" in invoke_error(rt, "date_time_handler", '{operation = "now", timezone = "Mars/Base"}')
    assert "invalid operation" in invoke_error(rt, "date_time_handler", '{operation = "travel"}')


def test_diff_template_json_csv_validation(rt: Any) -> None:
    d = invoke(rt, "diff_calculator", '{old_text = "a\\nb\\n", new_text = "a\\nc\\n"}')["result"]
    assert (d["additions"], d["deletions"]) == (1, 1) and "-b" in d["diff"] and "+c" in d["diff"]
    inline = invoke(rt, "diff_calculator", '{old_text = "cat", new_text = "cut", format = "inline"}')["result"]["diff"]
    assert inline == "c[-a-]{+u+}t"
    j = invoke(rt, "diff_calculator", '{type = "json", old_json = \'{"a":1,"l":[1]}\', new_json = {a = 1, l = {1, 2}}}')
    assert j["result"]["differences"] == [{"path": "l[2]", "op": "add", "new": 2}]
    t = invoke(rt, "template_engine", '{input = "{{ x | upper }}{% if y %}!{% endif %}", context = {x = "a", y = true}}')
    assert t["result"] == {"rendered": "A!", "engine": "tera"}
    hb = invoke(rt, "template_engine", '{input = "{{#each xs}}<{{this}}>{{/each}}", engine = "handlebars", context = {xs = {1, 2}}}')
    assert hb["result"]["rendered"] == "<1><2>"
    assert "template error" in invoke_error(rt, "template_engine", '{input = "{{ x.__class__.__mro__ }}{% bad %}"}')
    q = invoke(rt, "json_processor", '{input = {users = {{n = "a", age = 3}, {n = "b", age = 9}}}, '
                                     'query = "[.users[] | select(.age > 5) | .n]"}')
    assert q["result"]["result"] == ["b"]
    v = invoke(rt, "json_processor", '{operation = "validate", input = \'{"a": "x"}\', '
                                     'schema = {type = "object", properties = {a = {type = "integer"}}}}')
    assert v["result"]["valid"] is False and v["result"]["errors"][0]["path"] == "a"
    assert "not valid JSON" in invoke_error(rt, "json_processor", '{input = "{nope"}')
    assert "jq:" in invoke_error(rt, "json_processor", '{input = "{}", query = ".a | nosuchfn"}')
    csv = 'name,score\\nann,3\\nbob,5\\n'
    an = invoke(rt, "csv_analyzer", f'{{input = "{csv}"}}')["result"]
    assert an["rows"] == 2 and an["columns"] == ["name", "score"] and an["column_stats"]["score"]["mean"] == 4
    fl = invoke(rt, "csv_analyzer", f'{{operation = "filter", input = "{csv}", options = {{column = "name", value = "bob"}}}}')
    assert fl["result"]["rows"] == [{"name": "bob", "score": "5"}]
    cv = invoke(rt, "csv_analyzer", f'{{operation = "convert", input = "{csv}"}}')["result"]["output"]
    assert cv.startswith('[{"name":"ann"')
    dv = invoke(rt, "data_validation", '{input = {age = 200, email = "a@b.co", tag = "z"}, rules = {rules = {'
                                       '{type = "range", field = "age", min = 0, max = 150}, {type = "email", field = "email"},'
                                       '{type = "enum", field = "tag", values = {"x", "y"}}, {type = "type", field = "age", expected = "integer"}}}}')
    assert dv["result"]["valid"] is False
    assert [e["rule"] for e in dv["result"]["errors"]] == ["range", "enum"]
    assert "unknown rule type" in invoke_error(rt, "data_validation", '{input = {}, rules = {rules = {{type = "vibes"}}}}')


def test_jq_subset() -> None:
    data = {"a": [{"k": 1}, {"k": 2}], "s": "x"}
    assert run_query(".a | map(.k) | add", data) == [3]
    assert run_query('.a[] | {k, double: (.k * 2)}', data) == [{"k": 1, "double": 2}, {"k": 2, "double": 4}]
    assert run_query(".missing // \"d\"", data) == ["d"]
    assert run_query("keys", data) == [["a", "s"]]
    with pytest.raises(JqError):
        run_query(".s[]", data)


def test_filesystem_tools(rt: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello world\nbye\n")
    (src / "b.md").write_text("Hello again\n")
    fs = invoke(rt, "file_search", f'{{pattern = "hello", path = "{src}", context_lines = 1}}')["result"]
    assert fs["total_matches"] == 2 and fs["files_searched"] == 2
    assert fs["matches"][0]["line"] == 1 and fs["matches"][0]["context_after"] == ["bye"]
    cs = invoke(rt, "file_search", f'{{pattern = "^H", path = "{src}", use_regex = true, case_sensitive = true}}')
    assert [m["file"] for m in cs["result"]["matches"]] == [str(src / "b.md")]
    arc = tmp_path / "a.zip"
    c = invoke(rt, "archive_handler", f'{{operation = "create", path = "{arc}", input = {{"{src}/a.txt", "{src}/b.md"}}}}')
    assert c["result"]["count"] == 2
    ls = invoke(rt, "archive_handler", f'{{operation = "list", path = "{arc}"}}')
    assert sorted(ls["result"]["files"]) == ["a.txt", "b.md"]
    out = tmp_path / "out"
    invoke(rt, "archive_handler", f'{{operation = "extract", path = "{arc}", target_path = "{out}"}}')
    assert (out / "a.txt").read_text().startswith("hello")
    tgz = tmp_path / "a.tar.gz"
    invoke(rt, "archive_handler", f'{{operation = "create", path = "{tgz}", input = {{"{src}/a.txt"}}, format = "tar.gz"}}')
    assert invoke(rt, "archive_handler", f'{{operation = "list", path = "{tgz}"}}')["result"]["files"] == ["a.txt"]
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escape.txt", "x")
    assert "escape the target" in invoke_error(rt, "archive_handler", f'{{operation = "extract", path = "{evil}", '
                                                                      f'target_path = "{out}"}}')
    crlf = tmp_path / "w.txt"
    crlf.write_bytes(b"a\r\nb\r\n")
    invoke(rt, "file_converter", f'{{operation = "line_endings", path = "{crlf}", line_ending = "lf"}}')
    assert crlf.read_bytes() == b"a\nb\n"
    tabs = tmp_path / "t.txt"
    tabs.write_text("\tx\n")
    invoke(rt, "file_converter", f'{{operation = "indentation", path = "{tabs}", tab_size = 2}}')
    assert tabs.read_text() == "  x\n"
    w = invoke(rt, "file_watcher", f'{{operation = "watch", input = {{"{src}"}}, timeout_ms = 100}}')
    assert w["result"]["events"] == []


def test_system_tools(make_rt: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MY_API_KEY", "sekrit")
    monkeypatch.setenv("MY_PLAIN", "visible")
    rt = make_rt("[runtime.security]\nallow_process_spawn = true\n[tools.process_executor]\n"
                 f'allowed_commands = ["{Path(sys.executable).name}", "false"]\n')
    assert invoke(rt, "environment_reader", '{operation = "get", variable_name = "MY_API_KEY"}')["result"]["value"] == "***"
    assert invoke(rt, "environment_reader", '{operation = "get", variable_name = "MY_PLAIN"}')["result"]["value"] == "visible"
    pat = invoke(rt, "environment_reader", '{operation = "pattern", pattern = "MY_*"}')["result"]["variables"]
    assert pat == {"MY_API_KEY": "***", "MY_PLAIN": "visible"}
    p = invoke(rt, "process_executor", f'{{executable = "{sys.executable}", arguments = {{"-c", "print(6 * 7)"}}}}')
    assert p["result"]["exit_code"] == 0 and p["result"]["stdout"].strip() == "42"
    t = invoke(rt, "process_executor", f'{{executable = "{sys.executable}", arguments = {{"-c", "import time; time.sleep(5)"}}, '
                                       'timeout_seconds = 0.2}')
    assert t["success"] is False and "timed out" in t["error"]
    assert "allowed_commands" in invoke_error(rt, "process_executor", '{executable = "ls"}')
    m = invoke(rt, "system_monitor", "{}")["result"]
    assert isinstance(m["memory"]["total"], int) and isinstance(m["disk"]["free"], int) and isinstance(m["cpu_percent"], float)
    db = tmp_path / "d.sqlite"
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("create table t (a int, b text)")
    con.execute("insert into t values (1, 'x')")
    con.commit()
    con.close()
    q = invoke(rt, "database-connector", f'{{operation = "query", database = "{db}", query = "select * from t"}}')
    assert q["result"] == {"columns": ["a", "b"], "rows": [[1, "x"]], "row_count": 1}
    assert invoke(rt, "database-connector", f'{{operation = "schema", database = "{db}"}}')["result"]["tables"] == ["t"]
    assert "allow_write" in invoke_error(rt, "database-connector", f'{{operation = "query", database = "{db}", '
                                                                  'query = "delete from t", query_type = "write"}')


def test_process_executor_refused_by_default(rt: Any) -> None:
    assert "allow_process_spawn" in invoke_error(rt, "process_executor", '{executable = "echo"}')


def test_email_sender_unconfigured(rt: Any) -> None:
    assert "email-sender is not configured ([tools.email_sender])" in invoke_error(
        rt, "email-sender", '{to = "a@b.c", subject = "s", body = "b"}')


def test_graph_builder(rt: Any) -> None:
    g = invoke(rt, "graph-builder", '{operation = "create_graph", graph_type = "undirected"}')["result"]["graph"]
    assert g == {"directed": False, "nodes": [], "edges": []}
    a = invoke(rt, "graph-builder", '{operation = "analyze", graph = {nodes = {{id = "c"}}, edges = {{from = "a", to = "b"}}}}')
    assert a["result"]["nodes"] == 3 and a["result"]["edges"] == 1 and a["result"]["components"] == 2
