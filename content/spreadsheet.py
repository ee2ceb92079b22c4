"""Translators' spreadsheet: every sentence a person can receive, to .csv/.xlsx and back.

One row per text: the bot's responses, the safety-path texts the action server says, canned
replies and their titles, the channel's notes, the service names and hours. An edited cell is
written back into the YAML it came from, changing only that line.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from content import LANGUAGES
from content.check import check, print_problems
from content.model import (
    CANNED_REPLIES,
    KEYWORDS,
    RUNTIME_RESPONSES,
    SERVICE_TEXT_FIELDS,
    SERVICES,
    Content,
    Problem,
    Response,
    keyword_texts,
    language_of,
    load,
    service_texts,
)

log = logging.getLogger(__name__)

COLUMNS = ("file", "response", *LANGUAGES)
# Layouts tried when rewriting a file; the first that reproduces the file byte for byte is used,
# so a file is only ever rewritten in the layout it already has.
LAYOUTS = ((2, 2, 0), (2, 4, 2), (4, 4, 2), (2, 4, 0), (4, 4, 0))
# The files outside bot/ a spreadsheet may write to; anything else is refused.
DATA_FILES = (RUNTIME_RESPONSES, CANNED_REPLIES, KEYWORDS, SERVICES)
# A cell starting like this is a formula to a spreadsheet (=1+1, +1, -1, @SUM, or a tab or
# carriage return that hides one). In a CSV such a text gets a leading apostrophe, which
# spreadsheets read as "this is text"; an apostrophe before it is doubled the same way, so
# reading the cell back always gives the original.
FORMULA_START = re.compile(r"'*[=+\-@\t\r]")


class SpreadsheetError(Exception):
    """The spreadsheet cannot be read or does not match the content."""


@dataclass
class Change:
    path: str
    line: int
    response: str
    language: str
    kind: str  # "changed" or "added"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.response} [{self.language}] {self.kind}"


@dataclass
class ImportResult:
    changes: list[Change] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # rows that could not be applied

    @property
    def files(self) -> list[str]:
        return sorted({change.path for change in self.changes})


# ---------------------------------------------------------------- export


def translatable(content: Content) -> list[Response]:
    """Every text a person can receive or a counsellor picks, once, in the order of the sheet."""
    return [
        *content.responses,
        *content.canned,
        *content.canned_titles,
        *keyword_texts(content),
        *service_texts(content),
    ]


def row_name(item: Response) -> str:
    """The `response` cell: the name, and which part of the entry ("greeting/title")."""
    return f"{item.name}/{item.part}" if item.part else item.name


def formula_safe(text: str) -> str:
    """The text as a CSV cell that no spreadsheet evaluates."""
    return "'" + text if FORMULA_START.match(text) else text


def from_formula_safe(cell: str) -> str:
    """The original text of a cell written by `formula_safe`."""
    return cell[1:] if cell.startswith("'") and FORMULA_START.match(cell[1:]) else cell


def rows(root: Path) -> list[dict[str, str]]:
    """One row per text (see `translatable`): file, response, pt, en, fr, sw."""
    content = load(root)
    found = []
    for item in translatable(content):
        row = {"file": item.path, "response": row_name(item)}
        for language in LANGUAGES:
            text = item.texts.get(language)
            row[language] = text.text if text else ""
        found.append(row)
    return found


def export(root: Path, target: Path) -> int:
    """Write the spreadsheet (.xlsx when the name says so, else CSV); returns the row count."""
    table = rows(root)
    if target.suffix.lower() == ".xlsx":
        _write_xlsx(table, target)
    else:
        # utf-8-sig: Excel only reads accents right in a CSV that starts with a byte-order mark.
        with target.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({k: formula_safe(v) for k, v in row.items()} for row in table)
    return len(table)


def _write_xlsx(table: list[dict[str, str]], target: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = "responses"
    sheet.append(list(COLUMNS))
    for number, row in enumerate(table, start=2):
        for column, name in enumerate(COLUMNS, start=1):
            cell = sheet.cell(number, column)
            cell.value = row[name]
            # openpyxl takes a string starting with = for a formula; a string cell is never
            # evaluated, and the quote prefix keeps it text when the translator edits it.
            cell.data_type = "s"
            if FORMULA_START.match(row[name]):
                cell.quotePrefix = True
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for letter, width in zip("ABCDEF", (22, 30, 60, 60, 60, 60), strict=True):
        sheet.column_dimensions[letter].width = width
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "C2"
    book.save(target)


# ---------------------------------------------------------------- import


def read_table(source: Path) -> list[dict[str, str]]:
    """The rows of a .csv or .xlsx file as dicts keyed by column name."""
    if not source.exists():
        raise SpreadsheetError(f"{source} does not exist")
    if source.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(source, read_only=True, data_only=True).active
        lines = [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    else:
        with source.open(encoding="utf-8-sig", newline="") as handle:
            lines = [[from_formula_safe(cell) for cell in line] for line in csv.reader(handle)]
    if not lines:
        raise SpreadsheetError(f"{source} is empty; export it again with `hotline content export`")
    header = [name.strip().lower() for name in lines[0]]
    missing = [name for name in ("file", "response") if name not in header]
    if missing:
        raise SpreadsheetError(
            f"{source} has no column {', '.join(missing)}; keep the first row "
            f"as exported: {', '.join(COLUMNS)}"
        )
    table = []
    for line in lines[1:]:
        if not any(cell.strip() for cell in line):
            continue
        table.append({name: (line[i] if i < len(line) else "") for i, name in enumerate(header)})
    return table


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a spreadsheet turns "1458" into 1458.0
    return str(value)


def _same_style(old: Any, text: str) -> Any:
    """The new text written the way the old one was (quotes, block style)."""
    for kind in (
        DoubleQuotedScalarString,
        SingleQuotedScalarString,
        LiteralScalarString,
        FoldedScalarString,
    ):
        if isinstance(old, kind):
            return kind(text)
    return text


def _layout_for(original: str) -> YAML | None:
    """A round-trip YAML that writes this file back byte for byte, or None."""
    for mapping, sequence, offset in LAYOUTS:
        yaml = YAML()
        yaml.preserve_quotes = True
        yaml.width = 4096
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        try:
            data = yaml.load(original)
        except Exception:
            return None
        out = io.StringIO()
        yaml.dump(data, out)
        if out.getvalue() == original:
            return yaml
    return None


def _variation_for(language: str, text: str, like: Any) -> CommentedMap:
    variation = CommentedMap()
    variation["text"] = _same_style(like, text)
    if language != "pt":
        condition = CommentedMap([("type", "slot"), ("name", "language"), ("value", language)])
        variation["condition"] = CommentedSeq([condition])
    return variation


def _move_trailing_comment(old_last: Any, new_last: Any) -> None:
    """Keep the blank line (or comment) that followed a list after the item appended to it."""
    node = old_last
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        key = list(node.keys())[-1] if isinstance(node, CommentedMap) else len(node) - 1
        comment = node.ca.items.get(key)
        if comment and any(comment):
            target = new_last
            while isinstance(target, (CommentedMap, CommentedSeq)) and len(target):
                tkey = (
                    list(target.keys())[-1] if isinstance(target, CommentedMap) else len(target) - 1
                )
                child = target[tkey]
                if not isinstance(child, (CommentedMap, CommentedSeq)) or not len(child):
                    target.ca.items[tkey] = comment
                    break
                target = child
            del node.ca.items[key]
            return
        node = node[key]


def _apply_response(
    data: Any,
    rel: str,
    row: dict[str, str],
    result: ImportResult,
    pending: list[tuple[str, str, str]],
) -> bool:
    """Apply one bot response row; True when the file changed."""
    name = row.get("response", "").strip()
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, dict) or name not in responses:
        result.notes.append(
            Problem(
                rel,
                0,
                f"row for {name}: there is no such response in {rel}; "
                "export again, do not rename responses in the spreadsheet",
            )
        )
        return False
    variations = responses[name]
    changed = False
    for language in LANGUAGES:
        if language not in row:
            continue
        cell = row[language].replace("\r\n", "\n")
        current = next(
            (v for v in variations if isinstance(v, dict) and language_of(v) == language), None
        )
        if current is None:
            if not cell.strip():
                continue
            like = (
                variations[0].get("text") if variations and isinstance(variations[0], dict) else ""
            )
            variation = _variation_for(language, cell, like)
            if language == "pt":
                variations.insert(0, variation)
            else:
                if variations:
                    _move_trailing_comment(variations[-1], variation)
                variations.append(variation)
            pending.append((name, language, "added"))
            changed = True
            continue
        old = current.get("text") or ""
        if cell.strip() == str(old).strip():
            continue
        if not cell.strip():
            result.notes.append(
                Problem(
                    rel,
                    0,
                    f"{name} [{language}] is empty in the spreadsheet "
                    "and was left as it is; to delete a text edit the YAML",
                    "warning",
                )
            )
            continue
        current["text"] = _same_style(old, cell)
        pending.append((name, language, "changed"))
        changed = True
    return changed


def _apply_texts(
    texts: CommentedMap,
    rel: str,
    name: str,
    row: dict[str, str],
    result: ImportResult,
    pending: list[tuple[str, str, str]],
) -> bool:
    """Apply one row to a mapping of language -> text; True when it changed."""
    changed = False
    for language in LANGUAGES:
        if language not in row:
            continue
        cell = row[language].replace("\r\n", "\n")
        old = texts.get(language)
        if cell.strip() == str(old or "").strip():
            continue
        if not cell.strip():
            result.notes.append(
                Problem(
                    rel,
                    0,
                    f"{name} [{language}] is empty in the spreadsheet and was left as it is",
                    "warning",
                )
            )
            continue
        like = old if old is not None else next(iter(texts.values()), "")
        pending.append((name, language, "changed" if old is not None else "added"))
        texts[language] = _same_style(like, cell)
        changed = True
    return changed


def _no_such(result: ImportResult, rel: str, what: str) -> bool:
    result.notes.append(
        Problem(
            rel,
            0,
            f"row for {what}: there is no such entry in {rel}; export again, do not rename "
            "names or ids in the spreadsheet",
        )
    )
    return False


def _apply_canned(
    data: Any,
    rel: str,
    row: dict[str, str],
    result: ImportResult,
    pending: list[tuple[str, str, str]],
) -> bool:
    name = row.get("response", "").strip()
    reply_id, _, part = name.partition("/")
    replies = data.get("canned_replies") if isinstance(data, dict) else None
    entry = next(
        (r for r in replies or [] if isinstance(r, dict) and str(r.get("id")) == reply_id), None
    )
    if entry is None or part not in ("", "title"):
        return _no_such(result, rel, f"canned reply {name}")
    texts = entry.setdefault(part or "text", CommentedMap())
    return _apply_texts(texts, rel, name, row, result, pending)


def _apply_keyword_text(
    data: Any,
    rel: str,
    row: dict[str, str],
    result: ImportResult,
    pending: list[tuple[str, str, str]],
) -> bool:
    name = row.get("response", "").strip()
    texts = data.get("texts") if isinstance(data, dict) else None
    if not isinstance(texts, dict) or not isinstance(texts.get(name), dict):
        return _no_such(result, rel, f"channel note {name}")
    return _apply_texts(texts[name], rel, name, row, result, pending)


def _apply_service(
    data: Any,
    rel: str,
    row: dict[str, str],
    result: ImportResult,
    pending: list[tuple[str, str, str]],
) -> bool:
    name = row.get("response", "").strip()
    service_id, _, part = name.partition("/")
    services = data.get("services") if isinstance(data, dict) else None
    entry = next(
        (s for s in services or [] if isinstance(s, dict) and str(s.get("id")) == service_id),
        None,
    )
    if entry is None or part not in SERVICE_TEXT_FIELDS:
        return _no_such(result, rel, f"service {name}")
    texts = entry.setdefault(part, CommentedMap())
    return _apply_texts(texts, rel, name, row, result, pending)


APPLY = {
    CANNED_REPLIES: _apply_canned,
    KEYWORDS: _apply_keyword_text,
    SERVICES: _apply_service,
}


def allowed_file(root: Path, rel: str) -> str | None:
    """The file a row names, relative to root, when a spreadsheet may write to it; else None.

    The path is resolved first, so `bot/../x.yml` or a link out of bot/ is refused: only the
    YAML files directly in bot/ and the DATA_FILES, as they really are on disk.
    """
    if not rel:
        return None
    base = root.resolve()
    path = (base / rel).resolve()
    if not path.is_file():
        return None
    if path.parent == (base / "bot").resolve() and path.suffix in (".yml", ".yaml"):
        return path.relative_to(base).as_posix()
    if any(path == (base / name).resolve() for name in DATA_FILES):
        return path.relative_to(base).as_posix()
    return None


def import_rows(root: Path, table: list[dict[str, str]]) -> ImportResult:
    """Write the spreadsheet's texts into the YAML files; files with no change are not touched."""
    result = ImportResult()
    by_file: dict[str, list[dict[str, str]]] = {}
    refused: dict[str, int] = {}
    for row in table:
        named = row.get("file", "").strip()
        rel = allowed_file(root, named)
        if rel is None:
            refused[named] = refused.get(named, 0) + 1
        else:
            by_file.setdefault(rel, []).append(row)
    for named, count in refused.items():
        result.notes.append(
            Problem(
                named or "(no file)",
                0,
                f"{count} row(s) name file '{named}', which is not a file of texts here; keep "
                "the file column as exported",
            )
        )
    for rel, file_rows in by_file.items():
        path = root / rel
        original = path.read_text(encoding="utf-8")
        yaml = _layout_for(original)
        if yaml is None:
            result.notes.append(
                Problem(
                    rel,
                    0,
                    "this file's layout cannot be kept by an automatic "
                    "rewrite, so it was not changed; make these edits by hand",
                )
            )
            continue
        data = yaml.load(original)
        pending: list[tuple[str, str, str]] = []
        apply = APPLY.get(rel, _apply_response)
        changed = False
        for row in file_rows:
            changed = apply(data, rel, row, result, pending) or changed
        if not changed:
            continue
        out = io.StringIO()
        yaml.dump(data, out)
        path.write_text(out.getvalue(), encoding="utf-8")
        log.info("updated %s (%d text(s))", rel, len(pending))
        result.changes.extend(_locate(root, rel, pending))
    return result


def _locate(root: Path, rel: str, pending: list[tuple[str, str, str]]) -> list[Change]:
    """Where each changed text now is, so the editor can look at it."""
    lines = {
        (item.path, row_name(item), lang): text.line
        for item in translatable(load(root))
        for lang, text in item.texts.items()
    }
    return [
        Change(rel, lines.get((rel, name, lang), 0), name, lang, kind)
        for name, lang, kind in pending
    ]


def main_import(root: Path, source: Path, out: TextIO) -> int:
    """`hotline content import FILE`: apply the spreadsheet, list what changed, then check."""
    try:
        result = import_rows(root, read_table(source))
    except SpreadsheetError as exc:
        out.write(f"{exc}\n")
        return 1
    out.writelines(f"{note}\n" for note in result.notes)
    out.writelines(f"{change}\n" for change in result.changes)
    out.write(f"{len(result.changes)} text(s) changed in {len(result.files)} file(s)\n")
    status = print_problems(check(root), out)
    failed_rows = any(note.severity == "error" for note in result.notes)
    return 1 if failed_rows else status
