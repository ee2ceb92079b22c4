"""No measured message is a near-copy of what the screen learnt from (issue 10's leakage check)."""

from __future__ import annotations

from hotline.settings import PROJECT_ROOT
from protection import leakage


def _shown(source: leakage.Source) -> str:
    return (
        "(blind: text not shown)" if source.where.startswith("tests/blind") else repr(source.text)
    )


def test_no_measured_message_is_within_jaccard_08_of_training_or_the_lexicon() -> None:
    leaks = leakage.find(PROJECT_ROOT)
    # A blind item is named by its id only: whoever rewords a training example to pass this
    # check must not read the blind set through its report.
    report = "\n".join(
        f"{leak.measured.where}: {_shown(leak.measured)} ~ {leak.learned.where}: "
        f"{leak.learned.text!r} ({leak.similarity:.2f})"
        for leak in leaks[:40]
    )
    # A count, not `assert not leaks`: pytest would print the list, blind texts included.
    count = len(leaks)
    assert count == 0, f"{count} measured messages are near-copies of training data:\n{report}"


def test_the_check_finds_a_reworded_copy_and_passes_a_new_sentence() -> None:
    learned = [leakage.Source("train", "o patrao guardou o meu passaporte")]
    copy = leakage.Source("eval", "O patrão guardou o meu passaporte!")
    reordered = leakage.Source("eval", "o meu passaporte o patrao guardou")
    new = leakage.Source("eval", "fiquei sem documentos depois que ele os levou")
    found = leakage.near_duplicates([copy, reordered, new], learned)
    assert {leak.measured.text for leak in found} == {copy.text, reordered.text}


def test_lexicon_phrases_are_compared_by_their_words() -> None:
    phrase = next(leakage.lexicon_entries(PROJECT_ROOT))
    assert not set("*()[]|/") & set(phrase.text)
