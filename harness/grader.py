"""The judge model of `judge` checks: grades a text against a rubric through llmspell's providers.

Judge calls use the same provider routing and traffic mode as the app (replay, record or live);
their cassette is `cassettes/<app>/judge.yaml`, so a replayed judge gives the same score every time.
The prompt is completion-style (a worked example, then `Score:`), which base models can continue.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmspell.providers import traffic
from llmspell.providers.quality import Exchange

JUDGE_CASSETTE = "judge.yaml"
#: Characters of the graded text sent to the judge (small local models have small contexts).
MAX_TEXT_CHARS = 2400
_SCORE = re.compile(r"[1-5]")

_INSTRUCTIONS = ("You grade a text against a rubric with a score from 1 (fails it) to 5 (fully meets it). "
                 "Answer with the score, then one short reason.")
_EXAMPLE = ("Rubric: the text is a polite reply that answers the customer's question\n"
            "Text: Thanks for asking! Yes, the annual plan includes support.\n"
            "Score: 5 - polite and answers the question\n\n"
            "Rubric: the text is a polite reply that answers the customer's question\n"
            "Text: Reply to this email: Do you include support?\n"
            "Score: 1 - it repeats the request instead of answering\n\n")


class GradeError(RuntimeError):
    """The judge could not give a score (provider error, cassette miss, a reply without a score)."""


def prompt(rubric: str, text: str) -> str:
    """The grading prompt for one text (deterministic, so replay matches it)."""
    body = " ".join(text.split())
    if len(body) > MAX_TEXT_CHARS:
        body = body[:MAX_TEXT_CHARS] + " [...]"
    return f"{_EXAMPLE}Rubric: {' '.join(rubric.split())}\nText: {body}\nScore:"


def parse_score(reply: str) -> tuple[int, str]:
    """The first digit 1-5 of the reply and the rest of its line as the reason; GradeError when absent."""
    line = reply.strip().splitlines()[0] if reply.strip() else ""
    m = _SCORE.search(line[:12])
    if m is None:
        flat = " ".join(reply.split())[:80]
        raise GradeError(f"the judge's reply has no score 1-5: '{flat}'")
    reason = line[m.end():].strip(" -:.")
    return int(m.group()), reason[:120]


@dataclass
class Grader:
    """Grades texts for one app with its judge model, in the harness's traffic mode."""

    model: str
    config_path: Path
    traffic_mode: str
    cassette_dir: Path
    exchanges: list[Exchange] = field(default_factory=list)

    def __call__(self, rubric: str, text: str) -> tuple[int, str]:
        from llmspell.config import load_config
        from llmspell.providers.base import ChatMessage, ChatRequest, ProviderError
        from llmspell.providers.registry import registry_from_config
        from llmspell.runtime.io import get_io

        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
        try:
            config = load_config(self.config_path, env=env)
            reg = registry_from_config(config, env)
            provider, model = reg.resolve(self.model, None, "judge model")
        except Exception as e:  # noqa: BLE001 - any configuration problem is the judge's failure, in words
            raise GradeError(f"judge model '{self.model}': {e}") from None
        req = ChatRequest(model=model, messages=[ChatMessage("system", _INSTRUCTIONS),
                                                 ChatMessage("user", prompt(rubric, text))],
                          max_tokens=24, temperature=0.0, stop=["\n"])
        mark = traffic.exchange_mark()
        seen: list[Exchange] = []
        try:
            with traffic.use(self.traffic_mode, self.cassette_dir, file_name=JUDGE_CASSETTE):
                resp = get_io().run(reg.chat(provider, req), timeout=600)
        except ProviderError as e:
            raise GradeError(str(e).splitlines()[0]) from None
        finally:
            seen = traffic.exchanges_since(mark)  # closes the mark: read once
            self.exchanges.extend(seen)
        score, reason = parse_score(resp.text)
        served = "/".join(sorted({ex.traffic for ex in seen})) or "?"
        return score, f"{reason} (judge {served})" if reason else f"(judge {served})"
