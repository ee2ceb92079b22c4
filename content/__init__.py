"""Content editors' tools: `hotline content check|report|export|import|release`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotline.language import LANGUAGES

__all__ = ["LANGUAGES", "LANGUAGE_NAMES", "register"]

# How an editor's message names each of the core's languages.
LANGUAGE_NAMES = {"pt": "Portuguese", "en": "English", "fr": "French", "sw": "Swahili"}


def _root(args: argparse.Namespace) -> Path:
    from hotline.settings import PROJECT_ROOT

    return Path(args.root) if args.root else PROJECT_ROOT


def _check(args: argparse.Namespace) -> int:
    from content.check import check, print_problems

    return print_problems(check(_root(args)), sys.stdout)


def _report(args: argparse.Namespace) -> int:
    from content.report import main

    return main(_root(args), Path(args.html) if args.html else None, sys.stdout)


def _export(args: argparse.Namespace) -> int:
    from content.spreadsheet import export

    count = export(_root(args), Path(args.file))
    print(f"wrote {count} rows to {args.file}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from content.spreadsheet import main_import

    return main_import(_root(args), Path(args.file), sys.stdout)


def _release(args: argparse.Namespace) -> int:
    from content.release import main

    return main(_root(args), sys.stdout, mark=args.mark, since=args.since)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `content …` to the `hotline` command line."""
    content = subparsers.add_parser(
        "content", help="check, report, translate (spreadsheet) and release the bot's content"
    )
    content.add_argument("--root", help="project folder to read (default: this project)")
    actions = content.add_subparsers(dest="content_command", required=True)
    actions.add_parser(
        "check", help="find what is missing, too long or wrong (exit 1 on errors)"
    ).set_defaults(func=_check)
    report = actions.add_parser("report", help="coverage per language, also as content-report.html")
    report.add_argument(
        "--html", help="where to write the HTML report (default: content-report.html)"
    )
    report.set_defaults(func=_report)
    export = actions.add_parser(
        "export", help="write the responses to a .csv or .xlsx for translators"
    )
    export.add_argument("file")
    export.set_defaults(func=_export)
    load = actions.add_parser(
        "import", help="write a translated .csv or .xlsx back into the YAML, then check"
    )
    load.add_argument("file")
    load.set_defaults(func=_import)
    release = actions.add_parser("release", help="what changed since the last content release")
    release.add_argument(
        "--since", help="compare with this git tag or commit instead of the latest release"
    )
    release.add_argument(
        "--mark",
        action="store_true",
        help="record this content as released (var/last-release.json)",
    )
    release.set_defaults(func=_release)
