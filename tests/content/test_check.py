"""`hotline content check` finds each kind of broken content and says where and how to fix it."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest

import content as content_cli
from content import sent
from content.check import check, print_problems
from content.model import Problem, load
from hotline import sms
from hotline.settings import PROJECT_ROOT

LANGUAGES = ("pt", "en", "fr", "sw")
WORDS = {"pt": "olá", "en": "hello", "fr": "bonjour", "sw": "habari"}
HELP = {"pt": "socorro", "en": "help me", "fr": "aidez-moi", "sw": "nisaidie"}

CORE = """\
version: "3.1"
intents:
- greet
- report_exploitation
slots:
  language:
    type: categorical
    values: [pt, en, fr, sw]
    mappings:
    - type: custom
  next_shift:
    type: text
    mappings:
    - type: custom
actions:
- action_open_case
"""

GENERAL = """\
version: "3.1"
responses:
  utter_greet:
  - text: "Olá! Em que posso ajudar?"
  - text: "Hello! How can I help?"
    condition:
    - type: slot
      name: language
      value: en
  - text: "Bonjour ! Comment puis-je aider ?"
    condition:
    - type: slot
      name: language
      value: fr
  - text: "Habari! Nikusaidie vipi?"
    condition:
    - type: slot
      name: language
      value: sw

  utter_back_soon:
  - text: "Ninguém está de serviço. Voltamos {next_shift}."
  - text: "Nobody is on duty. We are back {next_shift}."
    condition:
    - type: slot
      name: language
      value: en
  - text: "Personne n'est de service. Retour {next_shift}."
    condition:
    - type: slot
      name: language
      value: fr
  - text: "Hakuna aliye zamu. Tunarudi {next_shift}."
    condition:
    - type: slot
      name: language
      value: sw
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: disclosure
  steps:
  - intent: report_exploitation
  - action: action_open_case
"""

SERVICES = """\
services:
- id: linha-verde
  type: helpline
  province: national
  name: {pt: "Linha Verde", en: "Linha Verde", fr: "Linha Verde", sw: "Linha Verde"}
  short_code: "1458"
  source: "called by Ana on 2024-05-02"
  verified: true
- id: office
  type: office
  province: Maputo Cidade
  name: {pt: "Gabinete", en: "Office", fr: "Bureau", sw: "Ofisi"}
  phone: "+25821310779"
  source: "called by Ana on 2024-05-02"
  verified: true
"""

INDICATORS = """\
version: 1
groups:
- id: documents_taken
  weight: 1
  label: {pt: "documentos retidos", en: "documents taken", fr: "papiers pris", sw: "hati"}
  phrases:
    pt: ["tiraram ... passaporte"]
    en: ["took ... passport"]
    fr: ["pris ... passeport"]
    sw: ["wamechukua ... pasipoti"]
  examples:
    pt: ["o patrão tirou o meu passaporte"]
    en: ["my boss took my passport"]
    fr: ["le patron a pris mon passeport"]
    sw: ["bosi wamechukua pasipoti yangu"]
context:
  negations:
    pt: [nao]
    en: [not]
    fr: [pas]
    sw: [si]
"""

KEYWORDS = """\
keywords:
  stop:
    pt: [PARAR]
    en: [STOP]
    fr: [ARRET]
    sw: [ACHA]
texts:
  stopped:
    pt: "Não vai receber mais mensagens."
    en: "You will get no more messages."
    fr: "Vous ne recevrez plus de messages."
    sw: "Hutapokea ujumbe tena."
"""

CANNED = """\
canned_replies:
- id: closing
  title: {pt: "Despedida", en: "Closing", fr: "Clôture", sw: "Kuaga"}
  text:
    pt: "Obrigado por falar connosco."
    en: "Thank you for talking with us."
    fr: "Merci de nous avoir écrit."
    sw: "Asante kwa kuzungumza nasi."
