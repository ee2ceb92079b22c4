"""Translators' round trip: export to a spreadsheet, edit a cell, import; only that text changes."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from content.model import load
from content.spreadsheet import (
    COLUMNS,
    export,
    import_rows,
    main_import,
    read_table,
    row_name,
    translatable,
)
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
    assert count == len(translatable(load(tree)))
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


def test_every_text_a_person_can_receive_is_in_the_sheet_once(tree: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "responses.csv"
    export(tree, sheet)
    rows = read_csv(sheet)
    keys = [(row["file"], row["response"]) for row in rows]
    assert len(keys) == len(set(keys))
    files = {row["file"] for row in rows}
    assert {
        "data/handoff.yml",
        "data/canned_replies.yml",
        "data/keywords.yml",
        "data/services.yml",
    } <= files
    assert any(f.startswith("bot/") for f in files)
    by_key = {(row["file"], row["response"]): row for row in rows}
    assert by_key[("data/handoff.yml", "utter_ask_consent")]["pt"]
    assert by_key[("data/keywords.yml", "opted_out")]["en"]
    greeting = by_key[("data/canned_replies.yml", "greeting/title")]
    assert (
        greeting["en"] and greeting["en"] != by_key[("data/canned_replies.yml", "greeting")]["en"]
    )
    assert by_key[("data/services.yml", "linha-verde/name")]["fr"].startswith("Linha Verde")


@pytest.mark.parametrize(
    ("rel", "name", "language", "new_text"),
    [
        ("data/keywords.yml", "opted_out", "fr", "Vous ne recevrez plus rien. Écrivez COMMENCER."),
        ("data/services.yml", "linha-verde/name", "sw", "Linha Verde (simu ya bure)"),
        ("data/canned_replies.yml", "greeting/title", "fr", "Dire bonjour"),
        ("data/handoff.yml", "utter_safety_tip", "en", "Delete these messages after reading."),
    ],
)
def test_an_edited_cell_of_any_file_lands_on_its_line_only(
    tree: Path, tmp_path: Path, rel: str, name: str, language: str, new_text: str
) -> None:
    item = next(i for i in translatable(load(tree)) if i.path == rel and row_name(i) == name)
    line = item.texts[language].line
    sheet = tmp_path / "responses.csv"
    export(tree, sheet)
    rows = read_csv(sheet)
    for row in rows:
        if row["file"] == rel and row["response"] == name:
            row[language] = new_text
    write_csv(sheet, rows)
    before = snapshot(tree)

    result = import_rows(tree, read_table(sheet))

    after = snapshot(tree)
    assert [path for path in before if before[path] != after[path]] == [rel]
    diff = changed_lines(before[rel], after[rel])
    assert len(diff) == 1 and diff[0][0] == line and new_text in diff[0][1]
    assert [(c.path, c.line, c.response, c.language) for c in result.changes] == [
        (rel, line, name, language)
    ]
    changed = next(i for i in translatable(load(tree)) if i.path == rel and row_name(i) == name)
    assert changed.texts[language].text == new_text


FORMULAS = ['=HYPERLINK("http://x")', "+258 84 000", "-1 dia", "@SUM(A1)", "'=already quoted"]


def put_texts(tree: Path, texts: list[str]) -> tuple[str, str]:
    """Make the first response's texts start like formulas; returns its file and name."""
    target = load(tree).responses[0]
    path = tree / target.path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for language, text in zip(("pt", "en", "fr", "sw"), texts, strict=True):
        number = target.texts[language].line
        indent = lines[number - 1][: lines[number - 1].index("- text:")]
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        lines[number - 1] = f'{indent}- text: "{quoted}"\n'
    path.write_text("".join(lines), encoding="utf-8")
    assert [load(tree).responses[0].texts[lang].text for lang in ("pt", "en", "fr", "sw")] == texts
    return target.path, target.name


