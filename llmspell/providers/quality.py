"""Reply quality of provider exchanges: empty, echo of the prompt, cut at max_tokens, refusal, error.

The traffic layer hands every HTTP exchange with a model server to `analyse`, which reads the
request and response bodies of the wire formats llmspell speaks (OpenAI chat and text completions,
Anthropic messages, Ollama chat; streamed or not) and names what kind of reply it was. A run's
exchanges are summed by `summarise` into counts and a `degenerate_share` (targets.md: passing
needs at most 20 % degenerate replies).

The echo detector works on word tokens: a reply is an echo when at least ECHO_SHARE of its tokens
lie in spans of ECHO_SPAN or more tokens that also occur in the prompt (replies that re-emit the
prompt's few-shot examples included), when it opens with PARTIAL_ECHO_LEAD prompt tokens in a row
and PARTIAL_ECHO_SHARE of it is copied (a partial echo trailing off into other text), when it is a
short copy of the start of a prompt message, or when it answers nothing and only continues the
prompt's few-shot scaffold (`Category:` lines). A short reply that is one of the prompt's own labels (`images`) is not an echo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

#: Minimum length (word tokens) of a span shared with the prompt that counts as copied.
ECHO_SPAN = 4
#: Share of the reply's tokens in copied spans from which the reply is an echo.
ECHO_SHARE = 0.6
#: A reply opening with this many prompt tokens in a row, with PARTIAL_ECHO_SHARE copied, is a partial echo.
PARTIAL_ECHO_LEAD = 8
PARTIAL_ECHO_SHARE = 0.3
#: Largest share of degenerate replies a passing app may have (targets.md "Applications").
DEGENERATE_LIMIT = 0.20
#: Characters of the reply kept in an exchange record (for the report).
EXCERPT_CHARS = 160

_TOKEN = re.compile(r"\w+", re.UNICODE)
_REFUSAL = re.compile(
    r"^\W*(?:I'?m sorry|I am sorry|I apologi[sz]e|sorry, (?:but )?I can|I can(?:not|'t|’t) (?:help|assist|comply|"
    r"provide|do that|fulfil)|I (?:am|'m) (?:unable|not able) to|I won'?t be able to|As an AI\b)",
    re.IGNORECASE)
_LABEL = re.compile(r"^\s*([A-Za-z][\w ]{0,30}):", re.MULTILINE)
_GENERATION_ENDPOINTS = ("/chat/completions", "/completions", "/v1/messages", "/api/chat", "/api/generate")
_CUT_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})


class ReplyKind(StrEnum):
    """What one provider exchange produced, from the app's point of view."""

    OK = "ok"
    EMPTY = "empty"
    ECHO = "echo"
    CUT = "cut"
    REFUSAL = "refusal"
    ERROR = "error"

    @property
    def degenerate(self) -> bool:
        return self is not ReplyKind.OK


class Traffic(StrEnum):
    """How the exchange was served: from the cassette (HIT), not found there (MISS), or over the wire."""

    HIT = "HIT"
    MISS = "MISS"
    LIVE = "LIVE"
    RECORD = "RECORD"


