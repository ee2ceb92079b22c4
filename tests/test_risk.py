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
        "documents_confiscated",
        "debt_bondage",
        "wages_withheld",
        "not_free_to_leave",
        "threats_or_violence",
        "deception",
        "sexual_exploitation",
        "isolation",
        "excessive_hours",
        "minor",
        "danger_now",
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
        (
            [
                "trabalho numa machamba em Limpopo",
                "o patrão guarda o meu passaporte",
                "e diz que devo dinheiro do transporte",
            ],
            "high",
        ),
        (
            ["I work on a farm", "the boss keeps my passport", "he says I owe for the transport"],
            "high",
        ),
        (
            [
                "je travaille dans une ferme",
                "le patron garde mon passeport",
                "il dit que je dois rembourser le transport",
            ],
            "high",
        ),
        (
            ["nafanya kazi shambani", "bosi ameshika pasipoti yangu", "anasema nina deni la nauli"],
            "high",
        ),
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


# ---------------------------------------------------------------- the model and the lexicon together


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        # Readings with no indicator phrase behind them: the words are the person's own.
        ("ok pls quick, he found me again", "emergency", "emergency"),
        ("a menina da vizinha nunca sai de casa e nao vai a escola", "report_third_party", "high"),
        ("nimeona kijana mdogo peke yake stendi tangu jana", "child_alone", "high"),
        ("on me fait travailler la nuit pour rembourser le voyage", "report_exploitation", "high"),
    ],
)
def test_a_confident_model_reading_counts_with_no_phrase_behind_it(
    text: str, intent: str, expected: str
) -> None:
    assert level(text) in ("none", "elevated")  # the lexicon alone does not know these words
    assert level(text, intent=intent, confidence=0.95) == expected


def test_a_faint_reading_only_raises_the_level_to_elevated() -> None:
    assert level("ok", intent="emergency", confidence=0.27) == "elevated"
    assert level("ok", intent="report_exploitation", confidence=0.27) == "elevated"
    assert level("ok", intent="greet", confidence=0.99) == "none"


def test_the_model_reading_is_a_distribution_not_only_its_top_intent() -> None:
    # Two disclosure intents that share the probability are one strong disclosure reading.
    turn = risk.Turn(
        "they keep us there",
        {"report_exploitation": 0.45, "report_third_party": 0.45, "greet": 0.1},
    )
    assert risk.assess([turn]).level == "high"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a minha irma tem 19 anos e quer voltar comigo", ("none", "elevated")),
        ("my sister is 19 years old and alone in Musina", ("none", "elevated")),
        ("dada yangu ana miaka 22", ("none", "elevated")),
        ("tenho 15 anos e estou sozinho na fronteira", ("high",)),
        ("j ai 16 ans et je suis seul a la gare", ("high",)),
    ],
)
def test_a_child_is_under_18_whatever_the_model_says(text: str, expected: tuple[str, ...]) -> None:
    assert level(text, intent="child_alone", confidence=0.95) in expected


@pytest.mark.parametrize(
    "text",
    ["my battery is dying, send the number", "esse calor vai me matar kkk", "je meurs de faim lol"],
)
def test_a_figure_of_speech_is_not_danger_now(text: str) -> None:
    assert level(text, intent="emergency", confidence=0.95) != "emergency"


def test_readings_that_are_mild_one_by_one_add_up_over_the_conversation() -> None:
    # Each reading is below any threshold the calibration may choose (0.3 and up); four of them
    # together are a disclosure at any of them (1 - 0.72**4 = 0.73).
    texts = [
        "he changed what we agreed",
        "now the price is double",
        "my friend here too",
        "and we cannot go out to the shop",
    ]
    mild = [(text, "report_exploitation", 0.28) for text in texts]
    assert risk.assess(mild[:1]).level == "elevated"
    assert risk.assess(mild).level in ("high", "emergency")


