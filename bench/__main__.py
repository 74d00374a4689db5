"""`python -m bench`: time the queries behind each page at several program sizes, against pandas and the floor.

Generates programs with the seeded generator, loads them, times each page's queries (median of several runs
after a warm-up), checks that DuckDB and pandas give the same answers, times a ratings import through the
real importer, renders the sample program's pages in AppTest, measures the app's memory at the largest size,
and measures the forecast's risk flags against known growth. Prints a table; writes bench/out/results.json.
"""

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import pandas_way
from bench.load import bulk_load
from tracker.access.policy import viewer_for_person
from tracker.analysis import coverage, overdue, queries
from tracker.core.config import ROOT
from tracker.framework.loading import load_framework
from tracker.mail import reminders
from tracker.records import importing
from tracker.records.generate import generate
from tracker.records.setup import seed_directory
from tracker.storage import database, opening
from tracker.views import progress

OUT = ROOT / "bench" / "out"
FRAMEWORK = ROOT / "competencies.yaml"


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def program_db(n: int, fw) -> tuple[Path, database.Database, dict]:
    folder = OUT / f"n{n}"
    info: dict[str, Any] = {}
    if not (folder / "ratings.csv").exists():
        start = time.perf_counter()
        generate(fw, n_learners=n, seed=42).write(folder)
        info["generate_s"] = round(time.perf_counter() - start, 1)
    path = folder / "bench.duckdb"
    path.unlink(missing_ok=True)
    db = opening.open_database(path, fw, FRAMEWORK.read_text())
    start = time.perf_counter()
    bulk_load(db.cursor(), folder)
    db.con.execute("CHECKPOINT")
    info["bulk_load_s"] = round(time.perf_counter() - start, 1)
    info["ratings"] = db.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0]  # type: ignore[index]
    return folder, db, info


