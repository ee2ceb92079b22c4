"""SMS segments: what a text costs, and how the bot's messages are packed into SMS bodies."""

from __future__ import annotations

import itertools
import random

import pytest

from hotline.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SEGMENTS_PER_BODY,
    encoding,
    join_messages,
    non_gsm_chars,
    segment_count,
    split_text,
)

SEGMENTS = [
    # (text, segments, why)
    ("", 1, "an empty message, as with media only, is still one SMS"),
    ("a" * 160, 1, "160 GSM-7 characters fit one SMS"),
    ("a" * 161, 2, "one more and the text is split, 153 per part"),
    ("a" * 306, 2, "two full parts of 153"),
    ("a" * 307, 3, "one more than two parts"),
    ("a" * 153 * 10, 10, "ten full parts"),
    ("ã" * 70, 1, "70 UCS-2 characters fit one SMS"),
    ("a" * 69 + "ã", 1, "one 'ã' makes the whole text UCS-2; 70 still fit"),
    ("a" * 70 + "ã", 2, "71 UCS-2 characters are split, 67 per part"),
    ("a" * 133 + "ã", 2, "two full UCS-2 parts of 67"),
    ("a" * 134 + "ã", 3, "one more than two UCS-2 parts"),
    ("😀" * 35, 1, "an emoji is two UTF-16 units: 35 of them are 70"),
    ("a" * 69 + "😀", 2, "69 letters and an emoji are 71 units"),
    ("a" * 66 + "😀" + "a" * 66, 3, "an emoji is never split across two parts"),
    ("€" * 80, 1, "'€' is escaped, two septets: 80 of them are 160"),
    ("a" * 159 + "€", 2, "159 letters and a '€' are 161 septets"),
    ("a" * 152 + "€" + "a" * 152, 3, "an escaped character is never split across two parts"),
    ("Linha Verde 1458 (06:00-21:00, todos os dias)", 1, "a Portuguese text without accents"),
]


@pytest.mark.parametrize("text,segments,why", SEGMENTS, ids=[row[2] for row in SEGMENTS])
def test_segment_count(text: str, segments: int, why: str) -> None:
    assert segment_count(text) == segments, why


ENCODINGS = [
    ("Ola, bom dia", "GSM-7"),
    ("Olá, bom dia", "UCS-2"),
    ("Informação", "UCS-2"),
    ("ÇA VA", "GSM-7"),  # GSM 03.38 has the capital 'Ç' only
    ("ça va", "UCS-2"),
    ("café à Maputo", "GSM-7"),
    ("10 € {ok} [x] ~ ^ | \\", "GSM-7"),
    ("it’s", "UCS-2"),  # a curly apostrophe, as phones type it
    ("asante 🙏", "UCS-2"),
    ("", "GSM-7"),
]


@pytest.mark.parametrize("text,expected", ENCODINGS)
def test_encoding(text: str, expected: str) -> None:
    assert encoding(text) == expected


def test_the_gsm_tables_do_not_overlap_and_hold_what_portuguese_and_french_need() -> None:
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert set("éèàùÇ") <= GSM7_BASIC
    assert not set("ãõçáíóúâêô") & (GSM7_BASIC | GSM7_EXTENSION)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Informação: não pagamos", ["ç", "ã"]),
        ("Ligue já, é grátis 😀 já", ["á", "😀"]),
        ("Linha Verde 1458 €", []),
    ],
)
def test_non_gsm_chars_tells_an_editor_which_characters_force_ucs2(
    text: str, expected: list[str]
) -> None:
    assert non_gsm_chars(text) == expected


# ---------------------------------------------------------------- split_text

SENTENCES = [f"Sentence {i} says the service is free and voluntary." for i in range(60)]
LONG_TEXT = " ".join(SENTENCES)


def words(texts: list[str]) -> list[str]:
    return [word for text in texts for word in text.split()]


def test_a_text_that_fits_comes_back_whole() -> None:
    assert split_text("  Olá! Sou o assistente.  ", 1) == ["Olá! Sou o assistente."]
    assert split_text("   ", 3) == []