def test_the_terms_of_a_job_offer_asked_about_are_a_question_not_a_disclosure() -> None:
    # The model reads an offer's terms as a disclosure; the question after them says they are
    # an offer's. Something that happened, said after the question, counts in full.
    limits = risk.Thresholds(emergency=0.5, high=0.5, elevated=0.25, offer_terms=0.25)
    offer = [
        risk.Turn("a man offers me work on a farm in Zambia", {"ask_job_offer_safety": 0.9}),
        risk.Turn("they hold the papers there and we repay the bus", {"report_exploitation": 0.8}),
        risk.Turn("is that safe?", {"ask_job_offer_safety": 0.8}),
    ]
    assert risk.assess(offer, limits=limits).level == "elevated"
    assert risk.assess(offer[1:2], limits=limits).level == "high"  # without the question
    went = [*offer, risk.Turn("I went, now they lock us in", {"report_exploitation": 0.8})]
    assert risk.assess(went, limits=limits).level == "high"
    # Danger now before the question is danger now all the same.
    danger = [risk.Turn("he is beating me", {"emergency": 0.9}), offer[2]]
    assert risk.assess(danger, limits=limits).level == "emergency"


def test_any_later_question_about_an_offer_closes_its_terms() -> None:
    # The question after the terms need not read as ask_job_offer_safety: "is this trafficking?"
    # or "should I go?" asks about the same offer. A question that itself discloses does not.
    limits = risk.Thresholds(emergency=0.5, high=0.5, elevated=0.25, offer_terms=0.25)
    offer = risk.Turn(
        "a man at church recruits for a farm in Zambia", {"ask_job_offer_safety": 0.9}
    )
    terms = risk.Turn("he wants our voter cards before we leave", {"report_exploitation": 0.8})
    for closing in (
        risk.Turn("is this trafficking?", {"ask_trafficking_info": 0.9}),
        risk.Turn("niende ama nisiende?", {"goodbye": 0.6}),
    ):
        assert risk.assess([offer, terms, closing], limits=limits).level == "elevated"
    told = risk.Turn(
        "now he keeps my card and won't give it, what do I do?", {"report_exploitation": 0.9}
    )
    assert risk.assess([offer, terms, told], limits=limits).level == "high"
    # Without an offer asked about first, the same words are a disclosure.
    assert (
        risk.assess(
            [terms, risk.Turn("is this trafficking?", {"ask_trafficking_info": 0.9})], limits=limits
        ).level
        == "high"
    )


@pytest.mark.parametrize(
    "text",
    [
        "now I want to write in English please",
        "nataka kuongea Kiswahili sasa",
        "agora em português",
    ],
)
def test_a_message_that_only_asks_for_a_language_is_no_risk_whatever_the_model_says(
    text: str,
) -> None:
    # The model may hear danger in "now"; a language asked for must never open a case.
    misread = risk.Turn(text, {"emergency": 0.6, "choose_language": 0.4})
    assert risk.assess([misread]).level == "none"
    said_more = risk.Turn(f"{text}, my boss is beating me", {"emergency": 0.6})
    assert risk.assess([said_more]).level == "emergency"


@pytest.mark.parametrize(
    ("texts", "intents"),
    [
        (
            ["I work on a farm", "the boss keeps my passport", "he says I owe for the transport"],
            ["out_of_scope", "ask_documents", "ask_return_process"],
        ),
        (
            [
                "trabalho numa machamba",
                "o patrão guarda o meu passaporte",
                "diz que devo o transporte",
            ],
            ["ask_reintegration", "ask_documents", "thanks"],
        ),
    ],
)
def test_indicators_add_up_across_turns_whatever_the_model_says(
    texts: list[str], intents: list[str]
) -> None:
    conversation = [(text, intent, 0.95) for text, intent in zip(texts, intents, strict=False)]
    assessment = risk.assess(conversation)
    assert assessment.level == "high"
    assert {i.name for i in assessment.indicators} == {"documents_confiscated", "debt_bondage"}
    assert [i.message_index for i in assessment.indicators] == [1, 2]
    assert (
        risk.assess(conversation[:2]).level == "elevated"
    )  # one weight-1 indicator is not yet high


