"""Coverage per language: what exists in pt, en, fr and sw, in the terminal and as HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from content import LANGUAGE_NAMES, LANGUAGES
from content.check import run_checks
from content.checks.indicators import INDICATOR_REQUIRED
from content.checks.nlu import required_examples
from content.model import Content, Problem, indicator_groups, is_empty, language_maps, load

REPORT_FILE = "content-report.html"


@dataclass
class Row:
    """One kind of content: how many items exist in each language out of how many."""

    label: str
    total: int
    done: dict[str, int] = field(default_factory=dict)

    def percent(self, language: str) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.done.get(language, 0) / self.total


@dataclass
class Coverage:
    rows: list[Row]
    examples: dict[str, dict[str, int]]  # intent -> language -> distinct examples
    problems: list[Problem]

    def overall(self, language: str) -> float:
        total = sum(row.total for row in self.rows)
        done = sum(row.done.get(language, 0) for row in self.rows)
        return 100.0 if total == 0 else 100.0 * done / total


def _texts_row(label: str, items: list, language_count) -> Row:
    row = Row(label, len(items))
    for language in LANGUAGES:
        row.done[language] = sum(1 for item in items if language_count(item, language))
    return row


def coverage(root: Path) -> Coverage:
    """Count what each language has; reads the same files the check reads."""
    content: Content = load(root)
    rows: list[Row] = []

    def has_text(item, language: str) -> bool:
        text = item.texts.get(language)
        return bool(text and text.text.strip())

    rows.append(_texts_row(f"responses ({len(content.responses)})", content.responses, has_text))

    problems = run_checks(content)  # also counts the examples the way the check does
    counts = {
        intent: {lang: content.example_counts.get((intent, lang), 0) for lang in LANGUAGES}
        for intent in content.domain.intents
    }
    intents = Row(f"intents with enough examples ({len(counts)})", len(counts))
    for language in LANGUAGES:
        intents.done[language] = sum(
            1
            for intent, by_lang in counts.items()
            if by_lang[language] >= required_examples(intent)
        )
    rows.append(intents)

    def service_named(entry, language: str) -> bool:
        service, _ = entry
        name = service.get("name") if isinstance(service, dict) else None
        return isinstance(name, dict) and not is_empty(name.get(language))

    rows.append(
        _texts_row(f"services named ({len(content.services)})", content.services, service_named)
    )

    def language_map_row(label: str, data) -> Row:
        maps = [texts for _, texts in language_maps(data)] if data is not None else []
        return _texts_row(
            f"{label} ({len(maps)})",
            maps,
            lambda texts, language: not is_empty(texts.get(language)),
        )

    groups = indicator_groups(content.indicators)

    def group_complete(group, language: str) -> bool:
        return all(
            isinstance(group.get(key), dict) and not is_empty(group[key].get(language))
            for key in INDICATOR_REQUIRED
        )

    rows.append(_texts_row(f"risk indicator groups ({len(groups)})", groups, group_complete))
    rows.append(_texts_row(f"canned replies ({len(content.canned)})", content.canned, has_text))
    rows.append(language_map_row("keywords and channel texts", content.keywords))
    return Coverage(rows, counts, problems)


def _cell(row: Row, language: str) -> str:
    # Nothing to count (e.g. the file does not exist yet) is shown as a dash, not as 100%.
    return "-" if row.total == 0 else f"{row.percent(language):.0f}%"


def render_text(report: Coverage) -> str:
    """The coverage table as plain text for a terminal."""
    width = max(len(row.label) for row in report.rows) + 2
    header = "".join(f"{lang:>8}" for lang in LANGUAGES)
    lines = [f"{'content coverage':<{width}}{header}"]
    for row in report.rows:
        cells = "".join(f"{_cell(row, lang):>8}" for lang in LANGUAGES)
        lines.append(f"{row.label:<{width}}{cells}")
    lines.append(
        f"{'complete':<{width}}" + "".join(f"{report.overall(lang):>7.0f}%" for lang in LANGUAGES)
    )
    lines.append("")
    intent_width = max([len(i) for i in report.examples] + [len("examples per intent")]) + 2
    lines.append(f"{'examples per intent':<{intent_width}}{'need':>6}{header}")
    for intent, by_lang in report.examples.items():
        need = required_examples(intent)
        cells = "".join(
            f"{by_lang[lang]:>7}{'!' if by_lang[lang] < need else ' '}" for lang in LANGUAGES
        )
        lines.append(f"{intent:<{intent_width}}{need:>6}{cells}")
    lines.append("(! = fewer examples than needed)")
    errors = sum(1 for p in report.problems if p.severity == "error")
    lines.append("")
    lines.append(
        f"{errors} error(s) and {len(report.problems) - errors} warning(s): "
        "run `hotline content check` for the list"
    )
    return "\n".join(lines) + "\n"


def _shade(percent: float) -> str:
    if percent >= 100:
        return "ok"
    return "part" if percent >= 50 else "low"


def render_html(report: Coverage) -> str:
    """A self-contained page: the same tables plus every problem the check found."""
    esc = html.escape
    head = "".join(f"<th>{esc(LANGUAGE_NAMES[lang])} ({lang})</th>" for lang in LANGUAGES)
    rows = []
    for row in report.rows:
        cells = "".join(
            f'<td class="{_shade(row.percent(lang)) if row.total else ""}">{_cell(row, lang)} '
            f"<small>{row.done.get(lang, 0)}/{row.total}</small></td>"
            for lang in LANGUAGES
        )
        rows.append(f"<tr><th>{esc(row.label)}</th>{cells}</tr>")
    rows.append(
        "<tr class='total'><th>complete</th>"
        + "".join(
            f'<td class="{_shade(report.overall(lang))}">{report.overall(lang):.0f}%</td>'
            for lang in LANGUAGES
        )
        + "</tr>"
    )
    intents = []
    for intent, by_lang in report.examples.items():
        need = required_examples(intent)
        cells = "".join(
            f'<td class="{"ok" if by_lang[lang] >= need else "low"}">{by_lang[lang]}</td>'
            for lang in LANGUAGES
        )
        intents.append(f"<tr><th>{esc(intent)}</th><td>{need}</td>{cells}</tr>")
    problems = (
        "".join(f'<li class="{p.severity}">{esc(str(p))}</li>' for p in report.problems)
        or "<li>No problems.</li>"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hotline content report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .7rem; text-align: right; }}
th:first-child {{ text-align: left; }}
.ok {{ background: #dff0d8; }} .part {{ background: #fcf8e3; }} .low {{ background: #f2dede; }}
tr.total {{ font-weight: bold; }}
li.error {{ color: #a94442; }} li.warning {{ color: #8a6d3b; }}
small {{ color: #666; }}
</style></head><body>
<h1>Hotline content report</h1>
<p>Generated {stamp}. Green: complete; yellow: at least half; red: less than half.</p>
<h2>Coverage per language</h2>
<table><tr><th>content</th>{head}</tr>{"".join(rows)}</table>
<h2>Examples per intent</h2>
<table><tr><th>intent</th><th>need</th>{head}</tr>{"".join(intents)}</table>
<h2>Problems ({len(report.problems)})</h2>
<ul>{problems}</ul>
</body></html>
"""


def main(root: Path, html_path: Path | None, out: TextIO) -> int:
    """`hotline content report`: print the table and write the HTML page."""
    report = coverage(root)
    out.write(render_text(report))
    target = html_path or (root / REPORT_FILE)
    target.write_text(render_html(report), encoding="utf-8")
    out.write(f"wrote {target}\n")
    return 0
