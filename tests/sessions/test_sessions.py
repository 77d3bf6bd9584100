"""Sessions: lifecycle, expiry, snapshots, isolation, policies, artifacts, replay, and the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from llmspell.config import LLMConfig
from llmspell.events import build_bus
from llmspell.hooks import build_registry
from llmspell.script.services import Services
from llmspell.sessions import SessionError, SessionPolicy, build_sessions
from llmspell.sessions.artifacts import K_BLOB, ArtifactError, build_artifacts
from llmspell.state import build_state


def make(tmp_path: Path, **sessions: Any) -> Services:
    cfg = LLMConfig(data={"state": {"path": str(tmp_path / "state.sqlite3")}, "sessions": sessions,
                          "tools": {"file_operations": {"allowed_paths": [str(tmp_path)]}}}, env={})
    s = Services(config=cfg)
    s.state = build_state(cfg, s)
    s.events = build_bus(cfg, s)
    s.hooks = build_registry(cfg, s)
    s.sessions = build_sessions(cfg, s)
    s.artifacts = build_artifacts(cfg, s)
    return s


def test_legal_and_illegal_transitions(tmp_path: Path) -> None:
    m = make(tmp_path).sessions
    sid = m.create("a")
    assert m.get(sid).status == "active"
    for op, status in (("suspend", "suspended"), ("resume", "active"), ("suspend", "suspended"),
                       ("complete", "completed"), ("archive", "archived")):
        assert m.transition(op, sid).status == status
    for op in ("suspend", "resume", "complete", "fail", "archive"):
        with pytest.raises(SessionError, match=f"cannot {op} a archived session"):
            m.transition(op, sid)
    other = m.create("b")
    with pytest.raises(SessionError, match="cannot resume a active session"):
        m.transition("resume", other)
    with pytest.raises(SessionError, match="cannot archive a active session"):
        m.transition("archive", other)
    m.transition("fail", other, "boom")
    assert m.get(other).public()["reason"] == "boom"


def test_invalid_and_unknown_ids(tmp_path: Path) -> None:
    m = make(tmp_path).sessions
    with pytest.raises(SessionError, match="Invalid session ID"):
        m.get("not-a-uuid")
    assert m.get("00000000-0000-4000-8000-000000000000") is None
    with pytest.raises(SessionError, match="not found"):
        m.transition("complete", "00000000-0000-4000-8000-000000000000")


def test_expired_session_fails_with_timeout(tmp_path: Path) -> None:
    s = make(tmp_path, session_timeout_seconds=60)
    m = s.sessions
    sid = m.create("old")
    m.get(sid).last_activity -= 120
    rec = m.get(sid)
    assert rec.status == "failed" and rec.reason == "timeout"
    with pytest.raises(SessionError, match="cannot resume a failed session"):
        m.transition("resume", sid)
    with pytest.raises(ArtifactError, match="failed \\(timeout\\)"):
        s.artifacts.store(sid, "t", "n", b"x")
    sid2 = m.create("old2")
    m.get(sid2).last_activity -= 120
    assert m.cleanup_expired() == [sid2]


def test_persisted_across_managers_and_list_filters(tmp_path: Path) -> None:
    s = make(tmp_path)
    a = s.sessions.create("a", tags=["x", "y"])
    time.sleep(0.002)
    b = s.sessions.create("b", tags=["x"])
    s.sessions.transition("complete", b)
    fresh = make(tmp_path).sessions
    assert [r.id for r in fresh.list()] == [b, a]
    assert [r.id for r in fresh.list(tags=["x", "y"])] == [a]
    assert [r.id for r in fresh.list(status="completed")] == [b]
    assert len(fresh.list(limit=1)) == 1
    with pytest.raises(SessionError, match="unknown status"):
        fresh.list(status="weird")


def test_save_load_restores_snapshot_and_state(tmp_path: Path) -> None:
    s = make(tmp_path)
    m = s.sessions
    sid = m.create("snap")
    s.state.save("session", f"{sid}:k", "v1")
    m.save(sid)
    s.state.save("session", f"{sid}:k", "v2")
    s.state.save("session", f"{sid}:extra", 1)
    m.transition("complete", sid)
    assert m.load(sid) == sid
    assert m.get(sid).status == "active"
    assert s.state.load("session", f"{sid}:k") == "v1" and not s.state.exists("session", f"{sid}:extra")
    with pytest.raises(SessionError, match="not found"):
        m.load("00000000-0000-4000-8000-000000000000")


def test_max_sessions(tmp_path: Path) -> None:
    m = make(tmp_path, max_sessions=2).sessions
    m.create()
    b = m.create()
    with pytest.raises(SessionError, match="max_sessions"):
        m.create()
    m.transition("complete", b)
    m.create()


def test_artifacts_dedupe_compress_version_query(tmp_path: Path) -> None:
    s = make(tmp_path, artifact_compression_threshold=100)
    sid = s.sessions.create("art")
    big = b"abc" * 1000
    a1 = s.artifacts.store(sid, "agent_output", "out.txt", big, {"tags": ["t"], "k": 1})
    a2 = s.artifacts.store(sid, "agent_output", "out.txt", big)
    a3 = s.artifacts.store(sid, "tool_result", "small.json", b"{}", {"mime_type": "application/json"})
    assert a1.content_hash == a2.content_hash and (a1.sequence, a2.sequence, a3.sequence) == (1, 2, 3)
    blob = s.state.backend.get(K_BLOB + a1.content_hash)
    assert blob[:1] == b"z" and len(blob) < len(big)
    assert len(s.state.backend.keys(K_BLOB)) == 2
    got = s.artifacts.get(sid, a2.as_dict())
    assert got["content"] == big and got["metadata"]["version"] == 2 and got["metadata"]["mime_type"] == "text/plain"
    assert s.artifacts.get(sid, a1.content_hash)["metadata"]["sequence"] == 2
    assert s.artifacts.get(sid, a3.as_dict())["metadata"]["custom"] == {}
    assert s.artifacts.get(sid, a1.as_dict())["metadata"]["custom"] == {"k": 1}
    assert [m["name"] for m in s.artifacts.query({"session_id": sid, "type": "agent_output"})] == ["out.txt"] * 2
    assert len(s.artifacts.query({"session_id": sid, "tags": ["t"]})) == 1
    assert len(s.artifacts.query({"session_id": sid, "name_pattern": "*.json"})) == 1
    assert len(s.artifacts.query({"session_id": sid, "min_size": 100})) == 2
    assert len(s.artifacts.query({"session_id": sid, "max_size": 10, "limit": 5})) == 1
    assert len(s.artifacts.query({"session_id": sid, "created_after": "2000-01-01T00:00:00Z"})) == 3
    assert s.artifacts.query({"session_id": sid, "created_before": 0}) == []
    assert s.artifacts.delete(sid, a1.as_dict()) is True
    assert s.state.backend.get(K_BLOB + a1.content_hash) is not None
    assert s.artifacts.delete(sid, a2.as_dict()) is True and s.artifacts.delete(sid, a2.as_dict()) is False
    assert s.state.backend.get(K_BLOB + a1.content_hash) is None
    assert s.sessions.get(sid).artifact_count == 1


def test_artifact_limits(tmp_path: Path) -> None:
    s = make(tmp_path, max_artifacts_per_session=2, max_artifact_bytes=10)
    sid = s.sessions.create()
    with pytest.raises(ArtifactError, match="10-byte limit"):
        s.artifacts.store(sid, "t", "big", b"x" * 11)
    s.artifacts.store(sid, "t", "a", b"1")
    s.artifacts.store(sid, "t", "b", b"2")
    with pytest.raises(ArtifactError, match="max_artifacts_per_session"):
        s.artifacts.store(sid, "t", "c", b"3")
    with pytest.raises(ArtifactError, match="type must be"):
        s.artifacts.store(sid, "", "c", b"3")


def test_store_file_uses_the_sandbox(tmp_path: Path) -> None:
    s = make(tmp_path)
    sid = s.sessions.create()
    f = tmp_path / "report.md"
    f.write_text("# hi")
    a = s.artifacts.store_file(sid, str(f), "user_input")
    meta = s.artifacts.get(sid, a.as_dict())["metadata"]
    assert meta["name"] == "report.md" and meta["custom"]["source_path"] == str(f)
    with pytest.raises(ArtifactError, match="outside the allowed paths"):
        s.artifacts.store_file(sid, "/etc/hostname", "user_input")
    with pytest.raises(ArtifactError, match="no such file"):
        s.artifacts.store_file(sid, str(tmp_path / "missing"), "user_input")


def test_store_file_is_safe_against_a_swap_and_reads_at_most_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """store_file opens through the sandbox's descriptor walk: a directory swapped for a symlink to outside
    between the check and the open is refused, and a file is read no further than the limit."""
    from llmspell.tools import sandbox as sandbox_mod

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET")
    (root / "d" / "secret.txt").write_text("decoy")
    cfg = LLMConfig(data={"state": {"path": str(tmp_path / "state.sqlite3")}, "sessions": {"max_artifact_bytes": 10},
                          "tools": {"file_operations": {"allowed_paths": [str(root)]}}}, env={})
    s = Services(config=cfg)
    s.state, s.events = build_state(cfg, s), build_bus(cfg, s)
    s.hooks = build_registry(cfg, s)
    s.sessions = build_sessions(cfg, s)
    s.artifacts = build_artifacts(cfg, s)
    sid = s.sessions.create()

    def swap(real: Path) -> None:
        d = root / "d"
        if d.is_symlink() or d not in real.parents:
            return
        d.rename(root / "d.orig")
        d.symlink_to(outside)

    monkeypatch.setattr(sandbox_mod, "between_check_and_use", swap)
    with pytest.raises(ArtifactError, match="symlink"):
        s.artifacts.store_file(sid, str(root / "d" / "secret.txt"), "user_input")
    monkeypatch.undo()
    assert s.artifacts.list(sid) == []
    (root / "big.txt").write_text("x" * 11)
    with pytest.raises(ArtifactError, match="10-byte limit"):
        s.artifacts.store_file(sid, str(root / "big.txt"), "user_input")
    assert s.artifacts.store_file(sid, str(root / "d.orig" / "secret.txt"), "user_input")


def test_isolation_between_sessions(tmp_path: Path) -> None:
    s = make(tmp_path)
    a, b = s.sessions.create("a"), s.sessions.create("b")
    art = s.artifacts.store(a, "t", "secret.txt", b"for a only")
    assert s.artifacts.get(b, art.as_dict()) is None
    assert s.artifacts.get(b, art.content_hash) is None
    assert s.artifacts.list(b) == [] and s.artifacts.delete(b, art.as_dict()) is False
    s.sessions.delete(a)
    assert s.state.backend.keys(K_BLOB) == []


def test_policies_rate_limit_operations_and_idle(tmp_path: Path) -> None:
    s = make(tmp_path)
    m, hooks = s.sessions, s.hooks
    sid = m.create("p", policy=SessionPolicy(rate_per_second=0.001, burst=2))
    m.set_current(sid)
    data = {"tool": "x", "parameters": {}}
    acts = [hooks.run("BeforeToolExecution", data, component=("tool", "x")).action for _ in range(3)]
    assert acts == ["continue", "continue", "cancel"]
    sid2 = m.create("ops", policy=SessionPolicy(max_operations=1))
    m.set_current(sid2)
    assert hooks.run("BeforeAgentExecution", {}, component=("agent", "a")).action == "continue"
    out = hooks.run("BeforeAgentExecution", {}, component=("agent", "a"))
    assert out.action == "cancel" and "operation limit" in out.reason
    sid3 = m.create("idle", policy=SessionPolicy(idle_timeout_seconds=5))
    m.set_current(sid3)
    m.get(sid3).last_activity -= 10
    out = hooks.run("BeforeWorkflowStart", {}, component=("workflow", "w"))
    assert out.action == "cancel" and "idle" in out.reason and m.get(sid3).status == "failed"
    sid4 = m.create("tokens", policy=SessionPolicy(max_tokens=100))
    m.set_current(sid4)
    s.stats.record_llm_call("m", 80, 40, 0.0, 1.0)
    out = hooks.run("BeforeAgentExecution", {}, component=("agent", "a"))
    assert out.action == "cancel" and "token limit" in out.reason
    m.set_current(None)
    assert hooks.run("BeforeAgentExecution", {}, component=("agent", "a")).action == "continue"


def test_timeline_recording_and_replay(tmp_path: Path) -> None:
    s = make(tmp_path)
    m = s.sessions
    sid = m.create("rec")
    m.set_current(sid)
    s.hooks.register("BeforeToolExecution", lambda ctx: "skip")
    s.hooks.run("BeforeToolExecution", {"tool": "x"}, component=("tool", "x"))
    s.events.publish("app.done", {"n": 1})
    m.transition("complete", sid)
    meta = m.replay_metadata(sid)
    assert meta["hooks"] == 1 and meta["events"] >= 2 and m.can_replay(sid) and sid in m.list_replayable()
    from llmspell.sessions.replay import ReplayOptions

    sub = s.events.subscribe("app.*")
    r = m.replay(sid, ReplayOptions())
    assert r["success"] and r["differences"] == [] and r["steps_replayed"] == len(m.timeline(sid))
    assert s.events.poll(sub).data == {"n": 1}
    s.hooks.clear()
    r = m.replay(sid, ReplayOptions(hook_filter=frozenset({"BeforeToolExecution"})))
    assert [d["expected"] for d in r["differences"]] == ["skip"] and r["differences"][0]["actual"] == "continue"
    r = m.replay(sid, ReplayOptions(start_from=2, end_at=2))
    assert r["steps_replayed"] == 1
    assert len(m.timeline(sid)) == meta["hooks"] + meta["events"]
    fresh = make(tmp_path).sessions
    assert fresh.replay_metadata(sid)["hooks"] == 1
    empty = m.create("empty")
    with pytest.raises(SessionError, match="no recorded timeline"):
        m.replay(empty, ReplayOptions())


def test_sessions_disabled_removes_globals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "s.sqlite3"))
    monkeypatch.setenv("LLMSPELL_SESSIONS_ENABLED", "0")
    out = BufferSink()
    rt = create_runtime(load_config(env=dict(os.environ)), stdout=out, stderr=BufferSink())
    try:
        rt.run_string("print(Session == nil, Artifact == nil, State ~= nil)", "=(t)")
    finally:
        rt.close()
    assert out.text.strip() == "true\ttrue\ttrue"


def run(rt: Any, code: str) -> str:
    rt.test_out.parts.clear()
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def test_session_and_artifact_globals(lua_runtime: Any, tmp_path: Path) -> None:
    out = run(lua_runtime, """
        local id = Session.create{name = "s", description = "d", tags = {"a"}, metadata = {k = 1}}
        local g = Session.get(id)
        print(g.name, g.description, g.tags[1], g.status, g.metadata.k, math.type(g.operation_count), g.created_at:sub(-1))
        print(Session.get_current(), Session.set_current(id), Session.get_current() == id)
        State.save("session", "k", "mine")
        local other = Session.create{name = "o"}
        Session.set_current(other); print(State.load("session", "k"), #State.list_keys("session"))
        Session.set_current(id); print(State.load("session", "k"), State.list_keys("session")[1])
        local a = Artifact.store(id, "agent_output", "r.txt", "bytes\\0\\255", {tags = {"x"}})
        print(math.type(a.sequence), #a.content_hash, a.session_id == id)
        local got = Artifact.get(id, a); print(#got.content, got.content == "bytes\\0\\255", got.metadata.size)
        print(Artifact.get(other, a), #Artifact.list(""), #Artifact.query{tags = {"x"}}, Artifact.delete(id, a.content_hash))
        print(pcall(Artifact.store, id, "t", "n", {}))
        print(pcall(Session.archive, id))
        print(Session.suspend(id), Session.resume(id), Session.complete(id), Session.archive(id))
        print(pcall(Session.get, "zzz"))
        local b = Session.builder():name("built"):tag("t1"):tags({"t2"}):metadata({m = true}):build()
        print(Session.get(b).name, #Session.get(b).tags, #Session.list{tags = {"t2"}})
        print(Session.save(b), Session.load(b) == b, Session.delete(b), Session.get(b))
        print(Session.set_current(nil), Session.get_current())
    """)
    lines = out.splitlines()
    assert lines[0] == "s\td\ta\tactive\t1\tinteger\tZ"
    assert lines[1].startswith("nil\t") and lines[1].endswith("\ttrue")
    assert lines[2] == "nil\t0"
    assert lines[3] == "mine\tk"
    assert lines[4] == "integer\t64\ttrue"
    assert lines[5] == "7\ttrue\t7"
    assert lines[6] == "nil\t1\t1\ttrue"
    assert lines[7].startswith("false\tArtifact.store: content must be a string")
    assert lines[8] == "false\tcannot archive a active session"
    assert lines[9] == "true\ttrue\ttrue\ttrue"
    assert lines[10].startswith("false\tInvalid session ID")
    assert lines[11] == "built\t2\t1"
    assert lines[12] == "true\ttrue\ttrue\tnil"
    assert lines[13] == "nil\tnil"


def test_lua_replay_global_and_session_replay(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        local id = Session.create{name = "r"}
        Session.set_current(id)
        Hook.register("BeforeStateChange", function(ctx) end)
        State.save("g", "x", 1)
        Event.publish("app.e", {v = 1})
        Session.complete(id)
        local steps = {}
        local r = Session.replay(id, {progress_callback = function(p) steps[#steps + 1] = p.name end})
        print(r.success, r.steps_replayed, r.failures, #r.differences, math.type(r.duration_ms), #steps)
        local md = Session.get_replay_metadata(id); print(md.hooks, md.events > 0, math.type(md.duration_ms))
        print(Session.can_replay(id), #Session.list_replayable())
        print(Replay.modes.exact, Replay.modes.simulate)
        local c = Replay.create_config(Replay.modes.debug)
        print(c:get_mode(), c:should_compare_results(), c:should_stop_on_error(), c:get_timeout_seconds())
        c:add_modification("value", 5); print(#c:get_modifications(), c:get_modifications()[1].enabled)
        local m = Replay.create_modification("a.b", 1, false); print(m.path, m.value, m.enabled)
        print(Replay.schedules.once(5).type, Replay.schedules.interval(1, 2, 3).max_executions, Replay.schedules.cron("0 * * * *").expression)
        print(pcall(Replay.schedules.cron, "bad"))
        local cmp = Replay.create_comparator()
        local d = cmp:compare_json({a = 1, b = {x = 1}}, {a = 1, b = {x = 2}, c = 3})
        print(d.identical, d.similarity_score < 1, #d.differences, d.differences[1].path)
        print(cmp:compare_json({1, 2}, {1, 2}).identical, cmp:compare_json({1, 2}, {1, 2}).similarity_score)
        print(pcall(Replay.create_config, "nope"))
    """)
    lines = out.splitlines()
    assert lines[0].startswith("true\t") and lines[0].endswith("\t0\t0\tinteger\t" + lines[0].split("\t")[1])
    assert lines[1] == "1\ttrue\tinteger"
    assert lines[2] == "true\t1"
    assert lines[3] == "exact\tsimulate"
    assert lines[4] == "debug\ttrue\ttrue\t300"
    assert lines[5] == "1\ttrue"
    assert lines[6] == "a.b\t1\tfalse"
    assert lines[7] == "once\t3\t0 * * * *"
    assert lines[8].startswith("false\tReplay.schedules.cron: invalid cron expression")
    assert lines[9] == "false\ttrue\t2\t$.b.x"
    assert lines[10] == "true\t1"
    assert lines[11].startswith("false\tReplay.create_config: unknown mode")


def test_cli_session_and_state_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from llmspell.cli.main import main

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "cli.sqlite3"))
    script = tmp_path / "s.lua"
    script.write_text("""
        State.save("custom", "k", {n = 1})
        local id = Session.create{name = "cli", tags = {"t"}}
        Session.set_current(id)
        Hook.register("BeforeStateChange", function() end)
        State.save("custom", "k2", 2)
        Artifact.store(id, "agent_output", "a.txt", "hello")
        Session.complete(id)
        print(id)
    """)
    assert main(["run", str(script)]) == 0
    sid = capsys.readouterr().out.strip()
    assert main(["--output", "json", "session", "list"]) == 0
    rows = json.loads(capsys.readouterr().out)["sessions"]
    assert [r["id"] for r in rows] == [sid] and rows[0]["status"] == "completed" and rows[0]["artifact_count"] == 1
    assert main(["session", "show", sid, "--timeline"]) == 0
    text = capsys.readouterr().out
    assert "cli" in text and "a.txt" in text and "BeforeStateChange" in text
    assert main(["session", "replay", sid]) == 0
    assert "0 failures" in capsys.readouterr().out
    assert main(["--output", "json", "state", "show", "custom"]) == 0
    assert json.loads(capsys.readouterr().out)["scopes"]["custom"] == {"k": {"n": 1}, "k2": 2}
    exp = tmp_path / "exp.json"
    assert main(["state", "export", str(exp)]) == 0
    assert main(["state", "clear", "custom"]) == 0
    assert "cleared 2 keys" in capsys.readouterr().out
    assert main(["state", "import", str(exp)]) == 0
    assert main(["state", "show", "custom", "--key", "k"]) == 0
    assert 'k = {"n": 1}' in capsys.readouterr().out
    assert main(["session", "delete", sid]) == 0
    capsys.readouterr()
    assert main(["session", "show", sid]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["session", "show", "bad-id"]) == 1
    assert "Invalid session ID" in capsys.readouterr().err


def test_lua_policies_and_replay_config(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        local id = Session.create{name = "limited", policies = {max_operations = 2}}
        Session.set_current(id)
        Hook.register("BeforeToolExecution", function() end)
        print(pcall(State.save, "g", "a", 1), pcall(State.save, "g", "b", 2))
        print(pcall(State.save, "g", "c", 3))
        Session.set_current(nil)
        Event.publish("x.y", {})
        local id2 = Session.create{name = "r"}
        Session.set_current(id2); Event.publish("x.y", {n = 1}); Session.complete(id2)
        local r = Session.replay(id2, Replay.create_config(Replay.modes.simulate))
        print(r.success, r.steps_replayed)
        print(pcall(Session.replay, id2, {hook_filter = "NotAPoint"}))
    """)
    lines = out.splitlines()
    assert lines[0] == "true\ttrue\tnil"
    assert lines[1].startswith("false\tcancelled by hook: session") and "operation limit" in lines[1]
    assert lines[2].startswith("true\t")
    assert lines[3].startswith("false\tSession.replay: unknown hook point 'NotAPoint'")


def test_cli_replay_with_a_hooks_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from llmspell.cli.main import main

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "r.sqlite3"))
    rec = tmp_path / "rec.lua"
    rec.write_text("""
        local id = Session.create{name = "rec"}; Session.set_current(id)
        Hook.register("BeforeStateChange", function() end)
        State.save("g", "k", 1); Session.complete(id); print(id)
    """)
    assert main(["run", str(rec)]) == 0
    sid = capsys.readouterr().out.strip()
    hooks = tmp_path / "hooks.lua"
    hooks.write_text('Hook.register("BeforeStateChange", function() return "no" end)')
    assert main(["session", "replay", sid, "--hooks", str(hooks)]) == 0
    out = capsys.readouterr().out
    assert "1 differences" in out and "recorded continue, replayed cancel" in out
    assert main(["--output", "json", "session", "replay", sid, "--mode", "simulate"]) == 0
    assert json.loads(capsys.readouterr().out)["differences"] == []
