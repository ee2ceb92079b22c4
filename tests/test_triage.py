"""`hotline triage`: the production path over JSON lines, one output line per input, in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hotline.settings import PROJECT_ROOT

SAMPLE = PROJECT_ROOT.parent / "shared" / "eval" / "sample.jsonl"
CONVERSATIONS = [
    {
        "id": "a",
        "messages": [
            "Bom dia, como posso voltar para Moçambique? Estou em Joanesburgo sem dinheiro"
        ],
    },
    {
        "id": "b",
        "messages": [
            "hi",
            "my employer in Durban took my ID and says I must work to pay the transport",
        ],
    },
    {
        "id": "c",
        "messages": ["Ils m'ont enfermé dans la maison, ils vont me frapper, aidez-moi vite"],
    },
    {"id": "d", "messages": ["Habari", "nataka kurudi nyumbani Tanzania, mnaweza kunisaidia?"]},
]


def run_triage(env: dict[str, str], lines: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "triage"],
        check=False,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=PROJECT_ROOT,
    )


def triage(rasa_stack, lines: list[str]) -> tuple[list[dict], str]:
    env = {
        **os.environ,
        "HOTLINE_ENV": "test",
        "RASA_URL": rasa_stack["rasa_url"],
        "RASA_TOKEN": "test-rasa-token",
    }
    done = run_triage(env, lines)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_one_line_out_per_line_in_with_every_field(rasa_stack) -> None:
    results, _ = triage(rasa_stack, [json.dumps(c, ensure_ascii=False) for c in CONVERSATIONS])
    assert [r["id"] for r in results] == ["a", "b", "c", "d"]
    for result in results:
        assert set(result) == {"id", "language", "intent", "confidence", "risk", "handoff"}
        assert 0.0 <= result["confidence"] <= 1.0
    assert [r["language"] for r in results] == ["pt", "en", "fr", "sw"]
    assert results[0]["intent"] == "ask_return_assistance" and results[0]["risk"] == "none"
    assert results[2]["risk"] == "emergency" and results[2]["handoff"] is True
    assert results[1]["risk"] in ("high", "emergency") and results[1]["handoff"] is True


def test_a_bad_line_is_reported_and_the_rest_still_answered(rasa_stack) -> None:
    results, errors = triage(rasa_stack, ["{not json", json.dumps(CONVERSATIONS[0])])
    assert "error" in results[0] and results[1]["id"] == "a"
    assert "line 1" in errors


def test_the_shared_sample_languages_and_risks(rasa_stack) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    results, _ = triage(rasa_stack, lines)
    expected = [json.loads(line)["expect"] for line in lines]
    assert [r["language"] for r in results] == [e["language"] for e in expected]
    risk_hits = sum(r["risk"] == e["risk"] for r, e in zip(results, expected, strict=False))
    intent_hits = sum(r["intent"] == e["intent"] for r, e in zip(results, expected, strict=False))
    print(f"sample: risk {risk_hits}/{len(lines)}, intent {intent_hits}/{len(lines)}")
    assert risk_hits >= len(lines) - 1
    assert intent_hits >= len(lines) - 2


def test_a_rasa_that_refuses_the_token_is_an_error_not_empty_answers(rasa_stack) -> None:
    env = {
        **os.environ,
        "HOTLINE_ENV": "test",
        "RASA_URL": rasa_stack["rasa_url"],
        "RASA_TOKEN": "not-the-servers-token-0123",
    }
    done = run_triage(env, [json.dumps(CONVERSATIONS[0])])
    assert done.returncode != 0
    assert done.stdout == ""
    assert "refused" in done.stderr and "RASA_TOKEN" in done.stderr
