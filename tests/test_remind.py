"""Reminder digests against a real SMTP server on 127.0.0.1: one per person and day, dry runs send and record
nothing, every send is recorded, a failed send is tried again without sending twice."""

import datetime as dt
import socket

import duckdb
import pytest

from tests.test_account_links import smtp  # noqa: F401 - the real SMTP server fixture
from tests.test_assessment_plan import TODAY, program  # noqa: F401 - the hand-made program fixture
from tracker import cli
from tracker.accounts import admin
from tracker.mail import reminders
from tracker.mail.smtp import MailError
from tracker.plans import plan_queries


def _sends(cur) -> list[tuple]:  # type: ignore[no-untyped-def]
    return cur.execute(
        "SELECT person_id, day, status, attempts, items FROM reminder_sends ORDER BY person_id"
    ).fetchall()


def _audit(cur, action: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        r[0] for r in cur.execute("SELECT target FROM audit_log WHERE action = ? ORDER BY seq", [action]).fetchall()
    ]


def test_each_advisor_with_work_gets_one_digest_of_it(program, framework, smtp):  # noqa: F811
    outcomes = reminders.run(program, framework, today=TODAY)
    assert [(o.digest.person_id, o.result) for o in outcomes] == [("A001", "sent"), ("A002", "sent")]
    by_to = {m["To"]: m for m in smtp.messages}
    assert set(by_to) == {"ada@staff.example.org", "bo@staff.example.org"}
    ada = by_to["ada@staff.example.org"]
    assert ada["Subject"] == "Milestone: ratings due for 2 advisees, 3 self-assessments to review"
    body = ada.get_content()
    assert "- Lou Two (L2, T2): no advisor or committee rating yet this term" in body
    assert "- Lena One (L1): 2 competencies, waiting since 2026-01-10 (142 days)" in body
    assert "https://milestone.example.org" in body
    assert "Lena One (L1, T2): short of the plan" in body
    bo = by_to["bo@staff.example.org"].get_content()
    assert "Lee Three" in bo and "Lena" not in bo and "Lou" not in bo  # only Bo's advisees
    assert _sends(program) == [("A001", TODAY, "sent", 1, 5), ("A002", TODAY, "sent", 1, 1)]
    assert _audit(program, "reminder sent") == ["A001", "A002"]


def test_a_second_run_the_same_day_sends_nothing_and_the_next_day_sends_again(program, framework, smtp):  # noqa: F811
    reminders.run(program, framework, today=TODAY)
    again = reminders.run(program, framework, today=TODAY)
    assert {o.result for o in again} == {"already sent"} and len(smtp.messages) == 2
    tomorrow = reminders.run(program, framework, today=TODAY + dt.timedelta(days=1))
    assert {o.result for o in tomorrow} == {"sent"} and len(smtp.messages) == 4
    assert len(_sends(program)) == 4


def test_the_database_refuses_a_second_digest_for_a_person_and_day(program, framework, smtp):  # noqa: F811
    reminders.run(program, framework, today=TODAY)
    with pytest.raises(duckdb.ConstraintException):
        program.execute(
            "INSERT INTO reminder_sends (person_id, day, email, status, items, attempts, first_tried_at, "
            "last_tried_at) VALUES ('A001', ?, 'x@example.org', 'sending', 1, 1, now(), now())",
            [TODAY],
        )


def test_a_dry_run_sends_and_records_nothing(program, framework, smtp, capsys):  # noqa: F811
    outcomes = reminders.run(program, framework, today=TODAY, dry_run=True)
    assert [(o.digest.person_id, o.result) for o in outcomes] == [("A001", "would send"), ("A002", "would send")]
    assert smtp.messages == [] and _sends(program) == [] and _audit(program, "reminder sent") == []


