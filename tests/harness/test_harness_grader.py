"""The judge model of `judge` checks: through llmspell's providers, recorded to judge.yaml, replayed the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.grader import JUDGE_CASSETTE, GradeError, Grader
from harness.profile import effective_config
from tests.harness.echo_server import EchoServer, start_server


@pytest.fixture
def judge_server() -> Iterator[EchoServer]:
    server = start_server(answer=" 4 - it names a colour")
    yield server
    server.stop()


def _config(tmp_path: Path, base_url: str) -> Path:
    app = tmp_path / "config.toml"
    app.write_text('[providers]\ndefault_provider = "openai"\n')
    return effective_config(app, "local", tmp_path / "k" / "config.toml", base_url)


def test_record_then_replay_gives_the_same_score(tmp_path: Path, judge_server: EchoServer) -> None:
    cassettes = tmp_path / "cassettes"
    config = _config(tmp_path, judge_server.base_url)
    rec = Grader("openai/gpt-4o-mini", config, "record", cassettes)
    assert rec("names a colour", "Teal.") == (4, "it names a colour (judge RECORD)")
    sent = judge_server.requests[0]  # the routed providers use the text-completions API (harness/profile.py)
    assert sent["prompt"].endswith("Text: Teal.\nScore:") and sent["stop"] == ["\n"]
    assert rec("names a colour", "Crimson.")[0] == 4  # a second grading appends to the same recording
    saved = yaml.safe_load((cassettes / JUDGE_CASSETTE).read_text())["interactions"]
    assert len(saved) == 2 and saved[0]["response"]["llmspell"]["latency_ms"] >= 0
    assert not (cassettes / "cassette.yaml").exists()  # the app's own cassette is untouched
    judge_server.stop()
    replay = Grader("openai/gpt-4o-mini", _config(tmp_path, "http://127.0.0.1:19097/v1"), "replay", cassettes)
    for _ in range(2):
        assert replay("names a colour", "Teal.") == (4, "it names a colour (judge HIT)")
    assert replay("names a colour", "Crimson.")[0] == 4
    assert [ex.traffic for ex in replay.exchanges] == ["HIT", "HIT", "HIT"]
    with pytest.raises(GradeError, match="replay: no recorded response"):
        replay("names a colour", "Mauve.")  # a text never graded: a miss, never a live call


def test_a_reply_without_a_score_is_a_grade_error(tmp_path: Path) -> None:
    server = start_server(answer="Rubric: the text")
    try:
        grader = Grader("openai/gpt-4o-mini", _config(tmp_path, server.base_url), "live", tmp_path / "c")
        with pytest.raises(GradeError, match="no score 1-5"):
            grader("names a colour", "Teal.")
        assert grader.exchanges[0].traffic == "LIVE" and grader.exchanges[0].kind == "echo"
    finally:
        server.stop()


def test_an_unknown_judge_provider_is_a_grade_error(tmp_path: Path) -> None:
    grader = Grader("nosuch/model", _config(tmp_path, "http://127.0.0.1:19097/v1"), "replay", tmp_path)
    with pytest.raises(GradeError, match="judge model 'nosuch/model'"):
        grader("r", "t")
