"""`python -m bench.server_pages`: the page queries at 10,000 learners read from a server-mode copy, against the
embedded file (bench/__main__.py's program, generator and seed; bench/server_modes.py's page queries). Also how
long the program takes to go through server mode's write path into PostgreSQL (one bulk write), a fresh copy's
full copy out of PostgreSQL, and a copy taking up one save of another. Starts a PostgreSQL of its own (Debian's
binaries, as the tests do). Writes bench/out/server_pages.json."""

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from bench.__main__ import program_db
from bench.load import bulk_load
from bench.server_modes import FRAMEWORK, page_queries
from data_models import Rating
from tracker.core.config import ROOT
from tracker.framework.loading import load_framework
from tracker.storage import opening, record_rows

OUT = ROOT / "bench" / "out"


def main() -> None:
    from tests import postgres_server

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--learners", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    fw = load_framework(FRAMEWORK)
    text = FRAMEWORK.read_text(encoding="utf-8")
    load = {"before": Path("/proc/loadavg").read_text().split()[:3]}
    results: dict[str, object] = {"learners": args.learners}
    folder, embedded, info = program_db(args.learners, fw)
    results["ratings"] = info["ratings"]
    results["embedded_ms"] = page_queries(embedded, args.runs)
    embedded.close()
    server = postgres_server.start()
    try:
        url = server.create_database("milestone")
        with tempfile.TemporaryDirectory() as tmp:
            writer = opening.open_database(Path(tmp) / "writer.duckdb", fw, text, url)
            started = time.perf_counter()
            bulk_load(writer.cursor(), folder)
            results["write_through_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            copy = opening.open_database(Path(tmp) / "copy.duckdb", fw, text, url)
            results["full_copy_s"] = round(time.perf_counter() - started, 1)
            results["server_copy_ms"] = page_queries(copy, args.runs)
            learner = writer.cursor().execute("SELECT id FROM learners ORDER BY id LIMIT 1").fetchone()[0]  # type: ignore[index]
            rating = Rating(
                id="BENCH-1", learner_id=learner, competency_id="teach-methods", level=3.0, rater_id="C001",
                rater_role="committee", rated_on=dt.date(2026, 11, 20), term="T4", comment="", evidence_ids=[],
                framework_version=fw.version,
            )  # fmt: skip
            started = time.perf_counter()
            record_rows.add_ratings(writer.cursor(), [rating], fw, "bench")
            results["one_save_ms"] = round((time.perf_counter() - started) * 1000, 1)
            started = time.perf_counter()
            copy.follow()  # type: ignore[attr-defined]
            results["follow_one_save_ms"] = round((time.perf_counter() - started) * 1000, 1)
            copy.close()
            writer.close()
    finally:
        server.stop()
    load["after"] = Path("/proc/loadavg").read_text().split()[:3]
    results["load_average"] = load
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "server_pages.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