def test_the_command_prints_what_it_would_send_and_what_it_sent(db_path, smtp, capsys):  # noqa: F811
    assert cli.main(["remind", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "would send: A001 <a001@staff.milestone.example.org> Milestone: ratings due for" in dry
    assert "Hello " in dry and "(dry run: nothing sent, nothing recorded)" in dry
    assert smtp.messages == []
    assert cli.main(["remind"]) == 0
    sent = capsys.readouterr().out
    # the sample's disabled advisor (a008) has advisees short of the plan, and gets nothing
    assert "sent: A001" in sent and "A008" not in dry and "A008" not in sent
    assert len(smtp.messages) == sum(line.startswith("sent: ") for line in sent.splitlines()) >= 7
    assert {m["To"] for m in smtp.messages} >= {"a001@staff.milestone.example.org"}
    assert cli.main(["remind"]) == 0
    assert "already sent: A001" in capsys.readouterr().out


def test_people_without_an_email_or_with_a_disabled_account_get_none(program, framework, smtp):  # noqa: F811
    admin.set_disabled(program, "ada", True, "test")
    program.execute("UPDATE staff SET email = '' WHERE id = 'A002'")
    assert reminders.run(program, framework, today=TODAY) == [] and smtp.messages == []


def test_people_without_an_account_get_none(program, framework, smtp):  # noqa: F811
    program.execute("DELETE FROM accounts WHERE person_id = 'A002'")
    assert [o.digest.person_id for o in reminders.run(program, framework, today=TODAY)] == ["A001"]


def test_a_failed_send_is_recorded_and_tried_again_by_the_next_run_without_sending_twice(
    program,  # noqa: F811
    framework,
    smtp,  # noqa: F811
    monkeypatch,
):
    with socket.socket() as s:  # a port nobody listens on: the server is down
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("TRACKER_SMTP_PORT", str(dead))
    first = reminders.run(program, framework, today=TODAY)
    assert {o.result for o in first} == {"failed"} and "127.0.0.1" in first[0].error
    assert [r[2:4] for r in _sends(program)] == [("failed", 1), ("failed", 1)]
    assert _audit(program, "reminder failed") == ["A001", "A002"]
    monkeypatch.setenv("TRACKER_SMTP_PORT", str(smtp.port))
    second = reminders.run(program, framework, today=TODAY)
    assert {o.result for o in second} == {"sent"} and len(smtp.messages) == 2
    assert [r[2:4] for r in _sends(program)] == [("sent", 2), ("sent", 2)]
    assert reminders.run(program, framework, today=TODAY)[0].result == "already sent" and len(smtp.messages) == 2


def test_a_send_left_unfinished_is_not_sent_again(program, framework, smtp):  # noqa: F811
    program.execute(
        "INSERT INTO reminder_sends (person_id, day, email, status, items, attempts, first_tried_at, last_tried_at) "
        "VALUES ('A001', ?, 'ada@staff.example.org', 'sending', 5, 1, now(), now())",
        [TODAY],
    )
    results = {o.digest.person_id: o.result for o in reminders.run(program, framework, today=TODAY)}
    assert results == {"A001": "left sending", "A002": "sent"}
    assert [m["To"] for m in smtp.messages] == ["bo@staff.example.org"]


def test_without_email_set_up_only_a_dry_run_works(program, framework, monkeypatch):  # noqa: F811
    monkeypatch.delenv("TRACKER_SMTP_HOST", raising=False)
    with pytest.raises(MailError, match="--dry-run"):
        reminders.run(program, framework, today=TODAY)
    assert len(reminders.run(program, framework, today=TODAY, dry_run=True)) == 2


def test_goals_due_add_a_section_to_the_digest(program, framework, smtp, monkeypatch):  # noqa: F811
    goals = plan_queries.learner_goals(program, reminders.SYSTEM, framework, today=TODAY)
    assert goals.empty and reminders.goals_due(goals, "L1", framework) == []
    monkeypatch.setattr(
        reminders, "goals_due", lambda goals, person, fw: ["Study design: level 3 by T4"] if person == "L1" else []
    )
    outcomes = {o.digest.person_id: o for o in reminders.run(program, framework, today=TODAY)}
    assert outcomes["L1"].digest.subject == "Milestone: 1 goal due"
    assert "Goals due (1):\n- Study design: level 3 by T4" in outcomes["L1"].digest.body


@pytest.mark.embedded_only
def test_while_the_app_runs_the_command_has_the_app_send_them(db_path, tmp_path, smtp):  # noqa: F811
    """The running app holds the database: `remind` hands the run to it (a scheduler need not stop the app), and a
    stranger without the app's secret cannot ask for one."""
    import json
    import urllib.error
    import urllib.request

    from tests.test_commands_through_app import serving
    from tests.test_robustness import tracker
    from tracker.storage import control

    with serving(db_path, tmp_path / "streamlit.log") as port:
        dry = tracker("remind", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would send: A001" in dry.stdout and smtp.messages == []
        run = tracker("remind")
        assert run.returncode == 0, run.stderr
        assert "sent: A001" in run.stdout and len(smtp.messages) == run.stdout.count("\nsent: ") + 1
        again = tracker("remind")
        assert "already sent: A001" in again.stdout and "\nsent: " not in again.stdout
        stranger = urllib.request.Request(
            f"http://127.0.0.1:{port}{control.REMIND}",
            data=json.dumps({"token": "guess", "dry_run": False}).encode(),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(stranger, timeout=30)  # noqa: S310
        assert refused.value.code == 403
    recorded = duckdb.connect(str(db_path), read_only=True)
    try:
        sent = recorded.execute("SELECT count(*) FROM reminder_sends WHERE status = 'sent'").fetchone()[0]
    finally:
        recorded.close()
    assert sent == len(smtp.messages)


def test_an_advisor_is_reminded_of_the_goals_waiting_for_their_agreement(cur, framework):
    """On the sample program: the latest version of each goal, read from goals.csv itself; a version nobody agreed
    is in its learner's advisor's digest, and an agreed one in nobody's."""
    import csv
    from pathlib import Path

    rows = list(csv.DictReader((Path(__file__).parent.parent / "sample_data" / "goals.csv").open(encoding="utf-8")))
    latest: dict[str, dict] = {}
    for row in rows:
        if row["id"] not in latest or int(row["version"]) > int(latest[row["id"]]["version"]):
            latest[row["id"]] = row
    waiting = [g for g in latest.values() if not g["agreed_by"]]
    assert waiting, "the sample holds a goal changed since it was agreed"
    advisors = dict(cur.execute("SELECT id, advisor_id FROM learners").fetchall())
    goals = plan_queries.learner_goals(cur, reminders.SYSTEM, framework, today=dt.date.today())
    for g in latest.values():
        lines = reminders.goals_due(goals, advisors[g["learner_id"]], framework)
        name = framework.competencies[g["competency_id"]].name
        named = [line for line in lines if "to agree" in line and name in line]
        assert bool(named) == (not g["agreed_by"]), (g, lines)