@dataclass
class Exchange:
    """One request to a model server and what came back, with its judged reply kind."""

    endpoint: str
    traffic: str
    status: int = 0
    model: str = ""
    kind: str = ReplyKind.OK.value
    reason: str = ""
    finish_reason: str = ""
    latency_ms: float = 0.0
    recorded_latency_ms: float | None = None
    recorded_latency_source: str = ""
    prompt_chars: int = 0
    reply_chars: int = 0
    copied_share: float = 0.0
    reply_excerpt: str = ""
    generation: bool = True

    @property
    def degenerate(self) -> bool:
        return self.generation and self.kind != ReplyKind.OK.value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exchange:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Quality:
    """Reply quality of a run (or an app over runs): counts per kind and the degenerate share."""

    exchanges: int = 0
    degenerate: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)

    @property
    def degenerate_share(self) -> float:
        return self.degenerate / self.exchanges if self.exchanges else 0.0

    @property
    def acceptable(self) -> bool:
        return self.degenerate_share <= DEGENERATE_LIMIT + 1e-12

    def add(self, other: Quality) -> None:
        self.exchanges += other.exchanges
        self.degenerate += other.degenerate
        for k, n in other.by_kind.items():
            self.by_kind[k] = self.by_kind.get(k, 0) + n
        for k, n in other.traffic.items():
            self.traffic[k] = self.traffic.get(k, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {"exchanges": self.exchanges, "degenerate": self.degenerate,
                "degenerate_share": round(self.degenerate_share, 4), "by_kind": dict(sorted(self.by_kind.items())),
                "traffic": dict(sorted(self.traffic.items()))}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Quality:
        data = data or {}
        return cls(exchanges=int(data.get("exchanges", 0)), degenerate=int(data.get("degenerate", 0)),
                   by_kind=dict(data.get("by_kind") or {}), traffic=dict(data.get("traffic") or {}))


def summarise(exchanges: Iterable[Exchange]) -> Quality:
    """Counts per reply kind over the generation exchanges; traffic counts over all exchanges.

    A replay MISS got no reply at all (the run fails on the miss itself), so it is traffic, not a reply.
    """
    q = Quality()
    for ex in exchanges:
        q.traffic[ex.traffic] = q.traffic.get(ex.traffic, 0) + 1
        if not ex.generation or ex.traffic == Traffic.MISS.value:
            continue
        q.exchanges += 1
        q.degenerate += int(ex.degenerate)
        q.by_kind[ex.kind] = q.by_kind.get(ex.kind, 0) + 1
    return q


# ------------------------------------------------------------------------------- echo detector
def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation and whitespace differences do not hide an echo)."""
    return [t.lower() for t in _TOKEN.findall(text)]


def copied_share(reply: str, prompt: str, span: int = ECHO_SPAN) -> float:
    """Share of the reply's tokens that lie in a run of >= `span` tokens also found in the prompt."""
    r, p = tokens(reply), tokens(prompt)
    if len(r) < span or len(p) < span:
        return 0.0
    grams = {tuple(p[i:i + span]) for i in range(len(p) - span + 1)}
    covered = [False] * len(r)
    for i in range(len(r) - span + 1):
        if tuple(r[i:i + span]) in grams:
            for j in range(i, i + span):
                covered[j] = True
    return sum(covered) / len(r)


def leading_span(reply: str, prompt: str) -> int:
    """How many of the reply's first tokens occur, in order and contiguous, somewhere in the prompt."""
    r, p = tokens(reply), tokens(prompt)
    if not r:
        return 0
    best = 0
    for i, tok in enumerate(p):
        if tok != r[0]:
            continue
        n = 0
        while n < len(r) and i + n < len(p) and p[i + n] == r[n]:
            n += 1
        best = max(best, n)
    return best


def longest_shared_span(reply: str, prompt: str) -> int:
    """Length in tokens of the longest run of the reply that occurs in the prompt (dynamic programming)."""
    r, p = tokens(reply), tokens(prompt)
    best = 0
    prev = [0] * (len(p) + 1)
    for a in r:
        cur = [0] * (len(p) + 1)
        for j, b in enumerate(p, 1):
            if a == b:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def scaffold_labels(prompt: str) -> set[str]:
    """Line labels (`Category:`, `Input:`) the prompt uses at least twice: its few-shot scaffold."""
    counts: dict[str, int] = {}
    for m in _LABEL.finditer(prompt):
        label = m.group(1).strip().lower()
        counts[label] = counts.get(label, 0) + 1
    return {label for label, n in counts.items() if n >= 2}


