"""`python -m bench.server_modes`: where could several app servers keep one shared database? The page queries of
bench/__main__.py at 10,000 learners, and concurrent writers, in each candidate (docs/deployment.md has the
figures and the choice):

- embedded: DuckDB's own file (today's mode), in the DuckDB this process runs;
- postgres: the tables in PostgreSQL, read and written by DuckDB through its `postgres` extension (ATTACH ... TYPE
  postgres), so queries.py's SQL runs unchanged in DuckDB over PostgreSQL's tables;
- ducklake: DuckLake, its catalog in PostgreSQL and its data as Parquet files in a shared folder;
- postgres-native: the questions asked of PostgreSQL itself (psycopg), for the queries whose SQL PostgreSQL runs.

Two steps, since the extensions are published for DuckDB's 1.4 LTS line only:
  .venv/bin/python -m bench.server_modes export            # the 10,000-learner program as Parquet (DuckDB 2.0)
  VENV14/bin/python -m bench.server_modes measure --pg URL  # in a venv with duckdb 1.4.4, duckdb-ext-postgres,
                                                            # duckdb-ext-ducklake and psycopg 3
Writes bench/out/server_modes.json.
"""

import argparse
import itertools
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from tracker.access.policy import Viewer, viewer_for_person
from tracker.analysis import queries
from tracker.core.config import ROOT
from tracker.framework.loading import load_framework
from tracker.views import progress

OUT = ROOT / "bench" / "out"
FRAMEWORK = ROOT / "competencies.yaml"
N = 10_000


def connect(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that loads extensions from the `duckdb-ext-*` wheels (package `duckdb_ext`), offline."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb_ext")
    config: dict[str, str | bool | int | float | list[str]] = {"autoinstall_known_extensions": "false"}
    if spec and spec.submodule_search_locations:
        config["extension_directory"] = str(Path(next(iter(spec.submodule_search_locations))) / "extensions")
    return duckdb.connect(path, config=config)


def export(n: int) -> Path:
    """The n-learner program of the benchmark, every table as Parquet (readable by any DuckDB)."""
    from bench.__main__ import program_db

    folder, db, info = program_db(n, load_framework(FRAMEWORK))
    parquet = folder / "parquet"
    parquet.mkdir(exist_ok=True)
    cur = db.cursor()
    tables = [r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()]
    for table in tables:
        cur.execute(f"COPY {table} TO '{parquet / table}.parquet' (FORMAT parquet)")
    db.close()
    print(f"{len(tables)} tables of {n} learners ({info.get('ratings')} ratings) in {parquet}")
    return parquet


class Attached:
    """What progress.learner_progress needs of a Database: a cursor per thread, here one whose default catalog is
    the attached database."""

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: str) -> None:
        self.con, self.catalog, self._local = con, catalog, threading.local()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
            cur.execute(f"USE {self.catalog}")
        return cur


def load(con: duckdb.DuckDBPyConnection, catalog: str, parquet: Path) -> float:
    started = time.perf_counter()
    for path in sorted(parquet.glob("*.parquet")):
        con.execute(f"CREATE TABLE {catalog}.{path.stem} AS SELECT * FROM read_parquet('{path}')")  # noqa: S608
    return time.perf_counter() - started


KEYS = {  # the primary keys of the DuckDB schema (tracker/storage/database.py), and the lookups the pages make
    "learners": "PRIMARY KEY (id)",
    "staff": "PRIMARY KEY (id)",
    "ratings": "PRIMARY KEY (id)",
    "evidence": "PRIMARY KEY (id)",
    "accounts": "PRIMARY KEY (username)",
    "fw_competencies": "PRIMARY KEY (competency_id)",
    "fw_expected": "PRIMARY KEY (competency_id, term)",
}
INDEXES = ["ratings (learner_id)", "ratings (corrects)", "current_levels (learner_id)", "term_levels (learner_id)"]


