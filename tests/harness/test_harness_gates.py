"""Success rates per group and layer, and the targets.md gates."""

from __future__ import annotations

from harness.gates import MEMORY_GROWTH_GATE, Outcome, evaluate, memory_growth, success_rates


def _o(app: str, group: str, passed: bool, layer: int = 1, wall: float = 1.0, cost: float = 0.0) -> Outcome:
    return Outcome(app=app, group=group, layer=layer, passed=passed, wall_s=wall, cost_usd=cost)


def _gate(gates: list, prefix: str):  # type: ignore[no-untyped-def]
    return next(g for g in gates if g.name.startswith(prefix))


def test_rates_by_group_layer_and_app() -> None:
    rates = success_rates([_o("a", "simple", True, 1), _o("a", "simple", False, 1), _o("b", "complex", True, 4)])
    assert (rates.by_group["simple"].passed, rates.by_group["simple"].total) == (1, 2)
    assert rates.by_group["simple"].rate == 0.5 and rates.by_layer[4].rate == 1.0
    assert rates.by_app["a"].to_dict() == {"passed": 1, "total": 2, "rate": 0.5, "wilson95": [0.0945, 0.9055]}


def test_replay_demands_every_run() -> None:
    gates = evaluate([_o("a", "complex", True)] * 9 + [_o("a", "complex", False)], "replay")
    g = _gate(gates, "success rate, complex")
    assert not g.passed and g.measured == "90.0 % (9/10)" and g.required == ">= 100.0 %"


def test_live_thresholds_per_group() -> None:
    ok = evaluate([_o("c", "complex", True)] * 9 + [_o("c", "complex", False)]
                  + [_o("e", "expert", True)] * 4 + [_o("e", "expert", False)], "live")
    assert _gate(ok, "success rate, complex").passed and _gate(ok, "success rate, expert").passed
    bad = evaluate([_o("c", "complex", True)] * 8 + [_o("c", "complex", False)] * 2
                   + [_o("s", "simple", True)] * 2 + [_o("s", "simple", False)], "live")
    assert not _gate(bad, "success rate, complex").passed and not _gate(bad, "success rate, simple").passed


def test_wall_time_and_cost_gates() -> None:
    live = evaluate([_o("s", "simple", True, wall=61.0), _o("e", "expert", True, wall=299.0, cost=2.5)], "live")
    assert not _gate(live, "wall time per run, simple").passed
    assert _gate(live, "wall time per run, expert").passed
    assert not _gate(live, "cost per run, expert").passed
    replay = evaluate([_o(f"a{i}", "simple", True, wall=5.0) for i in range(9)] * 2, "replay")
    suite = _gate(replay, "replay suite wall time")
    assert suite.passed and suite.measured == "45.0 s"
    assert not _gate(evaluate([_o("a", "simple", True, wall=61.0)], "replay"), "replay suite").passed


def test_memory_growth_after_warmup() -> None:
    mb = 2**20
    assert memory_growth([100 * mb] * 5) is None
    assert memory_growth([90 * mb, 95 * mb, 99 * mb, 100 * mb, 100 * mb, 104 * mb, 102 * mb]) == 4 * mb
    gates = evaluate([], "replay", {"a": [100 * mb] * 5 + [100 * mb + MEMORY_GROWTH_GATE + 1]})
    assert not _gate(gates, "memory stability, a").passed
    assert _gate(evaluate([], "replay", {"a": [100 * mb] * 8}), "memory stability").passed


def test_replay_session_gate_counts_kernel_starts() -> None:
    gates = evaluate([_o("a", "simple", True, wall=5.0)], "replay", session_s=61.0)
    g = _gate(gates, "replay session wall time")
    assert not g.passed and g.measured == "61.0 s"
    assert _gate(gates, "replay suite wall time").passed