"""


# What the action server says on the safety paths; short texts, so each test makes one long.
HANDOFF_NAMES = (
    "utter_acknowledge_disclosure",
    "utter_acknowledge_third_party",
    "utter_safety_tip",
    "utter_danger_numbers",
    "utter_ask_consent",
    "utter_case_opened",
    "utter_emergency",
    "utter_child_protection",
    "utter_consent_declined",
    "utter_nobody_on_duty",
    "utter_nobody_on_duty_urgent",
    "utter_case_closed",
    "utter_services_intro",
    "utter_no_services",
    "utter_emergency_alerting",
    "utter_waiting_ack",
    "utter_waiting_ack_off_duty",
    "utter_back_to_bot_cancelled",
    "utter_back_to_bot_kept",
)


def handoff(texts: dict[tuple[str, str], str] | None = None, names=HANDOFF_NAMES) -> str:
    """data/handoff.yml with a short text per response and language, or the given ones."""
    texts = texts or {}
    out = ['version: "3.1"', "responses:"]
    for name in names:
        out.append(f"  {name}:")
        for language in LANGUAGES:
            # Short enough to stay one SMS joined, even with 'terça-feira às 06:00' in it.
            shift = " {next_shift}" if "nobody" in name else ""
            text = texts.get((name, language), f"Ok {language}{shift}.")
            out.append(f'  - text: "{text}"')
            if language != "pt":
                out += [
                    "    condition:",
                    "    - type: slot",
                    "      name: language",
                    f"      value: {language}",
                ]
    return "\n".join(out) + "\n"


def nlu(language: str) -> str:
    greet = "".join(f"    - {WORDS[language]} {i}\n" for i in range(12))
    report = "".join(f"    - {HELP[language]} {i}\n" for i in range(25))
    return (
        f'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n{greet}'
        f"- intent: report_exploitation\n  examples: |\n{report}"
    )


def base_files() -> dict[str, str]:
    files = {
        "bot/core.yml": CORE,
        "bot/general.yml": GENERAL,
        "data/rules/rules.yml": RULES,
        "data/services.yml": SERVICES,
        "data/risk/indicators.yml": INDICATORS,
        "data/keywords.yml": KEYWORDS,
        "data/canned_replies.yml": CANNED,
        "data/handoff.yml": handoff(),
    }
    for language in LANGUAGES:
        files[f"data/nlu/{language}/nlu.yml"] = nlu(language)
    return files


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def broken(tmp_path: Path, rel: str, old: str, new: str) -> list[Problem]:
    """Check a good tree in which one file has `old` replaced by `new`."""
    files = base_files()
    assert old in files[rel], f"test setup: {old!r} not in {rel}"
    files[rel] = files[rel].replace(old, new, 1)
    return check(write_tree(tmp_path, files))


def errors(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if p.severity == "error"]


def line_of(tmp_path: Path, rel: str, needle: str) -> int:
    lines = (tmp_path / rel).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def only_error(problems: list[Problem]) -> str:
    found = errors(problems)
    assert len(found) == 1, found
    return found[0]


def test_a_complete_tree_has_no_errors_and_no_warnings(tmp_path: Path) -> None:
    assert check(write_tree(tmp_path, base_files())) == []


def test_a_response_without_a_language_is_named_with_the_way_to_add_it(tmp_path: Path) -> None:
    fr = (
        '  - text: "Bonjour ! Comment puis-je aider ?"\n    condition:\n    - type: slot\n'
        "      name: language\n      value: fr\n"
    )
    message = only_error(broken(tmp_path, "bot/general.yml", fr, ""))
    assert message.startswith(
        f"bot/general.yml:{line_of(tmp_path, 'bot/general.yml', 'utter_greet:')}: "
    )
    assert "utter_greet has no French (fr) text" in message
    assert "value: fr" in message


def test_an_empty_text_is_an_error_on_its_line(tmp_path: Path) -> None:
    problems = broken(tmp_path, "bot/general.yml", '"Hello! How can I help?"', '""')
    line = line_of(tmp_path, "bot/general.yml", '- text: ""')
    assert only_error(problems) == (
        f"bot/general.yml:{line}: utter_greet [en] is empty; write the English text"
    )


def test_too_few_examples_says_how_many_more(tmp_path: Path) -> None:
    files = base_files()
    files["data/nlu/sw/nlu.yml"] = files["data/nlu/sw/nlu.yml"].replace("    - habari 11\n", "")
    message = only_error(check(write_tree(tmp_path, files)))
    assert message.startswith("data/nlu/sw/nlu.yml:5: ")
    assert "intent greet has 11 Swahili examples; it needs at least 12: add 1 more" in message


def test_safety_intents_need_25_examples(tmp_path: Path) -> None:
    files = base_files()
    files["data/nlu/pt/nlu.yml"] = files["data/nlu/pt/nlu.yml"].replace("    - socorro 24\n", "")
    assert (
        "intent report_exploitation has 24 Portuguese examples; it needs at least 25"
        in only_error(check(write_tree(tmp_path, files)))
    )


def test_the_same_example_under_two_intents_points_at_both(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/nlu/en/nlu.yml", "    - help me 3\n", "    - Hello 0!\n")
    found = errors(problems)
    line = line_of(tmp_path, "data/nlu/en/nlu.yml", "- Hello 0!")
    assert any(
        p.startswith(
            f"data/nlu/en/nlu.yml:{line}: example 'Hello 0!' is under "
            "report_exploitation here and under greet at data/nlu/en/nlu.yml:5"
        )
        for p in found
    ), found
    # The duplicate no longer counts, so the intent is now one short, which is also said.
    assert any("report_exploitation has 24 English examples" in p for p in found)


def test_too_long_names_the_character_that_forces_ucs2(tmp_path: Path) -> None:
    long_pt = "Não " + "a" * 200
    problems = broken(tmp_path, "bot/general.yml", "Olá! Em que posso ajudar?", long_pt)
    line = line_of(tmp_path, "bot/general.yml", long_pt)
    message = only_error(problems)
    assert message.startswith(
        f"bot/general.yml:{line}: utter_greet [pt] needs 4 SMS segments (UCS-2 because of 'ã')"
    )
    assert "shorten it to 201 characters or fewer" in message


def test_too_long_in_gsm7_allows_459_characters(tmp_path: Path) -> None:
    ok = "a" * 459
    assert errors(broken(tmp_path, "bot/general.yml", "Hello! How can I help?", ok)) == []
    message = only_error(broken(tmp_path, "bot/general.yml", "Hello! How can I help?", ok + "a"))
    assert "utter_greet [en] needs 4 SMS segments (GSM-7)" in message
    assert "459 characters or fewer" in message


def test_placeholders_must_match_the_portuguese(tmp_path: Path) -> None:
    problems = broken(tmp_path, "bot/general.yml", "Retour {next_shift}.", "Retour {prochain}.")
    found = errors(problems)
    line = line_of(tmp_path, "bot/general.yml", "{prochain}")
    assert any(
        p.startswith(
            f"bot/general.yml:{line}: utter_back_soon [fr] has "
            "placeholders {prochain} but the Portuguese text has {next_shift}"
        )
        for p in found
    ), found
    assert any("there is no slot 'prochain'" in p for p in found)


def test_a_service_without_a_province_is_an_error(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/services.yml", "  province: Maputo Cidade\n", "")
    assert only_error(problems) == (
        "data/services.yml:9: service office has no province; add `province: ...`"
    )


def test_a_phone_not_in_e164_is_an_error_with_an_example(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/services.yml", '"+25821310779"', '"21 310 779"')
    message = only_error(problems)
    assert message.startswith(
        f"data/services.yml:{line_of(tmp_path, 'data/services.yml', '21 310')}: "
        "service office: phone '21 310 779' is not in E.164"
    )
    assert "+25821310779" in message


def test_a_short_code_in_the_phone_field_is_pointed_to_short_code(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/services.yml", '"+25821310779"', '"116"')
    assert "a short number like 116 goes in `short_code:`" in only_error(problems)


def test_a_service_with_no_number_at_all_is_an_error(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/services.yml", '  short_code: "1458"\n', "")
    assert "service linha-verde has no phone" in only_error(problems)


def test_unverified_services_are_warnings_only(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/services.yml", "verified: true", "verified: false")
    assert errors(problems) == []
    assert [str(p) for p in problems] == [
        (
            "data/services.yml:8: warning: service linha-verde is not verified; before launch call "
            "it, confirm the hours, then set `verified: true` and write who checked it and when in "
            "`source:`"
        )
    ]


def test_untranslated_text_is_a_warning(tmp_path: Path) -> None:
    problems = broken(
        tmp_path, "bot/general.yml", "Habari! Nikusaidie vipi?", "Olá! Em que posso ajudar?"
    )
    assert errors(problems) == []
    assert len(problems) == 1
    assert "utter_greet [sw] is the same as the Portuguese text; translate it into Swahili" in str(
        problems[0]
    )


def test_an_indicator_without_examples_in_a_language_is_an_error(tmp_path: Path) -> None:
    problems = broken(
        tmp_path, "data/risk/indicators.yml", '    sw: ["bosi wamechukua pasipoti yangu"]\n', ""
    )
    message = only_error(problems)
    line = line_of(tmp_path, "data/risk/indicators.yml", "  examples:")
    assert message.startswith(
        f"data/risk/indicators.yml:{line}: indicator group documents_taken has no Swahili (sw) "
        "examples; add `sw:` under `examples:`"
    )


def test_an_indicator_with_empty_phrases_in_a_language_is_an_error(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/risk/indicators.yml", '["pris ... passeport"]', "[]")
    line = line_of(tmp_path, "data/risk/indicators.yml", "    fr: []")
    assert only_error(problems).startswith(
        f"data/risk/indicators.yml:{line}: indicator group documents_taken has no French (fr) "
        "phrases"
    )


def test_an_indicator_group_without_examples_is_an_error(tmp_path: Path) -> None:
    files = base_files()
    text = files["data/risk/indicators.yml"]
    start, end = text.index("  examples:\n"), text.index("context:")
    files["data/risk/indicators.yml"] = text[:start] + text[end:]
    message = only_error(check(write_tree(tmp_path, files)))
    assert message.startswith(
        "data/risk/indicators.yml:3: indicator group documents_taken has no examples"
    )


def test_missing_context_words_are_a_warning(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/risk/indicators.yml", "    sw: [si]\n", "")
    assert errors(problems) == []
    assert "context negations has no Swahili (sw) words" in str(problems[0])


def test_a_keyword_set_without_a_language_is_an_error(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/keywords.yml", "    fr: [ARRET]\n", "")
    assert "stop has no French (fr) entry" in only_error(problems)


def test_a_keyword_under_two_sets_is_an_error(tmp_path: Path) -> None:
    files = base_files()
    files["data/keywords.yml"] = files["data/keywords.yml"].replace(
        "texts:\n",
        "  start:\n    pt: [Parar]\n    en: [START]\n    fr: [START]\n    sw: [ANZA]\ntexts:\n",
    )
    message = only_error(check(write_tree(tmp_path, files)))
    assert message.startswith(
        "data/keywords.yml:8: keyword 'Parar' is under start here and under stop"
    )


def test_the_same_example_in_capitals_is_a_different_example(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/nlu/en/nlu.yml", "    - hello 1\n", "    - HELLO 0\n")
    assert problems == []


def test_an_exact_repeat_under_one_intent_is_a_warning_and_counts_once(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/nlu/en/nlu.yml", "    - hello 1\n", "    - hello 0\n")
    assert "example 'hello 0' of greet is already at data/nlu/en/nlu.yml:5" in str(problems[-1])
    assert "intent greet has 11 English examples" in only_error(problems)


def test_a_channel_text_longer_than_three_sms_is_an_error(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/keywords.yml", "Hutapokea ujumbe tena.", "ujumbe " * 70)
    assert "stopped [sw] needs 4 SMS segments" in only_error(problems)


def test_a_canned_reply_without_a_language_is_an_error(tmp_path: Path) -> None:
    problems = broken(
        tmp_path, "data/canned_replies.yml", '    sw: "Asante kwa kuzungumza nasi."\n', ""
    )
    assert only_error(problems) == (
        "data/canned_replies.yml:2: canned reply closing has no Swahili (sw) text; add `sw: ...`"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  - intent: greet\n",
            "  - intent: greeting\n",
            "names intent greeting, which does not exist",
        ),
        (
            "  - action: action_open_case\n",
            "  - action: action_open_file\n",
            "names action_open_file, which does not exist; add it to `actions:` in bot/core.yml",
        ),
        (
            "  - action: utter_greet\n",
            "  - action: utter_hello\n",
            "names utter_hello, which does not exist; write that response in a bot/*.yml file",
        ),
    ],
)
def test_a_rule_naming_something_unknown_is_an_error(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    problems = broken(tmp_path, "data/rules/rules.yml", old, new)
    message = only_error(problems)
    assert message.startswith(
        f"data/rules/rules.yml:{line_of(tmp_path, 'data/rules/rules.yml', new.strip())}: "
    )
    assert expected in message


def test_texts_the_action_server_says_are_checked_too(tmp_path: Path) -> None:
    files = base_files()
    files["data/handoff.yml"] = handoff({("utter_case_opened", "sw"): ""})
    files["data/rules/rules.yml"] = RULES.replace(
        "action: action_open_case", "action: utter_case_opened"
    )
    found = errors(check(write_tree(tmp_path, files)))
    assert len(found) == 2, found
    line = line_of(tmp_path, "data/handoff.yml", '- text: ""')
    assert found[0].startswith(f"data/handoff.yml:{line}: utter_case_opened [sw] is empty")
    assert found[1].startswith(
        "data/rules/rules.yml:10: 'disclosure' names utter_case_opened, which does not exist; "
        "the action server says it (it is in data/handoff.yml), not Rasa"
    )


def test_a_text_an_action_says_missing_from_handoff_is_an_error(tmp_path: Path) -> None:
    files = base_files()
    names = tuple(n for n in HANDOFF_NAMES if n != "utter_ask_consent")
    files["data/handoff.yml"] = handoff(names=names)
    assert only_error(check(write_tree(tmp_path, files))) == (
        "data/handoff.yml: utter_ask_consent is missing; action_offer_counsellor says it: "
        "add it here with its pt, en, fr and sw texts"
    )


# ---------------------------------------------------------------- what is sent


def sentence(length: int, start: str = "Text") -> str:
    """A GSM-7 text of exactly `length` characters."""
    return (start + " " + "x" * length)[:length]


def test_replies_sent_together_are_measured_joined(tmp_path: Path) -> None:
    # Each text is 2 segments alone; the sender joins the three into one SMS of 4.
    texts = {
        ("utter_acknowledge_disclosure", "en"): sentence(150, "Thank you"),
        ("utter_safety_tip", "en"): sentence(160, "For your safety"),
        ("utter_ask_consent", "en"): sentence(170, "May we"),
    }
    files = base_files()
    files["data/handoff.yml"] = handoff(texts)
    found = errors(check(write_tree(tmp_path, files)))
    line = line_of(tmp_path, "data/handoff.yml", "May we")
    assert len(found) == 2, found
    offer = next(p for p in found if "the high-risk offer [en]" in p)
    assert offer.startswith(
        f"data/handoff.yml:{line}: the high-risk offer [en] goes out as one SMS of 4 segments "
        "(GSM-7): utter_acknowledge_disclosure (150) + utter_safety_tip (160) + "
        "utter_ask_consent (170), 484 characters"
    )
    assert "it must fit 3 segments (459 characters or fewer)" in offer
    # With the emergency numbers between the tip and the question it is longer still.
    assert any(
        "the high-risk offer read as danger now [en] goes out as one SMS of 4" in p for p in found
    )


@pytest.mark.parametrize(("consent", "failing"), [(147, []), (148, ["read as danger now [en]"])])
def test_a_joined_message_may_fill_three_segments_exactly(
    tmp_path: Path, consent: int, failing: list[str]
) -> None:
    danger = len("Ok en.")
    # 150 + 150 + 6 + 147 and three blank lines between them: 459 septets, 3 segments.
    assert 150 + 150 + danger + 147 + 3 * len(sms.MESSAGE_SEPARATOR) == 459
    texts = {
        ("utter_acknowledge_disclosure", "en"): sentence(150),
        ("utter_safety_tip", "en"): sentence(150),
        ("utter_ask_consent", "en"): sentence(consent),
    }
    files = base_files()
    files["data/handoff.yml"] = handoff(texts)
    found = errors(check(write_tree(tmp_path, files)))
    assert len(found) == len(failing), found
    assert all(want in got for want, got in zip(failing, found, strict=True))


def test_a_joined_path_is_measured_with_its_placeholder_filled(tmp_path: Path) -> None:
    # 302 + 2 + 150 = 454 as written; {next_shift} (12) can be "from Wednesday at 06:00" (23).
    nobody = "Someone answers {next_shift}. "
    texts = {
        ("utter_child_protection", "en"): sentence(302, "You did well"),
        ("utter_nobody_on_duty_urgent", "en"): nobody + sentence(150 - len(nobody), "Police"),
    }
    files = base_files()
    files["data/handoff.yml"] = handoff(texts)
    message = only_error(check(write_tree(tmp_path, files)))
    assert (
        "the child path with nobody on duty [en] (with {next_shift} = 'from Wednesday at 06:00') "
        "goes out as one SMS of 4 segments (GSM-7): utter_child_protection (302) + "
        "utter_nobody_on_duty_urgent (161), 465 characters"
    ) in message


def test_every_way_opening_a_case_ends_is_measured() -> None:
    """action_open_case's branches (actions/handoff.py), each a turn the check measures."""
    said = {turn.replies for turn in sent.TURNS if turn.action == sent.OPEN}
    for priority in ("emergency", "high", "request"):
        for intent in sent.OPEN_CASE_INTENTS:
            for staffed in (False, True):
                assert sent.open_case_replies(priority, intent, staffed) in said
    # A child alone on a plain request with nobody on duty, and danger read on a plain
    # request with nobody on duty: said, so measured.
    assert ("utter_child_protection", "utter_nobody_on_duty") in said
    assert ("utter_case_opened", "utter_danger_numbers", "utter_nobody_on_duty") in said
    # The child wording and the danger numbers follow the same latest intent: never together.
    assert not any(
        "utter_child_protection" in replies and "utter_danger_numbers" in replies
        for replies in said
    )
    # An emergency off duty: the numbers are in the emergency reply, never twice.
    assert sent.open_case_replies("emergency", "child_alone", False) == (
        "utter_emergency",
        "utter_nobody_on_duty",
    )