def postgres_keys(con: duckdb.DuckDBPyConnection) -> None:
    for table, key in KEYS.items():
        con.execute(f"CALL postgres_execute('pg', 'ALTER TABLE {table} ADD {key}')")
    for i, index in enumerate(INDEXES):
        con.execute(f"CALL postgres_execute('pg', 'CREATE INDEX ix{i} ON {index}')")
    con.execute("CALL postgres_execute('pg', 'ANALYZE')")


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def page_queries(db: Any, runs: int) -> dict[str, float]:
    """bench/__main__.py's page queries, on whatever `db.cursor()` reads."""
    fw = load_framework(FRAMEWORK)
    cur = db.cursor()
    committee, advisor = viewer_for_person(cur, "C001"), viewer_for_person(cur, "A002")
    learner_id = cur.execute("SELECT id FROM learners WHERE status = 'active' ORDER BY id LIMIT 1").fetchone()[0]
    learner = viewer_for_person(cur, learner_id)
    cohort = cur.execute(
        "SELECT cohort FROM learners GROUP BY cohort ORDER BY count(*) DESC, cohort LIMIT 1"
    ).fetchone()
    assert committee and advisor and learner and cohort
    cohort = cohort[0]
    priors = queries.program_priors(cur, framework=fw)

    def advisor_home(v: Viewer = advisor) -> None:
        queries.visible_learners(cur, v)
        queries.learners_behind(cur, v, advisor="A002")
        queries.review_queue(cur, v)

    def cohort_summary() -> None:
        queries.selection_totals(cur, committee, cohort=cohort)
        queries.level_distribution(cur, committee, cohort=cohort)
        queries.furthest_behind(cur, committee, cohort=cohort)
        queries.learners_behind(cur, committee, cohort=cohort)
        queries.cohort_trajectory(cur, committee, cohort=cohort)

    return {
        "one learner's progress page": median_ms(
            lambda: progress.learner_progress(db, learner, learner_id, priors, fw), runs
        ),
        "an advisor's home": median_ms(advisor_home, runs),
        "cohort summary, largest cohort": median_ms(cohort_summary, runs),
        "learners behind, whole program": median_ms(lambda: queries.learners_behind(cur, committee), runs),
        "trajectory by term, whole program": median_ms(lambda: queries.cohort_trajectory(cur, committee), runs),
        "graduation risk, largest cohort": median_ms(
            lambda: queries.graduation_risk(cur, committee, priors, fw, cohort=cohort), runs
        ),
        "forecast priors and history": median_ms(lambda: queries.program_priors(cur, framework=fw), runs),
    }


WRITE = (
    "INSERT INTO ratings (id, learner_id, competency_id, level, rater_id, rater_role, rated_on, term, term_index, "
    "comment, evidence_ids, framework_version, corrects, recorded_at, seq) VALUES "
    "(?, ?, 'teach-methods', 3.0, 'A001', 'advisor', DATE '2026-11-20', 'T6', 6, 'load', [], '2026.1', NULL, now(), ?)"
)
# neither DuckDB over PostgreSQL nor DuckLake has sequences: the order number comes from the writer here (a server
# mode would take it from a PostgreSQL sequence)
AUDIT = "INSERT INTO audit_log VALUES (?, now(), 'bench', 'rating add', ?, NULL)"
_numbers = itertools.count(10**9)


def writers(
    connect: Callable[[], Any], writers: int, each: int, tag: str, count: Callable[[str], int] | None = None
) -> dict[str, Any]:
    """`writers` threads, each with its own connection, each saving `each` ratings one transaction at a time (the
    rating and its audit row); retries a transaction that conflicts. Seconds, saves per second, conflicts."""
    conflicts: list[int] = []
    errors: list[str] = []

    def work(w: int) -> None:
        con = connect()
        for i in range(each):
            rid = f"{tag}-{w}-{i}"
            for _ in range(50):
                try:
                    con.execute("BEGIN TRANSACTION")
                    con.execute(WRITE, [rid, f"L{(w * each + i) % 9000 + 1:05d}", next(_numbers)])
                    con.execute(AUDIT, [next(_numbers), rid])
                    con.execute("COMMIT")
                    break
                except duckdb.Error as exc:
                    con.execute("ROLLBACK")
                    if "conflict" not in str(exc).lower():
                        errors.append(str(exc)[:200])
                        return
                    conflicts.append(1)
        con.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {
        "writers": writers,
        "saves": writers * each,
        "seconds": round(seconds, 2),
        "saves_per_second": round(writers * each / seconds, 1),
        "conflicts_retried": len(conflicts),
        "errors": errors[:3],
        "saved_rows_found": count(tag) if count else None,  # every save is there afterwards: nothing lost
    }


