"""Risk screening (actions/risk.py) over whole conversations, in pt, en, fr and sw."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hotline.settings import PROJECT_ROOT
from protection import risk

EVAL = PROJECT_ROOT / "tests" / "eval"


def level(*texts: str, intent: str | None = None, confidence: float = 0.95) -> str:
    """The level of a conversation of plain texts; `intent` is the model's guess for the last one."""
    messages = [(text, None, 0.0) for text in texts]
    if intent is not None:
        messages[-1] = (texts[-1], intent, confidence)
    return risk.assess(messages).level


# ---------------------------------------------------------------- the lexicon itself


def lexicon_examples() -> list[tuple[str, str, str]]:
    lex = risk.lexicon()
    return [
        (group, language, text)
        for group, languages in lex.examples.items()
        for language, texts in languages.items()
        for text in texts
    ]


@pytest.mark.parametrize(("group", "language", "text"), lexicon_examples())
def test_every_example_in_the_lexicon_is_recognised(group: str, language: str, text: str) -> None:
    found = {item.group for item in risk.read_message(text).found}
    assert group in found, f"{language}: {text!r} should show {group}, found {sorted(found)}"


def test_every_group_has_examples_in_every_language() -> None:
    lex = risk.lexicon()
    expected = {
        "documents_confiscated", "debt_bondage", "wages_withheld", "not_free_to_leave",
        "threats_or_violence", "deception", "sexual_exploitation", "isolation",
        "excessive_hours", "minor", "danger_now",
    }
    assert expected <= {group.name for group in lex.groups}
    for group in expected:
        assert all(lex.examples[group].get(language) for language in risk.LANGUAGES), group
        assert all(lex.labels[group].get(language) for language in risk.LANGUAGES), group


def test_a_broken_phrase_is_refused_with_the_phrase_named() -> None:
    with pytest.raises(ValueError, match="brackets inside brackets"):
        risk.compile_phrase("(sem (pais|familia)|sozinho)")


# ---------------------------------------------------------------- one conversation at a time


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        # The example from the issue: no single message is high, the conversation is.
        (["trabalho numa machamba em Limpopo", "o patrão guarda o meu passaporte",
          "e diz que devo dinheiro do transporte"], "high"),
        (["I work on a farm", "the boss keeps my passport", "he says I owe for the transport"], "high"),
        (["je travaille dans une ferme", "le patron garde mon passeport",
          "il dit que je dois rembourser le transport"], "high"),
        (["nafanya kazi shambani", "bosi ameshika pasipoti yangu", "anasema nina deni la nauli"], "high"),
    ],
)
def test_indicators_add_up_across_turns(texts: list[str], expected: str) -> None:
    assert level(*texts) == expected
    for index in range(len(texts)):
        assert level(texts[index]) in ("none", "elevated"), texts[index]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Portuguese, with and without accents, SMS spelling
        ("o patrão ficou com o meu passaporte", "elevated"),
        ("n me deixam sair da machamba", "high"),
        ("a patroa bate-me todos os dias", "high"),
        ("obrigaram-me a dormir com clientes", "high"),
        ("tenho 14 anos e estou sozinha na fronteira", "high"),
        ("socorro estão a bater-me agora", "emergency"),
        ("ninguém me bate, o trabalho é que é duro", "none"),
        ("perdi o meu passaporte em Joanesburgo", "none"),
        ("como tirar passaporte para ir trabalhar?", "none"),
        ("a bateria do meu telefone está a morrer", "none"),
        ("o meu patrão não me deixa sair mais cedo às sextas", "none"),
        # English
        ("my employer took our passports", "elevated"),
        ("they dont let us leave the farm", "high"),
        ("the boss beats us", "high"),
        ("im 15 and i came alone", "high"),
        ("help they are beating me", "emergency"),
        ("he has a gun", "emergency"),
        ("my battery is dying", "none"),
        ("how long does it take to get a passport?", "none"),
        ("I'm 25 and want to start a business", "none"),
        ("I'm 12 hours away from Maputo by bus", "none"),
        ("nobody beats me, the work is just hard", "none"),
        # French
        ("le patron a pris mon passeport", "elevated"),
        ("ils ne me laissent pas sortir de la maison", "high"),
        ("nous n'avons pas le droit de sortir", "high"),
        ("j'ai 15 ans et je suis seul à Maputo", "high"),
        ("ils vont me tuer, aidez-moi vite", "emergency"),
        ("on ne peut plus respirer dans le camion", "emergency"),
        ("ma batterie va mourir", "none"),
        ("il y a 15 ans que je vis en Afrique du Sud", "none"),
        ("personne ne me frappe", "none"),
        # Swahili
        ("bosi amechukua pasipoti yangu", "elevated"),
        ("hawaniruhusu kutoka nje", "high"),
        ("nina miaka 14 na niko peke yangu", "high"),
        ("wananipiga sasa hivi", "emergency"),
        ("betri ya simu inakaribia kuisha", "none"),
        ("hakuna mtu ananipiga, kazi ni ngumu tu", "none"),
        ("nimepoteza pasipoti yangu", "none"),
    ],
)
def test_one_message_rows(text: str, expected: str) -> None:
    assert level(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "how do traffickers take passports?",
        "como é que os traficantes tiram os passaportes às pessoas?",
        "o que é tráfico de pessoas?",
        "is it normal for a boss to keep the workers passports and not pay them?",
        "comment les trafiquants enferment les filles ?",
        "wasafirishaji huwafungia watu ndani vipi?",
        "what if my boss takes my passport when I arrive?",
    ],
)
def test_questions_about_how_it_works_stay_elevated_at_most(text: str) -> None:
    assert level(text) in ("none", "elevated")
    assert level(text, intent="ask_trafficking_info") == "elevated"


