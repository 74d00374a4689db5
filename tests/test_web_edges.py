"""The app at its edges: hostile text stays text on every page, exports carry no formulas, links are only links,
and what leaves by the address bar is never repeated."""

import contextlib
import csv
import datetime as dt
import io
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from data_models import Evidence
from tests.conftest import FRAMEWORK_YAML, SAMPLE, app_as, goto, read, viewer
from tracker.accounts import admin, sessions
from tracker.analysis import queries
from tracker.core.text import csv_cell, csv_value, frame_csv, is_safe_link
from tracker.framework.loading import load_framework
from tracker.records import actions, exporting
from tracker.records.setup import seed_directory
from tracker.storage import database
from tracker.storage.opening import open_database

HOSTILE = (
    "**Your session has expired.** [Sign in again](https://evil.example/login) ![i](http://evil.example/t.png) "
    '<b>bold</b> <script>alert(1)</script> :red[red] :material/warning: $x^2$ =HYPERLINK("http://evil","x")'
)
LONG = "Universal pillars for all health professions educators across every clinical and academic setting " * 4


def _unescaped(markdown: str) -> str:
    """What Markdown would still read as syntax: the text with every backslash-escaped character removed."""
    return re.sub(r"\\.", "\x00", markdown)


# The hostile text's own syntax: none of it may survive escaping (the page's own bold and links may).
SYNTAX = (
    "**Your session",
    "](",
    "![i]",
    "<b>",
    "<script>",
    ":red[",
    ":material/warning:",
    "$x^2$",
    "https://evil",
    "http://evil",
)


def _markdown_strings(at) -> list[str]:  # type: ignore[no-untyped-def]
    """Every string of the page that Streamlit renders as Markdown."""
    out: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        out += [str(e.value) for e in getattr(at, kind)]
    out += [str(m.label) for m in at.metric]
    out += [str(x.label) for x in at.expander]
    out += [str(t.label) for t in at.tabs]
    return out


@pytest.fixture
def hostile_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The sample program under a framework whose names are hostile or very long, with a hostile learner name,
    comment, reflection and evidence; signed-in viewers of every role."""
    data = yaml.safe_load(FRAMEWORK_YAML.read_text(encoding="utf-8"))
    data["name"] = HOSTILE
    data["domains"][0]["name"] = LONG[:480]
    data["domains"][1]["name"] = HOSTILE
    data["domains"][1]["competencies"][0]["name"] = HOSTILE
    data["domains"][0]["competencies"][0]["levels"][0]["descriptor"] = HOSTILE
    data["calendar"]["terms"][0]["label"] = HOSTILE
    fw_path = tmp_path / "hostile.yaml"
    fw_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    framework = load_framework(fw_path)
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    learners = (sample / "learners.csv").read_text(encoding="utf-8").splitlines()
    first = next(csv.reader([learners[1]]))
    first[1] = HOSTILE[:400]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(first)
    learners[1] = buf.getvalue().rstrip("\n")
    (sample / "learners.csv").write_text("\n".join(learners) + "\n", encoding="utf-8")
    db_file = tmp_path / "hostile.duckdb"
    db = open_database(db_file, framework, fw_path.read_text(encoding="utf-8"))
    cur = db.cursor()
    seed_directory(cur, sample, framework, "test")
    admin.create_demo_accounts(cur)
    learner_id = first[0]
    advisor_id = cur.execute("SELECT advisor_id FROM learners WHERE id = ?", [learner_id]).fetchone()[0]
    me = viewer(cur, learner_id)
    item = actions.record_evidence(
        cur,
        framework,
        me,
        learner_id,
        framework.evidence_type_ids[0],
        HOSTILE[:480],
        [next(iter(framework.competencies))],
        description=HOSTILE,
    )
    actions.record_rating(
        cur, framework, me, learner_id, next(iter(framework.competencies)), 3, "T1", HOSTILE, [item.id]
    )
    actions.record_rating(
        cur, framework, viewer(cur, advisor_id), learner_id, next(iter(framework.competencies)), 2, "T1", HOSTILE
    )
    db.close()
    monkeypatch.setenv("TRACKER_DB", str(db_file))
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(fw_path))
    return learner_id, advisor_id


def test_every_page_shows_hostile_and_long_text_as_text_for_every_role(hostile_app):
    learner_id, advisor_id = hostile_app
    users = [learner_id.lower(), advisor_id.lower(), "c001", "k001"]
    pages = ["home", "progress", "self-assessment", "cohort", "import", "records", "framework"]
    seen_hostile = False
    for user in users:
        at = app_as(user, query={"learner": learner_id} if user != learner_id.lower() else None)
        for page in pages:
            goto(at, page)
            for text in _markdown_strings(at):
                assert not any(s in _unescaped(text) for s in SYNTAX), (user, page, text)
                seen_hostile |= "Your session has expired" in read(text)
    assert seen_hostile  # the hostile names did reach the pages, as text


def test_long_domain_names_are_whole_on_the_home_pages(hostile_app):
    """The longest name a framework allows is read whole in the learner's standing, never cut with an ellipsis."""
    learner_id, _ = hostile_app
    name = LONG[:480].strip()
    at = app_as(learner_id.lower())
    cards = [read(m.value) for m in at.markdown if read(m.value).startswith("**Universal pillars")]
    assert cards and cards[0].startswith(f"**{name}**")


