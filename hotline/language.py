"""Which of the four languages a text is in, with the conversation's last language as prior.

Most messages people send are one to three words ("sim", "ok", "asante sana"), where
character statistics guess wildly, so a lexicon of words that belong to one language only
decides those. Longer texts go to langdetect, limited to our four languages and seeded so
the same text always gets the same answer, and the lexicon has to agree before the
answer counts as confident. The previous language stands unless the evidence is clear:
answering a Portuguese speaker in English because they wrote "sorry" is worse than
staying in Portuguese.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from importlib import resources

from langdetect.detector_factory import DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from hotline.text import fold

LANGUAGES: tuple[str, ...] = ("pt", "en", "fr", "sw")
DEFAULT_LANGUAGE = "pt"

# Texts of this many words or fewer are judged by the lexicon: langdetect needs more.
SHORT_TEXT_WORDS = 3
# From this many words on, langdetect counts fully; below, it weighs in proportion.
LONG_TEXT_WORDS = 10
# langdetect's restricted probability needed, with the lexicon agreeing, on a longer text.
CONFIDENT_PROBABILITY = 0.90

# Words that, written in an SMS by someone in or from Mozambique, almost always mean one
# language: greetings, yes and no, thanks, pronouns, function words, SMS spellings and the
# vocabulary of this hotline. Lower case, without accents. A word listed under two
# languages counts for neither.
_WORDS: dict[str, str] = {
    "pt": """
        sim simm nao naum nops obrigado obrigada obg obgd obgdo obrigadao obrigadu brigado brigada
        valeu ola oi bom boa bons boas dia dias tarde tardes noite noites tudo td bem beleza blz
        fixe eu ele ela eles elas voce vc vcs voces meu minha meus minhas seu sua dele dela nosso
        estou tou tas estas esta estao estamos sou somos tenho tens temos quero keru queria
        queremos preciso precisamos posso pode podes podem consigo sei sabe sabes ajuda ajudar
        ajude ajudem ajudar socorro favor pfv pf pff voltar regressar volta casa terra trabalho
        trabalhar trabalhei emprego patrao patroa dinheiro mola salario passaporte documento
        documentos sozinho sozinha crianca criancas filho filha filhos filhas mae pai irmao irma
        irmaos amigo amiga vizinho vizinha anos medo perigo policia fronteira falar fala alguem
        pessoa onde como quando porque quanto quem qual ainda agora aqui hoje ontem amanha
        depois dps agr hj mto muito muita muitos maningue bue tambem tb tbm mas para pra pro com
        sem em do dos das um uma isso isto esse essa aquele nada coisa epa mano mana xau tchau
        adeus ate logo abraco bjs beijos desculpa desculpe licenca senhor senhora machamba
        machimbombo txopela chapa fazenda obra empregada bater batendo bateu trancado trancada
        fechado pagou pagam paga pagar divida fugir sair deixa deixam ficou fiquei cheguei
        chegar vim fui foi levou levaram tiraram tirou ficar estava estive tava tem vai vou
        conselheiro apagar parar comecar entendi percebi
        traficante traficantes trafico raparigas meninas meninos rapazes jovem jovens
        estrangeiro contrato oferta seguro roubaram roubou embaixada deportado preso presa
        cadeia advogado direitos abrigo conselheira dizer disse diz acho ver vi gosto amo fazer
        faz fiz encontrar sinto deixar deixou moro vivo mandar mandou comprar trazer entendo
        esperar espera perguntar tentar
    """,
    "en": """
        yes yeah yep yup nope nah thanks thank thanx thnx thx tnx tanx tnks ty u ur r pls plz
        pliz please hi hey hello helo hallo hw wat wht wen whr gd mrng morning evening afternoon nite night bye
        cya later l8r 2day 2moro tmrw tomorrow today now im i my mine we our us they them he she
        his her it its is are was were am be been have has had do does did dont doesnt didnt
        cant wont not the and or but for of in at with from about this that these there here
        what where when why who how which can could would should will want wanna gonna need go
        going come get got give take took keep keeps kept work working job money pay paid salary
        home house back family children child kids wife husband brother sister friend alone
        years old scared afraid sorry good fine well sure agree much many lot so very too also
        still just only someone somebody anyone anybody person people talk speak call phone
        number office stuck lost stolen papers border lady madam sir mam employer agree you your
        yours owe locked hurt beat beating please
        passport trafficking traffickers trafficked smuggler girls boys women men young abroad
        contract offer safe unsafe stole embassy deported detained arrested jail lawyer rights
        wages unpaid shelter counsellor counselor tell say said told know think see look like
        love make find feel leave left live stay send sent buy bring understand mean wait ask
        try let put run
    """,
    "fr": """
        oui ouais ouai non merci mrc mci bcp bjr bsr slt stp svp bonjour bonsoir salut coucou
        revoir bientot bonne bon nuit jour soir matin je jsuis jsui chui chuis jsp jveux jpeux
        moi toi vous nous il elle ils elles mon mes ton tes votre vos notre nos leur est cest
        sont suis sommes etes avez avons ont jai avoir etre fait faire dit veux veut voudrais
        peux peut dois doit faut besoin aide aidez aider rentrer retourner chez maison pays
        travail boulot taf patron papiers passeport argent seul seule enfant enfants famille
        frere soeur mere pere mari femme ami amie voisin peur frappe frappent frapper enferme
        enfermee paye payer dette sortir quoi koi qui ki quand comment cmt pourquoi pkoi
        combien ou ici aussi encore rien jamais toujours tjrs trop bien beaucoup maintenant mtn
        vite demain hier aujourdhui le les un une des du au aux et pas dans pour avec sans sur
        chaque quelquun qqn quelque chose personne parler appeler mineur secours daccord dacc
        dac frontiere probleme desole excusez
        trafic trafiquant trafiquants filles garcons jeunes etranger contrat offre vole
        ambassade expulse arrete avocat droits salaire conseiller conseillere dire sais pense
        voir vu aime trouver laisser habite rester envoyer acheter apporter comprends attendre
        attends demander essayer
    """,
    "sw": """
        ndiyo ndio hapana hapna asante asanteni ahsante asnte shukrani habari mambo vipi poa
        safi freshi shwari salama nzuri njema sawa sawasawa haya jambo hujambo sijambo shikamoo
        marahaba niaje karibu kwaheri tutaonana usiku mwema asubuhi mchana jioni leo kesho jana sasa
        sasahivi bado tena pia sana kidogo nataka sitaki ninataka naomba nahitaji nisaidie
        nisaidieni tusaidie msaada saidia tafadhali tafadhari samahani pole nina sina niko nipo
        uko upo yuko tuko mimi mie wewe yeye ninyi wao yangu yako yake yetu wangu wako wake
        changu chako langu lako kwangu kwetu kwa ni wa za cha katika kwenye hii hiyo huyu huyo
        hapa pale huko kule wapi lini nini nani gani ngapi kwanini kama lakini kwamba kuna
        hakuna kazi kufanya nyumbani nyumba kurudi nirudi rudi pesa hela mshahara bosi tajiri
        mwajiri wakala pasipoti kitambulisho cheti mtoto watoto mwanangu ndugu dada kaka rafiki
        jirani peke miaka polisi hospitali hatari haraka sijui najua sielewi naelewa ongea
        kuongea kuzungumza mtu watu mpaka gari lori njaa chakula maji nimechoka naogopa
        ninaogopa nimefungiwa wamechukua amechukua ameniibia nimepigwa wananipiga ananipiga
        sijalipwa hawanilipi nimepotea mgonjwa naumwa nimepata msumbiji afrika kusini
        usafirishaji wasichana wavulana vijana nje mkataba ubalozi kufukuzwa kukamatwa gerezani
        jela mwanasheria wakili haki mshauri ameiba wameiba imeibiwa sema alisema fikiri ona
        napenda tafuta kaa naishi tuma nunua leta elewa subiri ngoja uliza jaribu
    """,
}


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words people use whatever language they write in, or that two of our languages share;
# they count for nothing even if someone later adds them to a list above.
AMBIGUOUS = _word_set(
    """
    ok okay okey oki k kk boss allo alo help taxi sms whatsapp mama papa baba
    sisi bro baby police urgent stop start info no me de da la na ya yah ja si se a e o y tu nos
    ou pq pk q qd c n g ta as ai on son so mes pays mal tres partir que mais bebe comment age
    place document documents bus transport id
    """
)

# Half a vote, too weak to switch language alone: loanwords heard in every language around
# here, and short Swahili words that Changana, Shona or Zulu share ("ni", "wangu", "kwa").
# "Hello" is one of them: Mozambicans write "hello mana" in Portuguese, so it never moves a
# conversation, but a first "Hello" alone is more likely English than Portuguese, and the
# English greeting says how to switch.
_WEAK = _word_set(
    """
    hi hey hello helo hallo bye sorry please pls plz pliz
    ni wa za cha kwa wangu wako wake yangu yako yake kwangu
    """
)


def _squeeze(word: str) -> str:
    """'siiim', 'asanteee' and 'merciii' are how people stress a word, not new words."""
    return re.sub(r"(.)\1+", r"\1", word)


def _build_lexicon() -> tuple[dict[str, str], dict[str, str]]:
    """Word -> language, and the same keyed by squeezed spelling, without any shared word."""
    owners: dict[str, set[str]] = {}
    for language, words in _WORDS.items():
        for word in words.split():
            owners.setdefault(word, set()).add(language)
    exact = {
        word: langs.pop()
        for word, langs in owners.items()
        if len(langs) == 1 and word not in AMBIGUOUS
    }
    squeezed_owners: dict[str, set[str]] = {}
    for word, language in exact.items():
        squeezed_owners.setdefault(_squeeze(word), set()).add(language)
    squeezed = {
        key: langs.pop()
        for key, langs in squeezed_owners.items()
        if len(langs) == 1 and key not in AMBIGUOUS
    }
    return exact, squeezed


_LEXICON, _SQUEEZED_LEXICON = _build_lexicon()
_WEAK_SQUEEZED = frozenset(_squeeze(word) for word in _WEAK)

_TOKEN = re.compile(r"[a-z0-9]+")
_APOSTROPHES = re.compile(r"['’`´]")


@dataclass(frozen=True)
class Detection:
    """The most likely language (None when nothing points to any), the share of the evidence
    for it (0 to 1), and whether that evidence is clear enough to switch a conversation to it."""

    language: str | None
    probability: float
    confident: bool


def _tokens(text: str) -> list[str]:
    """Lower case, accents and apostrophes removed ("c'est" -> "cest"), punctuation dropped."""
    return _TOKEN.findall(_APOSTROPHES.sub("", fold(text)))


def _lexicon_entry(word: str) -> tuple[str, bool] | None:
    """The word's language and whether it is only half a vote, or None when it is no sign."""
    if word in AMBIGUOUS:
        return None
    if word in _LEXICON:
        return _LEXICON[word], word in _WEAK
    key = _squeeze(word)
    if key in _SQUEEZED_LEXICON:
        return _SQUEEZED_LEXICON[key], key in _WEAK_SQUEEZED
    return None


