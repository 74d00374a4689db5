"""One writer of the fault harness (bench/faults.py): a process that saves through the real write path, as an app
server does for the people using it, and says on its standard output, one JSON line each, what it tried and what it
was told. It stands for one app server: the harness kills it, stops it and starts it again.

    python -m bench.fault_writer NAME [--seed N]

with TRACKER_DB (a postgresql:// address, or a DuckDB file for the embedded mode) and TRACKER_COPY set. Each logical
write has a token; each attempt of it an id of its own. Told "not saved", the writer tries again (with a new id), as a
person would; told "not known", it looks in its copy after taking up PostgreSQL's changes, as the message asks, and
tries again only when the write is not there. The lines:

    {"ev": "ready", "t": ...}
    {"ev": "try", "id": ..., "token": ..., "kind": "rating" | "evidence" | "sign-in"}
    {"ev": "told", "id": ..., "told": "saved" | "refused" | "uncertain", "t": ..., "change": ..., "why": ...}
    {"ev": "stopped", "t": ...}          (on "stop" read from standard input: it writes no more)
    {"ev": "digest", "tables": {...}}   (then on "digest": the copy, after taking up PostgreSQL's changes; it ends)
"""

import argparse
import contextlib
import datetime as dt
import json
import random
import sys
import threading
import time
from typing import Any

from data_models import Evidence, Rating
from tracker.accounts import admin, sessions
from tracker.core.config import settings
from tracker.core.errors import EnvironmentStop, TrackerError, WriteUncertain
from tracker.records.setup import open_configured
from tracker.storage import record_rows
from tracker.storage.database import Cursor

# What the harness compares, copy against PostgreSQL: each table's rows by its key.
DIGEST_TABLES = {
    "ratings": "id",
    "evidence": "id",
    "sessions": "token_hash",
    "decisions": "id",
    "accounts": "username",
    "learners": "id",
}


def say(**line: Any) -> None:
    print(json.dumps(line, default=str), flush=True)


def digest(cur: Cursor) -> dict[str, list[Any]]:
    """Per table, its row count and its keys in order: what PostgreSQL must hold too."""
    out = {}
    for table, key in DIGEST_TABLES.items():
        keys = [r[0] for r in cur.execute(f"SELECT {key} FROM {table} ORDER BY {key}").fetchall()]  # noqa: S608
        out[table] = [len(keys), keys]
    return out


class Writer:
    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.random = random.Random(seed)  # noqa: S311 - a workload, not security
        self.db, self.fw = open_configured(settings())
        cur = self.db.cursor()
        self.learners = [
            r[0] for r in cur.execute("SELECT id FROM learners WHERE status = 'active' ORDER BY id").fetchall()
        ]
        self.accounts = [
            r[0] for r in cur.execute("SELECT username FROM accounts WHERE NOT disabled ORDER BY username").fetchall()
        ]
        self.done = threading.Event()
        self.n = 0

    def change(self) -> int:
        replica = getattr(self.db, "replica", None)
        return int(replica.change) if replica is not None else 0

    def attempt(self, kind: str, attempt_id: str) -> str | None:
        """One attempt; returns the id under which it is stored (for a sign-in, its audit row's source)."""
        cur = self.db.cursor()
        learner = self.random.choice(self.learners)
        if kind == "rating":
            rating = Rating(
                id=attempt_id,
                learner_id=learner,
                competency_id=self.random.choice(list(self.fw.competencies)),
                level=self.random.choice([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
                rater_id="C002",
                rater_role="committee",
                rated_on=dt.date(2026, 11, 20),
                term="T4",
                comment=f"fault harness {self.name}",
                evidence_ids=[],
                framework_version=self.fw.version,
            )
            record_rows.add_ratings(cur, [rating], self.fw, "fault-harness")
            return attempt_id
        if kind == "evidence":
            item = Evidence(
                id=attempt_id,
                learner_id=learner,
                type=sorted(self.fw.evidence_type_ids)[0],
                title=f"Fault harness {attempt_id}",
                competency_ids=[self.random.choice(list(self.fw.competencies))],
                added_on=dt.date(2026, 11, 20),
            )
            record_rows.add_evidence(cur, [item], "fault-harness")
            return attempt_id
        # the attempt's id as the sign-in's source: the audit row says which attempt it was (a session itself may
        # be gone by the check: a restore ends sessions, and the next sign-in deletes ended ones)
        sessions.sign_in(cur, self.random.choice(self.accounts), admin.DEMO_PASSWORD, attempt_id)
        return attempt_id

    def present(self, kind: str, attempt_id: str) -> bool:
        """Whether an attempt told "not known" is there, looked up after taking up PostgreSQL's changes."""
        if kind == "sign-in":
            return False  # a person who cannot tell signs in again; a second session is no harm
        table = "ratings" if kind == "rating" else "evidence"
        follow = getattr(self.db, "follow", None)
        if follow is not None:
            with contextlib.suppress(Exception):  # as a page does: it answers from the copy as it stands
                follow()
        return self.db.cursor().execute(f"SELECT 1 FROM {table} WHERE id = ?", [attempt_id]).fetchone() is not None  # noqa: S608

    def logical_write(self) -> None:
        self.n += 1
        token = f"{self.name}-{self.n}-{time.time_ns() % 1_000_000_000}"
        kind = self.random.choices(["rating", "evidence", "sign-in"], weights=[6, 2, 2])[0]
        for k in range(5):
            attempt_id = f"{token}-a{k}"
            say(ev="try", id=attempt_id, token=token, kind=kind)
            try:
                stored = self.attempt(kind, attempt_id)
            except WriteUncertain as exc:
                say(ev="told", id=attempt_id, told="uncertain", t=time.time(), why=str(exc)[:120])
                try:
                    if self.present(kind, attempt_id):
                        return
                except (EnvironmentStop, TrackerError):
                    time.sleep(0.5)
                continue
            except (EnvironmentStop, TrackerError) as exc:
                say(ev="told", id=attempt_id, told="refused", t=time.time(), why=str(exc)[:160])
                time.sleep(0.2)
                continue
            say(ev="told", id=attempt_id, told="saved", stored=stored, t=time.time(), change=self.change())
            return

    def run(self) -> None:
        say(ev="ready", t=time.time(), change=self.change())
        shown = threading.Event()
        threading.Thread(target=self._listen, args=(shown,), daemon=True).start()
        while not self.done.is_set():
            self.logical_write()
        say(ev="stopped", t=time.time())
        shown.wait()  # every writer has stopped: take up what the others saved, and show the copy
        follow = getattr(self.db, "follow", None)
        if follow is not None:
            follow()
        say(ev="digest", tables=digest(self.db.cursor()), change=self.change())
        self.db.close()

    def _listen(self, shown: threading.Event) -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                self.done.set()
            elif line.strip() == "digest":
                break
        self.done.set()
        shown.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    Writer(args.name, args.seed).run()


if __name__ == "__main__":
    main()