def test_a_question_with_the_writers_own_situation_in_it_is_a_disclosure() -> None:
    # "my" makes it the person's own situation, question mark or not.
    assert level("is it normal that my boss keeps my passport and doesnt let me leave?") == "high"


def test_danger_said_in_passing_in_a_joke_is_not_an_emergency() -> None:
    assert level("esse jogo esta a matar-me haha", intent="emergency", confidence=0.8) == "none"
    assert level("my battery is dying", intent="emergency", confidence=0.9) == "none"
    # The same intent on a real message is an emergency.
    assert level("they are coming back", intent="emergency", confidence=0.9) == "emergency"


@pytest.mark.parametrize(
    ("intent", "confidence", "expected"),
    [
        # "ok" backs nothing up and tells of nobody: the model alone only raises it to elevated.
        ("emergency", 0.99, "elevated"),
        ("emergency", 0.6, "elevated"),
        ("emergency", 0.55, "elevated"),
        ("report_exploitation", 0.99, "elevated"),
        ("report_third_party", 0.9, "elevated"),
        ("child_alone", 0.9, "elevated"),
        ("report_exploitation", 0.3, "elevated"),
        ("ask_trafficking_info", 0.9, "elevated"),
        ("ask_job_offer_safety", 0.9, "elevated"),
        ("request_human", 0.99, "none"),
        ("greet", 0.99, "none"),
    ],
)
def test_the_models_intent_alone_is_a_hint(intent: str, confidence: float, expected: str) -> None:
    assert level("ok", intent=intent, confidence=confidence) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my passport expired, can I renew it in South Africa?",
        "o meu passaporte expirou, posso renovar na Africa do Sul?",
        "mon passeport est expiré, comment le renouveler",
        "pasipoti yangu imeisha muda wake, nifanye nini",
        "how do traffickers take passports?",
        "my employer keeps my passport in his safe, can I ask for it back?",
        "i want to know my rights at work",
    ],
)
def test_a_question_misread_as_a_disclosure_is_not_high(text: str) -> None:
    # The model is often sure and wrong; a counsellor is not offered on a question alone.
    assert level(text, intent="report_exploitation", confidence=0.9) in ("none", "elevated")
    assert level(text, intent="report_third_party", confidence=0.99) in ("none", "elevated")
    assert level(text, intent="emergency", confidence=0.99) in ("none", "elevated")


