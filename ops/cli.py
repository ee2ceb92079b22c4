"""The `hotline` command: run, train, triage, shell, eval, content, and operator tasks."""

from __future__ import annotations

import argparse
import sys
import time


def _run(args: argparse.Namespace) -> int:
    from ops.launcher import run

    return run()


def _train(args: argparse.Namespace) -> int:
    from ops.training import train

    train(force=args.force)
    return 0


def _triage(args: argparse.Namespace) -> int:
    from ops.triage import main

    return main(sys.stdin, sys.stdout)


def _shell(args: argparse.Namespace) -> int:
    from ops.shell import main

    return main(args.language)


def _eval(args: argparse.Namespace) -> int:
    from ops.evaluation import main

    argv = ["--calibrate"] if args.calibrate else []
    argv += ["--tuning-only"] if args.tuning_only else []
    return main(argv + (["--folds", str(args.folds)] if args.folds else []))


def _dlq(args: argparse.Namespace) -> int:
    from channels import dlq
    from hotline.settings import get_settings
    from hotline.store import connect

    db = connect(get_settings())
    if args.action == "list":
        for entry in dlq.list_dead(db):
            print(entry)
        return 0
    print(f"replayed {dlq.replay(db, args.entry)} message(s)")
    return 0


def _backlog(args: argparse.Namespace) -> int:
    from channels.worker import backlog_now
    from hotline.settings import get_settings
    from hotline.store import connect

    figures = backlog_now(connect(get_settings()))
    unread = "?" if figures.unread is None else str(figures.unread)
    print(
        f"inbound: {figures.waiting} message(s) waiting for an answer "
        f"({figures.in_hand} in a worker's hands, {unread} not read yet), "
        f"the oldest for {figures.oldest_age:.0f} s"
    )
    return 0


def _purge(args: argparse.Namespace) -> int:
    from hotline.settings import get_settings
    from hotline.store import connect
    from referral.privacy import purge

    units = {"d": 86400, "h": 3600}
    seconds = int(args.older_than[:-1]) * units[args.older_than[-1]]
    print(f"purged {purge(connect(get_settings()), seconds)} closed case(s)")
    return 0


