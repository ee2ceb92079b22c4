"""What a counsellor draws on while replying: canned replies and the service directory.

Both are YAML files in data/ that editors maintain; each is re-read when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline import yamlfiles
from hotline.language import DEFAULT_LANGUAGE, LANGUAGES
from protection import directory

PROVINCES = directory.PROVINCES
SERVICE_TYPES = directory.SERVICE_TYPES


def _pick(texts: dict[str, str], language: str, fallback: str = DEFAULT_LANGUAGE) -> str:
    """The text in `language` if it is one of the hotline's, else in `fallback`, else any."""
    chosen = texts.get(language) if language in LANGUAGES else None
    return chosen or texts.get(fallback) or next(iter(texts.values()), "")


# ---------------------------------------------------------------- canned replies


@dataclass(frozen=True)
class CannedReply:
    id: str
    title: str  # in the counsellor's interface language
    text: str  # in the person's language


def _canned_entries(raw: Any) -> list[dict]:
    entries = raw.get("canned_replies") if isinstance(raw, dict) else None
    return [e for e in entries or [] if isinstance(e, dict) and e.get("id")]


def canned_replies(data_dir: Path, language: str, ui_language: str = "en") -> list[CannedReply]:
    """Every canned reply with its text in the person's language (Portuguese when missing)."""
    path = data_dir / "canned_replies.yml"
    if not path.exists():
        return []
    return [
        CannedReply(
            id=str(entry["id"]),
            title=_pick(entry.get("title") or {}, ui_language, "en") or str(entry["id"]),
            text=_pick(entry.get("text") or {}, language).strip(),
        )
        for entry in yamlfiles.load(path, _canned_entries)
    ]


# ---------------------------------------------------------------- services


@dataclass(frozen=True)
class ServiceHit:
    id: str
    type: str
    province: str
    name: str
    contact: str
    hours: str
    address: str
    verified: bool
    insert_text: str  # the line "insert into reply" adds, in the person's language


def search_services(
    data_dir: Path, province: str = "", kind: str = "", language: str = "pt"
) -> list[ServiceHit]:
    """Services of a kind in a province; national services count in every province.

    In the directory's one order, the bot's too (`directory.ranked`): the province's own
    services first, then the national ones, which reach anyone, then those of one place
    (South Africa's police is no answer for someone in Tete).
    """
    province, kind = province.strip(), kind.strip()
    found = directory.ranked(
        [
            service
            for service in directory.load(data_dir / "services.yml")
            if (not kind or service.type == kind)
            and (not province or service.province in (province, "national"))
        ],
        province or None,
    )
    return [
        ServiceHit(
            id=service.id,
            type=service.type,
            province=service.province,
            name=_pick(service.name, language),
            contact=service.contact(),
            hours=_pick(service.hours, language) if service.hours else "",
            address=service.address or "",
            verified=service.verified,
            insert_text=directory.format_services([service], language),
        )
        for service in found
    ]
