"""`python -m bench.browser`: how long each page takes in a real browser, from click to settled page.

Starts the app (`streamlit run dashboard.py`) on 127.0.0.1 over a database of the sample program and of a
generated program, drives Debian's Chromium with Playwright as the role that uses each page, and times:
- the sign-in form on the first request after the server starts, in a browser that has never opened the app (it
  fetches and compiles Streamlit's 2 MB of scripts first) and in one that has (as a returning user's: the scripts
  in its cache), median of a few starts;
- a committee member's home on the first sign-in after a start, from the click on "Sign in" (its whole-program
  agenda is the costliest figure of a large program), median of a few starts;
- every page of each role, from the click on its sidebar link until the page is settled (the script has
  finished, nothing is stale, no element is still a placeholder, every chart is drawn, and nothing in the main area
  has changed for QUIET_MS: the time is that of its last change), median of several visits.
Prints a table and writes bench/out/browser.json.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tracker.accounts import admin
from tracker.core.config import ROOT
from tracker.framework.loading import load_framework
from tracker.records.generate import generate
from tracker.records.setup import seed_directory
from tracker.storage import database as storage_database
from tracker.storage import opening

OUT = ROOT / "bench" / "out"
FRAMEWORK = ROOT / "competencies.yaml"
CHROMIUM = "/usr/bin/chromium"
ROLE_PAGES = {  # who uses which page (sidebar titles)
    "learner": ["Home", "My progress", "Self-assessment", "Framework"],
    "advisor": ["Home", "Learner progress", "Cohort summary"],
    "committee": ["Home", "Cohort summary", "Learner progress"],
    "coordinator": ["Home", "Records and audit", "Import records"],
}
MAIN_TEXT = "() => document.querySelector('[data-testid=\"stMain\"]')?.innerText ?? ''"
SETTLED = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stMain"] [data-testid="stSkeleton"]')
    && document.querySelectorAll('[data-stale="true"]').length === 0
    && !!document.querySelector('[data-testid="stMain"] h1')
    && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].every(c => c.querySelector('canvas, svg'))"""


CHANGED = f"before => ({SETTLED})() && ({MAIN_TEXT})() !== before"
QUIET_MS = 500  # settled means, besides the above, that nothing in the main area has changed for this long
# Every page load records when anything in the main area last changed (the page's own clock): a page's elements go on
# arriving after its title shows, and Streamlit's running indicator does not show for every run.
WATCH = """(() => {
    window.__lastChange = performance.now();
    new MutationObserver(changes => {
        if (changes.some(c => c.target.closest && c.target.closest('[data-testid="stMain"]')))
            window.__lastChange = performance.now();
    }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();"""
HOME_AFTER_START = "committee: Home, first sign-in after a start (sign-in included)"
QUIET = f"() => ({SETTLED})() && performance.now() - window.__lastChange > {QUIET_MS}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    """The real app on a free port of 127.0.0.1 over one database file; with `server` (a postgresql:// address), an
    app server of server mode whose copy of PostgreSQL's records is `db`."""

    def __init__(self, db: Path, port: int | None = None, server: str = "") -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(db.with_suffix(".log"), "w")  # noqa: SIM115 - closed in stop()
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard.py"),
            "--server.port",
            str(self.port),
        ]
        command += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ | ({"TRACKER_DB": server, "TRACKER_COPY": str(db)} if server else {"TRACKER_DB": str(db)}),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):  # noqa: S310 - loopback
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the app did not start: see {db.with_suffix('.log')}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def sample_db(folder: Path, server: str = "") -> Path:
    """The sample program with demo accounts in a new database file; with `server` (a postgresql:// address), in
    that PostgreSQL database, through the file as its copy."""
    fw = load_framework(FRAMEWORK)
    path = folder / "sample.duckdb"
    path.unlink(missing_ok=True)
    db = opening.open_database(path, fw, FRAMEWORK.read_text(encoding="utf-8"), server)
    seed_directory(db.cursor(), ROOT / "sample_data", fw, "bench")
    admin.create_demo_accounts(db.cursor())
    if not server:  # a copy's own connections keep a transaction open; it is written out as it closes
        db.con.execute("CHECKPOINT")
    db.close()
    return path


def generated_db(folder: Path, n: int) -> Path:
    """A generated program of n learners, loaded in bulk, with demo accounts."""
    from bench.load import bulk_load

    fw = load_framework(FRAMEWORK)
    data = OUT / f"n{n}"
    if not (data / "ratings.csv").exists():
        generate(fw, n_learners=n, seed=42).write(data)
    path = folder / f"n{n}.duckdb"
    path.unlink(missing_ok=True)
    db = opening.open_database(path, fw, FRAMEWORK.read_text(encoding="utf-8"))
    bulk_load(db.cursor(), data)
    admin.create_demo_accounts(db.cursor())
    db.con.execute("CHECKPOINT")
    db.close()
    return path


def _accounts(db: Path) -> dict[str, str]:
    """One account per role: a learner with ratings, an advisor with advisees, a committee member, a coordinator."""
    database = storage_database.Database(db, read_only=True)
    cur = database.cursor()
    pick = {
        "learner": "SELECT lower(learner_id) FROM ratings WHERE rater_role = 'advisor' ORDER BY learner_id LIMIT 1",
        "advisor": "SELECT lower(advisor_id) FROM learners WHERE advisor_id IS NOT NULL ORDER BY 1 LIMIT 1",
        "committee": "SELECT lower(id) FROM staff WHERE list_contains(roles, 'committee') "
        "AND NOT list_contains(roles, 'advisor') ORDER BY id LIMIT 1",
        "coordinator": "SELECT lower(id) FROM staff WHERE list_contains(roles, 'coordinator') ORDER BY id LIMIT 1",
    }
    out = {role: str(cur.execute(sql).fetchone()[0]) for role, sql in pick.items()}  # type: ignore[index]
    database.close()
    return out


ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def _sign_in_form(page: Any, url: str) -> int:
    """Milliseconds from the request of the page until the sign-in form last changed (the page's own clock starts
    with the request)."""
    page.add_init_script(WATCH)
    page.goto(url)
    page.get_by_label("User name").wait_for(timeout=60_000)
    page.wait_for_function(QUIET.replace("h1", "input"), timeout=60_000)
    return round(page.evaluate("window.__lastChange"))


