"""Every response exists in every language, and the domain's rules only name what exists."""

from __future__ import annotations

import re

import pytest
from ruamel.yaml import YAML

from hotline.settings import PROJECT_ROOT
from hotline.sms import segment_count
from tests.domain import responses

LANGUAGES = ("pt", "en", "fr", "sw")


@pytest.mark.parametrize("name", sorted(responses()))
def test_every_response_has_all_four_languages(name: str) -> None:
    variants = responses()[name]
    assert sorted(variants) == sorted(LANGUAGES), f"{name} lacks {set(LANGUAGES) - set(variants)}"
    assert all(text.strip() for text in variants.values())


@pytest.mark.parametrize("name", sorted(responses()))
def test_every_reply_fits_three_sms_segments(name: str) -> None:
    for language, text in responses()[name].items():
        sample = text.replace(
            "{next_shift}",
            "a partir de segunda-feira às 06:00" if language == "pt" else "from Monday at 06:00",
        )
        assert segment_count(sample) <= 3, (
            f"{name} [{language}] needs {segment_count(sample)} segments"
        )


@pytest.mark.parametrize("name", sorted(responses()))
def test_placeholders_match_across_languages(name: str) -> None:
    placeholders = {lang: set(re.findall(r"{(\w+)}", t)) for lang, t in responses()[name].items()}
    assert len({frozenset(p) for p in placeholders.values()}) == 1, placeholders


def test_rules_and_stories_name_only_known_actions() -> None:
    core = YAML(typ="safe").load((PROJECT_ROOT / "bot" / "core.yml").read_text())
    known = set(responses()) | set(core["actions"])
    for folder in ("data/rules", "data/stories", "tests/stories"):
        for path in (PROJECT_ROOT / folder).glob("*.yml"):
            text = path.read_text(encoding="utf-8")
            for action in re.findall(r"- action: (\w+)", text):
                assert action in known, f"{path.name} names unknown action {action}"
