"""Language detection: short and long texts, the previous language as prior, explicit choice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from langdetect import DetectorFactory
from langdetect import detect as langdetect_detect
from langdetect.lang_detect_exception import LangDetectException

from hotline.language import LANGUAGES, Detection, choose_language, detect

# One to three words, as people text a hotline: no accents, abbreviations, stretched letters.
SHORT: dict[str, list[str]] = {
    "pt": [
        "sim",
        "nao",
        "não obrigado",
        "obg",
        "obrigada mana",
        "bom dia",
        "bom dia mano",
        "boa tarde",
        "boa noite",
        "olá",
        "oi tudo bem",
        "sim quero",
        "quero voltar",
        "preciso de ajuda",
        "estou sozinho",
        "tou sozinha",
        "onde fica?",
        "não sei",
        "pfv",
        "ajudem-me",
        "socorro!!",
        "meu passaporte",
        "muito obrigado",
        "tá bem",
        "até amanhã",
        "epa maningue obg",
        "simmm",
    ],
    "en": [
        "yes",
        "yes pls",
        "thanks",
        "thank u",
        "thx",
        "good morning",
        "gd evening",
        "hi there",
        "i need help",
        "im alone",
        "where r u",
        "no thanks",
        "my passport",
        "call me",
        "yeah sure",
        "ok thanks",
        "what now?",
        "i'm stuck",
        "they took it",
        "how much",
        "not now",
        "good night",
        "thank you",
        "yes i agree",
        "YES PLEASE",
    ],
    "fr": [
        "oui",
        "non",
        "merci",
        "merci bcp",
        "bonjour",
        "bjr",
        "slt",
        "bonsoir",
        "oui svp",
        "non merci",
        "je suis seul",
        "aidez-moi",
        "je veux rentrer",
        "c'est où ?",
        "d'accord",
        "j'ai peur",
        "mon passeport",
        "au secours",
        "très bien",
        "pas d'argent",
        "à demain",
        "je sais pas",
        "merci beaucoup",
        "ouiii",
        "bonne nuit",
    ],
    "sw": [
        "ndiyo",
        "ndio",
        "hapana",
        "asante",
        "asante sana",
        "habari",
        "habari yako",
        "mambo",
        "poa",
        "sawa",
        "nisaidie",
        "nataka kurudi",
        "niko peke yangu",
        "tafadhali",
        "karibu",
        "sina pesa",
        "shikamoo",
        "nimechoka",
        "kwaheri",
        "hapana asante",
        "ndiyo tafadhali",
        "nataka msaada",
        "jambo",
        "sijui",
        "naogopa sana",
        "asanteee",
    ],
}

LONG: dict[str, list[str]] = {
    "pt": [
        "Bom dia, estou em Joanesburgo sem dinheiro e quero voltar para Moçambique com os filhos",
        "o patrao ficou com o meu passaporte e nao me paga ha 3 meses",
        "a minha irma foi para africa do sul trabalhar e agora nao atende o telefone",
        "PRECISO DE AJUDA ESTOU TRANCADA NA CASA DO PATRAO",
    ],
    "en": [
        "My employer in Durban took my ID and says I must work to pay for the transport",
        "hi i got a job offer in dubai and the agent wants money first is it safe",
        "thank you so much for your help",
        "we are stuck at the border and the police took our papers",
    ],
    "fr": [
        "Je suis arrivé à Maputo il y a deux semaines et je ne sais pas où dormir ce soir",
        "mon patron garde mon passeport et il ne me paye pas depuis deux mois",
        "merci beaucoup pour votre aide",
        "je veux rentrer chez moi au congo mais je n'ai pas d'argent",
    ],
    "sw": [
        "Nimepata kazi Afrika Kusini lakini wakala anataka nilipe pesa kwanza. Ni salama?",
        "bosi amechukua pasipoti yangu na hanilipi mshahara",
        "nataka kurudi nyumbani lakini sina pesa ya usafiri",
        "habari, naomba msaada tafadhali, niko peke yangu hapa Maputo",
    ],
}

# Words that everyone uses, numbers and emoji: no sign of any language.
NO_SIGN = [
    "ok",
    "OK!!",
    "Ok boss",
    "👍",
    "🙏🙏",
    "123",
    "boss",
    "taxi",
    "help",
    "",
    "   ",
    "?",
]

# Other languages people around Mozambique write: langdetect limited to our four would be
# sure of one of them, but there is no clear evidence to switch on.
FOREIGN = [
    "Ndzi lava ku tlhelela ekaya hi kumbe",  # Changana
    "Ngiyabonga kakhulu ngosizo lwakho mngane wami",  # Zulu
    "Ndinoda kudzokera kumusha kwangu nhasi",  # Shona
    "Quiero volver a mi casa con mis hijos",  # Spanish
]


def rows(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(language, text) for language, texts in table.items() for text in texts]


def plain_langdetect(text: str) -> str | None:
    """The baseline: langdetect as it ships, all 55 languages, seeded."""
    DetectorFactory.seed = 0
    try:
        return langdetect_detect(text)
    except LangDetectException:  # no letters to go on
        return None


def test_the_short_table_has_at_least_twenty_texts_of_one_to_three_words_per_language() -> None:
    for language in LANGUAGES:
        assert len(SHORT[language]) >= 20
        assert all(1 <= len(text.split()) <= 3 for text in SHORT[language])


@pytest.mark.parametrize("language,text", rows(SHORT))
def test_a_short_message_with_no_history_gets_its_language(language: str, text: str) -> None:
    assert choose_language(text, previous=None) == language


@pytest.mark.parametrize("language,text", rows(LONG))
def test_a_long_message_is_detected_confidently(language: str, text: str) -> None:
    detection = detect(text)
    assert detection.language == language
    assert detection.confident
    assert detection.probability >= 0.9


@pytest.mark.parametrize("language,text", rows(LONG))
@pytest.mark.parametrize("previous", LANGUAGES)
def test_a_long_message_switches_from_any_previous_language(
    language: str, text: str, previous: str
) -> None:
    assert choose_language(text, previous) == language


@pytest.mark.parametrize("text", NO_SIGN)
def test_words_everybody_uses_numbers_and_emoji_point_nowhere(text: str) -> None:
    assert detect(text) == Detection(None, 0.0, False)


@pytest.mark.parametrize("previous", LANGUAGES)
@pytest.mark.parametrize("text", NO_SIGN)
def test_a_message_with_no_sign_keeps_the_conversations_language(text: str, previous: str) -> None:
    assert choose_language(text, previous) == previous


@pytest.mark.parametrize("text", NO_SIGN)
def test_a_first_message_with_no_sign_is_answered_in_portuguese(text: str) -> None:
    assert choose_language(text, previous=None) == "pt"


# A greeting alone is most people's first message; answered in Portuguese, "Hello" told an
# English speaker nothing (issue 11). The greeting each language gets says how to switch.
GREETINGS: dict[str, list[str]] = {
    "pt": ["Ola", "Olá!", "Oi", "Bom dia", "Boa tarde", "Boa noite", "hello mana bom dia"],
    "en": ["Hello", "HELLO!", "Hi", "Hey", "Good morning", "Good evening", "hello mama"],
    "fr": ["Bonjour", "Salut", "Bonsoir", "Coucou", "bjr", "hello bjr"],
    "sw": ["Habari", "Jambo", "Mambo", "Mambo vipi", "Hujambo", "Niaje", "hello habari"],
}


@pytest.mark.parametrize("language,text", rows(GREETINGS))
def test_a_greeting_alone_as_a_first_message_gets_its_language(language: str, text: str) -> None:
    assert choose_language(text, previous=None) == language


# Loanwords heard in every language: they start a conversation in English, never move one.
LOANWORD_GREETINGS = {"Hello", "HELLO!", "Hi", "Hey", "hello mama"}


@pytest.mark.parametrize(
    "language,text", [(lang, t) for lang, t in rows(GREETINGS) if t not in LOANWORD_GREETINGS]
)
@pytest.mark.parametrize("previous", LANGUAGES)
def test_a_greeting_in_a_language_of_its_own_switches_to_it(
    language: str, text: str, previous: str
) -> None:
    assert choose_language(text, previous) == language


@pytest.mark.parametrize(
    "text", sorted(LOANWORD_GREETINGS | {"sorry", "please", "bye", "hi sorry"})
)
@pytest.mark.parametrize("previous", ["pt", "fr", "sw"])
def test_a_loanword_alone_does_not_switch_language(text: str, previous: str) -> None:
    assert choose_language(text, previous) == previous


@pytest.mark.parametrize(
    "text,previous", [("obrigado thanks", "sw"), ("merci asante", "pt"), ("sim yes", "fr")]
)
def test_a_short_mix_of_two_languages_keeps_the_conversations_language(
    text: str, previous: str
) -> None:
    assert not detect(text).confident
    assert choose_language(text, previous) == previous


@pytest.mark.parametrize("text", FOREIGN)
@pytest.mark.parametrize("previous", LANGUAGES)
def test_a_language_we_do_not_serve_keeps_the_conversations_language(
    text: str, previous: str
) -> None:
    assert not detect(text).confident
    assert choose_language(text, previous) == previous


def test_clear_evidence_switches_language() -> None:
    assert choose_language("thank you so much for your help", "pt") == "en"
    assert choose_language("merci beaucoup pour votre aide", "sw") == "fr"
    assert choose_language("asante sana", "en") == "sw"
    assert choose_language("obrigado", "fr") == "pt"


def test_ok_keeps_the_previous_language() -> None:
    assert choose_language("ok", "sw") == "sw"
    assert choose_language("ok", "en") == "en"


def test_an_explicit_choice_wins_over_everything() -> None:
    assert choose_language("obrigado pela ajuda", "pt", explicit="sw") == "sw"
    assert choose_language("thank you so much for your help", None, explicit="FR") == "fr"


def test_an_explicit_choice_of_a_language_we_do_not_serve_is_ignored() -> None:
    assert choose_language("obrigado pela ajuda", None, explicit="de") == "pt"
    assert choose_language("ok", "sw", explicit="") == "sw"


def test_an_unknown_previous_language_is_ignored() -> None:
    assert choose_language("ok", "de") == "pt"
    assert choose_language("asante sana", "de") == "sw"


@pytest.mark.parametrize("text", ["SIM", "Sim.", "sim!!!", "siiiim", "NÃO", "nao", "não"])
def test_case_accents_punctuation_and_stretched_letters_do_not_matter(text: str) -> None:
    detection = detect(text)
    assert detection.language == "pt" and detection.confident


def test_the_same_text_always_gets_the_same_answer_even_from_many_threads() -> None:
    texts = [text for _, text in rows(SHORT) + rows(LONG)] + FOREIGN
    expected = [detect(text) for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(detect, texts)) == expected


def test_short_message_accuracy_beats_plain_langdetect_by_a_wide_margin() -> None:
    table = rows(SHORT)
    ours = {lang: [choose_language(t, None) == lang for t in SHORT[lang]] for lang in LANGUAGES}
    plain = {lang: [plain_langdetect(t) == lang for t in SHORT[lang]] for lang in LANGUAGES}
    ours_total = sum(sum(hits) for hits in ours.values()) / len(table)
    plain_total = sum(sum(hits) for hits in plain.values()) / len(table)
    print(f"\nshort messages (n={len(table)}): ours {ours_total:.2f}, plain {plain_total:.2f}")
    for lang in LANGUAGES:
        print(
            f"  {lang} (n={len(SHORT[lang])}): ours {sum(ours[lang]) / len(ours[lang]):.2f}, "
            f"plain {sum(plain[lang]) / len(plain[lang]):.2f}"
        )
    assert ours_total >= 0.9
    assert ours_total - plain_total >= 0.25


def test_short_held_out_nlu_examples_written_by_others() -> None:
    """An honest figure: 1–3 word examples in tests/nlu/, which others wrote for intents."""
    from ops.evaluation import held_out

    table = [
        (lang, text)
        for lang in LANGUAGES
        for text, _ in held_out(lang)
        if 1 <= len(text.split()) <= 3
    ]
    if len(table) < 20:
        pytest.fail("tests/nlu/ has fewer than 20 short examples to measure on")
    ours = sum(choose_language(t, None) == lang for lang, t in table) / len(table)
    plain = sum(plain_langdetect(t) == lang for lang, t in table) / len(table)
    print(f"\nheld-out short NLU examples (n={len(table)}): ours {ours:.2f}, plain {plain:.2f}")
    assert ours - plain >= 0.15
