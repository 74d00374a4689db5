"""`python -m tracker ...`: set up, check, import, export and generate, reusing the engine."""

import argparse
import csv
import io
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from tqdm import tqdm

from data_models import Framework
from tracker.accounts import admin, commands
from tracker.core.config import settings
from tracker.core.errors import DatabaseBusy, EnvironmentStop, ImportProblems, TrackerError
from tracker.framework.loading import load_framework
from tracker.records import exporting, importing, revision
from tracker.records.generate import GROWTH, generate
from tracker.records.setup import is_empty, open_configured, seed_directory
from tracker.storage import backups, control, database, record_rows
from tracker.storage.database import Database

CLI_ACTOR = "cli"


def _bar(desc: str) -> tuple[Callable[[int, int], None], tqdm]:
    bar = tqdm(total=0, desc=desc, unit="row", disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar


def _open() -> tuple[Database, Framework]:
    """The database and the framework in force; says on stderr when the configured file waits for an upgrade."""
    cfg = settings()
    db, framework = open_configured(cfg)
    if revision.differs(db.cursor(), cfg.framework_path):  # cheap: the diff itself reads every rating
        print(
            f"note: {cfg.framework_path} differs from the accepted framework {framework.version}; this command uses "
            f"{framework.version}. See the changes with `python -m tracker framework diff {cfg.framework_path}` and "
            f"accept them with `python -m tracker framework upgrade {cfg.framework_path}`.",
            file=sys.stderr,
        )
    return db, framework


def cmd_init(args: argparse.Namespace) -> int:
    cfg = settings()
    db, framework = _open()
    cur = db.cursor()
    where = "The shared database" if cfg.server_url else f"Database {cfg.db_path}"
    print(f"{where} is ready for framework {framework.id} {framework.version}.")
    if args.sample:
        if not is_empty(cur):
            print("It already holds records; the sample program was not loaded again.")
            return 0
        update, bar = _bar("sample")
        added = seed_directory(cur, cfg.sample_dir, framework, CLI_ACTOR, update)
        bar.close()
        admin.create_demo_accounts(cur)
        print("Loaded the sample program: " + ", ".join(f"{n} {k}" for k, n in added.items()) + ".")
        print(
            f"Demo accounts were created; they sign in with the password {admin.DEMO_PASSWORD!r} (a few are in "
            "other states, as the Accounts page shows)."
        )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    framework = load_framework(args.file)
    n = len(framework.competencies)
    print(
        f"{args.file}: valid — {len(framework.domains)} domains, {n} competencies, "
        f"levels {framework.min_level}–{framework.max_level}, {len(framework.term_ids)} terms."
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    try:
        db, framework = _open()
    except DatabaseBusy as busy:  # the running app holds it: it imports the file through its own connection
        counted = control.import_through_app(settings().db_path, args.kind, Path(args.file), busy)
        _say_imported(args, counted["added"], counted["unchanged"], " (the running app imported it)")
        return 0
    update, bar = _bar(f"import {args.kind}")
    try:
        result = importing.import_file(db.cursor(), args.kind, args.file, framework, CLI_ACTOR, update)
    finally:
        bar.close()
    _say_imported(args, result.added, result.unchanged)
    return 0


def _say_imported(args: argparse.Namespace, added: int, unchanged: int, how: str = "") -> None:
    note = f" ({unchanged} already present and identical)" if unchanged else ""
    print(f"Imported {added} {args.kind} from {args.file}{note}{how}.")


def cmd_export(args: argparse.Namespace) -> int:
    try:
        db, _ = _open()
    except DatabaseBusy as busy:  # the running app holds it: it reads the records through its own connection
        text = control.export_through_app(settings().db_path, args.kind, busy)
    else:
        text = exporting.export_csv(db.cursor(), args.kind)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1  # a cell may hold lines (a meeting's agenda)
    print(f"Wrote {rows} {args.kind} to {args.out}.")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    framework = load_framework(settings().framework_path)
    program = generate(
        framework, args.learners, args.seed, graduated_cohorts=args.graduated_cohorts, growth=args.growth
    )
    program.write(args.out, with_truth=args.truth)
    print(
        f"Wrote {len(program.learners)} learners, {len(program.staff)} staff, {len(program.ratings)} ratings "
        f"and {len(program.evidence)} evidence items to {args.out}."
    )
    return 0


def cmd_learner_status(args: argparse.Namespace) -> int:

    db, _ = _open()
    record_rows.set_learner_status(db.cursor(), args.learner, args.status, CLI_ACTOR)
    print(f"Learner {args.learner} is now {args.status}.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tracker.analysis import queries
    from tracker.reports import packets

    db, framework = _open()
    cur = db.cursor()
    viewer = packets.program_viewer()
    priors = queries.program_priors(cur, framework=framework)
    if args.cohort:
        ids = queries.visible_learners(cur, viewer, cohort=args.cohort)["id"].tolist()
        if not ids:
            raise TrackerError(f"No learners in cohort {args.cohort!r}.")
    else:
        ids = [args.learner]
    out = Path(args.out)
    if len(ids) > 1 and out.suffix.lower() != ".pdf":
        out.mkdir(parents=True, exist_ok=True)
        for learner_id in tqdm(ids, desc=f"cohort {args.cohort}", unit="learner", disable=None):
            (out / f"{learner_id}.pdf").write_bytes(packets.learner_report(cur, viewer, framework, learner_id, priors))
        print(f"Wrote {len(ids)} learner reports to {out}/.")
        return 0
    pdfs = [packets.learner_report(cur, viewer, framework, i, priors) for i in tqdm(ids, unit="learner", disable=None)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(packets.merge_pdfs(pdfs))
    print(f"Wrote {'the report of ' + ids[0] if len(ids) == 1 else f'{len(ids)} learner reports'} to {out}.")
    return 0


def cmd_framework_import(args: argparse.Namespace) -> int:
    from tracker.framework import interchange

    source = Path(args.file)
    try:
        if args.source == "case":
            imported = interchange.import_case(source.read_text(encoding="utf-8-sig"), source.name)
        else:
            imported = interchange.import_moodle(source.read_bytes(), source.name)
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackerError(f"{source}: cannot read the file as UTF-8 text ({exc})") from None
    Path(args.out).write_text(imported.yaml_text, encoding="utf-8")
    for warning in imported.warnings:
        print(f"note: {warning}")
    print(f"Wrote {args.out}: it validates; edit what the notes name, then check it with `validate`.")
    return 0


def cmd_framework_export(args: argparse.Namespace) -> int:
    from tracker.framework import interchange

    framework = load_framework(args.file)
    if args.to == "moodle":
        Path(args.out).write_text(interchange.export_moodle(framework), encoding="utf-8")
        print(f"Wrote {args.out}: {framework.name} {framework.version} as a Moodle competency framework CSV.")
        return 0
    changed = framework.changed
    if changed is None:
        changed = datetime.fromtimestamp(Path(args.file).stat().st_mtime, tz=UTC)
        print(f"note: {args.file} has no `changed:` date; the file's modification time {changed:%Y-%m-%d} was used.")
    package = interchange.export_case(framework, publisher=args.publisher, changed=changed)
    Path(args.out).write_text(package, encoding="utf-8")
    print(f"Wrote {args.out}: {framework.name} {framework.version} as a CASE package.")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    cfg = settings()
    if cfg.server_url:  # the copy, followed to PostgreSQL's latest change, is a whole DuckDB database
        db, _ = _open()
        backups.backup_open(db.cursor(), args.out)
        print(f"Wrote a backup of the shared database to {args.out} (a DuckDB file, as of its latest change).")
        print(
            "PostgreSQL's own backups (pg_dump, WAL archiving) are the server mode's first line: see "
            "docs/deployment.md, Backups."
        )
        return 0
    path = cfg.db_path
    if not path.exists():
        raise TrackerError(f"No database at {path} to back up (set TRACKER_DB).")
    try:
        backups.backup(path, args.out)
    except DatabaseBusy as busy:  # the running app holds it: it makes the copy through its own connection
        print(control.backup_through_app(path, Path(args.out), busy))
    else:
        print(f"Wrote a backup of {path} to {args.out}.")
    print(f"Restore it with `python -m tracker restore {args.out}` (with the app stopped).")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    cfg = settings()
    if cfg.server_url:
        return _restore_shared(Path(args.file))
    kept = backups.restore(args.file, cfg.db_path)
    db, _ = open_configured(cfg)  # brings an older backup's schema up to date, and loads the framework
    database.write(db.cursor(), lambda c: admin.end_restored_sessions(c, CLI_ACTOR, Path(args.file).name))
    problems = backups.check_database(db.cursor())
    db.close()
    if problems:
        raise database.damaged(cfg.db_path, TrackerError("; ".join(problems)))
    print(f"Restored {cfg.db_path} from {args.file}; it passes every check.")
    if kept:
        print(f"The database it replaced is kept as {kept}.")
    return 0


def _restore_shared(backup_file: Path) -> int:
    """Server mode: the backup's records in place of PostgreSQL's, while the app servers run."""
    from tracker.storage import replica  # psycopg, for server mode only

    db, _ = _open()
    assert isinstance(db, replica.ServerDatabase)
    kept = backup_file.resolve().parent / f"shared-replaced-{datetime.now(UTC):%Y%m%d-%H%M%S}.duckdb"
    try:
        db.replica.restore(backup_file, kept, lambda c: admin.end_restored_sessions(c, CLI_ACTOR, backup_file.name))
        problems = backups.check_database(db.cursor())
    finally:
        db.close()
    if problems:
        raise TrackerError(f"The shared database fails its check after the restore: {'; '.join(problems)}.")
    print(f"Restored the shared database from {backup_file}; it passes every check.")
    print(f"The records it replaced are kept in {kept} (a backup: restore it the same way to undo).")
    print("Every app server takes a full copy at its next page; everyone signs in again.")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    cfg = settings()
    if not cfg.server_url and not cfg.db_path.exists():
        raise TrackerError(f"No database at {cfg.db_path} (set TRACKER_DB).")
    db, _ = open_configured(cfg)
    problems = backups.check_database(db.cursor())
    db.close()
    if problems:
        raise database.damaged(cfg.db_path, TrackerError("; ".join(problems)))
    where = "the shared database (this command's copy of it)" if cfg.server_url else str(cfg.db_path)
    print(f"{where}: every table reads to its last row; the records are consistent.")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from tracker.analysis import queries
    from tracker.reports import packets

    db, framework = open_configured(settings())
    result = queries.backtest(db.cursor(), packets.program_viewer(), framework, args.term)
    print(backtest_text(result, framework, args.term))
    return 0


def backtest_text(result: Any, framework: Any, term: int | None) -> str:
    """The backtest's figures as the page shows them, in plain text."""
    if len(result.cohorts) < 2:
        return (
            f"{len(result.cohorts)} graduated cohort(s): the backtest leaves one graduated cohort out at a time "
            "and needs at least two."
        )
    target = framework.calendar.graduation_level
    lines = [
        f"Backtest of the graduation forecast, leaving one graduated cohort out at a time "
        f"({len(result.cohorts)} cohorts: {', '.join(result.cohorts)}); a flag is a chance below 50% of being "
        f"rated {target:g} at graduation.",
        "",
        f"{'term':>4}  {'cohort':<10} {'learners':>8} {'missed':>6} {'flagged':>7} {'found':>6} "
        f"{'false alarms':>12} {'stated':>6} {'reached':>7} {'calibration error':>17}",
    ]

    def row(r: Any, cohort: str) -> str:
        found = "—" if r.found != r.found else f"{r.found:.0%}"
        alarms = "—" if r.false_alarms != r.false_alarms else f"{r.false_alarms:.0%}"
        return (
            f"{r.term:>4}  {cohort:<10} {r.learners:>8} {r.missed:>6} {r.flagged:>7} {found:>6} {alarms:>12} "
            f"{r.stated:>6.0%} {r.observed:>7.0%} {r.calibration_error:>17.3f}"
        )

    for t in result.by_term.itertuples():
        for c in result.by_cohort[result.by_cohort["term"] == t.term].itertuples():
            lines.append(row(c, c.cohort))
        lines.append(row(t, "all"))
    if term is not None and result.by_term.empty:
        lines.append(f"No forecast at term {term}: the forecast is made before the final term.")
    return "\n".join(lines)


def _print_changes(rev: revision.Revision) -> None:
    for c in rev.changes:
        touches = f" — {c.ratings} ratings of {c.learners} learners" if c.ratings else ""
        print(f"{c.kind:<10} {c.change:<19} {c.item}: {c.detail}{touches}")


def cmd_framework_diff(args: argparse.Namespace) -> int:
    db, framework = _open()
    rev = revision.compare(db.cursor(), load_framework(args.file))
    print(f"{args.file} ({rev.new.version}) against the accepted version {framework.version}:")
    _print_changes(rev)
    if not rev.changes:
        print("no changes to competencies, domains, levels, terms or targets.")
    if rev.refused:
        print(f"It cannot be accepted: {rev.refused}")
        return 1
    if rev.homeless:
        print(f"It cannot be accepted: {len(rev.homeless)} rating(s) would be left without a home:")
        print("\n".join(rev.homeless))
        return 1
    print(f"Accept it with `python -m tracker framework upgrade {args.file}`.")
    return 0


def cmd_framework_upgrade(args: argparse.Namespace) -> int:
    db, framework = _open()
    if load_framework(args.file).model_dump() == framework.model_dump():
        print(f"{args.file} is the accepted version {framework.version}; nothing to do.")
        return 0
    rev = revision.upgrade_file(db.cursor(), Path(args.file), CLI_ACTOR)
    _print_changes(rev)
    print(f"The framework is now version {rev.new.version} (was {framework.version}); no rating was changed.")
    return 0


def cmd_remind(args: argparse.Namespace) -> int:
    from tracker.mail import reminders

    try:
        db, framework = _open()
    except DatabaseBusy as busy:  # the running app holds the database: it sends them through its own connection
        text, all_sent = control.remind_through_app(settings().db_path, args.dry_run, busy)
    else:
        text, all_sent = reminders.report(reminders.run(db.cursor(), framework, dry_run=args.dry_run), args.dry_run)
    print(text)
    return 0 if all_sent else EXIT_ENVIRONMENT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tracker", description="Milestone: competency progress records.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("init", help="create the database ($TRACKER_DB) for the framework ($TRACKER_FRAMEWORK)")
    s.add_argument("--sample", action="store_true", help="seed it with the sample program and demo accounts")
    s.set_defaults(func=cmd_init)
    s = sub.add_parser("validate", help="check a framework YAML; exit 1 listing every problem")
    s.add_argument("file")
    s.set_defaults(func=cmd_validate)
    s = sub.add_parser("import", help="import a CSV file whole, or nothing of it")
    s.add_argument("kind", choices=list(importing.KINDS))
    s.add_argument("file")
    s.set_defaults(func=cmd_import)
    s = sub.add_parser("export", help="export records as CSV that import reads back")
    s.add_argument("kind", choices=list(exporting.EXPORT_SQL))
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_export)
    s = sub.add_parser("generate", help="write a synthetic program of any size as CSV")
    s.add_argument("--learners", type=int, default=60)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--out", required=True)
    s.add_argument("--truth", action="store_true", help="also write truth.csv with each learner's hidden growth")
    s.add_argument("--graduated-cohorts", type=int, default=2, help="cohorts that finished the program before")
    s.add_argument("--growth", choices=list(GROWTH), default="straight", help="straight lines, or slowing growth")
    s.set_defaults(func=cmd_generate)
    s = sub.add_parser("learner-status", help="set a learner's status (active, leave, withdrawn, graduated)")
    s.add_argument("learner")
    s.add_argument("status", choices=["active", "leave", "withdrawn", "graduated"])
    s.set_defaults(func=cmd_learner_status)
    s = sub.add_parser("report", help="write a learner's PDF report, or a cohort's into one PDF or a folder")
    s.add_argument("learner", nargs="?", help="the learner's id")
    s.add_argument("--cohort", help="every learner of this cohort instead")
    s.add_argument("--out", required=True, help="a .pdf file, or a folder for one PDF per learner")
    s.set_defaults(func=cmd_report)
    s = sub.add_parser("backtest", help="how the graduation forecast would have done on the graduated cohorts")
    s.add_argument("--term", type=int, help="only the forecasts made at this term (1 = the first)")
    s.set_defaults(func=cmd_backtest)
    frameworks = sub.add_parser(
        "framework", help="diff or upgrade to a new version; import from CASE or Moodle, or export ours to either"
    )
    fsub = frameworks.add_subparsers(dest="framework_command", required=True)
    s = fsub.add_parser("import", help="convert a CASE JSON package or a Moodle framework CSV to our YAML")
    s.add_argument("file")
    s.add_argument("--from", dest="source", choices=["case", "moodle"], required=True)
    s.add_argument("--out", required=True, help="the YAML file to write")
    s.set_defaults(func=cmd_framework_import)
    s = fsub.add_parser("export", help="write a framework YAML as a CASE JSON package or a Moodle framework CSV")
    s.add_argument("file")
    s.add_argument("--to", choices=["case", "moodle"], default="case")
    s.add_argument("--publisher", help="CASE creator and publisher (default: the YAML's `publisher`)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_framework_export)
    s = fsub.add_parser("diff", help="what a new version of the framework changes, with the ratings it touches")
    s.add_argument("file")
    s.set_defaults(func=cmd_framework_diff)
    s = fsub.add_parser("upgrade", help="accept a new version of the framework (one audited change), or refuse")
    s.add_argument("file")
    s.set_defaults(func=cmd_framework_upgrade)
    s = sub.add_parser(
        "backup", help="copy the database into a new file (the running app makes the copy while it runs)"
    )
    s.add_argument("--out", required=True, help="the new file, e.g. backups/tracker-2026-11-27.duckdb")
    s.set_defaults(func=cmd_backup)
    s = sub.add_parser(
        "restore",
        help="replace the database with a backup (what it replaces is kept beside it); in server mode while the app "
        "servers run",
    )
    s.add_argument("file")
    s.set_defaults(func=cmd_restore)
    s = sub.add_parser("check", help="read the whole database and check its records; exit 2 when damaged")
    s.set_defaults(func=cmd_check)
    s = sub.add_parser("remind", help="e-mail today's reminder digests (at most one per person and day)")
    s.add_argument("--dry-run", action="store_true", help="print what would be sent; send and record nothing")
    s.set_defaults(func=cmd_remind)
    commands.add_cli(sub)
    return p


EXIT_BAD_INPUT = 1  # the file, framework or arguments given are wrong: fix them and run again
EXIT_ENVIRONMENT = 2  # the database is busy or damaged, or a file cannot be written: the machine stopped it


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ImportProblems as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except EnvironmentStop as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except duckdb.Error as exc:  # a damaged block met after the file opened, or a disk that filled up
        print(f"error: {database.unreadable(settings().db_path, exc)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except OSError as exc:
        if database.is_disk_full(exc):
            print(f"error: {database.disk_full(settings().db_path, exc)}", file=sys.stderr)
            return EXIT_ENVIRONMENT
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print("stopped; a write in progress was rolled back.", file=sys.stderr)
        return 130