def time_sign_in(db: Path, starts: int) -> dict[str, list[int]]:
    """The sign-in form on the first request after each of `starts` server starts, in a new browser and in a
    browser that opened the app before the start (same address, its profile kept)."""
    from playwright.sync_api import sync_playwright

    new, returning = [], []
    port = _free_port()
    with sync_playwright() as p:
        for _ in range(starts):
            profile = OUT / "browser" / "profile"
            shutil.rmtree(profile, ignore_errors=True)
            browser = p.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, args=ARGS, viewport={"width": 1400, "height": 1000}
            )
            app = App(db, port)
            try:
                new.append(_sign_in_form(browser.new_page(), app.url))
            finally:
                app.stop()
            app = App(db, port)
            try:
                returning.append(_sign_in_form(browser.new_page(), app.url))
            finally:
                app.stop()
            browser.close()
    return {
        "sign-in form after a start, new browser": new,
        "sign-in form after a start, returning browser": returning,
    }


def time_committee_home_after_start(db: Path, starts: int) -> list[int]:
    """A committee member's home on the first sign-in after each of `starts` server starts: from the click on
    "Sign in" to the settled home, whose whole-program agenda the server draws as it starts (web.keep_warm)."""
    from playwright.sync_api import sync_playwright

    user = _accounts(db)["committee"]
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(starts):
            app = App(db)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(WATCH)
                page = context.new_page()
                page.goto(app.url)
                page.get_by_label("User name").fill(user)
                page.get_by_label("Password", exact=True).fill(admin.DEMO_PASSWORD)
                start = page.evaluate("performance.now()")
                page.get_by_role("button", name="Sign in").click()
                page.get_by_text("Who needs discussion").wait_for(timeout=120_000)
                page.wait_for_function(QUIET, timeout=120_000)
                times.append(round(page.evaluate("window.__lastChange") - start))
                context.close()
            finally:
                app.stop()
        browser.close()
    return times


def time_pages(db: Path, visits: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    users = _accounts(db)  # read before the app holds the file
    app = App(db)
    results: dict[str, Any] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for role, user in users.items():
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(WATCH)
                page = context.new_page()
                page.goto(app.url)
                page.get_by_label("User name").fill(user)
                page.get_by_label("Password", exact=True).fill(admin.DEMO_PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("button", name="Sign out").wait_for(timeout=60_000)
                page.wait_for_function(SETTLED, timeout=60_000)
                while not any(c["name"] == "milestone_session" for c in context.cookies()):
                    page.wait_for_timeout(50)  # the browser's own session cookie, fetched just after signing in
                hrefs = {
                    t: page.get_by_role("link", name=t, exact=True).get_attribute("href") for t in ROLE_PAGES[role]
                }
                hrefs["Framework"] = page.get_by_role("link", name="Framework", exact=True).get_attribute("href")
                for title in ROLE_PAGES[role]:
                    times = []
                    for _ in range(visits + 1):  # the first visit warms the page's caches; it is not counted
                        page.goto(str(hrefs["Framework" if title != "Framework" else "Home"]))
                        page.get_by_role("button", name="Sign out").wait_for(timeout=60_000)
                        page.wait_for_function(QUIET, timeout=60_000)
                        before = page.evaluate(MAIN_TEXT)
                        start = page.evaluate("performance.now()")
                        page.get_by_role("link", name=title, exact=True).click()
                        # showing another page than before the click, then settled and quiet: the time is that of
                        # the last change of the main area
                        page.wait_for_function(CHANGED, arg=before, timeout=60_000)
                        page.wait_for_function(QUIET, timeout=60_000)
                        times.append(round(page.evaluate("window.__lastChange") - start))
                    results[f"{role}: {title}"] = times[1:]
                context.close()
            browser.close()
    finally:
        app.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.browser")
    parser.add_argument("--sizes", default="10000", help="generated program sizes, besides the sample program")
    parser.add_argument("--visits", type=int, default=5, help="timed visits of each page, after one warm-up")
    parser.add_argument("--starts", type=int, default=3, help="server starts for the sign-in form's timing")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    work = OUT / "browser"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print("load average at the start (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    sample = sample_db(work)
    runs: dict[str, dict[str, Any]] = {"sample (60 learners)": time_sign_in(sample, args.starts)}
    runs["sample (60 learners)"] |= time_pages(sample, args.visits)
    runs["sample (60 learners)"][HOME_AFTER_START] = time_committee_home_after_start(sample, args.starts)
    for n in [int(x) for x in args.sizes.split(",") if x]:
        db = generated_db(work, n)
        runs[f"{n:,} learners"] = time_pages(db, args.visits)
        runs[f"{n:,} learners"][HOME_AFTER_START] = time_committee_home_after_start(db, args.starts)
    (OUT / "browser.json").write_text(json.dumps(runs | {"load average": os.getloadavg()}, indent=2))
    names = list(dict.fromkeys(name for r in runs.values() for name in r))
    print("| page (role) | " + " | ".join(runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for name in names:
        cells = [f"{statistics.median(r[name]):,.0f}" if r.get(name) else "" for r in runs.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("load average at the end (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