def test_ucs2_in_one_reply_makes_the_whole_sms_ucs2(tmp_path: Path) -> None:
    # Four texts of 50 and three blank lines: 206 characters, 2 segments in GSM-7, but one
    # 'û' in one of them makes the whole SMS UCS-2, and 4 segments, though each is one alone.
    texts = {
        ("utter_acknowledge_disclosure", "fr"): sentence(50, "Merci"),
        ("utter_safety_tip", "fr"): sentence(50, "Pour votre sûreté"),
        ("utter_danger_numbers", "fr"): sentence(50, "En danger"),
        ("utter_ask_consent", "fr"): sentence(50, "Pouvons-nous"),
    }
    files = base_files()
    files["data/handoff.yml"] = handoff(texts)
    message = only_error(check(write_tree(tmp_path, files)))
    assert (
        message.startswith("data/handoff.yml:")
        and "the high-risk offer read as danger now [fr] goes out as one SMS of 4 segments"
        in message
    )
    assert "(UCS-2 because of 'û')" in message
    assert "201 characters or fewer" in message


def test_the_service_list_is_built_and_measured(tmp_path: Path) -> None:
    long_name = sentence(440, "Linha Verde")
    files = base_files()
    files["data/services.yml"] = SERVICES.replace('en: "Linha Verde"', f'en: "{long_name}"')
    found = errors(check(write_tree(tmp_path, files)))
    line = line_of(tmp_path, "data/services.yml", long_name)
    listing = [p for p in found if "the service list [en]" in p]
    assert len(listing) == 1, found
    assert listing[0].startswith(f"data/services.yml:{line}: the service list [en] (asking for ")
    assert "goes out as one SMS of 4 segments (GSM-7)" in listing[0]
    # The directory's own order (protection/directory.py), whatever it is.
    assert "utter_services_intro (6) + service " in listing[0]
    assert "service office (23)" in listing[0] and "service linha-verde (446)" in listing[0]
    # Declining the counsellor sends the same list after the refusal.
    assert any("the counsellor declined [en]" in p for p in found), found


