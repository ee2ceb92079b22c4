"""What changed in the content since the last release, written for the reviewer who signs it off."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from content import LANGUAGES
from content.model import load, normalise_example

log = logging.getLogger(__name__)

TAG_PATTERN = "content-release-*"
SNAPSHOT = Path("var") / "last-release.json"
# What a release is made of; the same folders are read from a tagged commit.
CONTENT_PATHS = ("bot", "data")


def _plain(value: Any) -> Any:
    """ruamel's commented types as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def snapshot(root: Path) -> dict[str, Any]:
    """The reviewable part of the content: examples per intent, texts, services."""
    content = load(root)
    intents: dict[str, dict[str, list[str]]] = {
        intent: {language: [] for language in LANGUAGES} for intent in content.domain.intents
    }
    for example in content.examples:
        if example.text:
            intents.setdefault(example.intent, {language: [] for language in LANGUAGES})
            intents[example.intent][example.language].append(example.text)
    return {
        "intents": {
            intent: {lang: sorted(set(texts)) for lang, texts in by_lang.items()}
            for intent, by_lang in intents.items()
        },
        "responses": {
            r.name: {lang: t.text for lang, t in r.texts.items()} for r in content.responses
        },
        "canned_replies": {
            r.name: {lang: t.text for lang, t in r.texts.items()} for r in content.canned
        },
        "services": {
            str(s.get("id") or f"#{i + 1}"): _plain(s)
            for i, (s, _) in enumerate(content.services)
            if isinstance(s, dict)
        },
    }


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)


def latest_tag(root: Path) -> str | None:
    """The newest content-release-* tag, if this is a git checkout that has one."""
    try:
        listed = _git(root, "tag", "--list", TAG_PATTERN, "--sort=-creatordate")
    except FileNotFoundError:
        return None
    tags = listed.stdout.decode().split() if listed.returncode == 0 else []
    return tags[0] if tags else None


def snapshot_at(root: Path, ref: str) -> dict[str, Any] | None:
    """The snapshot of the content as it was at a git tag or commit."""
    archive = _git(root, "archive", "--format=tar", ref, "--", *CONTENT_PATHS)
    if archive.returncode != 0:
        log.warning("cannot read %s from git: %s", ref, archive.stderr.decode().strip())
        return None
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        return snapshot(Path(folder))


def baseline(root: Path, since: str | None = None) -> tuple[str, dict[str, Any] | None]:
    """(what we compare with, its snapshot): --since, the latest tag, or var/last-release.json."""
    ref = since or latest_tag(root)
    if ref:
        return f"git {ref}", snapshot_at(root, ref)
    path = root / SNAPSHOT
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"{SNAPSHOT} ({data.get('recorded', 'undated')})", data.get("content")
    return "nothing (first release)", None


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _diff_texts(
    title: str, old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]
) -> list[str]:
    lines: list[str] = []
    for name in sorted(set(new) - set(old)):
        lines.append(f"  + {name} (new; languages: {', '.join(sorted(new[name])) or 'none'})")
        for lang in LANGUAGES:
            if lang in new[name]:
                lines.append(f"      {lang}: {_short(new[name][lang])}")
    for name in sorted(set(old) - set(new)):
        lines.append(f"  - {name} (removed)")
    for name in sorted(set(old) & set(new)):
        for lang in LANGUAGES:
            before, after = old[name].get(lang), new[name].get(lang)
            if before == after:
                continue
            lines.append(f"  ~ {name} [{lang}]")
            lines.append(f"      was: {_short(before) if before is not None else '(none)'}")
            lines.append(f"      now: {_short(after) if after is not None else '(none)'}")
    return [title, *lines] if lines else []


