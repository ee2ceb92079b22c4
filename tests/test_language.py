"""Language detection: short SMS texts, long texts, and the previous language as prior."""

from __future__ import annotations

import pytest
from langdetect import DetectorFactory, detect_langs

from hotline.language import choose_language, detect

# One to three words, as people really text; the kind of message plain langdetect gets wrong.
SHORT = {
    "pt": ["sim", "nao", "obrigado", "obg", "bom dia", "boa tarde mano", "ola", "quero voltar",
           "preciso de ajuda", "tou sozinho", "sim obrigada", "muito obrigado", "onde fica",
           "nao sei", "pfv ajuda", "estou em joni", "boa noite", "tudo bem", "falar com pessoa",
           "socorro", "meu passaporte", "vc pode"],
    "en": ["yes", "yes pls", "thanks", "thank you", "good morning", "i need help", "im alone",
           "where is it", "please", "no thanks", "my passport", "i want to go home", "can u help",
           "talk to someone", "good evening", "yes please", "im stuck", "they took it", "ok thanks",
           "how much", "wat now", "sorry"],
    "fr": ["oui", "merci", "merci bcp", "bonjour", "bjr", "slt", "non merci", "je suis seul",
           "aidez moi", "svp", "je veux rentrer", "bonsoir", "c'est ou", "d'accord merci",
           "j'ai peur", "mon passeport", "parler a quelqu'un", "oui svp", "je sais pas", "au secours",
           "tres bien", "pas d'argent"],
    "sw": ["ndiyo", "hapana", "asante", "asante sana", "habari", "habari yako", "mambo", "poa",
           "sawa", "nisaidie", "nataka kurudi", "niko peke yangu", "tafadhali", "karibu",
           "sina pesa", "shikamoo", "nimechoka", "kwaheri", "hapana asante", "ndiyo tafadhali",
           "nataka msaada", "jambo"],
}

LONG = {
    "pt": "Bom dia, estou em Joanesburgo sem dinheiro e quero voltar para Moçambique com os meus filhos",
    "en": "My employer in Durban took my ID and says I must work to pay for the transport",
    "fr": "Je suis arrivé à Maputo il y a deux semaines et je ne sais pas où dormir ce soir",
    "sw": "Nimepata kazi Afrika Kusini lakini wakala anataka nilipe pesa kwanza. Ni salama?",
}


def plain_langdetect(text: str) -> str | None:
    """The baseline: langdetect as it ships, all 55 languages, seeded."""
    DetectorFactory.seed = 0
    try:
        return detect_langs(text)[0].lang
    except Exception:  # noqa: BLE001 - langdetect raises on texts with no letters
        return None


@pytest.mark.parametrize("language,text", [(lang, t) for lang, texts in SHORT.items() for t in texts])
def test_short_messages_with_no_history(language: str, text: str) -> None:
    assert choose_language(text, previous=None) == language


@pytest.mark.parametrize("language,text", LONG.items())
def test_long_messages_are_detected_confidently(language: str, text: str) -> None:
    detection = detect(text)
    assert detection.language == language and detection.confident


@pytest.mark.parametrize("previous", ["pt", "en", "fr", "sw"])
@pytest.mark.parametrize("text", ["ok", "OK!!", "👍", "123", "boss", "taxi", "hello", ""])
def test_ambiguous_messages_keep_the_conversations_language(previous: str, text: str) -> None:
    assert choose_language(text, previous) == previous


def test_clear_evidence_switches_language() -> None:
    assert choose_language("thank you so much for your help", "pt") == "en"
    assert choose_language("merci beaucoup pour votre aide", "sw") == "fr"


def test_an_explicit_choice_wins_over_everything() -> None:
    assert choose_language("obrigado pela ajuda", "pt", explicit="sw") == "sw"


def test_unknown_explicit_choice_is_ignored() -> None:
    assert choose_language("obrigado pela ajuda", None, explicit="de") == "pt"


def test_short_message_accuracy_beats_plain_langdetect_by_a_wide_margin() -> None:
    rows = [(lang, t) for lang, texts in SHORT.items() for t in texts]
    ours = sum(choose_language(t, None) == lang for lang, t in rows) / len(rows)
    baseline = sum(plain_langdetect(t) == lang for lang, t in rows) / len(rows)
    per_language = {
        lang: (sum(choose_language(t, None) == lang for t in texts) / len(texts),
               sum(plain_langdetect(t) == lang for t in texts) / len(texts))
        for lang, texts in SHORT.items()
    }
    print(f"\nshort messages (n={len(rows)}): ours {ours:.2f}, plain langdetect {baseline:.2f}")
    for lang, (a, b) in per_language.items():
        print(f"  {lang}: ours {a:.2f}, plain {b:.2f}")
    assert ours >= 0.9
    assert ours - baseline >= 0.25


def test_short_held_out_nlu_examples_written_by_others() -> None:
    """An honest figure: 1–3 word examples from tests/nlu/, which the lexicon was not tuned on."""
    from hotline.evaluation import held_out

    rows = [(lang, text) for lang in ("pt", "en", "fr", "sw") for text, _ in held_out(lang)
            if 1 <= len(text.split()) <= 3]
    if len(rows) < 20:
        pytest.fail("tests/nlu/ has too few short examples to measure on")
    ours = sum(choose_language(t, None) == lang for lang, t in rows) / len(rows)
    baseline = sum(plain_langdetect(t) == lang for lang, t in rows) / len(rows)
    print(f"\nheld-out short NLU examples (n={len(rows)}): ours {ours:.2f}, plain langdetect {baseline:.2f}")
    assert ours >= 0.8
    assert ours - baseline >= 0.25