def test_on_whatsapp_the_same_message_has_no_segments(tmp_path: Path) -> None:
    texts = {("utter_safety_tip", "en"): sentence(450, "For your safety")}
    files = base_files()
    files["data/handoff.yml"] = handoff(texts)
    content = load(write_tree(tmp_path, files))
    offer = next(
        m for m in sent.messages(content) if m.turn == "the high-risk offer" and m.language == "en"
    )
    assert offer.bodies() == [sms.MESSAGE_SEPARATOR.join(offer.texts)]
    assert offer.segments("whatsapp") is None
    assert offer.segments("sms") == sms.segment_count(offer.bodies()[0]) == 4


def test_one_character_that_makes_a_text_ucs2_is_named(tmp_path: Path) -> None:
    text = sentence(100, "It’s free")  # 1 segment in GSM-7, 2 in UCS-2
    problems = broken(tmp_path, "bot/general.yml", "Hello! How can I help?", text)
    assert errors(problems) == []
    line = line_of(tmp_path, "bot/general.yml", text)
    assert [str(p) for p in problems] == [
        (
            f"bot/general.yml:{line}: warning: utter_greet [en] is sent in UCS-2 only because "
            "of '’' (once): 2 SMS segments instead of 1; write \"'\" instead"
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        "It’s free",  # one segment either way
        sentence(100, "ça coûte"),  # two characters force UCS-2, not one
    ],
)
def test_ucs2_that_costs_nothing_or_needs_two_characters_is_not_flagged(
    tmp_path: Path, text: str
) -> None:
    assert broken(tmp_path, "bot/general.yml", "Hello! How can I help?", text) == []


