"""Conversation ids: one number is one conversation on SMS and WhatsApp alike."""

from __future__ import annotations

from hotline.ids import conversation_id, number_of
from tests.conftest import SECRET

NUMBER = "+258841234567"


def test_sms_and_whatsapp_from_one_number_are_one_conversation() -> None:
    sms = conversation_id(NUMBER, SECRET)
    assert conversation_id(f"whatsapp:{NUMBER}", SECRET) == sms
    assert conversation_id(f"  whatsapp:{NUMBER} ", SECRET) == sms


def test_the_id_is_keyed_and_names_no_number() -> None:
    cid = conversation_id(NUMBER, SECRET)
    assert cid.startswith("c") and len(cid) == 32
    assert "841234567" not in cid
    assert conversation_id(NUMBER, "another-secret-0123456789abcdef") != cid
    assert conversation_id("+258827654321", SECRET) != cid


def test_the_number_of_an_address() -> None:
    assert number_of(f"whatsapp:{NUMBER}") == NUMBER
    assert number_of(NUMBER) == NUMBER
