"""`python -m bench.server_writes`: how fast server mode saves, against the embedded mode. Each writer process
saves `--each` ratings one at a time (a rating, its derived levels and its audit row: store.add_ratings, the
page's save), over the sample program: the embedded mode in one process over a DuckDB file; server mode with 1
and with 2 processes at once, each with its own copy, against a PostgreSQL this command starts (Debian's
binaries, as the tests start it). Every write of server mode takes one lock in PostgreSQL, so writes of
different processes queue: this measures what that costs. Writes bench/out/server_writes.json."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tracker.core.config import ROOT

OUT = ROOT / "bench" / "out"

WRITER = textwrap.dedent(
    """
    import datetime as dt, json, sys, time
    from data_models import Rating
    from tracker.core.config import settings
    from tracker.records.setup import open_configured
    from tracker.storage import record_rows
    db, fw = open_configured(settings())
    tag, n = sys.argv[1], int(sys.argv[2])
    learners = [r[0] for r in db.cursor().execute("SELECT id FROM learners ORDER BY id").fetchall()]
    print("ready", flush=True)
    sys.stdin.readline()  # every writer starts at once
    times = []
    for i in range(n):
        r = Rating(id=f"{tag}-{i}", learner_id=learners[i % len(learners)], competency_id="teach-methods", level=3.0,
                   rater_id="C002", rater_role="committee", rated_on=dt.date(2026, 11, 20), term="T4", comment=tag,
                   evidence_ids=[], framework_version="2026.1")
        started = time.perf_counter()
        record_rows.add_ratings(db.cursor(), [r], fw, tag)
        times.append(time.perf_counter() - started)
    print(json.dumps(times), flush=True)
    db.close()
    """
)


def run_writers(env: dict[str, str], copies: list[str | None], each: int) -> dict[str, object]:
    processes = []
    for n, copy in enumerate(copies):
        extra = {"TRACKER_COPY": copy} if copy else {}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, f"W{n}-{time.time_ns()}", str(each)],
                env={**env, **extra},
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for p in processes:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for p in processes:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    times: list[float] = []
    for p in processes:
        assert p.stdout is not None
        times += json.loads(p.stdout.readline())
        p.wait()
    seconds = time.perf_counter() - started
    times.sort()
    return {
        "processes": len(copies),
        "saves": len(times),
        "seconds": round(seconds, 2),
        "saves_per_second": round(len(times) / seconds, 1),
        "p50_ms": round(times[len(times) // 2] * 1000, 1),
        "p95_ms": round(times[int(len(times) * 0.95)] * 1000, 1),
    }


def main() -> None:
    from tests import postgres_server

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--each", type=int, default=100)
    args = p.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results: dict[str, object] = {}
    base = {**os.environ, "TRACKER_FRAMEWORK": str(ROOT / "competencies.yaml")}
    with tempfile.TemporaryDirectory() as tmp:
        embedded = f"{tmp}/embedded.duckdb"
        subprocess.run(
            [sys.executable, "-m", "tracker", "init", "--sample"],
            env={**base, "TRACKER_DB": embedded},
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        results["embedded, 1 process"] = run_writers({**base, "TRACKER_DB": embedded}, [None], args.each)
        server = postgres_server.start()
        try:
            url = server.create_database("milestone")
            env = {**base, "TRACKER_DB": url}
            subprocess.run(
                [sys.executable, "-m", "tracker", "init", "--sample"],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            results["server mode, 1 process"] = run_writers(env, [f"{tmp}/a.duckdb"], args.each)
            results["server mode, 2 processes"] = run_writers(env, [f"{tmp}/a.duckdb", f"{tmp}/b.duckdb"], args.each)
        finally:
            server.stop()
    results["load_average"] = {"before": load_before, "after": Path("/proc/loadavg").read_text().split()[:3]}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "server_writes.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
