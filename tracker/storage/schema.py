"""The schema: its named, ordered migrations, each applied in one transaction with its applied record."""

from tracker.storage.database import Cursor, now, write
from tracker.storage.derived import refresh_term_levels

# Ordered, named migrations; each is applied once, in one transaction with its "applied" record.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_records",
        """
        CREATE SEQUENCE record_seq;
        CREATE TABLE framework_versions (
            framework_id VARCHAR NOT NULL, version VARCHAR NOT NULL, name VARCHAR NOT NULL,
            source_yaml VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL,
            PRIMARY KEY (framework_id, version));
        CREATE TABLE learners (
            id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, email VARCHAR NOT NULL,
            cohort VARCHAR NOT NULL, profession VARCHAR NOT NULL, start_term VARCHAR NOT NULL,
            status VARCHAR NOT NULL, advisor_id VARCHAR, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE staff (
            id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, email VARCHAR NOT NULL,
            roles VARCHAR[] NOT NULL, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE ratings (
            id VARCHAR PRIMARY KEY, learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL,
            level DECIMAL(4,1) NOT NULL, rater_id VARCHAR NOT NULL, rater_role VARCHAR NOT NULL,
            rated_on DATE NOT NULL, term VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            comment VARCHAR NOT NULL, evidence_ids VARCHAR[] NOT NULL,
            framework_version VARCHAR NOT NULL, corrects VARCHAR,
            recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'));
        CREATE TABLE evidence (
            id VARCHAR PRIMARY KEY, learner_id VARCHAR NOT NULL, type VARCHAR NOT NULL,
            title VARCHAR NOT NULL, competency_ids VARCHAR[] NOT NULL, url VARCHAR NOT NULL,
            description VARCHAR NOT NULL, added_on DATE NOT NULL, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE audit_log (
            seq BIGINT NOT NULL DEFAULT nextval('record_seq'), occurred_at TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL, action VARCHAR NOT NULL, target VARCHAR NOT NULL, detail JSON);
        """,
    ),
    (
        "0002_framework_tables",
        """
        CREATE TABLE fw_competencies (
            competency_id VARCHAR PRIMARY KEY, competency_name VARCHAR NOT NULL,
            domain_id VARCHAR NOT NULL, domain_name VARCHAR NOT NULL,
            domain_position SMALLINT NOT NULL, position SMALLINT NOT NULL);
        CREATE TABLE fw_expected (
            competency_id VARCHAR NOT NULL, term VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            expected DECIMAL(4,1) NOT NULL, PRIMARY KEY (competency_id, term));
        CREATE TABLE fw_terms (term VARCHAR PRIMARY KEY, term_index SMALLINT NOT NULL, label VARCHAR NOT NULL);
        """,
    ),
    (
        "0003_accounts",
        """
        CREATE TABLE accounts (
            username VARCHAR PRIMARY KEY, person_id VARCHAR NOT NULL, password_hash VARCHAR,
            disabled BOOLEAN NOT NULL DEFAULT false, failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until TIMESTAMP, created_at TIMESTAMP NOT NULL);
        CREATE TABLE sessions (
            token_hash VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL, ended_at TIMESTAMP);
        """,
    ),
    (
        "0004_term_levels",
        """
        CREATE TABLE term_levels (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            is_self BOOLEAN NOT NULL, level DECIMAL(4,1) NOT NULL, rated_on DATE NOT NULL);
        """,
    ),
    (
        "0005_current_levels",
        """
        CREATE TABLE current_levels (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL,
            level DECIMAL(4,1), level_term SMALLINT, last_rated_on DATE,
            self_level DECIMAL(4,1), self_term SMALLINT, last_self_on DATE, previous_level DECIMAL(4,1));
        """,
    ),
    (
        # a row for every learner and competency, rated or not, with the learner's assessed term and latest
        # rating date: the standing reads one table instead of joining it to learners x competencies
        "0006_current_levels_every_competency",
        """
        DROP TABLE current_levels;
        CREATE TABLE current_levels (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL,
            level DECIMAL(4,1), level_term SMALLINT, last_rated_on DATE,
            self_level DECIMAL(4,1), self_term SMALLINT, last_self_on DATE, previous_level DECIMAL(4,1),
            assessed_term SMALLINT, last_on DATE);
        """,
    ),
    (
        # The browser's cookie holds its own session (HttpOnly, set by an HTTP route), got in exchange for a
        # one-time ticket of the sign-in's session; failed sign-ins are counted per account and source.
        "0007_cookie_sessions_and_sign_in_throttle",
        """
        ALTER TABLE sessions ADD COLUMN parent_hash VARCHAR;
        ALTER TABLE sessions ADD COLUMN ticket_hash VARCHAR;
        ALTER TABLE sessions ADD COLUMN ticket_expires_at TIMESTAMP;
        CREATE TABLE sign_in_failures (username VARCHAR NOT NULL, source VARCHAR NOT NULL, failed_at TIMESTAMP NOT NULL);
        """,
    ),
    (
        # One-time links (invitations and password resets), kept only as hashes; every request for one, by a
        # coordinator or by someone who forgot their password, is counted per account and source.
        "0008_invitation_and_reset_links",
        """
        CREATE TABLE account_links (
            token_hash VARCHAR PRIMARY KEY, person_id VARCHAR NOT NULL, username VARCHAR NOT NULL,
            kind VARCHAR NOT NULL, created_by VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL, used_at TIMESTAMP, revoked_at TIMESTAMP);
        CREATE TABLE link_requests (account_key VARCHAR NOT NULL, source VARCHAR NOT NULL, requested_at TIMESTAMP NOT NULL);
        """,
    ),
    (
        # The database holds the accepted framework: a changed file waits for `framework upgrade`. Each version's
        # competencies, and where the earlier versions' competencies and levels went, are derived from the
        # accepted texts (tracker/records/revision.py); the derived levels say which rating each level came from.
        "0009_framework_revisions",
        """
        ALTER TABLE framework_versions ADD COLUMN accepted_at TIMESTAMP;
        ALTER TABLE framework_versions ADD COLUMN accepted_by VARCHAR;
        UPDATE framework_versions SET accepted_at = loaded_at, accepted_by = 'loaded';
        CREATE TABLE fw_history (
            version VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, competency_name VARCHAR NOT NULL,
            domain_name VARCHAR NOT NULL, retired BOOLEAN NOT NULL, PRIMARY KEY (version, competency_id));
        CREATE TABLE fw_crosswalk (from_version VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, to_competency_id VARCHAR);
        CREATE TABLE fw_level_map (
            from_version VARCHAR NOT NULL, level DECIMAL(4,1) NOT NULL, to_level DECIMAL(4,1) NOT NULL);
        ALTER TABLE term_levels ADD COLUMN from_competency_id VARCHAR;
        ALTER TABLE term_levels ADD COLUMN from_version VARCHAR;
        ALTER TABLE current_levels ADD COLUMN level_from_competency VARCHAR;
        ALTER TABLE current_levels ADD COLUMN level_from_version VARCHAR;
        """,
    ),
    (
        # The committee's review cycle (tracker/review/review_actions.py): meetings and their agendas; drafts, the working state
        # of a meeting that only the committee reads; signed decisions and their actions, never edited (a revision
        # is a new decision whose `replaces` names the one it supersedes).
        "0010_review_meetings_and_decisions",
        """
        CREATE TABLE review_meetings (
            id VARCHAR PRIMARY KEY, title VARCHAR NOT NULL, held_on DATE NOT NULL, period VARCHAR NOT NULL,
            cohort VARCHAR, chair_id VARCHAR NOT NULL, members VARCHAR[] NOT NULL,
            created_by VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, signed_at TIMESTAMP);
        CREATE TABLE review_agenda (
            meeting_id VARCHAR NOT NULL, position SMALLINT NOT NULL, learner_id VARCHAR NOT NULL,
            reasons VARCHAR NOT NULL, PRIMARY KEY (meeting_id, learner_id));
        CREATE TABLE decision_drafts (
            meeting_id VARCHAR NOT NULL, learner_id VARCHAR NOT NULL, outcome VARCHAR, rationale VARCHAR NOT NULL,
            actions JSON NOT NULL, levels JSON NOT NULL, updated_by VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (meeting_id, learner_id));
        CREATE TABLE decisions (
            id VARCHAR PRIMARY KEY, meeting_id VARCHAR, learner_id VARCHAR NOT NULL, outcome VARCHAR NOT NULL,
            rationale VARCHAR NOT NULL, decided_on DATE NOT NULL, signed_by VARCHAR NOT NULL, replaces VARCHAR,
            recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'));
        CREATE TABLE decision_actions (
            decision_id VARCHAR NOT NULL, position SMALLINT NOT NULL, action VARCHAR NOT NULL,
            owner_id VARCHAR NOT NULL, due_on DATE NOT NULL, PRIMARY KEY (decision_id, position));
        """,
    ),
    (
        # Learning plans (tracker/plans/plan_actions.py): a plan, opened by a committee decision that requires one or by the
        # learner; its goals, never edited (a change is the goal's next version); the advisor's agreement of one
        # version; comments on a version. A decision signed before this migration that requires a plan (the
        # standard outcomes) opens its plan here.
        "0011_learning_plans",
        """
        CREATE TABLE learning_plans (
            id VARCHAR PRIMARY KEY, learner_id VARCHAR NOT NULL, decision_id VARCHAR, opened_on DATE NOT NULL,
            opened_by VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE goals (
            id VARCHAR NOT NULL, version SMALLINT NOT NULL, plan_id VARCHAR NOT NULL, learner_id VARCHAR NOT NULL,
            competency_id VARCHAR NOT NULL, target_level DECIMAL(4,1) NOT NULL, by_term VARCHAR NOT NULL,
            actions VARCHAR NOT NULL, evidence VARCHAR NOT NULL, written_by VARCHAR NOT NULL, written_on DATE NOT NULL,
            recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'),
            PRIMARY KEY (id, version));
        CREATE TABLE goal_agreements (
            goal_id VARCHAR NOT NULL, version SMALLINT NOT NULL, agreed_by VARCHAR NOT NULL, agreed_on DATE NOT NULL,
            recorded_at TIMESTAMP NOT NULL, PRIMARY KEY (goal_id, version));
        CREATE TABLE goal_comments (
            goal_id VARCHAR NOT NULL, version SMALLINT NOT NULL, author_id VARCHAR NOT NULL, written_on DATE NOT NULL,
            comment VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'));
        INSERT INTO learning_plans
            SELECT 'P-' || id, learner_id, id, decided_on, signed_by, timezone('UTC', now()) FROM decisions
            WHERE outcome IN ('learning-plan', 'remediation-plan');
        """,
    ),
    (
        # The derived levels name the rater whose rating each is, so the forecast can estimate each rater's
        # strictness (docs/measurement.md, "Raters' strictness").
        "0012_term_levels_rater",
        """
        ALTER TABLE term_levels ADD COLUMN rater_id VARCHAR;
        """,
    ),
    (
        # E-mail reminders (tracker/mail/reminders.py): one digest per person and day at most, enforced by the key; a send
        # is claimed ('sending') before it goes out, then marked 'sent' or 'failed' (a failed one is tried again
        # by the next run of that day; one left 'sending' is never sent twice).
        "0013_reminder_sends",
        """
        CREATE TABLE reminder_sends (
            person_id VARCHAR NOT NULL, day DATE NOT NULL, email VARCHAR NOT NULL, status VARCHAR NOT NULL,
            items INTEGER NOT NULL, attempts INTEGER NOT NULL, first_tried_at TIMESTAMP NOT NULL,
            last_tried_at TIMESTAMP NOT NULL, sent_at TIMESTAMP, error VARCHAR,
            PRIMARY KEY (person_id, day));
        """,
    ),
    (
        # The forecast's sums, derived from term_levels and kept current by the same writes (tracker/storage/derived.py):
        # the program-wide priors read them instead of regrouping every level of the program.
        "0014_forecast_sums",
        """
        CREATE TABLE growth_sums (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            level DOUBLE NOT NULL, n BIGINT NOT NULL, st BIGINT NOT NULL, stt BIGINT NOT NULL, sy DOUBLE NOT NULL,
            sty DOUBLE NOT NULL, syy DOUBLE NOT NULL, next_term SMALLINT);
        CREATE TABLE domain_terms (
            learner_id VARCHAR NOT NULL, term_index SMALLINT NOT NULL, domain_id VARCHAR NOT NULL, rater_id VARCHAR,
            levels BIGINT NOT NULL, total DOUBLE NOT NULL);
        """,
    ),
    (
        # What must be unique is a constraint, checked inside the write that breaks it: one live correction per
        # rating, one decision per learner and meeting (two sign-offs at once), one revision per decision. Failed
        # sign-ins and requests for links get a key (the order number), so that server mode's writes find what
        # changed by number instead of rewriting these growing tables whole.
        "0015_keys_and_unique_records",
        """
        CREATE UNIQUE INDEX ratings_one_correction ON ratings (corrects);
        CREATE UNIQUE INDEX decisions_one_per_meeting ON decisions (meeting_id, learner_id);
        CREATE UNIQUE INDEX decisions_one_revision ON decisions (replaces);
        ALTER TABLE sign_in_failures ADD COLUMN seq BIGINT DEFAULT nextval('record_seq');
        ALTER TABLE link_requests ADD COLUMN seq BIGINT DEFAULT nextval('record_seq');
        """,
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


# ---- schema ------------------------------------------------------------------------------------
def apply_migrations(cur: Cursor, upto: int | None = None) -> list[str]:
    """Apply the migrations not applied yet, in order (the first `upto` of them only, when given: the schema of an
    earlier version, whose derived tables the caller fills once its records are in); return their names. Running
    it twice is a no-op."""
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, (name, sql) in enumerate(MIGRATIONS[:upto], start=1):
        if version in done:
            continue

        def migrate(c: Cursor, version: int = version, name: str = name, sql: str = sql) -> None:
            c.execute(sql)
            c.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, now()])

        write(cur, migrate)
        applied.append(name)
    derived = {"0004_term_levels", "0005_current_levels", "0006_current_levels_every_competency"}
    refreshing = derived | {"0009_framework_revisions", "0012_term_levels_rater", "0014_forecast_sums"}
    if upto is None and refreshing & set(applied):
        write(cur, refresh_term_levels)
    return applied


def schema_version(cur: Cursor) -> int:
    return int(cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])  # type: ignore[index]
