"""Text folding shared by every matcher: one definition of "the same word, ignoring accents"."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Case-folded, accents dropped: "Não" -> "nao", "ÊTRE" -> "etre".

    People text with and without accents; every lookup compares folded forms.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_aligned(text: str) -> str:
    """Like `fold`, one output character per input character, punctuation as spaces.

    Keeping the length lets a match found in the folded text be shown exactly where it
    was written (the console highlights evidence in the person's own words).
    """
    out = []
    for char in text:
        plain = fold(char)
        if len(plain) != 1:
            plain = plain[:1] or " "
        out.append(plain if plain.isalnum() else " ")
    return "".join(out)
