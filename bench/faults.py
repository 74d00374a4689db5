"""`python -m bench.faults`: every write under injected faults, and a check of what each writer was told against what
PostgreSQL and every copy hold.

Server mode: a PostgreSQL this command starts (Debian's binaries, durable: fsync and synchronous commits on), the
sample program in it, and `--servers` writer processes (bench/fault_writer.py: each one app server with its own copy,
saving ratings, evidence and sign-ins through the real write path), reaching PostgreSQL through a TCP proxy that cuts
connections on cue (bench/fault_proxy.py); beside them the command line imports a small ratings file now and then.
At random moments, in turn, the harness injects:

- `pg-restart`: PostgreSQL restarted at once (`pg_ctl restart -m immediate`), whatever is under way;
- `server-kill`: a writer killed with SIGKILL and started again on its copy file;
- `cut-after-commit`: the connection of the next COMMIT dropped once PostgreSQL has answered it (it landed, the writer
  was not told);
- `cut-before-commit`: the connection of the next COMMIT dropped before it reaches PostgreSQL (it did not land);
- `lock-holder-stop`: the writer that holds the write lock stopped with SIGSTOP for longer than the lock timeout and
  the idle timeout, then let go on;
- `restore`: a backup taken earlier put back with `restore` while the writers run (what was saved after that backup
  is discarded, as a restore does: the check leaves those writes out).

Then every writer is asked to stop writing and, once all have, to take up PostgreSQL's changes and show its copy. The check:

- lost: a write the writer was told was saved and PostgreSQL does not hold (outside a restore's window);
- applied twice: one logical write (a token) present under two attempts;
- refused but present: a write the writer was told was not saved and PostgreSQL holds;
- copies: each writer's copy against PostgreSQL, table by table and key by key;
- stuck servers: a writer that saves nothing within 10 s of a fault clearing (PostgreSQL back, a server started
  again, a cut made, a stopped server let go);
- convergence: how long after a fault clears until every writer has saved on PostgreSQL's latest change.

Embedded mode (`--embedded` for it alone): one writer over a DuckDB file, killed with SIGKILL at random moments and
started again; then, as root, the file on a small loop-mounted disk that the harness fills up and frees again while
the writer saves. The file is then checked the same way, and every save refused on the full disk must have been told
so (not that the database is damaged).

The last line reads, for a check at a glance:
`faults: N injected; writes: A acknowledged, L lost, D applied twice, R refused but present; stuck servers: K;
slowest convergence S s`. `--quick` injects each kind three times and kills the embedded writer five times (a few
minutes); `--json FILE` writes the figures."""

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench import small_disk
from bench.fault_proxy import FaultProxy
from bench.fault_writer import DIGEST_TABLES
from tracker.core.config import ROOT

KINDS = ["pg-restart", "server-kill", "cut-after-commit", "cut-before-commit", "lock-holder-stop", "restore"]
LOCK_SECONDS = 3.0
IDLE_SECONDS = 2.0
STUCK_SECONDS = 10.0


# ---- the writers ------------------------------------------------------------------------------------------------
@dataclass
class Process:
    """One writer process and what it said, kept across its incarnations."""

    name: str
    env: dict[str, str]
    events: list[dict[str, Any]]
    lock: threading.Lock
    logs: Path  # each incarnation's standard error
    proc: subprocess.Popen[str] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    digest: dict[str, Any] | None = None
    incarnation: int = 0
    reader: threading.Thread | None = None

    def start(self) -> None:
        self.incarnation += 1
        self.ready.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fault_writer", self.name, "--seed", str(self.incarnation)],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.logs / f"{self.name}-{self.incarnation}.log").open("w"),
            text=True,
        )
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                event["writer"] = self.name
                if event["ev"] == "ready":
                    self.ready.set()
                elif event["ev"] == "digest":
                    self.digest = event
                elif event["ev"] == "stopped":
                    self.stopped.set()
                with self.lock:
                    self.events.append(event)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tell(self, line: str) -> None:
        if self.proc is not None and self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()

    def stop_writing(self, timeout: float = 60) -> None:
        self.tell("stop")
        if not self.stopped.wait(timeout):
            raise RuntimeError(f"{self.name} did not stop writing within {timeout:g} s")

    def show_copy(self, timeout: float = 120) -> None:
        """Once every writer has stopped: take up PostgreSQL's changes, show the copy, and end."""
        self.tell("digest")
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.reader is not None:
            self.reader.join(10)  # its last lines read


