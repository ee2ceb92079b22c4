"""Which of the hotline's four languages a text is in, with the conversation's last language as prior.

langdetect alone guesses wildly on the one- to three-word messages people send most
("sim", "ok", "asante sana"), so a lexicon of short, unambiguous words decides those, and
the previous language stands unless the evidence for a switch is clear.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

LANGUAGES: tuple[str, ...] = ("pt", "en", "fr", "sw")

# Words that, written by a migrant in SMS, almost always mean one language. Accent-free and
# lower case. Words shared by two languages ("no", "me", "de", "que", "mais", "na") and
# words everybody uses ("ok", "boss", "hello", "help", "taxi") are left out on purpose.
_LEXICON: dict[str, str] = {}
for _language, _words in {
    "pt": """sim nao obrigado obrigada obg brigado brigada ola oi bom boa dia tarde noite sou estou tou
        voce vc vcs pq porque quero queria preciso ajuda ajudar ajudem casa voltar regressar patrao
        patroa trabalho trabalhar meu minha meus minhas tambem tb muito muita onde como quando tenho
        temos anos sozinho sozinha pessoa falar com pra esta estao isso aqui agora dinheiro passaporte
        documento documentos favor pfv pf socorro tudo bem ainda sair deixa ficou ele eles elas filho
        filha irmao irma menor crianca fronteira escola comida machamba fazenda obra empregada batendo
        bater querem posso pode podem fazer tou ta sei nada fala obrigadu valeu mano mana senhora
        senhor conselheiro apagar parar comecar""",
    "en": """yes yeah yep nope thanks thank you u ur pls please plz want need my i im the and to how what
        where when can cant dont go home work took money good morning evening night alone years old
        talk person back job agent they he she we not have got am are with from sorry bye goodbye
        sure is it this that there here now please someone somebody took keeps lady madam afternoon
        wanna gonna pay paid stuck lost""",
    "fr": """oui merci bonjour bonsoir salut slt bjr stp svp je suis moi mon mes vous tu est cest pas veux
        voudrais besoin aide aidez aider rentrer chez maison travail travaille patron papiers comment
        quoi avec pour dans il elle ils nous enfant seul seule ans parler personne frontiere argent
        passeport au aux du des les une un et bien tres beaucoup bcp daccord frappe frappent secours
        enferme mineur maintenant vite jai ai mais ici aussi rien sais peux faire merci""",
    "sw": """ndiyo ndio hapana asante asanteni habari mambo poa sawa jambo hujambo sijambo shikamoo karibu
        nataka nina niko mimi wewe yeye sisi nyumbani kurudi kazi msaada nisaidie nisaidieni tafadhali
        pesa bosi tajiri wakala pasipoti kitambulisho mtoto miaka peke yangu yako wangu kwa ni sana
        lakini hii huyu sasa hivi kuongea mtu hapa wapi vipi gani nimepata salama afrika kusini
        msumbiji hospitali polisi usiku leo jana kesho ndugu dada kaka baba rafiki samahani kwaheri
        nimechoka nimefungiwa wananipiga nifanye naomba msaidie mkubwa nzuri vizuri""",
}.items():
    for _word in _words.split():
        _LEXICON[_word] = _language

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_PROFILES = Path(__import__("langdetect").__file__).parent / "profiles"


@dataclass(frozen=True)
class Detection:
    language: str | None
    probability: float
    confident: bool


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return [w.replace("'", "") for w in _WORD.findall(_plain(text))]


class _Detector:
    """langdetect limited to our four languages, seeded so a text always gets the same answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._factory = None

    def probabilities(self, text: str) -> dict[str, float]:
        from langdetect.detector_factory import DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        with self._lock:
            if self._factory is None:
                factory = DetectorFactory()
                factory.load_json_profile(
                    [(_PROFILES / lang).read_text(encoding="utf-8") for lang in LANGUAGES]
                )
                factory.set_seed(0)
                self._factory = factory
            detector = self._factory.create()
            detector.append(text)
            try:
                return {p.lang: p.prob for p in detector.get_probabilities()}
            except LangDetectException:
                return {}


_detector = _Detector()


def detect(text: str) -> Detection:
    """The most likely language and whether the evidence is strong enough to switch to it."""
    words = _words(text)
    if not words:
        return Detection(None, 0.0, False)
    votes = Counter(_LEXICON[w] for w in words if w in _LEXICON)
    lexicon_best, lexicon_count = votes.most_common(1)[0] if votes else (None, 0)
    lexicon_share = lexicon_count / sum(votes.values()) if votes else 0.0

    if len(words) <= 3:
        # Too short for character statistics: the lexicon alone decides.
        if lexicon_best and lexicon_share == 1.0:
            return Detection(lexicon_best, 0.9, True)
        return Detection(lexicon_best, 0.5 if lexicon_best else 0.0, False)

    probabilities = _detector.probabilities(text)
    scores = {
        lang: probabilities.get(lang, 0.0) + 0.15 * votes.get(lang, 0) / len(words) * 4
        for lang in LANGUAGES
    }
    best = max(scores, key=scores.get)
    probability = probabilities.get(best, 0.0)
    confident = (probability >= 0.9 and lexicon_best in (None, best)) or (
        lexicon_best == best and lexicon_count >= 2 and lexicon_share >= 0.6
    )
    return Detection(best, probability, confident)


def choose_language(text: str, previous: str | None, explicit: str | None = None) -> str:
    """Explicit choice > confident detection > the conversation's language > best guess > pt."""
    if explicit in LANGUAGES:
        return explicit
    detection = detect(text)
    if detection.confident and detection.language:
        return detection.language
    if previous in LANGUAGES:
        return previous
    return detection.language or "pt"