def test_a_refusal_never_repeats_what_the_address_said(db_path, cur):
    at = goto(app_as("l001", query={"learner": HOSTILE}), "progress")
    assert [read(e.value) for e in at.error] == ["You do not have access to the records of learner (not a valid id)."]
    detail = cur.execute(
        "SELECT detail->>'asked' FROM audit_log WHERE action = 'permission denied' ORDER BY seq DESC LIMIT 1"
    ).fetchone()[0]
    assert detail.startswith("**Your session has expired.**") and len(detail) <= 120


def test_formula_cells_are_neutralised_in_every_export_and_read_back_unchanged(cur, empty_db, framework, tmp_path):
    learner = viewer(cur, "L001")
    advisor_id = cur.execute("SELECT advisor_id FROM learners WHERE id = 'L001'").fetchone()[0]
    formulas = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "'=already quoted"]
    for i, text in enumerate(formulas):
        item = actions.record_evidence(
            cur, framework, learner, "L001", "reflection", f"{text} {i}", ["teach-methods"], description=text
        )
        actions.record_rating(cur, framework, learner, "L001", "teach-methods", 3, "T1", text, [item.id])
        actions.record_rating(cur, framework, viewer(cur, advisor_id), "L001", "teach-methods", 3, "T1", text)
    kinds = ("staff", "learners", "evidence", "ratings")
    exported = {kind: exporting.export_csv(cur, kind) for kind in kinds}
    for kind, text in exported.items():
        for row in csv.reader(io.StringIO(text)):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), (kind, row)
        (tmp_path / f"{kind}.csv").write_text(text, encoding="utf-8")
    fresh = empty_db.cursor()
    seed_directory(fresh, tmp_path, framework, "test")
    for table in kinds:
        columns = "* EXCLUDE (recorded_at" + (", seq)" if table == "ratings" else ")")
        assert (
            fresh.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
            == cur.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
        ), table


def test_downloads_of_any_table_are_formula_safe():
    text = frame_csv(pd.DataFrame({"who": ["=1+1", "@x", "plain", "-3"], "n": [1, 2, 3, 4]}))
    cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert cells == ["'=1+1", "'@x", "plain", "'-3"]
    for value in ("=1+1", "'=x", "''=x", "plain", "'plain", "-", ""):
        assert csv_value(str(csv_cell(value))) == value


def test_the_audit_download_is_formula_safe(db_path, cur):
    with pytest.raises(Exception):  # noqa: B017 - any refusal: a wrong password
        sessions.sign_in(cur, '=HYPERLINK("http://evil","x")', "wrong-password")
    log = queries.audit_log(cur, viewer(cur, "K001"), actions=["sign-in failed"])
    rows = list(csv.reader(io.StringIO(frame_csv(log))))
    assert any("hyperlink" in cell.lower() for row in rows for cell in row)
    assert not any(cell.startswith("=") for row in rows for cell in row)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://portfolio.example.edu/x", True),
        ("http://example.org", True),
        ("mailto:advisor@example.org", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("https://", False),
        ("ftp://files.example.org/a", False),
        ("https://evil.example/a b", False),
    ],
)
def test_only_web_and_mail_addresses_are_links(url, ok):
    assert is_safe_link(url) is ok
    if ok:
        Evidence(id="E1", learner_id="L1", type="t", title="x", competency_ids=["c"], url=url, added_on=dt.date.today())
    else:
        with pytest.raises(ValueError, match="a link must be a web address"):
            Evidence(
                id="E1", learner_id="L1", type="t", title="x", competency_ids=["c"], url=url, added_on=dt.date.today()
            )