def _lexicon_votes(words: list[str]) -> tuple[dict[str, float], Counter[str]]:
    """Votes per language (a weak word is half a vote), and how many of them are whole votes."""
    votes: dict[str, float] = {}
    strong: Counter[str] = Counter()
    for word in words:
        entry = _lexicon_entry(word)
        if entry is None:
            continue
        language, weak = entry
        votes[language] = votes.get(language, 0.0) + (0.5 if weak else 1.0)
        if not weak:
            strong[language] += 1
    return votes, strong


_factory: DetectorFactory | None = None
_factory_lock = threading.Lock()


def _restricted_factory() -> DetectorFactory:
    """A langdetect factory that knows only our four languages, built once on first use."""
    global _factory
    if _factory is None:
        with _factory_lock:
            if _factory is None:
                profiles = resources.files("langdetect") / "profiles"
                factory = DetectorFactory()
                factory.load_json_profile(
                    [(profiles / language).read_text(encoding="utf-8") for language in LANGUAGES]
                )
                factory.set_seed(0)
                _factory = factory
    return _factory


def _langdetect_probabilities(text: str) -> dict[str, float]:
    """langdetect's probability per language; empty when the text has nothing to go on."""
    # Each detector has its own seeded random generator, so no lock is needed here.
    detector = _restricted_factory().create()
    # The profiles come from mostly lower-case prose; SMS in capitals would look foreign.
    detector.append(text.lower())
    try:
        return {p.lang: p.prob for p in detector.get_probabilities()}
    except LangDetectException:
        return {}