@pytest.mark.parametrize(
    "text",
    [
        "quero voltar para Mocambique mas nao tenho dinheiro",
        "I want to go back home to Inhambane",
        "je suis à Maputo depuis hier",
        "nataka kurudi nyumbani Msumbiji",
    ],
)
def test_a_plain_statement_misread_as_a_disclosure_stays_elevated(text: str) -> None:
    assert level(text, intent="report_exploitation", confidence=0.9) == "elevated"
    assert level(text, intent="emergency", confidence=0.9) == "elevated"


@pytest.mark.parametrize(
    "text",
    [
        "o patrão guardou o meu passaporte",
        "the boss keeps my passport",
        "le patron a pris mon passeport",
        "bosi amechukua pasipoti yangu",
    ],
)
def test_a_disclosure_the_lexicon_backs_up_is_high(text: str) -> None:
    # A passport taken is one indicator (elevated); the model reading a disclosure in the same
    # words makes it high. On a question it would not.
    assert level(text) == "elevated"
    assert level(text, intent="report_exploitation", confidence=0.8) == "high"


@pytest.mark.parametrize(
    "text",
    [
        "estou a ser explorada aqui e sofro muito",
        "I am being exploited and nobody helps me",
        "je suis exploitée par cette famille",
        "wananinyonya hapa kazini",
        "my sister is a victim, they treat her like a slave",
        "they treat me very badly in this house",
        "ils nous traitent très mal",
    ],
)
def test_words_of_harm_said_of_someone_back_up_the_model(text: str) -> None:
    assert level(text) == "elevated"  # never high on their own
    assert level(text, intent="ask_return_process", confidence=0.9) == "elevated"
    assert level(text, intent="report_exploitation", confidence=0.7) == "high"


@pytest.mark.parametrize(
    "text",
    [
        "devemos ao agente a viagem e o patrão não nos deixa ir embora",
        "we owe the agent for the trip and the boss wont let us leave",
    ],
)
def test_a_disclosure_misread_as_a_question_about_jobs_still_counts(text: str) -> None:
    # The model saying "asking" silences the lexicon only on a message that is a question.
    assert level(text, intent="ask_job_offer_safety", confidence=0.95) == "high"
    assert level(text, intent="ask_trafficking_info", confidence=0.9) == "high"


def test_a_negated_word_of_harm_backs_nothing_up() -> None:
    assert level("I am not a victim of anything", intent="report_exploitation", confidence=0.9) == "elevated"
    assert level("não sou vítima de nada", intent="report_exploitation", confidence=0.9) == "elevated"


def test_even_a_certain_model_is_not_enough_on_its_own() -> None:
    # Real misreadings seen at confidence 1.00: an adult's age as a child alone, "I am not in
    # danger" as an emergency, an early finish refused as exploitation.
    assert level("nina miaka 25", intent="child_alone", confidence=1.0) == "elevated"
    assert level("I am not in danger", intent="emergency", confidence=1.0) == "elevated"
    assert level("my boss doesnt let me leave early on fridays", intent="report_exploitation",
                 confidence=1.0) == "elevated"


def test_the_models_hint_adds_up_with_an_indicator_in_another_message() -> None:
    conversation = [
        ("the boss keeps my passport", "ask_documents", 0.6),
        ("i dont know what to do anymore", "report_exploitation", 0.8),
    ]
    assessment = risk.assess(conversation)
    assert assessment.level == "high"
    assert "report_exploitation" in assessment.intents
    # The same hint twice is still one reading of the model, not two pieces of evidence.
    assert risk.assess([
        ("i dont know what to do anymore", "report_exploitation", 0.8),
        ("please tell me", "report_exploitation", 0.8),
    ]).level == "elevated"


