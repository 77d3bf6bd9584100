"""Reply quality of provider exchanges: the echo detector on real model replies, and every reply kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmspell.providers import quality
from llmspell.providers.quality import ReplyKind, analyse, copied_share, echo_reason, leading_span

#: Replies of the real gemma-3-270m (the committed cassettes, and few-shot prompts sent to the local server).
SHAPES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "reply_shapes.json").read_text())


def _endpoint(case: dict[str, Any]) -> str:
    return "/completions" if "prompt" in case["request"] else "/chat/completions"


@pytest.mark.parametrize("case", SHAPES, ids=[c["name"] for c in SHAPES])
def test_real_reply_shapes_are_classified(case: dict[str, Any]) -> None:
    ex = analyse(_endpoint(case), "HIT", json.dumps(case["request"]), 200, json.dumps(case["response"]))
    assert ex.kind == case["expected"], ex.reason


def test_real_partial_echo_is_named_as_such() -> None:
    case = next(c for c in SHAPES if c["name"].startswith("partial echo"))
    ex = analyse("/chat/completions", "HIT", json.dumps(case["request"]), 200, json.dumps(case["response"]))
    assert ex.copied_share < quality.ECHO_SHARE  # not caught by the share alone
    assert ex.reason.startswith("partial echo: opens with")


PROMPT = ("File: report_q3.pdf\nCategory: documents\n\nFile: holiday.jpg\nCategory: images\n\n"
          "File: build.py\nCategory: code\n\nFile: song.mp3\nCategory:")


@pytest.mark.parametrize(("reply", "echo"), [
    ("images", False),  # a label that the prompt itself lists is an answer, not an echo
    ("music", False),
    ("File: song.mp3\nCategory:", True),  # the question repeated
    # re-emits the prompt's own examples after a one-word answer
    (" music\n\nFile: holiday.jpg\nCategory: images\n\nFile: build.py\nCategory: code", True),
    # continues the pattern with new examples after answering: the answer is there
    (" music\n\nFile: notes.txt\nCategory: documents\n\nFile: photo.png\nCategory: images", False),
    ("\nFile: notes.txt\nCategory: documents", True),  # no answer, only the scaffold
    ("File: report_q3.pdf", True),  # a short copy of the start of the prompt
    ("Category: images", False),  # a short span from the middle: a plausible answer
])
def test_echo_detector_few_shot_shapes(reply: str, echo: bool) -> None:
    assert bool(echo_reason(reply, PROMPT)) is echo, echo_reason(reply, PROMPT)


def test_copied_share_and_leading_span() -> None:
    prompt = "Summarize the following text in one sentence: the battery lasts ten hours and charges in two."
    assert copied_share("the battery lasts ten hours and charges in two", prompt) == 1.0
    assert copied_share("A ten-hour battery that charges fast.", prompt) == 0.0
    assert leading_span("Summarize the following text in one sentence: bla bla", prompt) == 7
    # punctuation and case do not hide an echo
    assert copied_share("THE BATTERY, lasts; ten hours!", prompt) == 1.0


def _chat(content: str | None, finish: str = "stop", tool_calls: int = 0) -> bytes:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = [{"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                             for i in range(tool_calls)]
    return json.dumps({"choices": [{"index": 0, "message": msg, "finish_reason": finish}]}).encode()


REQ = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Name one colour of the sky at noon."}]})


@pytest.mark.parametrize(("status", "body", "kind"), [
    (200, _chat("Blue."), ReplyKind.OK),
    (200, _chat(""), ReplyKind.EMPTY),
    (200, _chat("   \n"), ReplyKind.EMPTY),
    (200, _chat(None, tool_calls=1), ReplyKind.OK),
    (200, _chat("Name one colour of the sky at noon."), ReplyKind.ECHO),
    (200, _chat("The sky at noon is usually a bright", "length"), ReplyKind.CUT),
    (200, _chat("I'm sorry, but I can't help with that."), ReplyKind.REFUSAL),
    (200, _chat("As an AI language model, I cannot see the sky."), ReplyKind.REFUSAL),
    (500, b'{"error": {"message": "model crashed"}}', ReplyKind.ERROR),
    (429, b"rate limited", ReplyKind.ERROR),
    (200, b"<html>not json</html>", ReplyKind.ERROR),
    (200, b'{"error": "context length exceeded"}', ReplyKind.ERROR),
])
def test_each_reply_kind(status: int, body: bytes, kind: ReplyKind) -> None:
    ex = analyse("/chat/completions", "LIVE", REQ, status, body)
    assert ex.kind == kind.value, ex.reason
    assert ex.degenerate is (kind is not ReplyKind.OK)


def test_no_response_is_a_provider_error() -> None:
    ex = analyse("/chat/completions", "LIVE", REQ, 0, None, error="ConnectError: refused")
    assert ex.kind == "error" and "ConnectError" in ex.reason


def test_other_wire_formats_and_streams() -> None:
    anth = json.dumps({"content": [{"type": "text", "text": "Blue."}], "stop_reason": "max_tokens"})
    assert analyse("/v1/messages", "HIT", REQ, 200, anth).kind == "cut"
    ollama = json.dumps({"message": {"role": "assistant", "content": ""}, "done_reason": "stop"})
    assert analyse("/api/chat", "HIT", REQ, 200, ollama).kind == "empty"
    sse = ('data: {"choices":[{"delta":{"content":"Bl"}}]}\n\n'
           'data: {"choices":[{"delta":{"content":"ue."},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    ex = analyse("/chat/completions", "LIVE", REQ, 200, sse, "text/event-stream")
    assert (ex.kind, ex.reply_excerpt) == ("ok", "Blue.")
    completions = json.dumps({"choices": [{"text": "", "finish_reason": "stop"}]})
    assert analyse("/completions", "HIT", json.dumps({"prompt": "Sky:"}), 200, completions).kind == "empty"


def test_embeddings_are_traffic_but_not_replies() -> None:
    ex = analyse("/embeddings", "HIT", json.dumps({"input": ["x"]}), 200, b'{"data": []}')
    assert not ex.generation and not ex.degenerate
    q = quality.summarise([ex, analyse("/chat/completions", "HIT", REQ, 200, _chat(""))])
    assert (q.exchanges, q.degenerate, q.traffic) == (1, 1, {"HIT": 2})


def test_summary_share_and_the_20_percent_rule() -> None:
    ok = analyse("/chat/completions", "HIT", REQ, 200, _chat("Blue."))
    bad = analyse("/chat/completions", "HIT", REQ, 200, _chat(""))
    q = quality.summarise([ok] * 4 + [bad])
    assert q.to_dict()["degenerate_share"] == 0.2 and q.acceptable
    q = quality.summarise([ok] * 3 + [bad])
    assert q.degenerate_share == 0.25 and not q.acceptable
    assert q.to_dict()["by_kind"] == {"empty": 1, "ok": 3}
    assert quality.Quality.from_dict(q.to_dict()).to_dict() == q.to_dict()


def test_a_replay_miss_is_traffic_not_a_reply() -> None:
    miss = analyse("/chat/completions", "MISS", REQ, 0, None, error="not in the cassette")
    assert miss.kind == "error"
    q = quality.summarise([miss, analyse("/chat/completions", "HIT", REQ, 200, _chat("Blue."))])
    assert (q.exchanges, q.degenerate, q.traffic) == (1, 0, {"HIT": 1, "MISS": 1})


def test_run_report_lists_a_bounded_number_of_exchanges() -> None:
    ok = analyse("/chat/completions", "HIT", REQ, 200, _chat("Blue."))
    report = quality.run_report([ok] * (quality.MAX_LISTED + 5))
    assert report["quality"]["exchanges"] == quality.MAX_LISTED + 5
    assert report["quality"]["listed"] == len(report["exchanges"]) == quality.MAX_LISTED