@pytest.mark.parametrize("max_segments", [1, 2, 3, 10])
def test_split_text_cuts_at_sentence_ends_and_every_body_fits(max_segments: int) -> None:
    bodies = split_text(LONG_TEXT, max_segments)
    assert len(bodies) > 1
    assert all(segment_count(body) <= max_segments for body in bodies)
    assert all(body.endswith(".") for body in bodies)
    assert words(bodies) == LONG_TEXT.split()
    # No body has room for the next sentence: as few bodies as sentence cuts allow.
    for body, following in itertools.pairwise(bodies):
        next_sentence = following.split(". ")[0] + "."
        assert segment_count(f"{body} {next_sentence}") > max_segments


def test_split_text_cuts_at_line_breaks_and_keeps_them_inside_a_body() -> None:
    lines = [f"Linha Verde 1458, opção {i}" for i in range(30)]
    bodies = split_text("\n".join(lines), 2)
    assert all(segment_count(body) <= 2 for body in bodies)
    assert [line for body in bodies for line in body.split("\n")] == lines


def test_split_text_cuts_a_sentence_too_long_for_a_body_between_words_never_inside() -> None:
    sentence = " ".join(f"palavra{i}" for i in range(200)) + "."
    bodies = split_text(sentence, 1)
    assert all(segment_count(body) <= 1 for body in bodies)
    assert words(bodies) == sentence.split()


@pytest.mark.parametrize("seed", range(5))
def test_split_text_never_loses_or_cuts_a_word_whatever_the_text(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = ["olá", "casa", "Linha", "Verde", "1458.", "ajuda!", "€5", "🙏", "trabalho?", "ok"]
    text = " ".join(rng.choice(vocabulary) + rng.choice([" ", "\n", ""]) for _ in range(2000))
    for max_segments in (1, 3, 10):
        bodies = split_text(text, max_segments)
        assert all(body and segment_count(body) <= max_segments for body in bodies)
        assert words(bodies) == text.split()


def test_only_a_word_longer_than_a_body_is_cut_and_it_reassembles() -> None:
    link = "https://example.org/" + "x" * 400
    bodies = split_text(f"Veja {link} agora.", 1)
    assert all(segment_count(body) <= 1 for body in bodies)
    assert "".join(bodies).replace(" ", "") == f"Veja{link}agora."
    assert bodies[0] == "Veja"


def test_a_cut_never_separates_an_accent_from_its_letter() -> None:
    word = "e\u0301" * 100  # 'é' written as a letter and a combining accent
    bodies = split_text(word, 1)
    assert "".join(bodies) == word
    assert all(body[0] != "\u0301" for body in bodies)


def test_split_text_refuses_zero_segments() -> None:
    with pytest.raises(ValueError):
        split_text("hi", 0)


# ---------------------------------------------------------------- join_messages


def test_short_messages_share_one_body_a_blank_line_apart() -> None:
    messages = ["Olá! Sou o assistente da linha.", "Como posso ajudar?", "Linha Verde 1458."]
    assert join_messages(messages) == ["\n\n".join(messages)]


def test_empty_messages_are_dropped_and_whitespace_trimmed() -> None:
    assert join_messages(["  Olá  ", "", "   ", "Adeus\n"]) == ["Olá\n\nAdeus"]
    assert join_messages([]) == []


def test_a_message_that_does_not_fit_the_current_body_starts_a_new_one_whole() -> None:
    six_segments = ["a" * (153 * 6 - 10), "b" * (153 * 6 - 10), "c" * (153 * 6 - 10)]
    bodies = join_messages(six_segments)
    assert bodies == six_segments
    # Two of them are 12 segments together, all three 18.
    assert join_messages(six_segments, max_segments=13) == [
        "\n\n".join(six_segments[:2]),
        six_segments[2],
    ]


def test_a_message_too_long_for_one_body_fills_the_body_before_it_first() -> None:
    bodies = join_messages(["Olá.", LONG_TEXT, "Adeus."])
    assert bodies[0].startswith("Olá.\n\nSentence 0 ")
    assert bodies[-1].endswith("\n\nAdeus.")
    assert all(segment_count(body) <= MAX_SEGMENTS_PER_BODY for body in bodies)
    assert words(bodies) == ["Olá.", *LONG_TEXT.split(), "Adeus."]
    assert len(bodies) == len(split_text(f"Olá.\n\n{LONG_TEXT}\n\nAdeus."))


def test_join_messages_respects_a_smaller_limit() -> None:
    messages = [f"Mensagem número {i}." for i in range(40)]
    bodies = join_messages(messages, max_segments=1)
    assert all(segment_count(body) == 1 for body in bodies)
    assert [m for body in bodies for m in body.split("\n\n")] == messages