def _diff_intents(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name in sorted(set(new) - set(old)):
        counts = ", ".join(f"{lang} {len(new[name].get(lang, []))}" for lang in LANGUAGES)
        lines.append(f"  + {name} (new; examples: {counts})")
    for name in sorted(set(old) - set(new)):
        lines.append(f"  - {name} (removed)")
    for name in sorted(set(old) & set(new)):
        for lang in LANGUAGES:
            before = {normalise_example(t): t for t in old[name].get(lang, [])}
            after = {normalise_example(t): t for t in new[name].get(lang, [])}
            added = [after[k] for k in sorted(set(after) - set(before))]
            removed = [before[k] for k in sorted(set(before) - set(after))]
            if not added and not removed:
                continue
            lines.append(f"  ~ {name} [{lang}] examples {len(before)} → {len(after)}")
            lines.extend(f"      + {_short(t, 100)}" for t in added[:10])
            lines.extend(f"      - {_short(t, 100)}" for t in removed[:10])
            if len(added) > 10 or len(removed) > 10:
                lines.append("      … (more; see the files)")
    return ["Intents and examples", *lines] if lines else []


def _diff_services(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for sid in sorted(set(new) - set(old)):
        service = new[sid]
        contact = service.get("phone") or service.get("short_code") or "no phone"
        verified = "verified" if service.get("verified") is True else "NOT verified"
        lines.append(
            f"  + {sid}: {service.get('type')}, {service.get('province')}, {contact} ({verified})"
        )
    for sid in sorted(set(old) - set(new)):
        lines.append(f"  - {sid} (removed)")
    for sid in sorted(set(old) & set(new)):
        for key in sorted(set(old[sid]) | set(new[sid])):
            before, after = old[sid].get(key), new[sid].get(key)
            if before != after:
                lines.append(
                    f"  ~ {sid}: {key} {json.dumps(before, ensure_ascii=False)} → "
                    f"{json.dumps(after, ensure_ascii=False)}"
                )
    return ["Services", *lines] if lines else []


def summary(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The reviewer's list of changes; with no earlier release, what is there."""
    if old is None:
        verified = sum(1 for s in new["services"].values() if s.get("verified") is True)
        return [
            f"Intents: {len(new['intents'])}",
            f"Responses: {len(new['responses'])}",
            f"Canned replies: {len(new['canned_replies'])}",
            f"Services: {len(new['services'])} ({verified} verified)",
            *unverified(new),
        ]
    sections = [
        _diff_intents(old.get("intents", {}), new["intents"]),
        _diff_texts("Responses", old.get("responses", {}), new["responses"]),
        _diff_texts("Canned replies", old.get("canned_replies", {}), new["canned_replies"]),
        _diff_services(old.get("services", {}), new["services"]),
    ]
    lines = [line for section in sections for line in section]
    return (
        lines or ["No changes to intents, responses, canned replies or services."]
    ) + unverified(new)


def unverified(content: dict[str, Any]) -> list[str]:
    """Every directory entry nobody has confirmed yet: the launch checklist (docs/editing.md)."""
    pending = [
        (sid, s) for sid, s in sorted(content["services"].items()) if s.get("verified") is not True
    ]
    if not pending:
        return []
    lines = ["", "Not verified yet (launch checklist, docs/editing.md):"]
    for sid, service in pending:
        contact = (
            service.get("short_code")
            or service.get("phone")
            or service.get("address")
            or "no contact"
        )
        lines.append(f"- {sid}: {contact} (source: {service.get('source') or 'none given'})")
    return lines


def record_release(root: Path, content: dict[str, Any]) -> Path:
    """Record this content as the released one for the next summary."""
    path = root / SNAPSHOT
    path.parent.mkdir(parents=True, exist_ok=True)
    recorded = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        json.dumps(
            {"recorded": recorded, "content": content}, ensure_ascii=False, indent=1, sort_keys=True
        ),
        encoding="utf-8",
    )
    return path


def main(root: Path, out: TextIO, *, mark: bool = False, since: str | None = None) -> int:
    """`hotline content release`: print what changed; with --mark, record this release."""
    against, old = baseline(root, since)
    new = snapshot(root)
    out.write(f"Content changes since {against}\n\n")
    out.writelines(f"{line}\n" for line in summary(old, new))
    if mark:
        path = record_release(root, new)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        out.write(
            f"\nrecorded this release in {path.relative_to(root)}\n"
            "once a reviewer has approved it and it is committed, tag it:\n"
            f"  git tag content-release-{stamp} && git push origin content-release-{stamp}\n"
        )
    return 0
