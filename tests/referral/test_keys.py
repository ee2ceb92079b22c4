"""The registry of Redis key families is the only place key names are spelled."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from channels import delivery, inbound, twilio_erasure
from hotline import keys
from hotline.keys import Erasure
from referral import queue

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Files whose owners have not moved their key names to hotline.keys yet; their families are
# registered, and each of these lines goes once its owner builds the keys through the registry.
# Tests that set up or inspect a key by its literal name, on purpose: they check what is stored.
NOT_YET_MIGRATED = (
    "tests/console/",
    "tests/ops/",
)
# How erasure can reach a personal family of each scope (referral.privacy implements these).
REACHABLE = {
    "conversation": {Erasure.DELETE, Erasure.GRACE},
    "case": {Erasure.DELETE, Erasure.ANONYMISE},
    "shared": {Erasure.ENTRIES, Erasure.FIELD},
}


def test_every_personal_family_has_a_way_for_erasure_to_reach_it() -> None:
    for family in keys.personal_families():
        assert family.erasure in REACHABLE[family.scope], (
            f"{family.name} carries personal data but erasure cannot reach a {family.scope} key by "
            f"{family.erasure.value}"
        )
    # Erasure builds these keys from the conversation or case id alone.
    for family in keys.FAMILIES.values():
        if family.erasure is not Erasure.NONE and family.scope != "shared":
            assert family.parts == (family.scope,), family.name
        if family.erasure in (Erasure.ENTRIES, Erasure.FIELD):
            assert family.kind == ("stream" if family.erasure is Erasure.ENTRIES else "hash"), (
                family.name
            )


def test_every_family_says_what_it_holds_and_how_long_it_lives() -> None:
    for family in keys.FAMILIES.values():
        assert family.owner and family.holds and family.expiry, family.name
    patterns = [family.pattern for family in keys.FAMILIES.values()]
    assert len(set(patterns)) == len(patterns)


def test_rasa_keys_use_the_prefix_endpoints_yml_gives_rasa() -> None:
    endpoints = YAML(typ="safe").load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["tracker_store"]["key_prefix"] == keys.RASA_PREFIX
    assert endpoints["lock_store"]["key_prefix"] == keys.RASA_PREFIX
    # Rasa 3.6 builds "<prefix>:tracker:<sender>" and "<prefix>:lock:<conversation>".
    assert keys.tracker("c1") == "rasa:tracker:c1" and keys.rasa_lock("c1") == "rasa:lock:c1"


SCRIPTS = {
    "queue._OPEN": queue._OPEN,
    "queue._CLAIM": queue._CLAIM,
    "queue._TRANSFER": queue._TRANSFER,
    "queue._CLOSE": queue._CLOSE,
    "queue._APPEND": queue._APPEND,
    "queue._REPLY": queue._REPLY,
    "queue._NOTE": queue._NOTE,
    "queue._OUTGOING": queue._OUTGOING,
    "inbound._ENQUEUE": inbound._ENQUEUE,
    "inbound._APPEND": inbound._APPEND,
    "delivery._ADVANCE": delivery._ADVANCE,
    "twilio_erasure._RELEASE": twilio_erasure._RELEASE,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_lua_scripts_get_every_key_through_KEYS(name: str) -> None:
    script = SCRIPTS[name]
    # A key name spelled or assembled in Lua would be a quoted string with a colon in it, or a
    # string joined onto a key; the one join allowed builds a case id ('R' .. number).
    assert not re.search(r"'[^']*:[^']*'", script), "a key name spelled inside the script"
    joins = re.findall(r"(\S+)\s*\.\.\s*(\S+)", script)
    assert all(left == "'R'" for left, _ in joins), joins
    for family in keys.FAMILIES.values():
        assert family.prefix not in script


def _string_literals(path: Path):
    for token in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if token.type == tokenize.STRING:
            yield token.start[0], token.string


def _python_files():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        # The registry itself, and this test, which checks the registry against Rasa's names.
        if relative.startswith((".", "var/", "tests/blind/")) or relative in (
            "hotline/keys.py",
            HERE,
        ):
            continue
        yield relative, path


def test_no_key_is_spelled_outside_the_registry() -> None:
    """New code builds keys through hotline.keys, so erasure and retention see every one."""
    spellings = [
        (family.name, re.compile(r"(?<![\w:.-])" + re.escape(family.prefix)))
        for family in keys.FAMILIES.values()
    ]
    found = []
    for relative, path in _python_files():
        if relative.startswith(NOT_YET_MIGRATED):
            continue
        for line, literal in _string_literals(path):
            found += [
                f"{relative}:{line} spells {name}"
                for name, spelled in spellings
                if spelled.search(literal)
            ]
    assert found == []


def test_the_registry_check_finds_a_key_spelled_by_hand(tmp_path: Path) -> None:
    """The check above would catch a hand-written key (it is not vacuous)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        'KEY = f"referral:case:{case_id}"\nOTHER = "a referral: case"\n', encoding="utf-8"
    )
    spelled = re.compile(r"(?<![\w:.-])" + re.escape(keys.CASE.prefix))
    assert [line for line, literal in _string_literals(sample) if spelled.search(literal)] == [1]
