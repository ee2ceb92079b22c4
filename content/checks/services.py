"""The service directory: every service complete, numbers a phone can dial, texts in every
language, and a source for every number."""

from __future__ import annotations

import re
from typing import Any

from content import LANGUAGE_NAMES, LANGUAGES
from content.model import SERVICES, Content, line_of

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
SHORT_CODE = re.compile(r"^\d{3,6}$")
SERVICE_REQUIRED = ("id", "type", "province", "name")


def _service_label(service: Any, index: int) -> str:
    if isinstance(service, dict) and service.get("id"):
        return f"service {service['id']}"
    return f"service #{index + 1}"


def check(content: Content) -> None:
    seen: dict[str, int] = {}
    for index, (service, line) in enumerate(content.services):
        label = _service_label(service, index)
        if not isinstance(service, dict):
            content.error(
                SERVICES,
                line,
                f"{label} must be a set of fields (id, type, province, "
                "name, phone or short_code, …)",
            )
            continue
        for key in SERVICE_REQUIRED:
            if service.get(key) in (None, ""):
                content.error(SERVICES, line, f"{label} has no {key}; add `{key}: ...`")
        if service.get("id"):
            sid = str(service["id"])
            if sid in seen:
                content.error(
                    SERVICES,
                    line,
                    f"service id {sid} is already used at line "
                    f"{seen[sid]}; give each service its own id",
                )
            seen[sid] = line
        name = service.get("name")
        if isinstance(name, dict):
            _check_service_texts(content, service, "name", label)
        elif name:
            content.error(
                SERVICES,
                line_of(service, "name"),
                f"{label}: the name must be given "
                "per language, e.g. name: {pt: ..., en: ..., fr: ..., sw: ...}",
            )
        if isinstance(service.get("hours"), dict):
            _check_service_texts(content, service, "hours", label)
        _check_service_phone(content, service, label, line)
        verified = service.get("verified")
        if verified is not True:
            content.warn(
                SERVICES,
                line_of(service, "verified") if "verified" in service else line,
                f"{label} is not verified; before launch call it, confirm the hours, "
                "then set `verified: true` and write who checked it and when in `source:`",
            )
        elif not service.get("source"):
            content.warn(
                SERVICES,
                line,
                f"{label} is verified but has no source; add "
                '`source: "called by NAME on YYYY-MM-DD"`',
            )


def _check_service_texts(content: Content, service: dict[Any, Any], key: str, label: str) -> None:
    texts = service[key]
    for language in LANGUAGES:
        value = texts.get(language)
        if value is None or not str(value).strip():
            content.error(
                SERVICES,
                line_of(service, key),
                f"{label}: {key} has no "
                f"{LANGUAGE_NAMES[language]} ({language}) text; add `{language}: ...`",
            )


def _check_service_phone(content: Content, service: dict[Any, Any], label: str, line: int) -> None:
    phone = service.get("phone")
    code = service.get("short_code")
    if phone in (None, "") and code in (None, ""):
        content.error(
            SERVICES,
            line,
            f'{label} has no phone; add `phone: "+258..."` (E.164) or, '
            'for a national short number like 116, `short_code: "116"`',
        )
    if phone not in (None, ""):
        text = str(phone)
        if not E164.match(text):
            digits = re.sub(r"\D", "", text)
            hint = (
                f"; a short number like {digits} goes in `short_code:`"
                if SHORT_CODE.match(digits)
                else ""
            )
            content.error(
                SERVICES,
                line_of(service, "phone"),
                f"{label}: phone '{text}' is not "
                "in E.164; write + country code and number with no spaces or dashes, "
                f'in quotes, e.g. "+25821310779"{hint}',
            )
    if code not in (None, "") and not SHORT_CODE.match(str(code)):
        content.error(
            SERVICES,
            line_of(service, "short_code"),
            f"{label}: short_code '{code}' "
            'must be 3 to 6 digits, in quotes, e.g. "116"; full numbers go in '
            "`phone:` in E.164",
        )
