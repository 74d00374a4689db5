"""`python -m tracker ...`: set up, check, import, export and generate, reusing the engine."""

import argparse
import csv
import io
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from tracker import accounts, importing
from tracker.config import settings
from tracker.errors import ImportProblems, TrackerError
from tracker.framework import load_framework
from tracker.generate import generate
from tracker.setup import is_empty, open_configured, seed_directory

CLI_ACTOR = "cli"


def _bar(desc: str) -> tuple[Callable[[int, int], None], tqdm]:
    bar = tqdm(total=0, desc=desc, unit="row", disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar


def cmd_init(args: argparse.Namespace) -> int:
    cfg = settings()
    db, framework = open_configured(cfg)
    cur = db.cursor()
    print(f"Database {cfg.db_path} is ready for framework {framework.id} {framework.version}.")
    if args.sample:
        if not is_empty(cur):
            print("It already holds records; the sample program was not loaded again.")
            return 0
        update, bar = _bar("sample")
        added = seed_directory(cur, cfg.sample_dir, framework, CLI_ACTOR, update)
        bar.close()
        accounts.create_demo_accounts(cur)
        print("Loaded the sample program: " + ", ".join(f"{n} {k}" for k, n in added.items()) + ".")
        print(
            f"Demo accounts were created; they sign in with the password {accounts.DEMO_PASSWORD!r} (a few are in "
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
    db, framework = open_configured(settings())
    update, bar = _bar(f"import {args.kind}")
    try:
        result = importing.import_file(db.cursor(), args.kind, args.file, framework, CLI_ACTOR, update)
    finally:
        bar.close()
    note = f" ({result.unchanged} already present and identical)" if result.unchanged else ""
    print(f"Imported {result.added} {args.kind} from {args.file}{note}.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    db, _ = open_configured(settings())
    text = importing.export_csv(db.cursor(), args.kind)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1  # a cell may hold lines (a meeting's agenda)
    print(f"Wrote {rows} {args.kind} to {args.out}.")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    framework = load_framework(settings().framework_path)
    program = generate(framework, args.learners, args.seed)
    program.write(args.out, with_truth=args.truth)
    print(
        f"Wrote {len(program.learners)} learners, {len(program.staff)} staff, {len(program.ratings)} ratings "
        f"and {len(program.evidence)} evidence items to {args.out}."
    )
    return 0


def cmd_learner_status(args: argparse.Namespace) -> int:
    from tracker import store

    db, _ = open_configured(settings())
    store.set_learner_status(db.cursor(), args.learner, args.status, CLI_ACTOR)
    print(f"Learner {args.learner} is now {args.status}.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tracker import queries, reports

    db, framework = open_configured(settings())
    cur = db.cursor()
    viewer = reports.program_viewer()
    priors = queries.program_priors(cur)
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
            (out / f"{learner_id}.pdf").write_bytes(reports.learner_report(cur, viewer, framework, learner_id, priors))
        print(f"Wrote {len(ids)} learner reports to {out}/.")
        return 0
    pdfs = [reports.learner_report(cur, viewer, framework, i, priors) for i in tqdm(ids, unit="learner", disable=None)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(reports.merge_pdfs(pdfs))
    print(f"Wrote {'the report of ' + ids[0] if len(ids) == 1 else f'{len(ids)} learner reports'} to {out}.")
    return 0


def cmd_framework_import(args: argparse.Namespace) -> int:
    from tracker import interchange

    source = Path(args.file)
    if args.source == "case":
        imported = interchange.import_case(source.read_text(encoding="utf-8-sig"), source.name)
    else:
        imported = interchange.import_moodle(source.read_bytes(), source.name)
    Path(args.out).write_text(imported.yaml_text, encoding="utf-8")
    for warning in imported.warnings:
        print(f"note: {warning}")
    print(f"Wrote {args.out}: it validates; edit what the notes name, then check it with `validate`.")
    return 0


def cmd_framework_export(args: argparse.Namespace) -> int:
    from tracker import interchange

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
    s.add_argument("kind", choices=list(importing.EXPORT_SQL))
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_export)
    s = sub.add_parser("generate", help="write a synthetic program of any size as CSV")
    s.add_argument("--learners", type=int, default=60)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--out", required=True)
    s.add_argument("--truth", action="store_true", help="also write truth.csv with each learner's hidden growth")
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
    frameworks = sub.add_parser("framework", help="import a framework from CASE or Moodle, or export ours to either")
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
    accounts.add_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ImportProblems as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if args.command == "validate" else 2
