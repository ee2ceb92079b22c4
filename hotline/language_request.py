"""A message that does nothing but ask for another language ("can we speak French",
"nataka kuongea Kiswahili"), read from data/keywords.yml's `language_requests`.

One home for the decision, because two places act on it: the channel worker switches the
conversation's language instead of asking the bot, and the risk screen gives such a message
no weight (its "now" and "please" are not a person in danger, and a language asked for must
never open a case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hotline import yamlfiles
from hotline.language import LANGUAGES
from hotline.settings import get_settings
from hotline.text import fold

# A request is short; anything longer is about something else and must reach the bot whole.
MOST_WORDS = 12


@dataclass(frozen=True)
class LanguageRequests:
    names: dict[str, str]  # folded name -> the language it names
    asking: frozenset[str]  # the words a request may hold besides the name

    def asked_for(self, text: str) -> str | None:
        """The language a message asks for in words, or None.

        Only a message that is nothing but the request counts: one language named, every other
        word one of the asking words.
        """
        words = [w for w in re.split(r"[^\w']+|'", fold(text)) if w]
        if not words or len(words) > MOST_WORDS:
            return None
        named = {self.names[w] for w in words if w in self.names}
        if len(named) != 1:
            return None
        if any(w not in self.names and w not in self.asking for w in words):
            return None
        return named.pop()


def parse(data: dict) -> LanguageRequests:
    requests = (data or {}).get("language_requests") or {}
    names = {
        fold(str(name)): language
        for language in LANGUAGES
        for name in (requests.get("names") or {}).get(language) or []
    }
    asking = frozenset(
        fold(str(word))
        for language in LANGUAGES
        for word in (requests.get("asking") or {}).get(language) or []
    )
    return LanguageRequests(names, asking)


def language_requests(path: Path | None = None) -> LanguageRequests:
    """Re-read when an editor changes data/keywords.yml."""
    return yamlfiles.load(path or get_settings().data_dir / "keywords.yml", parse)


def asked_for(text: str) -> str | None:
    return language_requests().asked_for(text)
