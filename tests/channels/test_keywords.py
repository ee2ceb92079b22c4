"""Reserved words are matched the way people type them, and only as the whole message."""

from __future__ import annotations

import pytest

from channels import keywords
from hotline import sms
from hotline.settings import PROJECT_ROOT

KW = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")


@pytest.mark.parametrize(
    ("text", "kind", "languages"),
    [
        ("STOP", "stop", ("pt", "en", "fr", "sw")),
        ("Stop!", "stop", ("pt", "en", "fr", "sw")),
        ("  parar. ", "stop", ("pt",)),
        ("arret", "stop", ("fr",)),
        ("ARRÊT", "stop", ("fr",)),
        ("acha", "stop", ("sw",)),
        ("Começar", "start", ("pt",)),
        ("comecar", "start", ("pt",)),
        ("ajuda?", "help", ("pt",)),
        ("MSAADA", "help", ("sw",)),
        ("Português", "language", ("pt",)),
        ("english", "language", ("en",)),
        ("Français", "language", ("fr",)),
        ("kiswahili", "language", ("sw",)),
        ("SW", "language", ("sw",)),
        ("apagar", "delete", ("pt",)),
        ("Futa", "delete", ("sw",)),
    ],
)
def test_a_reserved_word(text: str, kind: str, languages: tuple[str, ...]) -> None:
    reserved = KW.match(text)
    assert reserved is not None and reserved.kind == kind and reserved.languages == languages


@pytest.mark.parametrize(
    "text", ["please stop calling me", "ajuda-me por favor", "sim", "yes", "", "   ", "🙏"]
)
def test_not_a_reserved_word(text: str) -> None:
    assert KW.match(text) is None


def test_a_shared_word_answers_in_the_conversations_language() -> None:
    stop = KW.match("stop")
    assert stop.language("sw") == "sw" and stop.language(None) == "pt"
    assert KW.match("acha").language("en") == "sw"


def test_yes_counts_only_as_the_answer_to_delete() -> None:
    assert all(KW.confirms(word) for word in ("SIM", "yes", "Oui!", "ndio"))
    assert not KW.confirms("no")


@pytest.mark.parametrize("name", keywords.NOTES)
@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_every_note_exists_in_every_language_and_fits_three_sms(name: str, language: str) -> None:
    text = KW.texts[name][language]
    assert text.strip() and sms.segment_count(text) <= 3


@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_help_says_how_to_reach_a_person(language: str) -> None:
    text = KW.note("help", language)
    assert (
        "1458" in text
        and {"pt": "PESSOA", "en": "PERSON", "fr": "PERSONNE", "sw": "MTU"}[language] in text
    )


def test_the_waiting_texts_name_a_back_word_of_their_language() -> None:
    """A person told "write MENU to go back to the assistant" must be able to: the word the
    text names is a back keyword in that language."""
    from referral.texts import text

    found = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")
    for name in ("utter_waiting_ack", "utter_waiting_ack_off_duty"):
        for language in ("pt", "en", "fr", "sw"):
            said = text(name, language, next_shift="06:00")
            words = [w.strip(".,;:!?") for w in said.split() if w.isupper() and len(w) > 2]
            backs = [w for w in words if (r := found.match(w)) and r.kind == "back"]
            assert backs and language in found.match(backs[0]).languages, (name, language, said)