@pytest.mark.parametrize(
    ("texts", "intents"),
    [
        (["I work on a farm", "the boss keeps my passport", "he says I owe for the transport"],
         ["out_of_scope", "ask_documents", "ask_return_process"]),
        (["trabalho numa machamba", "o patrão guarda o meu passaporte", "diz que devo o transporte"],
         ["ask_reintegration", "ask_documents", "thanks"]),
    ],
)
def test_indicators_add_up_across_turns_whatever_the_model_says(texts: list[str], intents: list[str]) -> None:
    conversation = [(text, intent, 0.95) for text, intent in zip(texts, intents)]
    assessment = risk.assess(conversation)
    assert assessment.level == "high"
    assert {i.name for i in assessment.indicators} == {"documents_confiscated", "debt_bondage"}
    assert [i.message_index for i in assessment.indicators] == [1, 2]


@pytest.mark.parametrize(
    "text",
    ["socorro estão a bater-me agora", "help they are beating me", "il a un couteau", "wananipiga sasa hivi"],
)
def test_danger_now_in_the_lexicon_is_an_emergency_whatever_the_model_says(text: str) -> None:
    assert level(text) == "emergency"
    assert level(text, intent="greet", confidence=0.99) == "emergency"
    assert level(text, intent="ask_services", confidence=0.9) == "emergency"


def test_the_emergency_intent_needs_backing() -> None:
    # Backed by something grave in the same message: danger now.
    assert level("the madam locks me in the house", intent="emergency", confidence=0.7) == "emergency"
    assert level("tenho medo, estou sozinha com ele", intent="emergency", confidence=0.7) == "emergency"
    # An indicator that is not grave does not make an emergency of it; the model's alarm and
    # the indicator together are still a disclosure.
    assert level("they dont pay me", intent="emergency", confidence=0.9) == "high"
    # Everyday alarm words, jokes and questions are never danger now.
    assert level("my battery is dying", intent="emergency", confidence=0.99) == "none"
    assert level("my phone is nearly dead, text me the number", intent="emergency", confidence=0.99) == "none"
    assert level("what should i do if someone attacks me?", intent="emergency", confidence=0.95) == "elevated"


def test_a_model_that_reads_a_disclosure_in_every_message_keeps_benign_conversations_below_high() -> None:
    """The worst model: every message report_exploitation (or emergency) at 0.95. The lexicon still decides."""
    items = labelled()
    gold = [i["expect"]["risk"] for i in items]
    for intent in ("report_exploitation", "report_third_party", "child_alone", "emergency"):
        predicted = [risk.assess([(text, intent, 0.95) for text in i["messages"]]).level for i in items]
        result = figures(gold, predicted)
        assert result["benign_flagged_high"] <= 0.05, intent
        assert result["high_or_above_recall"] >= 0.90, intent
        assert result["emergency_recall"] >= 0.95, intent


def test_the_counsellor_sees_which_message_and_words_carry_each_indicator() -> None:
    assessment = risk.assess([
        ("Olá", "greet", 0.99),
        ("o patrão guardou o meu passaporte", None, 0.0),
        ("e não deixa sair da fazenda", None, 0.0),
    ])
    assert assessment.level == "high"
    by_name = {i.name: i for i in assessment.indicators}
    assert by_name["documents_confiscated"].message_index == 1
    assert by_name["documents_confiscated"].phrase == "guardou o meu passaporte"
    assert by_name["not_free_to_leave"].message_index == 2
    assert "não deixa sair" in by_name["not_free_to_leave"].phrase
    assert assessment.summary("pt") == "documentos retidos; não pode sair"
    assert assessment.summary("en") == "documents taken; not free to leave"


def test_a_level_from_the_model_alone_still_has_a_summary() -> None:
    assessment = risk.assess([("please come, I am scared", "emergency", 0.98)])
    assert assessment.level == "emergency"
    assert assessment.summary("en") == "danger now"