@pytest.mark.parametrize(
    "text",
    [
        "socorro estão a bater-me agora",
        "help they are beating me",
        "il a un couteau",
        "wananipiga sasa hivi",
    ],
)
def test_danger_now_in_the_lexicon_is_an_emergency_whatever_the_model_says(text: str) -> None:
    assert level(text) == "emergency"
    assert level(text, intent="greet", confidence=0.99) == "emergency"
    assert level(text, intent="ask_services", confidence=0.9) == "emergency"


def test_the_ablation_switches_each_kind_of_evidence_off() -> None:
    phrase_only = [("help they are beating me", "greet", 0.99)]
    model_only = [("ok pls quick, he found me again", "emergency", 0.95)]
    assert risk.assess(phrase_only, use_lexicon=False).level == "none"
    assert risk.assess(phrase_only, use_model=False).level == "emergency"
    assert risk.assess(model_only, use_model=False).level == "none"
    assert risk.assess(model_only, use_lexicon=False).level == "emergency"


def test_a_turn_from_rasa_keeps_the_ranking_without_the_fallback() -> None:
    turn = risk.Turn.from_parse(
        "x",
        {
            "intent": {"name": "nlu_fallback", "confidence": 0.4},
            "intent_ranking": [
                {"name": "nlu_fallback", "confidence": 0.4},
                {"name": "emergency", "confidence": 0.35},
                {"name": "greet", "confidence": 0.3},
            ],
        },
    )
    assert turn.intent == "emergency" and turn.intents == {"emergency": 0.35, "greet": 0.3}


def test_the_thresholds_are_read_from_the_file_the_calibration_writes() -> None:
    limits = risk.thresholds()
    assert 0 < limits.emergency <= 1 and 0 < limits.high <= 1
    assert limits.indicator < limits.high  # one weight-1 indicator alone is never high


def test_the_counsellor_sees_which_message_and_words_carry_each_indicator() -> None:
    assessment = risk.assess(
        [
            ("Olá", "greet", 0.99),
            ("o patrão guardou o meu passaporte", None, 0.0),
            ("e não deixa sair da fazenda", None, 0.0),
        ]
    )
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
        items += [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
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
        relevant = [p for g, p in zip(gold, predicted, strict=False) if g in levels]
        return sum(p in levels for p in relevant) / len(relevant)

    def precision(levels: tuple[str, ...]) -> float:
        flagged = [g for g, p in zip(gold, predicted, strict=False) if p in levels]
        return sum(g in levels for g in flagged) / len(flagged) if flagged else 1.0

    benign = [p for g, p in zip(gold, predicted, strict=False) if g in ("none", "elevated")]
    return {
        "emergency_recall": recall(("emergency",)),
        "emergency_precision": precision(("emergency",)),
        "high_or_above_recall": recall(("high", "emergency")),
        "high_or_above_precision": precision(("high", "emergency")),
        "benign_flagged_high": sum(p in ("high", "emergency") for p in benign) / len(benign),
        "exact_level": sum(g == p for g, p in zip(gold, predicted, strict=False)) / len(gold),
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


def test_when_no_thresholds_keep_benign_flags_in_the_margin_the_bound_still_holds() -> None:
    from collections import Counter

    from ops.evaluation import Figures, _cost

    def chosen(benign: float, emergency: float) -> Figures:
        return Figures(100, 10, emergency, 0.98, benign, 0.9, 0.8, {"none": Counter()})

    # Nothing within 3 %: the thresholds within 5 % win over lower ones that miss less.
    assert _cost(chosen(0.05, 0.976)) < _cost(chosen(0.066, 0.982))
    # Within the margin, fewer misses win; past the bound, fewer false alarms.
    assert _cost(chosen(0.02, 0.99)) < _cost(chosen(0.01, 0.95))
    assert _cost(chosen(0.07, 0.90)) < _cost(chosen(0.09, 1.0))