def _counsellor(args: argparse.Namespace) -> int:
    from hotline.settings import get_settings
    from hotline.store import connect
    from referral import accounts
    from referral.console import sessions, trail

    db = connect(get_settings())
    try:
        if args.action == "add":
            if not args.name:
                raise accounts.AccountError("give the new counsellor's NAME")
            # A password piped in is used as given; on a terminal one is generated.
            given = sys.stdin.readline().strip() if not sys.stdin.isatty() else ""
            password = given or accounts.generate_password()
            accounts.add(db, args.name, args.role, password, args.language)
            trail.account_event(
                db,
                "account_added",
                actor="cli",
                account=args.name.lower(),
                at=time.time(),
                role=args.role,
            )
            if not given:
                print(f"password for {args.name.lower()} (shown once): {password}")
            print(f"added {args.role} {args.name.lower()}")
        elif args.action == "list":
            for c in accounts.all_counsellors(db):
                print(f"{c.name:<20} {c.role:<11} {'active' if c.active else 'disabled'}")
        elif args.action in ("disable", "enable"):
            accounts.set_active(db, args.name, args.action == "enable")
            if args.action == "disable":
                # As from the console: a disabled account's open sessions end now.
                sessions.end_all(db, args.name.lower())
            action: trail.AccountAction = (
                "account_disabled" if args.action == "disable" else "account_enabled"
            )
            trail.account_event(db, action, actor="cli", account=args.name.lower(), at=time.time())
            print(f"{args.action}d {args.name}")
    except accounts.AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _undelivered(args: argparse.Namespace) -> int:
    """Undelivered replies and dead letters, with the reason; never a number or a text."""
    import re

    from hotline.settings import get_settings
    from hotline.store import connect
    from referral import failures
    from referral.console.casework import reason_words
    from referral.console.i18n import translator

    db, words = connect(get_settings()), translator("en")
    try:
        if args.action == "list":
            replies = failures.list_undelivered(db)
            print(f"undelivered replies: {len(replies)} (newest first)")
            for r in replies:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.at))
                why = reason_words(r.reason, words)
                then = f"not replayable: {r.not_replayable}" if r.not_replayable else "replayable"
                print(
                    f"  {r.id}  {when}  conversation {r.conversation_id}  case {r.case_id or '-'}"
                    f"  {r.source} {r.channel}  {r.reason}: {why}  [{then}]"
                )
            dead = failures.list_dead(db)
            print(f"dead letters: {len(dead)} (oldest first, all replayable)")
            for d in dead:
                print(
                    f"  {d.id}  {d.origin}  conversation {d.conversation_id}  case "
                    f"{d.case_id or '-'}  {d.source or '-'}  error: {d.error}"
                )
            return 0
        if not args.id:
            print("error: give the ID shown by `hotline undelivered`", file=sys.stderr)
            return 2
        if re.fullmatch(r"\d+-\d+", args.id):  # a stream id: a dead letter
            if args.action == "dismiss":
                print("error: a dead letter is replayed, not dismissed", file=sys.stderr)
                return 2
            print(f"replayed {failures.replay_dead(db, args.id)} dead letter(s)")
        elif args.action == "replay":
            print(f"queued {failures.replay_undelivered(db, args.id, 'cli')} line(s) again")
        else:
            failures.dismiss_undelivered(db, args.id, "cli")
            print(f"dismissed {args.id}")
    except failures.NotFound:
        print(f"error: nothing undelivered or dead-lettered is called {args.id}", file=sys.stderr)
        return 1
    except failures.NotReplayable as refusal:
        print(f"error: {args.id} cannot be sent again: {refusal.reason}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    undelivered = commands.add_parser(
        "undelivered", help="undelivered replies and dead letters: list, replay ID, dismiss ID"
    )
    undelivered.add_argument(
        "action", nargs="?", default="list", choices=["list", "replay", "dismiss"]
    )
    undelivered.add_argument("id", nargs="?", help="a reply's record id or a dead letter's id")
    undelivered.set_defaults(func=_undelivered)
    commands.add_parser("run", help="start every service (what `make run` calls)").set_defaults(
        func=_run
    )
    train = commands.add_parser("train", help="train the model if its inputs changed")
    train.add_argument("--force", action="store_true")
    train.set_defaults(func=_train)
    commands.add_parser("triage", help="JSON lines in, language/intent/risk out").set_defaults(
        func=_triage
    )
    shell = commands.add_parser("shell", help="chat with the bot in the terminal")
    shell.add_argument("--language", choices=["pt", "en", "fr", "sw"], default="pt")
    shell.set_defaults(func=_shell)
    evaluate = commands.add_parser("eval", help="blind figures first, then the tuning sets")
    evaluate.add_argument(
        "--calibrate",
        action="store_true",
        help="choose the risk thresholds on the tuning sets (never the blind set)",
    )
    evaluate.add_argument(
        "--folds",
        type=int,
        default=0,
        help="with --calibrate: also read every training example out of fold (k models)",
    )
    evaluate.add_argument(
        "--tuning-only",
        action="store_true",
        help="only the tuning sets, for whoever is tuning: the blind sets are not read at all",
    )
    evaluate.set_defaults(func=_eval)
    dlq = commands.add_parser("dlq", help="dead-letter messages: list or replay")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("entry", nargs="?", help="replay only this entry id")
    dlq.set_defaults(func=_dlq)
    commands.add_parser(
        "backlog", help="people's messages waiting for an answer: how many, the oldest's wait"
    ).set_defaults(func=_backlog)
    purge = commands.add_parser("purge", help="erase closed cases past retention")
    purge.add_argument("--older-than", default="90d", help="e.g. 90d or 12h")
    purge.set_defaults(func=_purge)
    import content

    content.register(commands)
    counsellor = commands.add_parser("counsellor", help="counsellor accounts")
    counsellor.add_argument("action", choices=["add", "list", "disable", "enable"])
    counsellor.add_argument("name", nargs="?")
    counsellor.add_argument("--role", choices=["counsellor", "supervisor"], default="counsellor")
    counsellor.add_argument("--language", choices=["pt", "en"], default="pt")
    counsellor.set_defaults(func=_counsellor)
    return parser


# The operator's commands: in dev they log in to `make run`'s Redis as its `ops` user.
_OPERATOR = (_dlq, _backlog, _purge, _counsellor, _undelivered)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func in _OPERATOR:
        import os

        from ops.launcher import operator_login

        os.environ.update(operator_login(os.environ))
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