def test_a_joined_message_names_the_reply_with_the_costly_character(tmp_path: Path) -> None:
    texts = {
        ("utter_acknowledge_disclosure", "en"): sentence(60, "Thank you"),
        ("utter_safety_tip", "en"): sentence(60, "Delete these"),
    }
    files = base_files()
    files["data/handoff.yml"] = handoff(texts)
    problems = check(write_tree(tmp_path, files))
    assert errors(problems) == []
    line = line_of(tmp_path, "data/handoff.yml", "Delete these")
    assert (
        f"data/handoff.yml:{line}: warning: the high-risk offer [en] is sent in UCS-2 only "
        "because of U+00A0 (once): 2 SMS segments instead of 1; write ' ' instead "
        "(it is in utter_safety_tip)" in [str(p) for p in problems]
    )


def test_a_test_story_naming_an_unknown_intent_is_an_error(tmp_path: Path) -> None:
    files = base_files()
    files["tests/stories/story.yml"] = (
        'version: "3.1"\nstories:\n- story: ask\n  steps:\n  - user: |\n      hi\n'
        "    intent: say_hi\n  - action: utter_greet\n"
    )
    message = only_error(check(write_tree(tmp_path, files)))
    assert message.startswith("tests/stories/story.yml:5: 'ask' names intent say_hi")