def native(url: str, runs: int) -> dict[str, float]:
    """The same questions asked of PostgreSQL directly, where its SQL can say them: the floor (one scan), one
    learner's latest levels, and the levels of the largest cohort (the standing's core)."""
    import psycopg

    with psycopg.connect(url) as con:
        cohort = con.execute(
            "SELECT cohort FROM learners GROUP BY cohort ORDER BY count(*) DESC, cohort LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        learner = con.execute("SELECT id FROM learners WHERE status = 'active' ORDER BY id LIMIT 1").fetchone()[0]  # type: ignore[index]
        latest = """SELECT DISTINCT ON (r.learner_id, r.competency_id) r.learner_id, r.competency_id, r.level
            FROM ratings r JOIN learners l ON l.id = r.learner_id
            WHERE r.rater_role <> 'self' AND NOT EXISTS (SELECT 1 FROM ratings c WHERE c.corrects = r.id) AND {where}
            ORDER BY r.learner_id, r.competency_id, r.term_index DESC, r.rated_on DESC, r.seq DESC"""
        behind = f"""WITH latest AS ({latest.format(where="true")})
            SELECT count(DISTINCT x.learner_id) FROM latest x JOIN learners l ON l.id = x.learner_id
            JOIN current_levels c ON c.learner_id = x.learner_id AND c.competency_id = x.competency_id
            JOIN fw_expected e ON e.competency_id = x.competency_id AND e.term_index = c.assessed_term
            WHERE l.status = 'active' AND x.level <= e.expected - 1"""  # noqa: S608 - constant SQL
        return {
            "floor: one scan of the ratings": median_ms(
                lambda: con.execute("SELECT count(*), avg(level) FROM ratings").fetchall(), runs
            ),
            "one learner's latest levels": median_ms(
                lambda: con.execute(latest.format(where="r.learner_id = %s"), [learner]).fetchall(), runs
            ),
            "latest levels of the largest cohort": median_ms(
                lambda: con.execute(latest.format(where="l.cohort = %s"), [cohort]).fetchall(), runs
            ),
            "learners a level or more behind, whole program": median_ms(
                lambda: con.execute(behind).fetchall(),
                runs,
            ),
        }


def measure(url: str, runs: int, writer_threads: int, each: int) -> dict[str, Any]:
    parquet = OUT / f"n{N}" / "parquet"
    results: dict[str, Any] = {"duckdb": duckdb.__version__, "learners": N}
    libpq = url.replace("postgresql://", "postgres://")
    with tempfile.TemporaryDirectory() as tmp:
        # embedded: a DuckDB file
        con = connect(f"{tmp}/embedded.duckdb")
        results["embedded"] = {"load_s": round(load(con, "embedded", parquet), 1)}
        results["embedded"]["pages_ms"] = page_queries(Attached(con, "embedded"), runs)
        con.close()
        embedded = _embedded_connect(f"{tmp}/embedded.duckdb")
        results["embedded"]["writers"] = writers(embedded, writer_threads, each, "e", _counter(embedded))

        # postgres, through DuckDB's postgres extension
        con = connect()
        con.execute("LOAD postgres")
        con.execute(f"ATTACH '{libpq}' AS pg (TYPE postgres)")
        for path in sorted(parquet.glob("*.parquet")):
            con.execute(f"DROP TABLE IF EXISTS pg.{path.stem}")
        results["postgres"] = {"load_s": round(load(con, "pg", parquet), 1)}
        postgres_keys(con)
        results["postgres"]["pages_ms"] = page_queries(Attached(con, "pg"), runs)
        con.close()
        attached = _attached_connect(libpq)
        results["postgres"]["writers"] = writers(attached, writer_threads, each, "p", _counter(attached))
        results["postgres-native"] = {"ms": native(url, runs)}
        results["postgres-native"]["writers"] = native_writers(url, writer_threads, each)
        results["replica"] = replica_sync(url, f"{tmp}/replica.duckdb")

        # ducklake: catalog in PostgreSQL (its own database), data files in a folder
        con = connect()
        con.execute("LOAD ducklake")
        con.execute("LOAD postgres")
        lake = f"ducklake:postgres:{_keywords(url, 'milestone_lake')}"
        con.execute(f"ATTACH '{lake}' AS lake (DATA_PATH '{tmp}/lake')")
        results["ducklake"] = {"load_s": round(load(con, "lake", parquet), 1)}
        results["ducklake"]["pages_ms"] = page_queries(Attached(con, "lake"), runs)
        con.close()
        lake_connect = _lake_connect(lake, f"{tmp}/lake")
        results["ducklake"]["writers"] = writers(lake_connect, writer_threads, each, "k", _counter(lake_connect))
    return results


def _counter(connect: Callable[[], Any]) -> Callable[[str], int]:
    def count(tag: str) -> int:
        con = connect()
        found = con.execute("SELECT count(*) FROM ratings WHERE id LIKE ?", [f"{tag}-%"]).fetchone()[0]
        return int(found)

    return count


def native_writers(url: str, writers: int, each: int) -> dict[str, Any]:
    """Writers as separate app servers would be in PostgreSQL itself: each its own connection, a transaction per
    save (the rating and its audit row), order numbers from a PostgreSQL sequence."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE SEQUENCE IF NOT EXISTS record_seq START 2000000000")
    insert = WRITE.replace("?", "%s").replace("[]", "'{}'")
    audit = AUDIT.replace("?", "%s")

    def work(w: int) -> None:
        with psycopg.connect(url) as con:
            for i in range(each):
                rid = f"n-{w}-{i}"
                with con.transaction():
                    seq = con.execute("SELECT nextval('record_seq')").fetchone()[0]  # type: ignore[index]
                    con.execute(insert, [rid, f"L{(w * each + i) % 9000 + 1:05d}", seq])
                    con.execute(audit, [seq + 1, rid])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as con:
        found = con.execute("SELECT count(*) FROM ratings WHERE id LIKE 'n-%'").fetchone()[0]  # type: ignore[index]
    return {
        "writers": writers,
        "saves": writers * each,
        "seconds": round(seconds, 2),
        "saves_per_second": round(writers * each / seconds, 1),
        "saved_rows_found": found,
    }


def replica_sync(url: str, path: str) -> dict[str, Any]:
    """An app server's own DuckDB copy of PostgreSQL's tables, for its page queries: the whole copy (a server
    starting), then what a save adds (the rows past the last order number), through psycopg's COPY, no
    DuckDB extension needed. The page queries then take the embedded mode's times."""
    import psycopg

    con = connect(path)
    with psycopg.connect(url) as pg, tempfile.TemporaryDirectory() as tmp:
        tables = [r[0] for r in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        started = time.perf_counter()
        rows = 0
        for table in tables:
            rows += _copy_table(pg, con, table, f"{tmp}/{table}.csv", f"SELECT * FROM {table}", create=True)  # noqa: S608
        full = time.perf_counter() - started
        last = con.execute("SELECT max(seq) FROM ratings").fetchone()[0]  # type: ignore[index]
        with pg.transaction():  # one more save, as another server would make it
            pg.execute(
                WRITE.replace("?", "%s").replace("[]", "'{}'"),
                ["sync-1", "L00001", last + 1],
            )
        started = time.perf_counter()
        added = _copy_table(
            pg,
            con,
            "ratings",
            f"{tmp}/new.csv",
            f"SELECT * FROM ratings WHERE seq > {int(last)}",  # noqa: S608 - an integer
            create=False,
        )
        incremental = time.perf_counter() - started
    con.close()
    return {
        "tables": len(tables),
        "rows": rows,
        "full_copy_s": round(full, 1),
        "incremental_rows": added,
        "incremental_ms": round(incremental * 1000, 1),
    }


def _copy_table(pg: Any, con: duckdb.DuckDBPyConnection, table: str, csv: str, select: str, create: bool) -> int:
    with open(csv, "wb") as f, pg.cursor().copy(f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER)") as copy:
        for block in copy:
            f.write(block)
    verb = f"CREATE TABLE {table} AS" if create else f"INSERT INTO {table}"
    con.execute(f"{verb} SELECT * FROM read_csv('{csv}', header = true)")  # noqa: S608 - our table names
    return int(con.execute("SELECT count(*) FROM read_csv(?, header = true)", [csv]).fetchone()[0])  # type: ignore[index]


def _keywords(url: str, dbname: str) -> str:
    """A libpq keyword string for another database of the same server (postgresql://user@host:port/db)."""
    rest = url.split("://", 1)[1]
    user, _, hostport = rest.partition("@")
    host, _, port = hostport.split("/")[0].partition(":")
    return f"dbname={dbname} host={host} port={port or 5432} user={user}"


def _embedded_connect(path: str) -> Callable[[], Any]:
    shared = connect(path)  # one process: every writer a cursor of its one connection (as the app)
    return lambda: _used(shared.cursor(), None)


def _attached_connect(libpq: str) -> Callable[[], Any]:
    def open_one() -> Any:  # every writer its own DuckDB and its own PostgreSQL connection: as separate app servers
        con = connect()
        con.execute("LOAD postgres")
        con.execute(f"ATTACH '{libpq}' AS pg (TYPE postgres)")
        return _used(con, "pg")

    return open_one


def _lake_connect(lake: str, data: str) -> Callable[[], Any]:
    def open_one() -> Any:
        con = connect()
        con.execute("LOAD ducklake")
        con.execute("LOAD postgres")
        con.execute(f"ATTACH '{lake}' AS lake (DATA_PATH '{data}')")
        return _used(con, "lake")

    return open_one


def _used(con: Any, catalog: str | None) -> Any:
    if catalog:
        con.execute(f"USE {catalog}")
    return con


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    sub.add_parser("export")
    m = sub.add_parser("measure")
    m.add_argument("--pg", required=True, help="postgresql://user@host:port/database (an empty database)")
    m.add_argument("--runs", type=int, default=5)
    m.add_argument("--writers", type=int, default=4)
    m.add_argument("--each", type=int, default=25)
    args = p.parse_args()
    if args.step == "export":
        export(N)
        return
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results = measure(args.pg, args.runs, args.writers, args.each)
    results["load_average"] = {"before": load_before, "after": Path("/proc/loadavg").read_text().split()[:3]}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "server_modes.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