def test_a_stored_javascript_link_is_shown_as_text_not_a_link(db_path, cur):
    """A record written before the rule (straight into the table) is never offered as a link."""
    database.write(
        cur,
        lambda c: c.execute(
            "INSERT INTO evidence VALUES ('E-OLD', 'L001', 'reflection', 'Old', ['teach-methods'], "
            "'javascript:alert(1)', '', DATE '2026-01-01', now())"
        ),
    )
    items = queries.evidence_items(cur, viewer(cur, "L001"), "L001")
    old = items.set_index("id").loc["E-OLD"]
    assert old["url"] == "javascript:alert(1)" and pd.isna(old["link"])
    at = goto(app_as("l001"), "progress")
    at.session_state["progress.records"] = next(t.label for t in at.tabs if t.label.startswith("Evidence"))
    at.run()
    grid = next(d.value for d in at.dataframe if "link" in d.value.columns).set_index("title")
    assert pd.isna(grid.loc["Old", "link"])


def test_the_access_rule_in_sql_and_in_python_agree_for_every_viewer_and_learner(cur):
    learners = [r[0] for r in cur.execute("SELECT id FROM learners ORDER BY id").fetchall()]
    people = [r[0] for r in cur.execute("SELECT id FROM staff UNION ALL SELECT id FROM learners LIMIT 80").fetchall()]
    from tracker.access.policy import may_view_learner

    for person in people:
        who = viewer(cur, person)
        listed = set(queries.visible_learners(cur, who)["id"])
        assert {lid for lid in learners if may_view_learner(cur, who, lid)} == listed, person


# ---- the session cookie's route ------------------------------------------------------------------------------
@contextlib.contextmanager
def routes_served() -> Iterator[int]:
    """The app's own HTTP routes (tracker/web/server.py, as dashboard.py's st.App serves them) on a free port of
    127.0.0.1, served by uvicorn in this process over the test's database; yields the port."""
    import uvicorn
    from starlette.applications import Starlette

    from tracker.web import server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = Starlette(routes=server.routes())
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        served.should_exit = True
        thread.join(timeout=20)


def _post_ticket(port: int, ticket: str, headers: dict[str, str]) -> tuple[int, str]:
    """POST a ticket to /milestone/session as a browser would: the status and the cookie set, if any."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/milestone/session",
        data=f"ticket={ticket}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, answer.headers.get("Set-Cookie") or ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_a_ticket_is_exchanged_for_a_cookie_only_from_milestones_own_pages(db_path, cur, monkeypatch):
    """Login cross-site request forgery: another site's page must not post a ticket of the attacker's own sign-in
    and so sign its visitor in to the attacker's account. The Origin (else the Referer) must be the app's."""
    monkeypatch.setenv("TRACKER_PUBLIC_URL", "https://milestone.example.edu/")  # the address behind a proxy
    tickets = [sessions.cookie_ticket(cur, sessions.sign_in(cur, u, admin.DEMO_PASSWORD)) for u in ("a002", "l001")]
    with routes_served() as port:
        own = f"http://127.0.0.1:{port}"
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},  # a sandboxed frame or a local file
            {"Origin": f"http://127.0.0.1:{port + 1}"},  # another app on the same host
            {"Origin": f"https://127.0.0.1:{port}"},
            {"Referer": "https://evil.example/milestone"},
            {"Origin": "https://evil.example", "Referer": f"{own}/home"},  # Origin decides when sent
            {},  # names no page at all
        ):
            assert _post_ticket(port, tickets[0], headers) == (403, ""), headers
        # the ticket was not spent by any refusal: the app's own page exchanges it, then it is spent
        status, cookie = _post_ticket(port, tickets[0], {"Origin": own})
        assert status == 204 and cookie.startswith("milestone_session=")
        assert _post_ticket(port, tickets[0], {"Origin": own})[0] == 403
        assert _post_ticket(port, tickets[1], {"Referer": f"{own}/progress?learner=L001"})[0] == 204
    fresh = sessions.cookie_ticket(cur, sessions.sign_in(cur, "l002", admin.DEMO_PASSWORD))
    with routes_served() as port:  # reached through a proxy at TRACKER_PUBLIC_URL
        assert _post_ticket(port, fresh, {"Origin": "https://milestone.example.edu"})[0] == 204
