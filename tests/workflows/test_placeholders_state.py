"""§5.5 placeholder resolution inside workflows and §5.9 best-effort State writes."""

from __future__ import annotations

from typing import Any

from llmspell.workflows.resolve import Scope, input_text
from tests.workflows.conftest import run


def test_lookup_order_and_dotted_forms() -> None:
    scope = Scope({"topic": "t", "input": "the input", "cfg": {"a": {"b": 2}}, "plan": "from input"},
                  {"plan": '{"x": {"y": "deep"}}', "s": "out"}, {"shared": "sh", "topic": "shared topic"},
                  {"loop_value": "lv", "loop_index": 2, "iteration": 2})
    fill = scope.fill
    assert fill("{{loop_value}}/{{ loop_index }}/{{iteration}}") == "lv/2/2"
    assert fill("{{input}}") == "the input"
    assert fill("{{plan}}") == '{"x": {"y": "deep"}}'  # step output beats the input key
    assert fill("{{topic}}|{{shared}}") == "t|sh"  # input key beats shared data
    assert fill("{{input.cfg.a.b}}") == "2"
    assert fill("{{steps.s}}|{{outputs.s}}") == "out|out"
    assert fill("{{plan.x.y}}") == "deep"
    assert fill("{{cfg}}") == '{"a":{"b":2}}'
    assert fill("{{nope}} and {{plan.x.zz}}") == "{{nope}} and {{plan.x.zz}}"
    assert fill({"k": ["{{s}}", 3, {"d": "{{topic}}"}]}) == {"k": ["out", 3, {"d": "t"}]}


def test_input_text_rules() -> None:
    assert input_text({"input": "a", "text": "b"}) == "a"
    assert input_text({"text": "b"}) == "b"
    assert input_text({"z": 1, "a": [1]}) == '{"a":[1],"z":1}'
    assert input_text({}) == ""


def test_filled_text_is_not_rescanned(rt: Any, llm: Any) -> None:
    llm.reply_fn = lambda req: "model says {{secret}}"
    r = run(rt, """
      Agent.builder():name("a"):model("openai/gpt-4o-mini"):build()
      return Workflow.sequential{name = "ns", steps = {
        {name = "first", agent = "a", input = "go"},
        {name = "second", fn = function(ctx) return ctx.outputs.first end},
        {name = "third", tool = "text_manipulator", input = {operation = "trim", input = "{{first}}"}},
      }}:execute{secret = "LEAKED"}
    """)
    assert r["outputs"]["second"] == "model says {{secret}}"
    assert '"result":"model says {{secret}}"' in r["outputs"]["third"]


def test_shared_data_and_numbers_in_placeholders(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.builder():name("sd"):sequential()
        :add_step{name = "a", tool = "text_manipulator",
                  input = {operation = "trim", input = "{{who}} {{n}} {{f}} {{b}} {{tbl}}"}}:build()
      wf:set_shared_data("who", "shared-who")
      return wf:execute{n = 3, f = 0.5, b = true, tbl = {1, 2}}
    """)
    assert '"result":"shared-who 3 0.5 true [1,2]"' in r["outputs"]["a"]


class _BrokenState:
    def save(self, scope: str, key: str, value: Any) -> None:
        raise OSError("disk on fire")

    def load(self, scope: str, key: str, default: Any = None) -> Any:
        return default

    def list_keys(self, scope: str) -> list[str]:
        return []

    def delete(self, scope: str, key: str) -> bool:
        return False


def test_state_write_failures_do_not_fail_steps(rt: Any) -> None:
    rt.services.state = _BrokenState()
    r = run(rt, 'return Workflow.sequential{name = "bs", steps = {{name = "a", fn = function() return "x" end}}}:execute()')
    assert r["success"] is True and r["text"] == "x"
    errs = r["metadata"]["extra"]["state_errors"]
    assert len(errs) == 2 and "disk on fire" in errs[0]