def test_a_csv_cell_that_looks_like_a_formula_is_written_as_text(
    tree: Path, tmp_path: Path
) -> None:
    rel, name = put_texts(tree, FORMULAS[:4])
    sheet = tmp_path / "responses.csv"
    export(tree, sheet)
    row = next(r for r in read_csv(sheet) if r["file"] == rel and r["response"] == name)
    # A spreadsheet reads a cell that starts with an apostrophe as text, never as a formula.
    assert [row[lang] for lang in ("pt", "en", "fr", "sw")] == [f"'{t}" for t in FORMULAS[:4]]
    before = snapshot(tree)
    out = io.StringIO()
    main_import(tree, sheet, out)
    assert "0 text(s) changed" in out.getvalue()
    assert snapshot(tree) == before
    table = read_table(sheet)
    got = next(r for r in table if r["file"] == rel and r["response"] == name)
    assert [got[lang] for lang in ("pt", "en", "fr", "sw")] == FORMULAS[:4]


def test_an_apostrophe_before_a_formula_sign_survives_the_round_trip(
    tree: Path, tmp_path: Path
) -> None:
    texts = [FORMULAS[4], "'plain quote", "''=two", "ok"]
    rel, name = put_texts(tree, texts)
    sheet = tmp_path / "responses.csv"
    export(tree, sheet)
    row = next(r for r in read_csv(sheet) if r["file"] == rel and r["response"] == name)
    assert row["pt"] == "''=already quoted" and row["en"] == "'plain quote"
    got = next(r for r in read_table(sheet) if r["file"] == rel and r["response"] == name)
    assert [got[lang] for lang in ("pt", "en", "fr", "sw")] == texts


def test_an_xlsx_cell_that_looks_like_a_formula_is_a_string_cell(
    tree: Path, tmp_path: Path
) -> None:
    rel, name = put_texts(tree, FORMULAS[:4])
    sheet = tmp_path / "responses.xlsx"
    export(tree, sheet)
    page = load_workbook(sheet).active
    header = [cell.value for cell in page[1]]
    row = next(
        r
        for r in page.iter_rows(min_row=2)
        if r[header.index("file")].value == rel and r[header.index("response")].value == name
    )
    cells = [row[header.index(lang)] for lang in ("pt", "en", "fr", "sw")]
    assert [cell.value for cell in cells] == FORMULAS[:4]
    assert all(cell.data_type == "s" and cell.quotePrefix for cell in cells)
    before = snapshot(tree)
    out = io.StringIO()
    main_import(tree, sheet, out)
    assert "0 text(s) changed" in out.getvalue()
    assert snapshot(tree) == before


@pytest.mark.parametrize("named", ["bot/../outside.yml", "bot/link.yml", "/tmp/outside.yml", ""])
def test_a_file_outside_the_content_folders_is_refused(
    tree: Path, tmp_path: Path, named: str
) -> None:
    outside = tree / "outside.yml"
    original = 'version: "3.1"\nresponses:\n  utter_greet:\n  - text: "Olá"\n'
    outside.write_text(original, encoding="utf-8")
    (tree / "bot" / "link.yml").symlink_to(outside)
    if named.startswith("/tmp/"):
        named = str(outside)
    sheet = tmp_path / "responses.csv"
    write_csv(
        sheet,
        [{"file": named, "response": "utter_greet", "pt": "Mudado", "en": "", "fr": "", "sw": ""}],
    )
    out = io.StringIO()
    status = main_import(tree, sheet, out)
    assert status == 1
    assert f"1 row(s) name file '{named}', which is not a file of texts here" in out.getvalue()
    assert outside.read_text(encoding="utf-8") == original


def test_the_release_summary_lists_every_unverified_service() -> None:
    from content.release import snapshot, summary
    from hotline.settings import PROJECT_ROOT

    new = snapshot(PROJECT_ROOT)
    lines = summary(None, new) + summary(new, new)
    pending = [sid for sid, s in new["services"].items() if s.get("verified") is not True]
    assert pending, "the directory has unverified entries until an editor calls them"
    for sid in pending:
        assert sum(line.startswith(f"- {sid}:") for line in lines) == 2