def test_someone_elses_situation_is_marked_as_about_another_person() -> None:
    other = risk.assess([("a minha irmã está presa numa casa e não deixam ela sair", None, 0.0)])
    assert other.level == "high" and other.about_other
    own = risk.assess([("não me deixam sair da casa", None, 0.0)])
    assert own.level == "high" and not own.about_other
    reported = risk.assess([("ok", "report_third_party", 0.9)])
    assert reported.about_other


@pytest.mark.parametrize(
    ("assessment_level", "offered", "case_open", "expected"),
    [
        ("emergency", False, False, "handoff"),
        ("emergency", True, False, "handoff"),  # a refused offer does not stop an emergency
        ("emergency", True, True, "none"),
        ("high", False, False, "offer"),
        ("high", True, False, "none"),  # offered once; a "no" is respected
        ("high", False, True, "none"),
        ("elevated", False, False, "none"),
        ("none", False, False, "none"),
    ],
)
def test_risk_action(assessment_level: str, offered: bool, case_open: bool, expected: str) -> None:
    assessment = risk.Assessment(assessment_level, (), False)
    assert risk.risk_action(assessment, offered, case_open) == expected


# ---------------------------------------------------------------- the labelled set


def labelled() -> list[dict]:
    items = []
    for path in sorted(EVAL.glob("*.jsonl")):
        items += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items


def test_the_labelled_set_is_big_enough_and_covers_every_language() -> None:
    items = labelled()
    singles = [i for i in items if len(i["messages"]) == 1]
    conversations = [i for i in items if len(i["messages"]) > 1]
    assert len(singles) >= 150 and len(conversations) >= 30
    languages = Counter(i["expect"]["language"] for i in items)
    assert set(languages) == set(risk.LANGUAGES) and min(languages.values()) >= 40
    assert len({i["id"] for i in items}) == len(items)
    assert {i["expect"]["risk"] for i in items} == set(risk.LEVELS)


def figures(gold: list[str], predicted: list[str]) -> dict[str, float]:
    def recall(levels: tuple[str, ...]) -> float:
        relevant = [p for g, p in zip(gold, predicted) if g in levels]
        return sum(p in levels for p in relevant) / len(relevant)

    def precision(levels: tuple[str, ...]) -> float:
        flagged = [g for g, p in zip(gold, predicted) if p in levels]
        return sum(g in levels for g in flagged) / len(flagged) if flagged else 1.0

    benign = [p for g, p in zip(gold, predicted) if g in ("none", "elevated")]
    return {
        "emergency_recall": recall(("emergency",)),
        "emergency_precision": precision(("emergency",)),
        "high_or_above_recall": recall(("high", "emergency")),
        "high_or_above_precision": precision(("high", "emergency")),
        "benign_flagged_high": sum(p in ("high", "emergency") for p in benign) / len(benign),
        "exact_level": sum(g == p for g, p in zip(gold, predicted)) / len(gold),
    }


def test_risk_figures_on_the_labelled_set() -> None:
    """The issue's targets, with the labelled intent of the last message (as the model gives it)."""
    items = labelled()
    gold = [i["expect"]["risk"] for i in items]
    with_intent, lexicon_only = [], []
    for item in items:
        messages = [(text, None, 0.0) for text in item["messages"]]
        lexicon_only.append(risk.assess(messages).level)
        messages[-1] = (item["messages"][-1], item["expect"]["intent"], 1.0)
        with_intent.append(risk.assess(messages).level)
    result = figures(gold, with_intent)
    alone = figures(gold, lexicon_only)
    print(f"\nrisk on tests/eval/ ({len(items)} items)   with intents   lexicon only")
    for name in result:
        print(f"  {name:<26}{result[name]:>10.3f}{alone[name]:>15.3f}")
    assert result["emergency_recall"] >= 0.95
    assert result["high_or_above_recall"] >= 0.90
    assert result["benign_flagged_high"] <= 0.05
    # The lexicon alone must keep catching what builds up over turns, whatever the model says.
    assert alone["emergency_recall"] >= 0.90
    assert alone["high_or_above_recall"] >= 0.85
