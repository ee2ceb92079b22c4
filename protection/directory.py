"""The service directory in data/services.yml: loading, matching and SMS-sized formatting."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

from hotline.settings import get_settings

SERVICE_TYPES = ("office", "helpline", "child_helpline", "police", "shelter", "health", "legal_aid")
PROVINCES = (
    "Maputo Cidade", "Maputo", "Gaza", "Inhambane", "Sofala", "Manica", "Tete", "Zambezia",
    "Nampula", "Niassa", "Cabo Delgado",
)

# Words in a question that point at one kind of service, per language, accent-free.
_TYPE_WORDS = {
    "shelter": ("abrigo", "casa de acolhimento", "shelter", "abri", "hebergement", "makazi", "malazi"),
    "police": ("policia", "police", "polisi"),
    "child_helpline": ("crianca", "menor", "child", "enfant", "mtoto", "watoto"),
    "health": ("hospital", "saude", "clinica", "clinic", "health", "sante", "hopitali", "afya", "kliniki"),
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


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_cache: dict[Path, tuple[float, list[Service]]] = {}


def load(path: Path | None = None) -> list[Service]:
    """The directory, re-read when an editor changes the file (the action server keeps running)."""
    path = path or get_settings().data_dir / "services.yml"
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    raw = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    services = [
        Service(
            id=entry["id"], type=entry["type"], province=entry["province"], name=entry["name"],
            phone=entry.get("phone"), short_code=str(entry["short_code"]) if entry.get("short_code") else None,
            address=entry.get("address"), hours=entry.get("hours") or {},
            verified=bool(entry.get("verified", False)),
        )
        for entry in raw.get("services", [])
    ]
    _cache[path] = (mtime, services)
    return services


def match(services: list[Service], question: str, types: tuple[str, ...] = ()) -> list[Service]:
    """Services for a question: the kinds it names (or `types`), in the province it names,
    plus national lines. With nothing named, every service, offices and helplines first."""
    words = _plain(question)
    wanted = set(types) | {kind for kind, cues in _TYPE_WORDS.items() if any(c in words for c in cues)}
    province = next((p for p in PROVINCES if _plain(p) in words), None)
    chosen = [
        s for s in services
        if (not wanted or s.type in wanted)
        and (province is None or s.province in (province, "national") or province in s.province)
    ]
    order = {kind: rank for rank, kind in enumerate(SERVICE_TYPES)}
    return sorted(chosen, key=lambda s: (order.get(s.type, 99), s.province != "national"))


def format_services(services: list[Service], language: str, limit: int = 4) -> str:
    """One line per service: name, number, hours when known. Short enough for SMS."""
    lines = []
    for service in services[:limit]:
        name = service.name.get(language) or service.name.get("pt") or service.id
        line = f"{name}: {service.contact()}"
        hours = service.hours.get(language) or service.hours.get("pt")
        if hours:
            line += f" ({hours})"
        lines.append(line)
    return "\n".join(lines)