# ---- PostgreSQL ------------------------------------------------------------------------------------------------------
def start_postgres() -> Any:
    """A durable PostgreSQL of its own: an immediate restart must not lose what it acknowledged."""
    from tests import postgres_server

    server = postgres_server.start(durable=True)
    server.create_database("milestone")
    return server


def pg_change(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as con:
        return int(con.execute("SELECT change FROM replication_head").fetchone()[0])  # type: ignore[index]


SIGNED_IN = "SELECT detail FROM audit_log WHERE action = 'sign-in'"


def signed_in(details: list[Any]) -> set[str]:
    """The sources of the sign-ins the audit log holds (each harness sign-in names its attempt as its source)."""
    out = set()
    for detail in details:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            out.add(str((json.loads(detail) if isinstance(detail, str) else detail).get("source")))
    return out


def pg_signed_in(url: str) -> set[str]:
    with psycopg.connect(url) as con:
        return signed_in([r[0] for r in con.execute(SIGNED_IN).fetchall()])


def pg_digest(url: str) -> dict[str, list[Any]]:
    out = {}
    with psycopg.connect(url) as con:
        for table, key in DIGEST_TABLES.items():
            keys = [r[0] for r in con.execute(f'SELECT {key} FROM "{table}" ORDER BY {key} COLLATE "C"').fetchall()]  # noqa: S608
            out[table] = [len(keys), keys]
    return out


def wait_for_postgres(url: str, patience: float = 60) -> None:
    deadline = time.monotonic() + patience
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as con:
                con.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ---- the run ------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    folder: Path
    url: str  # PostgreSQL, directly (the harness's own questions)
    through: str  # PostgreSQL through the proxy (the writers' and the commands')
    postgres: Any
    proxy: FaultProxy
    rng: random.Random
    writers: list[Process] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    injected: Counter[str] = field(default_factory=Counter)
    cleared: list[tuple[str, float, int]] = field(default_factory=list)  # (kind, when it cleared, PostgreSQL's change)
    windows: list[tuple[float, float]] = field(default_factory=list)  # (backup taken, restore done): writes discarded
    backup: tuple[Path, float] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    imports: list[dict[str, Any]] = field(default_factory=list)
    import_gap: float = 2.0  # mean seconds between two imports of the command line

    def env(self, copy: Path | None, name: str) -> dict[str, str]:
        env = {
            **os.environ,
            "TRACKER_DB": self.through,
            "TRACKER_PG_LOCK_SECONDS": str(LOCK_SECONDS),
            "TRACKER_PG_IDLE_SECONDS": str(IDLE_SECONDS),
            "PGAPPNAME": name,
        }
        env.pop("TRACKER_COPY", None)
        if copy is not None:
            env["TRACKER_COPY"] = str(copy)
        return env

    def command(self, *args: str, name: str = "admin", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command of the command line, with a copy file of its own kept between runs (`name`: one per thread of
        commands), as an operator's cron jobs would have: each run takes up only what changed since the last."""
        return subprocess.run(
            [sys.executable, "-m", "tracker", *args],
            env=self.env(self.folder / f"{name}.duckdb", name),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # -- faults --
    def inject(self, kind: str) -> None:
        began = time.time()
        getattr(self, "_" + kind.replace("-", "_"))()
        self.injected[kind] += 1
        change = -1
        with contextlib.suppress(psycopg.Error):
            change = pg_change(self.url)
        self.cleared.append((kind, time.time(), change))
        print(f"  {time.time() - began:5.1f} s  {kind}", flush=True)

    def _pg_restart(self) -> None:
        self.postgres.run(
            str(self.postgres.bin / "pg_ctl"),
            "-D",
            str(self.postgres.folder / "data"),
            "-l",  # else the server's output goes to pg_ctl's, which this harness reads to the end
            str(self.postgres.folder / "log"),
            "-m",
            "immediate",
            "-w",
            "restart",
        )
        wait_for_postgres(self.url)

    def _server_kill(self) -> None:
        writer = self.rng.choice(self.writers)
        time.sleep(self.rng.uniform(0, 0.3))
        writer.kill()
        writer.start()
        writer.ready.wait(120)

    def _cut(self, cue: str) -> None:
        before = self.proxy.cuts[cue]
        self.proxy.cue = cue
        deadline = time.monotonic() + 15
        while self.proxy.cuts[cue] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proxy.cue = ""

    def _cut_after_commit(self) -> None:
        self._cut("after_commit")

    def _cut_before_commit(self) -> None:
        self._cut("before_commit")

    def _lock_holder_stop(self) -> None:
        """Stop the writer that holds the write lock (asked of PostgreSQL, by the writer's application name)."""
        by_name = {w.name: w for w in self.writers}
        deadline = time.monotonic() + 5
        holder = None
        while holder is None and time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error), psycopg.connect(self.url) as con:
                row = con.execute(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE l.locktype = 'advisory' AND l.granted"
                ).fetchone()
                holder = by_name.get(row[0]) if row else None
            if holder is None:
                time.sleep(0.01)
        writer = holder or self.rng.choice(self.writers)
        assert writer.proc is not None
        writer.proc.send_signal(signal.SIGSTOP)
        time.sleep(LOCK_SECONDS + IDLE_SECONDS)
        writer.proc.send_signal(signal.SIGCONT)

    def take_backup(self) -> None:
        out = self.folder / f"backup-{len(self.windows)}-{time.time_ns()}.duckdb"
        taken = time.time()
        done = self.command("backup", "--out", str(out))
        if done.returncode == 0:
            self.backup = (out, taken)

    def _restore(self) -> None:
        if self.backup is None:
            self.take_backup()
            time.sleep(1)
        assert self.backup is not None
        out, taken = self.backup
        done = self.command("restore", str(out))
        if done.returncode != 0:
            raise RuntimeError(f"restore failed: {done.stdout}{done.stderr}")
        self.windows.append((taken, time.time()))
        self.backup = None

    # -- the command line, importing now and then --
    def import_loop(self) -> None:
        n = 0
        learners = [f"L{i:03d}" for i in range(1, 9)]
        while not self.stop.is_set():
            n += 1
            token = f"cli-{n}-{time.time_ns() % 1_000_000_000}"
            path = self.folder / f"{token}.csv"
            rows = [
                f"{token}-r{i},{learners[i % len(learners)]},teach-methods,3.0,C002,committee,2026-11-20,T4,cli,,2026.1,"
                for i in range(3)
            ]
            header = "id,learner_id,competency_id,level,rater_id,rater_role,rated_on,term,comment,evidence_ids,"
            path.write_text(header + "framework_version,corrects\n" + "\n".join(rows) + "\n", encoding="utf-8")
            done = self.command("import", "ratings", str(path), name="cli")
            told = (
                "saved"
                if done.returncode == 0
                else "refused"
                if "nothing was" in done.stdout + done.stderr
                else "uncertain"
            )
            self.imports.append(
                {"ids": [r.split(",")[0] for r in rows], "told": told, "t": time.time(), "token": token}
            )
            self.stop.wait(self.rng.uniform(0.5 * self.import_gap, 1.5 * self.import_gap))


def check(run: Run) -> dict[str, Any]:
    """What each writer was told against what PostgreSQL holds, and each copy against PostgreSQL."""
    held = pg_digest(run.url)
    present = set(held["ratings"][1]) | set(held["evidence"][1]) | pg_signed_in(run.url)
    with run.lock:
        events = list(run.events)
    kinds: dict[str, str] = {}
    tokens: dict[str, str] = {}
    told: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["ev"] == "try":
            kinds[e["id"]], tokens[e["id"]] = e["kind"], e["token"]
        elif e["ev"] == "told":
            told[e["id"]] = e
    for imp in run.imports:
        for i in imp["ids"]:
            kinds[i], tokens[i] = "import", imp["token"]
            told[i] = {"told": imp["told"], "t": imp["t"], "stored": i}

    def discarded(t: float) -> bool:
        return any(start <= t <= end for start, end in run.windows)

    acknowledged = lost = refused_present = 0
    lost_ids = []
    for attempt, e in told.items():
        if e["told"] == "saved":
            acknowledged += 1
            if e.get("stored") not in present and not discarded(e["t"]):
                lost += 1
                lost_ids.append(f"{attempt} ({kinds[attempt]}, told at {e['t']:.2f})")
        elif e["told"] == "refused" and attempt in present:
            refused_present += 1
    per_token: dict[str, int] = defaultdict(int)
    for attempt, kind in kinds.items():
        if kind not in ("sign-in", "import") and attempt in present:
            per_token[tokens[attempt]] += 1
    twice = sum(1 for n in per_token.values() if n > 1)
    copies: dict[str, bool] = {}
    differences: dict[str, dict[str, Any]] = {}
    for w in run.writers:
        mine = (w.digest or {}).get("tables")
        copies[w.name] = mine == held
        if mine is None:
            differences[w.name] = {"copy": "never showed its copy"}
            continue
        for table, (count, keys) in held.items():
            if mine.get(table) != [count, keys]:
                theirs = set(mine.get(table, [0, []])[1])
                differences.setdefault(w.name, {})[table] = {
                    "postgresql": count,
                    "copy": len(theirs),
                    "only_in_postgresql": sorted(set(keys) - theirs)[:5],
                    "only_in_copy": sorted(theirs - set(keys))[:5],
                }
    return {
        "acknowledged": acknowledged,
        "lost": lost,
        "lost_ids": lost_ids[:10],
        "restore_windows": [[round(a, 2), round(b, 2)] for a, b in run.windows],
        "applied_twice": twice,
        "refused_but_present": refused_present,
        "told": dict(Counter(e["told"] for e in told.values())),
        "copies_equal": copies,
        "copy_differences": differences,
    }


def recovery(run: Run) -> tuple[int, float, dict[str, list[float]]]:
    """Stuck servers (a writer that saved nothing within STUCK_SECONDS of a fault clearing), the slowest convergence
    (a fault clearing, until every writer has saved on PostgreSQL's change as of then, or later), and per kind of
    fault the median and the slowest convergence."""
    saves: dict[str, list[tuple[float, int]]] = defaultdict(list)
    with run.lock:
        for e in run.events:
            if e["ev"] == "told" and e["told"] == "saved":
                saves[e["writer"]].append((e["t"], int(e.get("change") or 0)))
    stuck: set[str] = set()
    per_kind: dict[str, list[float]] = defaultdict(list)
    for kind, at, change in run.cleared:
        worst = 0.0
        for w in run.writers:
            after = [t for t, c in saves[w.name] if t >= at and c >= change]
            if not after or after[0] - at > STUCK_SECONDS:
                stuck.add(f"{w.name}@{at:.0f}")
            if after:
                worst = max(worst, after[0] - at)
        per_kind[kind].append(worst)
    by_kind = {k: [round(statistics.median(v), 1), round(max(v), 1)] for k, v in sorted(per_kind.items())}
    slowest = max((max(v) for v in per_kind.values()), default=0.0)
    return len(stuck), slowest, by_kind


def server_mode(
    seconds: float, gap: float, servers: int, seed: int, rounds: int | None = None, import_gap: float = 2.0
) -> dict[str, Any]:
    """`rounds`: inject each kind of fault that many times, then stop (instead of after `seconds`)."""
    rng = random.Random(seed)  # noqa: S311 - a schedule, not security
    postgres = start_postgres()
    folder = Path(tempfile.mkdtemp(prefix="milestone-faults-"))
    url = postgres.url("milestone")
    proxy = FaultProxy(socket_dir=postgres.folder, pg_port=postgres.port).start()
    run = Run(folder, url, proxy.url("milestone"), postgres, proxy, rng, import_gap=import_gap)
    try:
        done = run.command("init", "--sample", name="seed")
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        for name in [f"server-{n + 1}" for n in range(servers)] + ["cli", "admin"]:  # each starts from the seed's copy
            shutil.copy(folder / "seed.duckdb", folder / f"{name}.duckdb")
        for n in range(servers):
            name = f"server-{n + 1}"
            w = Process(name, run.env(folder / f"{name}.duckdb", name), run.events, run.lock, folder)
            run.writers.append(w)
            w.start()
        for w in run.writers:
            if not w.ready.wait(180):
                raise RuntimeError(f"{w.name} did not start")
        importer = threading.Thread(target=run.import_loop, daemon=True)
        importer.start()
        run.take_backup()
        began = time.monotonic()
        schedule: list[str] = []
        while (
            (time.monotonic() - began < seconds)
            if rounds is None
            else (sum(run.injected.values()) < rounds * len(KINDS))
        ):
            time.sleep(rng.uniform(0.5 * gap, 1.5 * gap))
            if not schedule:
                schedule = rng.sample(KINDS, len(KINDS))
            run.inject(schedule.pop())
            if run.backup is None and rng.random() < 0.5:
                run.take_backup()
        time.sleep(STUCK_SECONDS)  # the last fault's recovery, observed
        run.stop.set()
        importer.join(120)
        for w in run.writers:
            w.stop_writing()
        for w in run.writers:
            w.show_copy()
        result = check(run)
        stuck, slowest, by_kind = recovery(run)
        result |= {"faults": dict(run.injected), "stuck_servers": stuck, "slowest_convergence_s": round(slowest, 1)}
        result["convergence_s_median_and_slowest"] = by_kind
        result["injected"] = sum(run.injected.values())
        result["copies_ok"] = all(result["copies_equal"].values())
        return result
    finally:
        run.stop.set()
        for w in run.writers:
            w.kill()
        proxy.stop()
        postgres.stop()


# ---- embedded mode ----------------------------------------------------------------------------------------------
def embedded_mode(kills: int, fills: int, seed: int) -> dict[str, Any]:
    """One writer over a DuckDB file and the command line's imports: the writer killed with SIGKILL again and again,
    then (as root, on a small loop-mounted disk) the disk filled up under it and freed again, `fills` times."""
    rng = random.Random(seed)  # noqa: S311 - a schedule, not security
    folder = Path(tempfile.mkdtemp(prefix="milestone-faults-embedded-"))
    disk = folder / "disk"
    disk.mkdir()
    mounted = fills > 0 and small_disk.mount(disk, folder / "disk.img", 96)
    try:
        return _embedded(rng, folder, disk, kills, fills if mounted else 0)
    finally:
        if mounted:
            small_disk.unmount(disk)


def _embedded(rng: random.Random, folder: Path, disk: Path, kills: int, fills: int) -> dict[str, Any]:
    db = disk / "tracker.duckdb"
    env = {**os.environ, "TRACKER_DB": str(db)}
    env.pop("TRACKER_COPY", None)
    subprocess.run(
        [sys.executable, "-m", "tracker", "init", "--sample"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    events: list[dict[str, Any]] = []
    lock = threading.Lock()
    writer = Process("embedded", env, events, lock, folder)
    for _ in range(kills):
        writer.start()
        if not writer.ready.wait(120):
            raise RuntimeError("the embedded writer did not start")
        time.sleep(rng.uniform(0.5, 2.0))
        writer.kill()
    writer.start()
    writer.ready.wait(120)
    for _ in range(fills):
        time.sleep(rng.uniform(0.5, 1.5))
        filler = small_disk.fill(disk)
        time.sleep(1.5)  # saves meet the full disk
        filler.unlink()
    writer.stop_writing()
    writer.show_copy()
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    present = {r[0] for r in con.execute("SELECT id FROM ratings UNION ALL SELECT id FROM evidence").fetchall()}
    present |= signed_in([r[0] for r in con.execute(SIGNED_IN).fetchall()])
    con.close()
    told = {e["id"]: e for e in events if e["ev"] == "told"}
    acknowledged = [e for e in told.values() if e["told"] == "saved"]
    lost = [e["id"] for e in acknowledged if e.get("stored") not in present]
    refused = [i for i, e in told.items() if e["told"] == "refused" and i in present]
    return {
        "kills": kills,
        "disk_fills": fills,
        "told_disk_full": sum(1 for e in told.values() if e["told"] == "refused" and "is full" in e.get("why", "")),
        "told_damaged": sum(1 for e in told.values() if "damaged" in e.get("why", "")),
        "acknowledged": len(acknowledged),
        "lost": len(lost),
        "applied_twice": 0,
        "refused_but_present": len(refused),
        "lost_ids": lost[:10],
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"faults: {result['injected']} injected; writes: {result['acknowledged']} acknowledged, {result['lost']} lost, "
        f"{result['applied_twice']} applied twice, {result['refused_but_present']} refused but present; "
        f"stuck servers: {result['stuck_servers']}; slowest convergence {result['slowest_convergence_s']} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Every write under injected faults (see the module's text).")
    parser.add_argument("--quick", action="store_true", help="a few minutes: each kind of fault three times")
    parser.add_argument("--seconds", type=float, default=900, help="how long to inject faults (server mode)")
    parser.add_argument("--gap", type=float, default=6.0, help="mean seconds between two faults")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--rounds", type=int, help="inject each kind of fault this many times, then stop")
    parser.add_argument("--kills", type=int, default=20, help="embedded mode: how many times the writer is killed")
    parser.add_argument("--fills", type=int, default=20, help="embedded mode: how many times the disk fills up (root)")
    parser.add_argument("--embedded", action="store_true", help="embedded mode only (--kills 0 --fills 0: none of it)")
    parser.add_argument("--import-gap", type=float, default=2.0, help="mean seconds between two command-line imports")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.gap, args.kills, args.fills = 3, 3.0, 5, 3
    result: dict[str, Any] = {"seed": args.seed}
    if not args.embedded:
        print(f"server mode: {args.servers} servers, faults every {args.gap:g} s for {args.seconds:g} s", flush=True)
        result |= server_mode(args.seconds, args.gap, args.servers, args.seed, args.rounds, args.import_gap)
    embedded = None
    if args.kills or args.fills:
        embedded = embedded_mode(args.kills, args.fills, args.seed)
        print(
            f"embedded: {embedded['kills']} kills, {embedded['disk_fills']} full disks ({embedded['told_disk_full']} "
            f"saves told the disk is full, {embedded['told_damaged']} told of damage); writes: "
            f"{embedded['acknowledged']} acknowledged, {embedded['lost']} lost, {embedded['refused_but_present']} "
            "refused but present",
            flush=True,
        )
    result["embedded"] = embedded
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    embedded_bad = embedded is not None and bool(
        embedded["lost"] or embedded["refused_but_present"] or embedded["told_damaged"]
    )
    if args.embedded:
        return 1 if embedded_bad else 0
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("faults", "told", "convergence_s_median_and_slowest", "copies_equal", "copy_differences")
            }
        ),
        flush=True,
    )
    print(summary(result), flush=True)
    bad = result["lost"] or result["applied_twice"] or result["refused_but_present"] or result["stuck_servers"]
    return 1 if bad or embedded_bad or not result["copies_ok"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