def _best(scores: dict[str, float], among: list[str] | None = None) -> str:
    candidates = among or list(LANGUAGES)
    # Ties go to the language listed first, so the answer never depends on dict order.
    return max(candidates, key=lambda lang: (scores.get(lang, 0.0), -LANGUAGES.index(lang)))


def detect(text: str) -> Detection:
    """The most likely of the four languages and whether the evidence is clear enough to switch."""
    # Numbers, emoji and words everybody uses carry no sign of a language.
    words = [token for token in _tokens(text) if not token.isdigit() and token not in AMBIGUOUS]
    if not words:
        return Detection(None, 0.0, False)
    if len(words) <= SHORT_TEXT_WORDS:
        return _detect_short(text, words)
    return _detect_long(text, words)


def _detect_short(text: str, words: list[str]) -> Detection:
    """One to three words: too few for character statistics, so the lexicon decides."""
    votes, strong = _lexicon_votes(words)
    if not votes:
        # Unknown words only: langdetect's guess is better than nothing, never confident.
        guess = _langdetect_probabilities(" ".join(words))
        if not guess:
            return Detection(None, 0.0, False)
        language = _best(guess)
        return Detection(language, round(guess[language], 3), False)
    top = max(votes.values())
    leaders = [language for language, count in votes.items() if count == top]
    language = leaders[0] if len(leaders) == 1 else _best(_langdetect_probabilities(text), leaders)
    share = votes.get(language, 0.0) / sum(votes.values())
    # More than a loanword ("hi", "sorry") to go on, and no whole word of another language: a
    # loanword is too weak to switch a conversation alone, and too weak to stop a switch
    # ("hello mana bom dia" is Portuguese).
    confident = (
        strong[language] >= 1
        and sum(strong.values()) == strong[language]
        and all(count < votes[language] for lang, count in votes.items() if lang != language)
    )
    return Detection(language, round(share, 3), confident)


