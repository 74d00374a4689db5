"""`python -m bench.sessions`: many people at once. N simultaneous sessions over Streamlit's own websocket
protocol (the messages a browser's page sends and receives), each signing in with its own account, browsing
the pages of its role and saving ratings, against the real app (`streamlit run dashboard.py`) over a copy of
the sample program: in the embedded mode one app over a DuckDB file; in server mode (`--mode server`) `--apps` app
processes over one PostgreSQL this command starts (Debian's binaries, as the tests start it), each with its own
copy, the sessions spread over them as a sticky load balancer does (each websocket stays on one server).

Each session signs in (all at once: the start of a teaching day), then does `--actions` things with a pause of
`--think` seconds between them: opens a page of its role, and every third action saves a rating (a learner a
self-assessment, an advisor a rating of one of their active advisees). A time is from the message that asks
for the page (or carries the form) to the server's "script finished" for the page shown after it (after the
rerun a save makes): the server's part of a page view, without the browser's drawing. Reports the 50th and 95th
percentile per kind and per page, the load average during the run and the processor time of the apps (and of
PostgreSQL); writes bench/out/sessions.json.
"""

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
from websockets.typing import Subprotocol

from bench.browser import OUT, App, sample_db
from tracker.accounts import admin
from tracker.storage import database as storage_database

PAGES = {  # the pages each role browses (url paths; "progress" of an advisee for advisors and committee)
    "learner": ["home", "progress", "self-assessment", "framework"],
    "advisor": ["home", "progress", "cohort"],
    "committee": ["home", "cohort", "progress", "review"],
    "coordinator": ["home", "cohort", "records", "accounts"],
}
SAVE_EVERY = 3


@dataclass
class Person:
    username: str
    role: str
    learners: list[str]  # whom they rate: themselves (a learner) or their active advisees


@dataclass
class Times:
    sign_in: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)
    save: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    by_page: dict[str, list[float]] = field(default_factory=dict)  # "role: page" (saves: "role: save") -> seconds
    events: list[tuple[float, str, float]] = field(default_factory=list)  # (start since the run began, what, seconds)
    began: float = field(default_factory=time.monotonic)

    def add(self, kind: list[float], what: str, seconds: float) -> None:
        kind.append(seconds)
        self.by_page.setdefault(what, []).append(seconds)
        self.events.append((round(time.monotonic() - seconds - self.began, 2), what, round(seconds, 3)))


