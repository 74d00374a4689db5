"""E-mail reminder digests (`python -m tracker remind`): per person, the advisees short of the assessment plan
this term, the self-assessments waiting for their review and the goals due; at most one digest per person and
day (the key of `reminder_sends`), each send recorded there and in the audit log."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pandas as pd

from data_models import Framework, Role
from tracker.access.policy import Viewer
from tracker.analysis import overdue
from tracker.core.config import settings
from tracker.mail import smtp
from tracker.plans import plan_queries
from tracker.storage import database
from tracker.storage.database import Cursor

ACTOR = "remind"  # the audit log's actor of every send
SYSTEM = Viewer(ACTOR, "Reminders", frozenset({Role.coordinator}))  # reads the whole program to sort it by person
LISTED = 10  # lines of each kind in one digest; the rest are counted


def goals_due(goals: pd.DataFrame, person_id: str, fw: Framework) -> list[str]:
    """One line per goal due for this person, from the program's current goals (plan_queries.learner_goals): a
    learner's own goals of open plans not met whose term is the learner's current term or has passed (overdue
    first), and an advisor's advisees' goals that wait for their agreement."""
    lines = []
    order = {t: i for i, t in enumerate(fw.term_ids)}
    for g in goals[(goals["learner_id"] == person_id) & goals["plan_open"]].to_dict("records"):
        now = order.get(g["assessed_term"], -1) if isinstance(g["assessed_term"], str) else -1
        if g["status"] == "overdue" or (g["status"] == "open" and order.get(g["by_term"], len(order)) <= now):
            lines.append(f"{g['competency_name']}: {g['status_words']}")
    waiting = plan_queries.waiting_for_agreement(goals, person_id)
    for g in waiting.to_dict("records"):
        lines.append(f"{g['learner_name']}, {g['competency_name']}: to agree ({g['agreement']})")
    return lines


@dataclass(frozen=True)
class Digest:
    person_id: str
    name: str
    email: str
    items: int
    subject: str
    body: str


@dataclass(frozen=True)
class Outcome:
    digest: Digest
    result: str  # sent | failed | would send | already sent | left sending | claimed elsewhere
    error: str = ""


def recipients(cur: Cursor) -> pd.DataFrame:
    """People who may get a digest: with an e-mail address and an account that is not disabled."""
    return cur.execute(
        """
        WITH enabled AS (SELECT person_id FROM accounts GROUP BY person_id HAVING bool_or(NOT disabled))
        SELECT id, name, email FROM staff WHERE trim(email) <> '' AND id IN (SELECT person_id FROM enabled)
        UNION ALL
        SELECT id, name, email FROM learners WHERE trim(email) <> '' AND status = 'active'
            AND id IN (SELECT person_id FROM enabled)
        ORDER BY id"""
    ).df()


def digests(cur: Cursor, fw: Framework, today: dt.date) -> list[Digest]:
    """Today's digest for everyone who may get one and has something in it."""
    short = overdue.learners_short(cur, SYSTEM, fw, today=today)
    per_learner = overdue.waiting_per_learner(cur, SYSTEM, fw, today=today)
    goals = plan_queries.learner_goals(cur, SYSTEM, fw, today=today)
    out = []
    for person in recipients(cur).to_dict("records"):
        mine_short = short[short["advisor_id"] == person["id"]]
        mine_waiting = per_learner[per_learner["advisor_id"] == person["id"]]
        due = goals_due(goals, person["id"], fw)
        if mine_short.empty and mine_waiting.empty and not due:
            continue
        out.append(_digest(person, mine_short, mine_waiting, due, today))
    return out


def _digest(person: dict, short: pd.DataFrame, waiting: pd.DataFrame, goals: list[str], today: dt.date) -> Digest:
    parts, sections = [], [f"Hello {person['name']},", "", f"What is waiting for you in Milestone on {today:%Y-%m-%d}:"]
    if not short.empty:
        parts.append(f"ratings due for {len(short)} advisee{'s' if len(short) != 1 else ''}")
        sections += ["", f"Advisees to rate this term ({len(short)}):"]
        sections += [
            f"- {r['learner_name']} ({r['learner_id']}, {r['term']}): {r['missing']}"
            for _, r in short.head(LISTED).iterrows()
        ]
        sections += _more(len(short))
    if not waiting.empty:
        n = int(waiting["competencies"].sum())
        parts.append(f"{n} self-assessment{'s' if n != 1 else ''} to review")
        sections += ["", f"Self-assessments waiting for your review ({n}), longest waiting first:"]
        sections += [
            f"- {r['learner_name']} ({r['learner_id']}): {r['competencies']} "
            f"{'competency' if r['competencies'] == 1 else 'competencies'}, waiting since "
            f"{r['waiting_since']:%Y-%m-%d} ({r['days_waiting']} days)"
            for _, r in waiting.head(LISTED).iterrows()
        ]
        sections += _more(len(waiting))
    if goals:
        parts.append(f"{len(goals)} goal{'s' if len(goals) != 1 else ''} due")
        sections += ["", f"Goals due ({len(goals)}):", *[f"- {g}" for g in goals[:LISTED]], *_more(len(goals))]
    sections += ["", f"Open Milestone: {settings().public_url}", "", "You get at most one such reminder a day."]
    items = len(short) + int(waiting["competencies"].sum() if not waiting.empty else 0) + len(goals)
    subject = "Milestone: " + ", ".join(parts)
    return Digest(person["id"], person["name"], person["email"], items, subject, "\n".join(sections) + "\n")