def _detect_long(text: str, words: list[str]) -> Detection:
    """Four words or more: langdetect and the lexicon together."""
    votes, strong = _lexicon_votes(words)
    detected = _langdetect_probabilities(text)
    # Character statistics grow reliable with length, and the lexicon weighs as much as the
    # share of words it knows: a long text with one known word is langdetect's call, five
    # words of which three are known are mostly the lexicon's.
    statistics_weight = min(1.0, len(words) / LONG_TEXT_WORDS)
    coverage = sum(votes.values()) / len(words)
    scores = {
        language: (
            statistics_weight * detected.get(language, 0.0) + votes.get(language, 0.0) / len(words)
        )
        / (statistics_weight + coverage)
        for language in LANGUAGES
    }
    language = _best(scores)
    if scores[language] == 0.0:
        return Detection(None, 0.0, False)
    share = votes.get(language, 0.0) / sum(votes.values()) if votes else 0.0
    known = strong[language] / len(words)
    # langdetect limited to four languages is sure of itself even on Changana or Shona, so a
    # high probability counts only when a fair part of the words are known in that language.
    statistics_agree = (
        detected.get(language, 0.0) >= CONFIDENT_PROBABILITY and share >= 0.5 and known >= 0.2
    )
    lexicon_clear = strong[language] >= 3 and share >= 0.8 and known >= 0.4
    return Detection(language, round(scores[language], 3), statistics_agree or lexicon_clear)


def choose_language(text: str, previous: str | None, explicit: str | None = None) -> str:
    """Explicit choice > confident detection > the conversation's language > best guess > pt."""
    if explicit and explicit.lower() in LANGUAGES:
        return explicit.lower()
    detection = detect(text)
    if detection.confident and detection.language:
        return detection.language
    if previous in LANGUAGES:
        return previous
    return detection.language or DEFAULT_LANGUAGE