class Session:
    """One browser tab's websocket session."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.widgets: dict[str, Any] = {}  # element id -> its proto (the last page's widgets)
        self.alerts: list[str] = []
        self.page = ""

    async def run(self, page: str, query: str = "", states: list[WidgetState] | None = None) -> float:
        """Ask for a run of `page` with these widget states; the seconds until the page after it finished."""
        self.page = page
        ask = ClientState(query_string=query, page_name=page, widget_states=WidgetStates(widgets=states or []))
        started = time.monotonic()
        await self.ws.send(BackMsg(rerun_script=ask).SerializeToString())
        self.widgets, self.alerts = {}, []
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self.ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "new_session":  # every run of the script starts with it: a rerun's page replaces the last
                self.widgets, self.alerts = {}, []
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                inner = getattr(element, str(element.WhichOneof("type")))
                if element.WhichOneof("type") == "alert":
                    self.alerts.append(inner.body)
                elif getattr(inner, "id", ""):
                    self.widgets[inner.id] = inner
            elif kind == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return time.monotonic() - started

    def widget(self, key: str) -> Any:
        found = [w for i, w in self.widgets.items() if i.endswith("-" + key) or f"-{key}-" in i]
        if not found:
            raise LookupError(f"no widget {key!r} on {self.page}: {sorted(self.widgets)}; alerts {self.alerts}")
        return found[0]

    def text(self, key: str, value: str) -> WidgetState:
        return WidgetState(id=self.widget(key).id, string_value=value)

    def choice(self, key: str, pick: int) -> WidgetState:
        options = list(self.widget(key).options)
        return WidgetState(id=self.widget(key).id, string_value=options[pick % len(options)])

    def submit(self, form: str) -> WidgetState:
        return WidgetState(id=self.widget(f"FormSubmitter:{form}").id, trigger_value=True)


async def sign_in(s: Session, username: str) -> float:
    await s.run("index")
    states = [s.text("sign_in.username", username), s.text("sign_in.password", admin.DEMO_PASSWORD)]
    seconds = await s.run("index", states=[*states, s.submit("sign_in")])
    if any(i.endswith("-sign_in.username") for i in s.widgets):  # still the sign-in form
        raise RuntimeError(f"{username} could not sign in: {s.alerts}")
    return seconds


async def save(s: Session, person: Person, n: int) -> float:
    comment = f"Load test {person.username} {n}"
    if person.role == "learner":
        await s.run("self-assessment")
        form = [s.choice("self.level", n), s.text("self.reflection", comment), s.submit("self.form")]
        seconds = await s.run("self-assessment", states=form)
    else:
        learner = person.learners[n % len(person.learners)]
        await s.run("progress", f"learner={learner}")
        submit = next(w for i, w in s.widgets.items() if "FormSubmitter:progress.rate_form." in i)
        form = [s.choice("progress.rate_level", n), s.text("progress.rate_comment", comment)]
        seconds = await s.run("progress", f"learner={learner}", [*form, WidgetState(id=submit.id, trigger_value=True)])
    if not any(a.startswith("Saved") for a in s.alerts):
        raise RuntimeError(f"{person.username}'s save was not confirmed: {s.alerts}")
    return seconds


async def one_person(url: str, person: Person, actions: int, think: tuple[float, float], times: Times) -> None:
    rng = random.Random(person.username)  # noqa: S311 - a reproducible schedule, not security
    async with websockets.connect(
        url, subprotocols=[Subprotocol("streamlit")], max_size=None, open_timeout=120, ping_interval=None
    ) as ws:
        s = Session(ws)
        try:
            times.add(times.sign_in, f"{person.role}: sign-in", await sign_in(s, person.username))
        except Exception as exc:
            times.failures.append(f"sign-in {person.username}: {exc}")
            return
        for n in range(actions):
            await asyncio.sleep(rng.uniform(*think))
            try:
                if n % SAVE_EVERY == SAVE_EVERY - 1 and person.role != "coordinator":  # who rates no one browses
                    times.add(times.save, f"{person.role}: save", await save(s, person, n))
                    continue
                page = PAGES[person.role][n % len(PAGES[person.role])]
                query = f"learner={rng.choice(person.learners)}" if page == "progress" and person.learners else ""
                times.add(times.page, f"{person.role}: {page}", await s.run(page, query))
            except Exception as exc:
                times.failures.append(f"{person.username} action {n}: {str(exc)[:300]}")


def people(db: Path, n: int) -> list[Person]:
    """n people with accounts: the advisors (with active advisees), the committee, a coordinator, then learners."""
    database = storage_database.Database(db, read_only=True)
    cur = database.cursor()
    staff = cur.execute(
        """SELECT a.username, s.roles, list(l.id ORDER BY l.id) FILTER (WHERE l.id IS NOT NULL)
        FROM accounts a JOIN staff s ON s.id = a.person_id
        LEFT JOIN learners l ON l.advisor_id = s.id AND l.status = 'active'
        WHERE a.password_hash IS NOT NULL AND NOT a.disabled GROUP BY ALL ORDER BY a.username"""
    ).fetchall()
    active = [r[0] for r in cur.execute("SELECT id FROM learners WHERE status = 'active' ORDER BY id").fetchall()]
    learners = cur.execute(
        """SELECT a.username, l.id FROM accounts a JOIN learners l ON l.id = a.person_id
        WHERE a.password_hash IS NOT NULL AND NOT a.disabled AND l.status = 'active' ORDER BY a.username"""
    ).fetchall()
    database.close()
    chosen: list[Person] = []
    for username, roles, advisees in staff:
        if "advisor" in roles and advisees:
            chosen.append(Person(username, "advisor", advisees))
        elif "committee" in roles:
            chosen.append(Person(username, "committee", active))
        elif "coordinator" in roles:
            chosen.append(Person(username, "coordinator", []))
    chosen += [Person(username, "learner", [learner]) for username, learner in learners]
    if len(chosen) < n:
        raise SystemExit(f"the program has {len(chosen)} people who can sign in; asked for {n}")
    return chosen[:n]


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=20, method="inclusive") if len(ordered) > 1 else ordered * 19
    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": cut[18], "max": ordered[-1]}


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # from the state on: ppid is [1]


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def _postgres_cpu_seconds(server: Any) -> float:
    """PostgreSQL's processor time: the postmaster's, its running backends' and its ended children's."""
    postmaster = int((server.folder / "data" / "postmaster.pid").read_text().split()[0])
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])  # utime, stime, and those of the children it has waited for
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                child = _stat(proc.name)
            except OSError:  # ended meanwhile
                continue
            if int(child[1]) == postmaster:
                total += int(child[11]) + int(child[12])
    return total / 100


async def load_test(
    apps: list[App], crowd: list[Person], actions: int, think: tuple[float, float], postgres: Any = None
) -> dict[str, Any]:
    """Each person's session on one app: the i-th person on app i modulo the number of apps (as a load balancer
    that keeps each websocket on one server spreads them)."""
    samples: list[float] = []

    async def sample() -> None:
        while True:
            samples.append(_load())
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample())
    cpu_before = [_cpu_seconds(app.proc.pid) for app in apps]
    pg_before = _postgres_cpu_seconds(postgres) if postgres else 0.0
    times = Times()
    urls = [f"ws://127.0.0.1:{app.port}/_stcore/stream" for app in apps]
    await asyncio.gather(*(one_person(urls[i % len(urls)], p, actions, think, times) for i, p in enumerate(crowd)))
    wall = time.monotonic() - times.began
    cpu = [_cpu_seconds(app.proc.pid) - before for app, before in zip(apps, cpu_before, strict=True)]
    sampler.cancel()
    return {
        "mode": "server" if postgres else "embedded",
        "apps": len(apps),
        "sessions": len(crowd),
        "roles": {r: sum(p.role == r for p in crowd) for r in PAGES},
        "actions_per_session": actions,
        "think_seconds": list(think),
        "sign_in": percentiles(times.sign_in),
        "page": percentiles(times.page),
        "save": percentiles(times.save),
        "by_page": {what: percentiles(seconds) for what, seconds in sorted(times.by_page.items())},
        "failures": times.failures,
        "wall_seconds": wall,
        "app_cpu_seconds": sum(cpu),
        "app_cpu_seconds_each": cpu,
        "postgres_cpu_seconds": _postgres_cpu_seconds(postgres) - pg_before if postgres else None,
        "load_average_1min": {"start": samples[0] if samples else None, "max": max(samples, default=None)},
        "load_average_after": Path("/proc/loadavg").read_text().split()[:3],
        "events": sorted(times.events),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--actions", type=int, default=12, help="pages and saves per session after signing in")
    p.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), help="pause between actions, seconds")
    p.add_argument("--mode", choices=["embedded", "server"], default="embedded")
    p.add_argument("--apps", type=int, default=2, help="server mode: app processes over the one PostgreSQL")
    p.add_argument("--label", help="the name of this run in bench/out/sessions.json (default: the mode)")
    args = p.parse_args()
    server = args.mode == "server"
    args.label = args.label or (f"server mode, {args.apps} apps" if server else "embedded")
    from tests import postgres_server

    with tempfile.TemporaryDirectory() as tmp:
        postgres = postgres_server.start() if server else None
        try:
            url = postgres.create_database("milestone") if postgres else ""
            db = sample_db(Path(tmp), url)
            crowd = people(db, args.sessions)
            apps: list[App] = []
            try:
                for n in range(args.apps if server else 1):  # in server mode each with a copy of its own
                    apps.append(App(Path(tmp) / f"copy{n}.duckdb", server=url) if server else App(db))
                result = asyncio.run(load_test(apps, crowd, args.actions, tuple(args.think), postgres))
            finally:
                for app in apps:
                    app.stop()
        finally:
            if postgres:
                postgres.stop()
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "sessions.json"
    runs = json.loads(out.read_text()) if out.exists() else {}
    runs[args.label] = result | {"at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out.write_text(json.dumps(runs, indent=2))
    print_result(args.label, result)


def print_result(label: str, r: dict[str, Any]) -> None:
    print(
        f"{label}: {r['sessions']} sessions {r['roles']} on {r['apps']} app(s), {r['actions_per_session']} actions each"
    )
    for kind, t in [(k, r[k]) for k in ("sign_in", "page", "save")] + list(r["by_page"].items()):
        if t["n"]:
            print(f"  {kind:<28} n={t['n']:<4} p50 {t['p50']:.2f} s  p95 {t['p95']:.2f} s  max {t['max']:.2f} s")
    each = " + ".join(f"{c:.0f}" for c in r["app_cpu_seconds_each"])
    postgres = f", PostgreSQL {r['postgres_cpu_seconds']:.0f} s" if r["postgres_cpu_seconds"] is not None else ""
    print(
        f"  wall {r['wall_seconds']:.0f} s, processor time: apps {each} s{postgres}; "
        f"load average (1 min) at start {r['load_average_1min']['start']}, highest {r['load_average_1min']['max']}"
    )
    for failure in r["failures"][:10]:
        print("  failed:", failure)
    if len(r["failures"]) > 10:
        print(f"  … and {len(r['failures']) - 10} more failures")


if __name__ == "__main__":
    main()