def echo_reason(reply: str, prompt: str, messages: Iterable[str] = ()) -> str:
    """Why the reply is an echo of the prompt ('' when it is not)."""
    r = tokens(reply)
    if not r:
        return ""
    share = copied_share(reply, prompt)
    if share >= ECHO_SHARE:
        return f"{100 * share:.0f} % of the reply repeats the prompt"
    lead = leading_span(reply, prompt)
    if lead >= PARTIAL_ECHO_LEAD and share >= PARTIAL_ECHO_SHARE:
        return f"partial echo: opens with {lead} words of the prompt ({100 * share:.0f} % of the reply repeats it)"
    if len(r) < ECHO_SPAN and len(r) >= 2:
        for text in [prompt, *messages]:
            if tokens(text)[:len(r)] == r:
                return "the reply is the start of the prompt"
    labels = scaffold_labels(prompt)
    prompt_lines = [ln for ln in prompt.splitlines() if ln.strip()]
    awaiting = _LABEL.fullmatch(prompt_lines[-1].strip() if prompt_lines else "")
    if labels and awaiting:  # the prompt ends on an empty `Label:` line: the answer is due right there
        lines = [ln for ln in reply.strip().splitlines() if ln.strip()]
        m = _LABEL.match(lines[0]) if lines else None
        restated = m is not None and m.group(1).strip().lower() == awaiting.group(1).strip().lower() and bool(
            lines[0][m.end():].strip())  # `Category: images` answers after repeating the due label
        if m and m.group(1).strip().lower() in labels and not restated:
            return f"no answer: the reply continues the prompt's few-shot scaffold ('{m.group(1).strip()}:')"
    return ""


# ----------------------------------------------------------------------------- wire formats
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def request_prompt(body: dict[str, Any]) -> tuple[str, list[str]]:
    """The whole prompt text of a request, and each message's text (for start-of-message echoes)."""
    messages: list[str] = []
    if isinstance(body.get("system"), str | list):
        messages.append(_text_of(body["system"]))
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            messages.append(_text_of(m.get("content")))
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(str(p) for p in prompt)
    if isinstance(prompt, str):
        messages.append(prompt)
    return "\n".join(m for m in messages if m), [m for m in messages if m]


@dataclass
class Reply:
    """The generated part of a response: text, whether it called tools, why it stopped, any error."""

    text: str = ""
    tool_calls: int = 0
    finish_reason: str = ""
    error: str = ""


def _reply_from_json(data: Any) -> Reply:
    if not isinstance(data, dict):
        return Reply(error="the response is not a JSON object")
    if data.get("error"):
        err = data["error"]
        return Reply(error=str(err.get("message") if isinstance(err, dict) else err)[:200])
    out = Reply()
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        c = choices[0]
        msg = c.get("message") if isinstance(c.get("message"), dict) else {}
        out.text = _text_of(msg.get("content")) if msg else str(c.get("text") or "")
        out.tool_calls = len(msg.get("tool_calls") or []) if msg else 0
        out.finish_reason = str(c.get("finish_reason") or "")
        return out
    if isinstance(data.get("content"), list):  # Anthropic messages
        out.text = "".join(str(p.get("text", "")) for p in data["content"] if isinstance(p, dict)
                           and p.get("type") == "text")
        out.tool_calls = sum(1 for p in data["content"] if isinstance(p, dict) and p.get("type") == "tool_use")
        out.finish_reason = str(data.get("stop_reason") or "")
        return out
    if isinstance(data.get("message"), dict):  # Ollama chat
        out.text = _text_of(data["message"].get("content"))
        out.tool_calls = len(data["message"].get("tool_calls") or [])
        out.finish_reason = str(data.get("done_reason") or "")
        return out
    if isinstance(data.get("response"), str):  # Ollama generate
        out.text, out.finish_reason = data["response"], str(data.get("done_reason") or "")
        return out
    return Reply(error="the response has no choices, content or message")


def _reply_from_stream(text: str) -> Reply:
    """Reassemble an SSE (OpenAI/Anthropic) or NDJSON (Ollama) stream into one reply."""
    out = Reply()
    parts: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line or line == "[DONE]" or not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        if ev.get("error"):
            out.error = str(ev["error"])[:200]
        for c in ev.get("choices") or []:
            if isinstance(c, dict):
                delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
                parts.append(str((delta or {}).get("content") or c.get("text") or ""))
                out.tool_calls += len((delta or {}).get("tool_calls") or [])
                out.finish_reason = str(c.get("finish_reason") or out.finish_reason)
        d = ev.get("delta")
        if isinstance(d, dict):
            parts.append(str(d.get("text") or ""))
            out.finish_reason = str(d.get("stop_reason") or out.finish_reason)
        if isinstance(ev.get("message"), dict):
            parts.append(_text_of(ev["message"].get("content")))
            out.finish_reason = str(ev.get("done_reason") or out.finish_reason)
    out.text = "".join(parts)
    return out


