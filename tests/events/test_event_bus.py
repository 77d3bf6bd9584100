"""EventBus: globs, bounded queues, receive, correlation, filtering, rate limit, export; the Event global."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from llmspell.config import LLMConfig
from llmspell.events import EventBus, EventError, EventSettings, build_bus


def test_glob_patterns() -> None:
    bus = EventBus()
    every, agent, one = bus.subscribe("*"), bus.subscribe("agent.*"), bus.subscribe("tool.?")
    for t in ("agent.execution.started", "tool.x", "tool.xy", "workflow.started"):
        bus.publish(t, {})
    assert [e["pending"] for e in bus.list_subscriptions()] == [4, 1, 1]
    assert bus.poll(agent).event_type == "agent.execution.started"
    assert bus.poll(one).event_type == "tool.x"
    assert bus.poll(every).sequence == 1


def test_full_queue_drops_oldest_and_counts() -> None:
    bus = EventBus(EventSettings(buffer_size=3))
    sid = bus.subscribe("e")
    for i in range(10):
        bus.publish("e", {"i": i})
    assert [bus.poll(sid).data["i"] for _ in range(3)] == [7, 8, 9]
    assert bus.poll(sid) is None
    st = bus.stats()["event_bus_stats"]
    assert st["dropped"] == 7 and st["events_processed"] == 10 and st["buffer_size"] == 3


def test_receive_times_out_and_wakes_on_publish() -> None:
    bus = EventBus()
    sid = bus.subscribe("x.*")
    assert bus.receive(sid, 0.05) is None
    assert bus.receive(sid, 0) is None
    threading.Timer(0.05, bus.publish, args=("x.y", {"v": 1})).start()
    ev = bus.receive(sid, 10.0)
    assert ev is not None and ev.data == {"v": 1}


def test_receive_is_interruptible() -> None:
    bus = EventBus()
    sid = bus.subscribe("never")
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()

    class Stop(Exception):
        pass

    def check() -> None:
        if stop.is_set():
            raise Stop

    with pytest.raises(Stop):
        bus.receive(sid, 30.0, check=check)


def test_unknown_subscription_and_bad_buffer() -> None:
    bus = EventBus()
    with pytest.raises(EventError, match="unknown subscription"):
        bus.receive("sub_x", 0)
    with pytest.raises(EventError, match="buffer_size"):
        bus.subscribe("a", buffer_size=0)
    with pytest.raises(EventError):
        EventBus(EventSettings(buffer_size=0))
    sid = bus.subscribe("a")
    assert bus.unsubscribe(sid) and not bus.unsubscribe(sid)


def test_correlation_root_and_override() -> None:
    bus = EventBus()
    sid = bus.subscribe("*")
    root = bus.new_root_context()
    bus.publish("a", {})
    bus.publish("b", {}, correlation_id="mine")
    assert bus.poll(sid).correlation_id == root and bus.poll(sid).correlation_id == "mine"
    assert bus.new_root_context() != root


def test_disabled_bus_returns_false() -> None:
    bus = build_bus(LLMConfig(data={"events": {"enabled": False}}, env={}))
    sid = bus.subscribe("*")
    assert bus.publish("a", {}) is False and bus.poll(sid) is None
    bus = build_bus(LLMConfig(data={}, env={"LLMSPELL_EVENTS_ENABLED": "0"}))
    assert bus.publish("a", {}) is False


def test_filtering_rate_limit_and_ttl() -> None:
    bus = EventBus(EventSettings(include_types=("agent.*", "tool.*"), exclude_types=("tool.secret*",)))
    sid = bus.subscribe("*")
    for t in ("agent.a", "tool.b", "tool.secret.c", "workflow.d"):
        assert bus.publish(t, {}) is True
    assert [bus.poll(sid).event_type for _ in range(2)] == ["agent.a", "tool.b"] and bus.poll(sid) is None
    limited = EventBus(EventSettings(max_events_per_second=5))
    s2 = limited.subscribe("*")
    for _ in range(20):
        limited.publish("e", {})
    assert len(limited.list_subscriptions()) == 1 and limited.list_subscriptions()[0]["pending"] <= 10
    assert limited.stats()["event_bus_stats"]["rate_limit_violations"] >= 10
    assert limited.poll(s2) is not None
    ttl = EventBus()
    s3 = ttl.subscribe("*")
    ttl.publish("old", {}, ttl_seconds=-1)
    ttl.publish("new", {}, ttl_seconds=60)
    assert ttl.poll(s3).event_type == "new"


def test_export_to_file(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    bus = build_bus(LLMConfig(data={"events": {"export": {"file": str(out)}}}, env={}))
    bus.publish("a.b", {"x": [1, 2]})
    bus.publish("c", {})
    bus.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["event_type"] for e in lines] == ["a.b", "c"] and lines[0]["data"] == {"x": [1, 2]}


def test_concurrent_publishers_lose_nothing_below_capacity() -> None:
    bus = EventBus(EventSettings(buffer_size=10_000))
    sid = bus.subscribe("*")

    def pub() -> None:
        for i in range(1000):
            bus.publish("p", {"i": i})

    ts = [threading.Thread(target=pub) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    n = 0
    while bus.poll(sid) is not None:
        n += 1
    assert n == 4000


def run(rt: Any, code: str) -> str:
    rt.test_out.parts.clear()
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def test_event_global(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        local s = Event.subscribe("app.*", {buffer_size = 2})
        print(Event.publish("app.one", {list = {1, 2}, n = 1}), Event.emit("app.two"))
        local e = Event.receive(s, 100)
        print(e.event_type, e.topic, #e.data.list, math.type(e.sequence), e.language, e.target_language,
              e.serialization_version, e.metadata.source, type(e.timestamp), e.correlation_id ~= nil)
        print(Event.receive(s, 100).event_type, Event.receive(s, 0))
        for i = 1, 5 do Event.publish("app.x", {i = i}) end
        print(Event.receive(s).data.i, Event.get_stats().event_bus_stats.dropped)
        print(Event.publish("app.t", {}, {correlation_id = "c1", ttl_seconds = 30}))
        local t = Event.receive(s, 10); t = Event.receive(s, 10); print(t.correlation_id, t.ttl)
        local l = Event.list_subscriptions(); print(#l, l[1].pattern, l[1].language, math.type(l[1].pending))
        print(Event.get_stats().bridge_stats.subscriptions_by_language.lua)
        print(Event.unsubscribe(s), pcall(Event.receive, s, 0))
    """)
    lines = out.splitlines()
    assert lines[0] == "true\ttrue"
    assert lines[1] == "app.one\tapp.one\t2\tinteger\tlua\tLua\t1.0\tlua\tstring\ttrue"
    assert lines[2] == "app.two\tnil"
    assert lines[3] == "4\t3"
    assert lines[4] == "true"
    assert lines[5] == "c1\t30"
    assert lines[6] == "1\tapp.*\tlua\tinteger"
    assert lines[7] == "1"
    assert lines[8].startswith("true\tfalse\tEvent.receive: unknown subscription id")


def test_each_run_opens_a_new_correlation_root(lua_runtime: Any) -> None:
    run(lua_runtime, "SUB = Event.subscribe('r.*'); Event.publish('r.a')")
    out = run(lua_runtime, "Event.publish('r.b'); local a, b = Event.receive(SUB, 0), Event.receive(SUB, 0); "
                           "print(a.correlation_id ~= b.correlation_id)")
    assert out.strip() == "true"


def test_event_receive_interrupt(lua_runtime: Any) -> None:
    from llmspell.script.engine import ScriptError

    threading.Timer(0.1, lua_runtime.interrupt).start()
    with pytest.raises(ScriptError) as info:
        lua_runtime.run_string("local s = Event.subscribe('never'); Event.receive(s, 60000)", "=(t)")
    assert info.value.kind == "interrupted"