def test_nlu_fallback_is_a_known_intent(tmp_path: Path) -> None:
    problems = broken(
        tmp_path, "data/rules/rules.yml", "  - intent: greet\n", "  - intent: nlu_fallback\n"
    )
    assert errors(problems) == []


def test_a_yaml_syntax_error_gives_its_line(tmp_path: Path) -> None:
    problems = broken(tmp_path, "data/services.yml", "  type: office\n", "  type: [office\n")
    assert any(
        p.startswith("data/services.yml:") and "cannot be read" in p for p in errors(problems)
    )


def run_cli(root: Path) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="hotline")
    content_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["content", "--root", str(root), "check"])
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        status = args.func(args)
    return status, out.getvalue()


def test_the_command_exits_1_on_errors_and_0_on_warnings_only(tmp_path: Path) -> None:
    files = base_files()
    files["data/services.yml"] = files["data/services.yml"].replace(
        "verified: true", "verified: false"
    )
    good = write_tree(tmp_path / "good", files)
    status, output = run_cli(good)
    assert status == 0
    assert "warning: service linha-verde is not verified" in output
    assert "content check passed (2 warning(s))" in output

    files["bot/general.yml"] = files["bot/general.yml"].replace('"Hello! How can I help?"', '""')
    status, output = run_cli(write_tree(tmp_path / "bad", files))
    assert status == 1
    assert "content check failed: 1 error(s), 2 warning(s)" in output


def test_print_problems_puts_one_problem_per_line() -> None:
    out = io.StringIO()
    status = print_problems([Problem("bot/a.yml", 3, "x is wrong; fix it")], out)
    assert status == 1
    assert out.getvalue().splitlines()[0] == "bot/a.yml:3: x is wrong; fix it"


def test_the_real_content_has_no_errors() -> None:
    found = errors(check(PROJECT_ROOT))
    assert found == [], "\n".join(found)


def test_the_turns_name_every_text_the_actions_say() -> None:
    """content/sent.py models what actions/, the router and the hand-back say; a text added
    there must be modelled too."""
    said: set[str] = set()
    sources = [
        *(PROJECT_ROOT / "actions").glob("*.py"),
        PROJECT_ROOT / "channels" / "router.py",
        *(PROJECT_ROOT / "referral").glob("*.py"),
    ]
    for path in sources:
        said |= set(re.findall(r'"(utter_\w+)"', path.read_text(encoding="utf-8")))
    assert said == set(sent.runtime_texts())