def parse_reply(body: bytes | str, content_type: str = "") -> Reply:
    """The reply carried by a response body (JSON, SSE or NDJSON)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if "text/event-stream" in content_type or stripped.startswith(("data:", "event:")):
        return _reply_from_stream(text)
    try:
        return _reply_from_json(json.loads(text))
    except ValueError:
        if "\n{" in stripped:  # NDJSON
            return _reply_from_stream(text)
        return Reply(error="the response body is not JSON")


def is_generation(endpoint: str) -> bool:
    """True for endpoints that generate a reply (chat, completions, messages); False for embeddings etc."""
    return endpoint.rstrip("/").endswith(_GENERATION_ENDPOINTS) and not endpoint.endswith("/embeddings")


def classify(prompt: str, reply: Reply, status: int, messages: Iterable[str] = ()) -> tuple[ReplyKind, str]:
    """The kind of one reply and the reason, in words (errors first, then empty, echo, cut, refusal)."""
    if status >= 400 or status == 0:
        what = f"HTTP {status}" if status else "no response"
        return ReplyKind.ERROR, f"provider error: {what}" + (f": {reply.error}" if reply.error else "")
    if reply.error:
        return ReplyKind.ERROR, f"provider error: {reply.error}"
    if not reply.text.strip():
        if reply.tool_calls:
            return ReplyKind.OK, f"{reply.tool_calls} tool call(s)"
        return ReplyKind.EMPTY, "the reply is empty" + (f" (finish_reason {reply.finish_reason})"
                                                        if reply.finish_reason else "")
    echo = echo_reason(reply.text, prompt, messages)
    if echo:
        return ReplyKind.ECHO, echo
    if reply.finish_reason in _CUT_REASONS:
        return ReplyKind.CUT, f"cut at max_tokens (finish_reason {reply.finish_reason})"
    if _REFUSAL.search(reply.text[:200]):
        return ReplyKind.REFUSAL, "the model refused"
    return ReplyKind.OK, ""


def analyse(endpoint: str, traffic: str, request_body: bytes | str | None, status: int,
            response_body: bytes | str | None, content_type: str = "", latency_ms: float = 0.0,
            error: str = "") -> Exchange:
    """Judge one HTTP exchange with a model server (`status` 0 and `error` when no response came)."""
    ex = Exchange(endpoint=endpoint, traffic=traffic, status=status, latency_ms=round(latency_ms, 1),
                  generation=is_generation(endpoint))
    try:
        body = json.loads(request_body or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    ex.model = str(body.get("model", ""))
    if not ex.generation:
        ex.kind = ReplyKind.ERROR.value if (status >= 400 or status == 0) else ReplyKind.OK.value
        ex.reason = error or (f"HTTP {status}" if status >= 400 else "")
        return ex
    prompt, messages = request_prompt(body)
    reply = parse_reply(response_body or b"", content_type) if status else Reply(error=error or "no response")
    if error and not reply.error:
        reply.error = error
    kind, reason = classify(prompt, reply, status, messages)
    ex.kind, ex.reason, ex.finish_reason = kind.value, reason, reply.finish_reason
    ex.prompt_chars, ex.reply_chars = len(prompt), len(reply.text)
    ex.copied_share = round(copied_share(reply.text, prompt), 3)
    excerpt = " ".join(reply.text.split())
    ex.reply_excerpt = excerpt if len(excerpt) <= EXCERPT_CHARS else excerpt[:EXCERPT_CHARS - 1] + "…"
    return ex


#: Exchanges listed one by one in a run's report (the counts always cover all of them).
MAX_LISTED = 1000


def run_report(exchanges: list[Exchange]) -> dict[str, Any]:
    """`quality` and `exchanges` of one run, as execute_reply metadata and `--output json` carry them.

    The list holds the first MAX_LISTED exchanges; `quality.listed` says how many are listed.
    """
    q = summarise(exchanges).to_dict()
    q["listed"] = min(len(exchanges), MAX_LISTED)
    return {"quality": q, "exchanges": [ex.to_dict() for ex in exchanges[:MAX_LISTED]]}
