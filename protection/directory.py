"""The service directory in data/services.yml: loading, matching and SMS-sized formatting."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hotline import sms, yamlfiles
from hotline.settings import get_settings
from hotline.text import fold

SERVICE_TYPES = ("office", "helpline", "child_helpline", "police", "shelter", "health", "legal_aid")
PROVINCES = (
    "Maputo Cidade",
    "Maputo",
    "Gaza",
    "Inhambane",
    "Sofala",
    "Manica",
    "Tete",
    "Zambezia",
    "Nampula",
    "Niassa",
    "Cabo Delgado",
)

# Words in a question that point at one kind of service, per language, accent-free.
_TYPE_WORDS = {
    "shelter": (
        "abrigo",
        "casa de acolhimento",
        "shelter",
        "abri",
        "hebergement",
        "makazi",
        "malazi",
    ),
    "police": ("policia", "police", "polisi"),
    "child_helpline": ("crianca", "menor", "child", "enfant", "mtoto", "watoto"),
    "health": (
        "hospital",
        "saude",
        "clinica",
        "clinic",
        "health",
        "sante",
        "hopitali",
        "afya",
        "kliniki",
    ),
    "legal_aid": ("advogado", "juridic", "lawyer", "legal", "avocat", "wakili", "sheria"),
    "office": ("oim", "iom", "escritorio", "office", "bureau", "ofisi"),
}


@dataclass(frozen=True)
class Service:
    id: str
    type: str
    province: str
    name: dict[str, str]
    phone: str | None = None
    short_code: str | None = None
    address: str | None = None
    hours: dict[str, str] = field(default_factory=dict)
    verified: bool = False

    def contact(self) -> str:
        return self.short_code or display_phone(self.phone or "")


def display_phone(e164: str) -> str:
    """+25821310779 → +258 21 310 779: easier to read and to dial from a feature phone."""
    if e164.startswith("+258") and len(e164) == 12:
        return f"+258 {e164[4:6]} {e164[6:9]} {e164[9:]}"
    return e164


def _parse(raw: object) -> list[Service]:
    entries = (raw.get("services") if isinstance(raw, dict) else None) or []
    return [
        Service(
            id=entry["id"],
            type=entry["type"],
            province=entry["province"],
            name=entry["name"],
            phone=entry.get("phone"),
            short_code=str(entry["short_code"]) if entry.get("short_code") else None,
            address=entry.get("address"),
            hours=entry.get("hours") or {},
            verified=bool(entry.get("verified", False)),
        )
        for entry in entries
    ]


def load(path: Path | None = None) -> list[Service]:
    """The directory, re-read when an editor changes the file (the action server keeps running)."""
    return yamlfiles.load(path or get_settings().data_dir / "services.yml", _parse)


def _names(words: str, cue: str) -> bool:
    # A cue starts a word: "legal" is in "legal aid" but not in "ilegal".
    return re.search(r"\b" + re.escape(cue), words) is not None


def ranked(services: list[Service], province: str | None = None) -> list[Service]:
    """The one order of services, for the bot and the console: the province asked about first,
    then national lines, then the rest; offices and helplines before the other kinds."""
    order = {kind: rank for rank, kind in enumerate(SERVICE_TYPES)}

    def key(service: Service) -> tuple[int, int]:
        if province and (service.province == province or province in service.province):
            place = 0
        else:
            place = 1 if service.province == "national" else 2
        return (place, order.get(service.type, 99))

    return sorted(services, key=key)


def match(services: list[Service], question: str, types: tuple[str, ...] = ()) -> list[Service]:
    """Services for a question: the kinds it names (or `types`), in the province it names,
    plus national lines. With nothing named, every service, offices and helplines first.

    When the province asked about has no such service, the nearest we have is better than
    nothing: the same kinds elsewhere (a question about an office in Nampula gets Maputo's).
    """
    words = fold(question)
    wanted = set(types) | {
        kind for kind, cues in _TYPE_WORDS.items() if any(_names(words, c) for c in cues)
    }
    province = next((p for p in PROVINCES if _names(words, fold(p))), None)
    of_kind = [s for s in services if not wanted or s.type in wanted]
    local = [s for s in of_kind if province and (s.province == province or province in s.province)]
    here = [s for s in of_kind if s in local or s.province == "national"] if local else of_kind
    return ranked(here, province)


def format_services(services: list[Service], language: str, limit: int = 4) -> str:
    """One line per service: name, number, hours and street address when known.

    Written in the SMS alphabet (accents the alphabet lacks dropped), so a list never turns
    the message around it into UCS-2.
    """
    lines = []
    for service in services[:limit]:
        name = service.name.get(language) or service.name.get("pt") or service.id
        line = f"{name}: {service.contact()}"
        hours = service.hours.get(language) or service.hours.get("pt")
        if hours:
            line += f" ({hours})"
        if service.address:
            line += f", {service.address}"
        lines.append(sms.to_gsm7(line))
    return "\n".join(lines)
