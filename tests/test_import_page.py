"""The coordinator's import page: CSV and Excel files behave as on the command line (whole or nothing)."""

import io

from openpyxl import Workbook

from tests.conftest import app_as, goto, read
from tracker.core.errors import PermissionDenied
from tracker.records import importing

STAFF = "id,name,email,roles\nA090,Nadia Okoro,a090@x.org,advisor;committee\nA091,Li Wei,a091@x.org,advisor\n"


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def staff_ids(cur) -> set[str]:
    return {r[0] for r in cur.execute("SELECT id FROM staff").fetchall()}


def test_a_good_csv_previews_then_imports(db_path, cur):
    at = goto(app_as("k001"), "import")
    at.selectbox(key="import.kind").set_value("staff").run()
    at.file_uploader(key="import.file").upload("staff.csv", STAFF.encode(), "text/csv").run()
    assert not at.exception
    assert at.dataframe[0].value["id"].tolist() == ["A090", "A091"]
    assert [read(s.value) for s in at.success] == ["staff.csv is ready: 2 new staff."]
    assert "A090" not in staff_ids(cur)  # the preview writes nothing
    at.button(key="import.commit").click().run()
    assert "Imported 2 staff from staff.csv." in [read(s.value) for s in at.success]
    assert {"A090", "A091"} <= staff_ids(cur)


def test_a_bad_excel_file_lists_every_row_and_imports_nothing(db_path, cur):
    before = cur.execute("SELECT count(*) FROM ratings").fetchone()[0]
    data = xlsx(
        [
            list(importing.KINDS["ratings"].columns),
            ["X-1", "L001", "teach-methods", 3.5, "A001", "advisor", "2026-11-20", "T6", "", "", "2026.1", ""],
            ["X-2", "L999", "teach-methods", 7, "A001", "advisor", "2026-11-20", "T6", "", "", "2026.1", ""],
        ]
    )
    at = goto(app_as("k001"), "import")
    at.selectbox(key="import.kind").set_value("ratings").run()
    at.file_uploader(key="import.file").upload("ratings.xlsx", data).run()
    assert [read(e.value) for e in at.error] == [
        "2 problem(s) in ratings.xlsx; nothing was imported. Fix them and upload again."
    ]
    problems = at.dataframe[-1].value["problem"].tolist()
    assert problems == [
        "ratings.xlsx row 3, learner_id: no learner 'L999'",
        "ratings.xlsx row 3, level: 7.0 leaves the scale 1–5",
    ]
    assert "import.commit" not in [b.key for b in at.button]
    assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] == before


def test_a_good_excel_file_imports_like_the_csv(db_path, cur):
    rows = [line.split(",") for line in STAFF.strip().splitlines()]
    at = goto(app_as("k001"), "import")
    at.selectbox(key="import.kind").set_value("staff").run()
    at.file_uploader(key="import.file").upload("staff.xlsx", xlsx(rows)).run()
    at.button(key="import.commit").click().run()
    assert {"A090", "A091"} <= staff_ids(cur)


def test_excel_dates_and_numbers_become_the_text_a_csv_would_hold():
    import datetime as dt

    text = importing.spreadsheet_to_csv(xlsx([["a", "b", "c"], [dt.datetime(2026, 1, 5), 3.0, 2.5]]), "x.xlsx")
    assert text == "a,b,c\n2026-01-05,3,2.5\n"


def test_only_coordinators_import(db_path, cur, framework):
    import pytest

    from tests.conftest import viewer
    from tracker.records import actions

    with pytest.raises(PermissionDenied):
        actions.import_records(cur, framework, viewer(cur, "C001"), "staff", STAFF, "staff.csv", dry_run=True)
    at = goto(app_as("c001"), "import")
    assert not at.get("file_uploader") and at.error
