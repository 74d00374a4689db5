"""`python -m tracker users ...`: accounts from the command line."""

import argparse
import getpass
from pathlib import Path

from tracker.accounts.account_links import issue_links, links_table
from tracker.accounts.admin import add_user, set_disabled, set_password
from tracker.core.config import settings
from tracker.core.errors import TrackerError
from tracker.core.text import frame_csv
from tracker.storage.database import Cursor


# ---- command line ------------------------------------------------------------------------------
def add_cli(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="manage sign-in accounts").add_subparsers(dest="users_command", required=True)
    s = users.add_parser("add", help="create an account for a learner or staff member")
    s.add_argument("username")
    s.add_argument("person_id")
    s.add_argument("--sso-only", action="store_true", help="no password: sign in only through single sign-on")
    s.set_defaults(func=_cli_add)
    s = users.add_parser("passwd", help="set an account's password and lift a lockout")
    s.add_argument("username")
    s.set_defaults(func=_cli_passwd)
    s = users.add_parser("disable", help="disable an account and end its sessions")
    s.add_argument("username")
    s.add_argument("--enable", action="store_true", help="enable it again instead")
    s.set_defaults(func=_cli_disable)
    s = users.add_parser(
        "invite",
        help="one-time links to set a password: invitations for people without an account, reset links for the "
        "others; mailed when e-mail is set up, else written as CSV to hand out",
    )
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--cohort", help="every learner of this cohort who has no account yet")
    who.add_argument("--person", action="append", help="this learner or staff member (repeat for more)")
    s.add_argument("--out", type=Path, help="write the links to hand out to this CSV file (default: the screen)")
    s.set_defaults(func=_cli_invite)


def _ask_password() -> str:
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise TrackerError("The two passwords differ; nothing was changed.")
    return first


def _db_cursor() -> Cursor:
    from tracker.records.setup import open_configured

    return open_configured(settings())[0].cursor()


def _cli_add(args: argparse.Namespace) -> int:
    cur = _db_cursor()
    add_user(cur, args.username, args.person_id, None if args.sso_only else _ask_password(), "cli")
    print(f"Account {args.username.lower()} created.")
    return 0


def _cli_passwd(args: argparse.Namespace) -> int:
    set_password(_db_cursor(), args.username.lower(), _ask_password(), "cli")
    print(f"Password of {args.username.lower()} changed.")
    return 0


def _cli_disable(args: argparse.Namespace) -> int:
    set_disabled(_db_cursor(), args.username.lower(), not args.enable, "cli")
    print(f"Account {args.username.lower()} {'enabled' if args.enable else 'disabled'}.")
    return 0


def _cli_invite(args: argparse.Namespace) -> int:
    cur = _db_cursor()
    if args.cohort:
        people = cur.execute(
            "SELECT id FROM learners WHERE cohort = ? AND id NOT IN (SELECT person_id FROM accounts) ORDER BY id",
            [args.cohort],
        ).fetchall()
        if not people and not cur.execute("SELECT 1 FROM learners WHERE cohort = ?", [args.cohort]).fetchone():
            raise TrackerError(
                f"No learner in cohort {args.cohort!r}; check the name (python -m tracker export learners)."
            )
        person_ids = [p for (p,) in people]
    else:
        person_ids = args.person
    issued = issue_links(cur, person_ids, "cli")
    mailed = sum(i.mailed for i in issued)
    table = links_table(issued)
    print(f"{len(issued)} people: {mailed} links sent by e-mail, {len(table)} to hand out or see below.")
    if not table.empty:
        text = frame_csv(table)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
            print(f"Wrote them to {args.out}; each link works once. Keep the file private and delete it after use.")
        else:
            print(text, end="")
    return 0
