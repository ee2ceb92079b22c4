"""Translators' round trip: export to a spreadsheet, edit a cell, import; only that text changes."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from content.check import load
from content.spreadsheet import COLUMNS, export, import_rows, main_import, read_table
from hotline.settings import PROJECT_ROOT


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the project's real content, so the real files' layout is what is tested."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "bot", root / "bot")
    shutil.copytree(PROJECT_ROOT / "data", root / "data")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.yml"))}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def changed_lines(before: bytes, after: bytes) -> list[tuple[int, str]]:
    old, new = before.decode().splitlines(), after.decode().splitlines()
    assert len(old) == len(new), "the number of lines changed"
    return [(i, line) for i, line in enumerate(new, 1) if old[i - 1] != line]


@pytest.mark.parametrize("name", ["responses.csv", "responses.xlsx"])
def test_export_then_import_with_no_edits_changes_no_byte(
    tree: Path, tmp_path: Path, name: str
) -> None:
    before = snapshot(tree)
    sheet = tmp_path / name
    count = export(tree, sheet)
    content = load(tree)
    assert count == len(content.responses) + len(content.canned)
    out = io.StringIO()
    main_import(tree, sheet, out)
    assert "0 text(s) changed in 0 file(s)" in out.getvalue()
    assert snapshot(tree) == before


def test_the_csv_has_one_row_per_response_and_a_column_per_language(
    tree: Path, tmp_path: Path
) -> None:
    sheet = tmp_path / "responses.csv"
    export(tree, sheet)
    rows = read_csv(sheet)
    assert list(rows[0]) == ["file", "response", "pt", "en", "fr", "sw"]
    first = load(tree).responses[0]
    assert rows[0]["file"] == first.path and rows[0]["response"] == first.name
    assert rows[0]["en"] == first.texts["en"].text


def test_an_edited_cell_lands_in_its_file_and_line_only(tree: Path, tmp_path: Path) -> None:
    target = load(tree).responses[-1]
    line = target.texts["fr"].line
    sheet = tmp_path / "responses.csv"
    export(tree, sheet)
    rows = read_csv(sheet)
    new_text = "Texte corrigé par la traductrice : écrivez PERSONNE."
    for row in rows:
        if row["response"] == target.name:
            row["fr"] = new_text
    write_csv(sheet, rows)
    before = snapshot(tree)

    out = io.StringIO()
    main_import(tree, sheet, out)

    after = snapshot(tree)
    assert [rel for rel in before if before[rel] != after[rel]] == [target.path]
    diff = changed_lines(before[target.path], after[target.path])
    assert diff == [(line, f'  - text: "{new_text}"')]
    assert f"{target.path}:{line}: {target.name} [fr] changed" in out.getvalue()
    assert load(tree).responses[-1].texts["fr"].text == new_text


def test_an_edited_xlsx_cell_lands_in_the_canned_replies(tree: Path, tmp_path: Path) -> None:
    reply = load(tree).canned[0]
    sheet = tmp_path / "responses.xlsx"
    export(tree, sheet)
    book = load_workbook(sheet)
    page = book.active
    header = [cell.value for cell in page[1]]
    for row in page.iter_rows(min_row=2):
        if (
            row[header.index("response")].value == reply.name
            and row[header.index("file")].value == "data/canned_replies.yml"
        ):
            row[header.index("sw")].value = "Habari, mimi ni mshauri."
    book.save(sheet)
    before = snapshot(tree)

    result = import_rows(tree, read_table(sheet))

    after = snapshot(tree)
    assert [c.path for c in result.changes] == ["data/canned_replies.yml"]
    diff = changed_lines(before["data/canned_replies.yml"], after["data/canned_replies.yml"])
    assert diff == [(reply.texts["sw"].line, '    sw: "Habari, mimi ni mshauri."')]


def test_a_missing_translation_filled_in_the_sheet_becomes_a_variation(
    tree: Path, tmp_path: Path
) -> None:
    target = load(tree).responses[0]
    path = tree / target.path
    original = path.read_bytes()
    sw_line = target.texts["sw"].line
    lines = original.decode().splitlines(keepends=True)
    # Remove the Swahili variation: its text line and the 4 condition lines below it.
    path.write_text("".join(lines[: sw_line - 1] + lines[sw_line + 4 :]), encoding="utf-8")
    assert "sw" not in load(tree).responses[0].texts

    sheet = tmp_path / "responses.csv"
    rows = [
        {
            "file": target.path,
            "response": target.name,
            **{lang: t.text for lang, t in target.texts.items()},
        }
    ]
    write_csv(sheet, rows)
    import_rows(tree, read_table(sheet))

    assert path.read_bytes() == original


def test_an_empty_cell_never_deletes_a_translation(tree: Path, tmp_path: Path) -> None:
    target = load(tree).responses[0]
    sheet = tmp_path / "responses.csv"
    write_csv(
        sheet,
        [{"file": target.path, "response": target.name, "pt": "", "en": "", "fr": "", "sw": ""}],
    )
    before = snapshot(tree)
    result = import_rows(tree, read_table(sheet))
    assert snapshot(tree) == before
    assert all(note.severity == "warning" for note in result.notes)
    assert len(result.notes) == 4


def test_a_renamed_response_is_reported_and_not_written(tree: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "responses.csv"
    write_csv(
        sheet,
        [
            {
                "file": "bot/general.yml",
                "response": "utter_hello",
                "pt": "Olá",
                "en": "Hi",
                "fr": "Salut",
                "sw": "Habari",
            }
        ],
    )
    before = snapshot(tree)
    out = io.StringIO()
    status = main_import(tree, sheet, out)
    assert status == 1
    assert "there is no such response in bot/general.yml" in out.getvalue()
    assert snapshot(tree) == before


def test_import_then_runs_the_check(tree: Path, tmp_path: Path) -> None:
    target = load(tree).responses[0]
    sheet = tmp_path / "responses.csv"
    write_csv(
        sheet,
        [
            {
                "file": target.path,
                "response": target.name,
                **{lang: t.text for lang, t in target.texts.items()},
                "en": "á" * 250,
            }
        ],
    )
    out = io.StringIO()
    status = main_import(tree, sheet, out)
    assert status == 1
    assert f"{target.name} [en] needs 4 SMS segments (UCS-2 because of 'á')" in out.getvalue()
