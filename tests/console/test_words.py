"""The word catalogues (referral/console/words/*.yml): complete, twinned, and cover every code."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import get_args

import pytest

from hotline import yamlfiles
from hotline.language import LANGUAGES
from hotline.settings import PROJECT_ROOT
from protection.directory import SERVICE_TYPES
from referral.console import i18n
from referral.console.i18n import catalogue, translator
from referral.queue import OUTCOMES, RISK_LEVELS, Consent, Priority, Status

CONSOLE = PROJECT_ROOT / "referral" / "console"
# t("key"), Refused(403, "key"), _back(request, db, case_id, "key"), error_key="key" …
# (a key built from a code, t("outcome_" ~ code), is checked by the tests of those codes)
_USED = re.compile(
    r"""(?:\bt\(\s*|Refused\([^,()]+,\s*|_back\(request, db, case_id,\s*|_key=)"""
    r"""["']([a-z][a-z0-9_]*[a-z0-9])["'](?!\s*~)"""
)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_there_is_a_catalogue_for_each_interface_language() -> None:
    assert i18n.languages() == ("en", "pt")


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    english, portuguese = catalogue("en"), catalogue("pt")
    assert set(english) == set(portuguese)
    for key, text in english.items():
        assert text.strip() and portuguese[key].strip(), key
        assert _placeholders(text) == _placeholders(portuguese[key]), key


def _used_keys() -> set[str]:
    sources = [*CONSOLE.glob("*.py"), *(CONSOLE / "templates").glob("*.html")]
    return {key for path in sources for key in _USED.findall(path.read_text(encoding="utf-8"))}


def test_every_word_the_console_asks_for_exists() -> None:
    used = _used_keys()
    assert {"sign_in", "claimed_ok", "supervisors_only", "sv_no_account", "csrf_refused"} <= used
    assert used - set(catalogue("en")) == set()


def test_every_risk_signal_has_words() -> None:
    """A group added to the lexicon needs its words here too, or counsellors read its id."""
    groups = yamlfiles.read(PROJECT_ROOT / "data" / "risk" / "indicators.yml").get("groups") or []
    ids = {str(group["id"]) for group in groups}
    assert ids
    assert {f"signal_{name}" for name in ids} - set(catalogue("en")) == set()


def test_every_intent_of_the_bot_has_words() -> None:
    intents = set()
    for path in (PROJECT_ROOT / "bot").glob("*.yml"):
        for entry in yamlfiles.read(path).get("intents") or []:
            intents.add(entry if isinstance(entry, str) else next(iter(entry)))
    assert {"request_human", "report_third_party", "emergency"} <= intents
    assert {f"intent_{name}" for name in intents} - set(catalogue("en")) == set()


def test_an_edited_catalogue_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    words = tmp_path / "en.yml"
    words.write_text('greeting: "Hello {name}"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "WORDS_DIR", tmp_path)
    assert translator("en")("greeting", name="Ana") == "Hello Ana"
    words.write_text('greeting: "Welcome, {name}"\n', encoding="utf-8")
    # A new modification time, whatever the file system's clock resolution.
    stat = words.stat()
    os.utime(words, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert translator("en")("greeting", name="Ana") == "Welcome, Ana"
    assert translator("xx")("greeting", name="Ana") == "Welcome, Ana"  # unknown: English


@pytest.mark.parametrize(
    ("prefix", "codes"),
    [
        ("level_", RISK_LEVELS),
        ("sv_level_", RISK_LEVELS),
        ("status_", get_args(Status)),
        ("sv_priority_", get_args(Priority)),
        ("consent_", get_args(Consent)),
        ("sv_consent_", get_args(Consent)),
        ("channel_", ("sms", "whatsapp")),
        ("lang_", LANGUAGES),
        ("outcome_", OUTCOMES),
        ("service_", SERVICE_TYPES),
        ("author_", ("person", "bot", "counsellor", "note")),
    ],
)
def test_every_code_shown_through_a_prefix_has_words(prefix: str, codes: tuple[str, ...]) -> None:
    assert {f"{prefix}{code}" for code in codes} - set(catalogue("en")) == set()