def time_size(n: int, runs: int, fw) -> dict:
    _, db, info = program_db(n, fw)
    cur = db.cursor()
    committee = viewer_for_person(cur, "C001")
    coordinator = viewer_for_person(cur, "K001")
    advisor = viewer_for_person(cur, "A002")
    learner_id = cur.execute("SELECT id FROM learners WHERE status = 'active' ORDER BY id LIMIT 1").fetchone()[0]  # type: ignore[index]
    learner = viewer_for_person(cur, learner_id)
    cohort = cur.execute(
        "SELECT cohort FROM learners GROUP BY cohort ORDER BY count(*) DESC, cohort LIMIT 1"
    ).fetchone()[0]  # type: ignore[index]
    assert committee and coordinator and advisor and learner
    priors = queries.program_priors(cur, framework=fw)

    def learner_page() -> None:
        progress.learner_progress(db, learner, learner_id, priors, fw)

    def advisor_home() -> None:
        queries.visible_learners(cur, advisor)
        queries.learners_behind(cur, advisor, advisor="A002")
        queries.review_queue(cur, advisor)

    def advisor_overdue() -> None:
        overdue.learners_short(cur, advisor, fw, advisor="A002")
        overdue.waiting_per_learner(cur, advisor, fw, advisor="A002")

    def completion() -> None:
        overdue.completion_tables(cur, coordinator, fw)

    def cohort_summary() -> None:
        queries.selection_totals(cur, committee, cohort=cohort)
        queries.level_distribution(cur, committee, cohort=cohort)
        queries.furthest_behind(cur, committee, cohort=cohort)
        queries.learners_behind(cur, committee, cohort=cohort)
        queries.cohort_trajectory(cur, committee, cohort=cohort)

    timings = {
        "one learner's progress page": median_ms(learner_page, runs),
        "an advisor's home (advisees, behind, to review)": median_ms(advisor_home, runs),
        "cohort summary (distribution, heatmap, trajectory)": median_ms(cohort_summary, runs),
        "learners behind, whole program": median_ms(lambda: queries.learners_behind(cur, committee), runs),
        "trajectory by term, whole program": median_ms(lambda: queries.cohort_trajectory(cur, committee), runs),
        "graduation risk, largest cohort": median_ms(
            lambda: queries.graduation_risk(cur, committee, priors, fw, cohort=cohort), runs
        ),
        "forecast priors and history, whole program": median_ms(
            lambda: queries.program_priors(cur, framework=fw), runs
        ),
        "assessment plan: one learner's coverage": median_ms(
            lambda: coverage.plan_coverage(cur, learner, fw, learner_id), runs
        ),
        "assessment plan: coverage of the largest cohort": median_ms(
            lambda: coverage.cohort_coverage(cur, committee, fw, cohort), runs
        ),
        "overdue: an advisor's advisees to rate and waiting": median_ms(advisor_overdue, runs),
        "overdue: completion per advisor and per cohort": median_ms(completion, runs),
        "reminder digests, whole program (composed, not sent)": median_ms(
            lambda: reminders.digests(cur, fw, dt.date.today()), max(3, runs // 2)
        ),
        "floor: one scan of the ratings": median_ms(
            lambda: cur.execute("SELECT count(*), avg(level) FROM ratings").fetchall(), runs
        ),
    }

    # the obvious way in pandas, from frames already in memory; the same answers are required
    ratings = cur.execute(
        "SELECT id, learner_id, competency_id, CAST(level AS DOUBLE) AS level, rater_role, rated_on, "
        "term_index, corrects, seq FROM ratings"
    ).df()
    learners = cur.execute("SELECT id, cohort, status, advisor_id FROM learners").df()
    in_cohort = learners[learners["cohort"] == cohort]
    one = learners[learners["id"] == learner_id]
    pd_times = {
        "one learner's progress page": median_ms(
            lambda: pandas_way.latest_levels(ratings[ratings["learner_id"] == learner_id], one, fw), runs
        ),
        "cohort summary (distribution, heatmap, trajectory)": median_ms(
            lambda: pandas_way.cohort_summary(ratings, in_cohort, fw), max(3, runs // 2)
        ),
        "learners behind, whole program": median_ms(
            lambda: pandas_way.learners_behind(pandas_way.latest_levels(ratings, learners, fw)), max(3, runs // 2)
        ),
        "trajectory by term, whole program": median_ms(
            lambda: pandas_way.trajectory_by_term(ratings, fw), max(3, runs // 2)
        ),
    }
    check_same_answers(cur, committee, learner, learner_id, cohort, ratings, learners, fw)
    db.close()
    return {"learners": n, **info, "duckdb_ms": timings, "pandas_ms": pd_times}


def check_same_answers(cur, committee, learner, learner_id, cohort, ratings, learners, fw) -> None:
    """DuckDB's answers and the pandas way's must agree: the cohort's counts per level, who is behind, the
    trajectories, and one learner's levels."""
    in_cohort = learners[learners["cohort"] == cohort]
    want = pandas_way.cohort_summary(ratings, in_cohort, fw)
    got = queries.level_distribution(cur, committee, cohort=cohort).set_index(["competency_id", "level"])["learners"]
    assert got.sort_index().equals(want["counts"].sort_index().astype(got.dtype)), "cohort counts per level differ"
    behind = queries.learners_behind(cur, committee, cohort=cohort)
    assert set(behind["learner_id"]) == want["behind"], "learners behind in the cohort differ"
    totals = queries.selection_totals(cur, committee, cohort=cohort)
    assert totals["behind"] == len(want["behind"]) and totals["learners"] == len(in_cohort), "cohort totals differ"
    assert set(queries.learners_behind(cur, committee)["learner_id"]) == pandas_way.learners_behind(
        pandas_way.latest_levels(ratings, learners, fw)
    ), "learners behind differ"
    traj = queries.cohort_trajectory(cur, committee).set_index(["domain_id", "term_index"]).sort_index()
    ptraj = pandas_way.trajectory_by_term(ratings, fw).set_index(["domain_id", "term_index"]).sort_index()
    assert np.allclose(traj["median"], ptraj["median"]) and np.allclose(traj["q25"], ptraj["q25"]), (
        "trajectories differ"
    )
    mine = queries.competency_standing(cur, learner, learner_id=learner_id).dropna(subset=["level"])
    pmine = pandas_way.latest_levels(
        ratings[ratings["learner_id"] == learner_id], learners[learners["id"] == learner_id], fw
    )
    assert np.allclose(
        mine.set_index("competency_id")["level"].sort_index(), pmine.set_index("competency_id")["level"].sort_index()
    ), "one learner's levels differ"


IMPORT_CODE = """
import re, resource, sys, time
from pathlib import Path
from tracker import importing, store
from tracker.framework import load_framework
fw = load_framework(sys.argv[3])
db = store.open_database(sys.argv[1], fw, Path(sys.argv[3]).read_text())
def cpu():
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime
start, cpu_start = time.perf_counter(), cpu()
result = importing.import_file(db.cursor(), "ratings", Path(sys.argv[2]), fw, "bench")
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
db.close()
# the high-water mark of this process's own memory: ru_maxrss would carry the parent's across fork and exec
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
print(result.added, seconds, peak, cpu_seconds)
"""


def time_import(fw, rows: int) -> dict:
    """Import `rows` ratings from CSV through the real importer (every row validated, every rule checked), into a
    loaded program, in a process of its own: its time, and its peak memory."""
    n = max(10_000, rows // 130)  # the generator writes about 133 ratings per learner
    folder = OUT / f"n{n}"
    if not (folder / "ratings.csv").exists():
        generate(fw, n_learners=n, seed=42).write(folder)
    sample = OUT / "import"
    sample.mkdir(parents=True, exist_ok=True)
    with (folder / "ratings.csv").open() as src, (sample / "ratings.csv").open("w") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    path = sample / "import.duckdb"
    path.unlink(missing_ok=True)
    db = opening.open_database(path, fw, FRAMEWORK.read_text())
    cur = db.cursor()
    for kind in ("staff", "learners", "evidence"):
        importing.import_file(cur, kind, folder / f"{kind}.csv", fw, "bench")
    db.close()
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_CODE, str(path), str(sample / "ratings.csv"), str(FRAMEWORK)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    added, seconds, peak, cpu_seconds = run.stdout.split()
    return {
        "rows": int(added),
        "seconds": round(float(seconds), 1),
        "rows_per_s": round(int(added) / float(seconds)),
        "peak_mib": round(float(peak)),
        # the processor time it used (both cores counted): on a machine shared with other work, the wall-clock
        # time says more about the neighbours than about the import
        "cpu_s": round(float(cpu_seconds), 1),
    }


def time_pages(runs: int) -> dict:
    """Each page of the sample program rendered by AppTest for the role that uses it, caches cleared each run."""
    import logging
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tracker.accounts import admin, sessions

    for name in ("streamlit", "streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching"):
        logging.getLogger(name).setLevel(logging.ERROR)
    folder = OUT / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sample.duckdb"
    path.unlink(missing_ok=True)
    fw = load_framework(FRAMEWORK)
    db = opening.open_database(path, fw, FRAMEWORK.read_text())
    seed_directory(db.cursor(), ROOT / "sample_data", fw, "bench")
    admin.create_demo_accounts(db.cursor())
    os.environ["TRACKER_DB"] = str(path)
    out = {}
    for user, pages in {
        "l001": ["home", "progress", "self-assessment"],
        "a002": ["home", "progress", "cohort"],
        "c001": ["home", "progress", "cohort", "framework"],
        "k001": ["records"],
    }.items():
        for page in pages:
            times = []
            for _ in range(runs + 1):
                st.cache_data.clear()
                at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
                at.session_state["auth.token"] = sessions.sign_in(db.cursor(), user, admin.DEMO_PASSWORD)
                at.run()
                wanted = "" if page == "home" else page
                at._page_hash = next(h for h, i in at._registered_pages.items() if i.get("url_pathname") == wanted)
                start = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - start)
                assert not at.exception, [e.message for e in at.exception]
            out[f"{page} ({user})"] = round(statistics.median(times[1:]) * 1000)
    db.close()
    return out


def app_memory(n: int) -> float:
    """Peak memory (MiB) of a process that opens the program like the app and runs every page's queries."""
    code = (
        "import re, sys\n"
        "from tracker.access.policy import viewer_for_person\n"
        "from tracker.analysis import queries\n"
        "from tracker.framework.loading import load_framework\n"
        "from tracker.storage.database import Database\n"
        "from tracker.views import progress\n"
        "fw = load_framework(sys.argv[2]); db = Database(sys.argv[1]); cur = db.cursor()\n"
        "c = viewer_for_person(cur, 'C001'); a = viewer_for_person(cur, 'A002')\n"
        "p = queries.program_priors(cur, framework=fw)\n"
        "for q in (queries.selection_totals, queries.level_distribution, queries.furthest_behind,\n"
        "          queries.learners_behind, queries.cohort_trajectory, queries.cohort_overview):\n"
        "    q(cur, c)\n"
        "queries.graduation_risk(cur, c, p, fw)\n"
        "queries.visible_learners(cur, a); queries.learners_behind(cur, a, advisor='A002'); queries.review_queue(cur, a)\n"
        "first = cur.execute('SELECT min(id) FROM learners').fetchone()[0]\n"
        "progress.learner_progress(db, c, first, p, fw)\n"
        # the high-water mark of this process's own memory: ru_maxrss would carry the parent's across fork and exec
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)) / 1024)\n"
    )
    path = OUT / f"n{n}" / "bench.duckdb"
    run = subprocess.run(
        [sys.executable, "-c", code, str(path), str(FRAMEWORK)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return round(float(run.stdout.strip().splitlines()[-1]))


def risk_flag_accuracy(fw) -> dict:
    """At term 3, how many learners who truly miss the graduation level the risk flags find, and false alarms."""
    folder = OUT / "known"
    shutil.rmtree(folder, ignore_errors=True)
    program = generate(fw, n_learners=1000, seed=5, n_cohorts=1)
    program.write(folder, with_truth=True)
    db = opening.open_database(folder / "known.duckdb", fw, FRAMEWORK.read_text())
    cur = db.cursor()
    bulk_load(cur, folder)
    committee = viewer_for_person(cur, "C001")
    assert committee is not None
    priors = queries.program_priors(cur, as_of=3, framework=fw)
    risk = queries.graduation_risk(cur, committee, priors, fw, as_of=3).merge(program.truth, on="learner_id")
    misses, flagged = risk["misses_graduation_level"], risk["at_risk"]
    db.close()
    return {
        "learners": len(risk),
        "truly_miss": int(misses.sum()),
        "found": round(float((flagged & misses).sum() / misses.sum()), 3),
        "false_alarms": round(float((flagged & ~misses).sum() / (~misses).sum()), 3),
    }


def growth_processes(fw) -> list[dict]:
    """The forecast at term 3 on each growth process with known truth (tests/growth_processes.py), beside the
    oracle that knows the process."""
    from tests import growth_processes as gp

    rows = []
    for process in gp.PROCESSES:
        folder = OUT / "processes" / process.name.replace(" ", "-").replace(",", "")
        shutil.rmtree(folder, ignore_errors=True)
        rows.append({"process": process.name, **gp.evaluate(process, fw, folder)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--sizes", default="1000,10000,100000", help="program sizes in learners")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query, after one warm-up")
    parser.add_argument("--import-rows", type=int, default=3_000_000)
    args = parser.parse_args()
    fw = load_framework(FRAMEWORK)
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"sizes": []}
    for n in [int(s) for s in args.sizes.split(",")]:
        print(f"... {n} learners", flush=True)
        results["sizes"].append(time_size(n, args.runs, fw))
    print("... import", flush=True)
    results["import"] = time_import(fw, args.import_rows)
    print("... pages", flush=True)
    results["pages_ms"] = time_pages(3)
    largest = max(int(s) for s in args.sizes.split(","))
    results["app_memory_mib"] = {"learners": largest, "peak_mib": app_memory(largest)}
    print("... forecast", flush=True)
    results["risk_flags"] = risk_flag_accuracy(fw)
    print("... growth processes", flush=True)
    results["growth_processes"] = growth_processes(fw)
    results["bench_process_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print_table(results)


def print_table(results: dict) -> None:
    for size in results["sizes"]:
        print(f"\n{size['learners']:,} learners, {size['ratings']:,} ratings (bulk load {size['bulk_load_s']} s)")
        print(f"  {'query':52} {'DuckDB ms':>10} {'pandas ms':>10} {'ratio':>7}")
        for name, ms in size["duckdb_ms"].items():
            pd_ms = size["pandas_ms"].get(name)
            ratio = f"{pd_ms / ms:6.1f}x" if pd_ms else ""
            print(f"  {name:52} {ms:10.1f} {pd_ms if pd_ms is None else round(pd_ms, 1)!s:>10} {ratio:>7}")
    imp = results["import"]
    print(
        f"\nimport of {imp['rows']:,} ratings from CSV: {imp['seconds']} s ({imp['rows_per_s']:,} rows/s), "
        f"{imp['cpu_s']} s of processor time, peak memory {imp['peak_mib']} MiB"
    )
    print("\npages of the sample program in AppTest (median ms, caches cleared):")
    for page, ms in results["pages_ms"].items():
        print(f"  {page:28} {ms:6d}")
    mem = results["app_memory_mib"]
    print(f"\npeak memory of the app's queries at {mem['learners']:,} learners: {mem['peak_mib']} MiB")
    r = results["risk_flags"]
    print(
        f"risk flags at term 3 ({r['learners']} learners, {r['truly_miss']} truly miss): "
        f"found {r['found']:.0%}, false alarms {r['false_alarms']:.0%}"
    )
    print("\ngrowth processes at term 3, pooled over independent draws (forecast | oracle that knows the process):")
    print(
        f"  {'process':32} {'miss':>5} {'found':>6} {'f.alarm':>7} {'cal.err':>7} | "
        f"{'found':>6} {'f.alarm':>7} {'cal.err':>7} {'found at same f.alarm':>21} | {'points short ± se':>17}"
    )
    for p in results["growth_processes"]:
        print(
            f"  {p['process']:32} {p['truly_miss']:>5} {p['found']:>6.1%} {p['false_alarms']:>7.1%} "
            f"{p['calibration_error']:>7.3f} | {p['oracle_found']:>6.1%} {p['oracle_false_alarms']:>7.1%} "
            f"{p['oracle_calibration_error']:>7.3f} {p['oracle_found_at_same_false_alarms']:>21.1%} | "
            f"{100 * p['short']:>9.1f} ± {100 * p['short_standard_error']:.1f}"
        )


if __name__ == "__main__":
    main()