def _more(n: int) -> list[str]:
    return [f"- … and {n - LISTED} more"] if n > LISTED else []


# ---- sending, each send recorded ------------------------------------------------------------------------
def _status(cur: Cursor, person_id: str, day: dt.date) -> str | None:
    row = cur.execute("SELECT status FROM reminder_sends WHERE person_id = ? AND day = ?", [person_id, day]).fetchone()
    return row[0] if row else None


def _claim(cur: Cursor, d: Digest, day: dt.date) -> str:
    """Mark today's digest of this person as going out: 'claimed' when this run may send it, else why not."""

    def work(c: Cursor) -> str:
        status = _status(c, d.person_id, day)
        at = database.now()
        if status is None:
            c.execute(
                "INSERT INTO reminder_sends (person_id, day, email, status, items, attempts, first_tried_at, "
                "last_tried_at) VALUES (?, ?, ?, 'sending', ?, 1, ?, ?)",
                [d.person_id, day, d.email, d.items, at, at],
            )
            return "claimed"
        if status == "failed":
            c.execute(
                "UPDATE reminder_sends SET status = 'sending', attempts = attempts + 1, last_tried_at = ?, email = ?, "
                "items = ? WHERE person_id = ? AND day = ? AND status = 'failed'",
                [at, d.email, d.items, d.person_id, day],
            )
            return "claimed"
        return "already sent" if status == "sent" else "left sending"

    try:
        return database.write(cur, work)
    except duckdb.ConstraintException:  # another run inserted the same person and day first
        return "claimed elsewhere"


def _record(cur: Cursor, d: Digest, day: dt.date, error: str | None) -> None:
    def work(c: Cursor) -> None:
        if error is None:
            c.execute(
                "UPDATE reminder_sends SET status = 'sent', sent_at = ?, error = NULL WHERE person_id = ? AND day = ?",
                [database.now(), d.person_id, day],
            )
        else:
            c.execute(
                "UPDATE reminder_sends SET status = 'failed', error = ? WHERE person_id = ? AND day = ?",
                [error, d.person_id, day],
            )
        detail = {"day": day.isoformat(), "items": d.items} | ({"error": error} if error else {})
        database.audit(c, ACTOR, "reminder sent" if error is None else "reminder failed", d.person_id, detail)

    database.write(cur, work)


def report(outcomes: list[Outcome], dry_run: bool) -> tuple[str, bool]:
    """What a run did (or, dry, would do), a line per digest with the message itself when dry; and whether no
    send failed."""
    lines = []
    for o in outcomes:
        d = o.digest
        lines.append(f"{o.result}: {d.person_id} <{d.email}> {d.subject}" + (f" ({o.error})" if o.error else ""))
        if dry_run and o.result == "would send":
            lines.append("    " + d.body.rstrip("\n").replace("\n", "\n    "))
    counts = {r: sum(o.result == r for o in outcomes) for r in dict.fromkeys(o.result for o in outcomes)}
    summary = ", ".join(f"{n} {r}" for r, n in counts.items()) or "nobody has anything waiting"
    lines.append(f"Reminders{' (dry run: nothing sent, nothing recorded)' if dry_run else ''}: {summary}.")
    return "\n".join(lines), not counts.get("failed")


Send = Callable[[str, str, str], None]


def run(
    cur: Cursor, fw: Framework, today: dt.date | None = None, dry_run: bool = False, send: Send | None = None
) -> list[Outcome]:
    """Send today's digests (or, with `dry_run`, say what would go out and write nothing). A digest already sent
    today is not sent again; one that failed is tried again; one left 'sending' by a run that stopped mid-send
    is not sent again (it may have gone out)."""
    today = today or dt.date.today()
    send = send or smtp.send
    if not dry_run and not smtp.configured():
        raise smtp.MailError(
            "E-mail is not set up: set TRACKER_SMTP_HOST and TRACKER_MAIL_FROM (see the README), "
            "or run with --dry-run to see what would be sent."
        )
    outcomes = []
    for d in digests(cur, fw, today):
        if dry_run:
            status = _status(cur, d.person_id, today)
            result = {None: "would send", "failed": "would send", "sent": "already sent"}.get(status, "left sending")
            outcomes.append(Outcome(d, result))
            continue
        claimed = _claim(cur, d, today)
        if claimed != "claimed":
            outcomes.append(Outcome(d, claimed))
            continue
        try:
            send(d.email, d.subject, d.body)
        except smtp.MailError as exc:
            _record(cur, d, today, str(exc))
            outcomes.append(Outcome(d, "failed", str(exc)))
        else:
            _record(cur, d, today, None)
            outcomes.append(Outcome(d, "sent"))
    return outcomes
