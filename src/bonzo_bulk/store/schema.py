"""The run store's schema as numbered migrations, one SQL text for both dialects, applied on first use.

Each migration's SQL is plain DDL both SQLite and PostgreSQL accept, with three type tokens a
backend fills in: ``{INT}`` (INTEGER / BIGINT), ``{REAL}`` (REAL / DOUBLE PRECISION) and ``{BLOB}``
(BLOB / BYTEA). A migration lists the tables it creates, parents first: ``store copy`` moves them
in that order; ``columns`` adds a column where it is missing (before the statements run, so they may
fill it). Never edit an applied migration; append the next one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bonzo_bulk.errors import StoreError
from bonzo_bulk.store.backend import Backend

_TOKEN = re.compile(r"\{(INT|REAL|BLOB)\}")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its version, what it does, its dialect-neutral SQL and the tables it creates."""

    version: int
    summary: str
    sql: str
    tables: tuple[str, ...] = ()
    columns: tuple[tuple[str, str, str], ...] = ()
    """(table, column, type) to add where missing: ``ALTER TABLE ... ADD COLUMN`` both dialects can guard."""

    def statements(self, types: dict[str, str]) -> list[str]:
        """The migration's statements in one dialect."""
        text = _TOKEN.sub(lambda m: types[m.group(1)], self.sql)
        return [s.strip() for s in text.split(";") if s.strip()]

    def apply(self, backend: Backend) -> None:
        """Add each column its table does not have yet, then run the statements."""
        for table, column, kind in self.columns:
            if column not in backend.columns(table):
                column_type = _TOKEN.sub(lambda m: backend.types[m.group(1)], kind)
                backend.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {column_type}')
        for statement in self.statements(backend.types):
            backend.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, phases, records, deliveries, observations, prospects, checks",
        """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, test_name TEXT NOT NULL, integration TEXT NOT NULL, config_path TEXT,
    target TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, dry_run {INT} NOT NULL,
    config_snapshot TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '[]', passed {INT}, records {INT} NOT NULL DEFAULT 0,
    delivery_rate {REAL}, creation_rate {REAL}, assignment_accuracy {REAL}, mapping_accuracy {REAL},
    p95_processing_ms {REAL}, p95_latency_ms {REAL}, api_requests_per_record {REAL},
    is_baseline {INT} NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_integration ON runs (integration, started_at);
CREATE TABLE IF NOT EXISTS phases (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    metrics TEXT NOT NULL, unexpected_prospects TEXT NOT NULL, settled {INT} NOT NULL,
    settle_seconds {REAL} NOT NULL, passed {INT} NOT NULL,
    PRIMARY KEY (run_id, phase)
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    "index" {INT} NOT NULL, name TEXT NOT NULL, record_id TEXT NOT NULL, first_name TEXT NOT NULL,
    last_name TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,
    expected_user_id {INT} NOT NULL, expected_user_email TEXT NOT NULL, expected_user_name TEXT NOT NULL,
    expected_team_id {INT} NOT NULL, expected_user_external_id TEXT,
    invalid_case TEXT, expected_handling TEXT, payload TEXT NOT NULL, body {BLOB} NOT NULL,
    content_type TEXT NOT NULL, expected TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, name)
);
CREATE TABLE IF NOT EXISTS deliveries (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    record_name TEXT NOT NULL, status {INT}, attempts {INT} NOT NULL, latency_ms {REAL} NOT NULL,
    total_ms {REAL} NOT NULL, sent_at TEXT NOT NULL, answered_at TEXT, error_category TEXT, error TEXT,
    response_excerpt TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, record_name)
);
CREATE TABLE IF NOT EXISTS observations (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    record_name TEXT NOT NULL, prospects TEXT NOT NULL, seen_in TEXT NOT NULL, first_seen_at TEXT,
    polls {INT} NOT NULL,
    PRIMARY KEY (run_id, phase, record_name)
);
CREATE TABLE IF NOT EXISTS prospects (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, prospect_id TEXT NOT NULL,
    phase TEXT NOT NULL, record_name TEXT NOT NULL, owner_user_id {INT}, email TEXT, first_name TEXT,
    deleted_at TEXT,
    PRIMARY KEY (run_id, prospect_id)
);
CREATE TABLE IF NOT EXISTS checks (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    record_name TEXT NOT NULL, "check" TEXT NOT NULL, stage TEXT NOT NULL, passed {INT} NOT NULL,
    expected TEXT NOT NULL, actual TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, seq)
);
CREATE INDEX IF NOT EXISTS failed_checks ON checks (run_id, passed);
""",
        tables=("runs", "phases", "records", "deliveries", "observations", "prospects", "checks"),
    ),
    Migration(
        2,
        "observations.poll_gap (the poll interval when a record was first seen)",
        "",
        columns=(("observations", "poll_gap", "{REAL}"),),
    ),
    Migration(
        3,
        "indexes that number streamed batches without scanning the run",
        """
CREATE INDEX IF NOT EXISTS records_by_seq ON records (run_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_seq ON deliveries (run_id, phase, seq);
CREATE INDEX IF NOT EXISTS observations_by_seq ON observations (run_id, phase, seq)
""",
    ),
    Migration(
        4,
        "monitor: alert state, monitor runs, each notice or ping and its result (bonzo_bulk.monitor.state)",
        """
CREATE TABLE IF NOT EXISTS monitor_state (name TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS monitor_runs (
    name TEXT NOT NULL, started_at TEXT NOT NULL, bulk_run_id TEXT, finished_at TEXT NOT NULL, status TEXT NOT NULL,
    exit_code {INT} NOT NULL, reason TEXT NOT NULL, notices TEXT NOT NULL, PRIMARY KEY (name, started_at)
);
CREATE TABLE IF NOT EXISTS monitor_deliveries (
    name TEXT NOT NULL, started_at TEXT NOT NULL, seq {INT} NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL,
    ok {INT} NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (name, started_at, seq)
)
""",
        tables=("monitor_state", "monitor_runs", "monitor_deliveries"),
    ),
    Migration(
        5,
        "load runs: summary, per-stage figures and per-second series (bonzo_bulk.load.results)",
        """
CREATE TABLE IF NOT EXISTS load_runs (
    run_id TEXT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE, kind TEXT NOT NULL,
    scenario TEXT NOT NULL, t0 {REAL} NOT NULL, knee_rate {REAL}, summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS load_stages (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, stage {INT} NOT NULL, figures TEXT NOT NULL,
    PRIMARY KEY (run_id, stage)
);
CREATE TABLE IF NOT EXISTS load_series (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, t {REAL} NOT NULL, target_rate {REAL} NOT NULL,
    achieved_rate {REAL} NOT NULL, dropped {INT} NOT NULL, errors {INT} NOT NULL, hook_p95_ms {REAL},
    e2e_lag_p95_s {REAL}, backlog {INT} NOT NULL, PRIMARY KEY (run_id, t)
)
""",
        tables=("load_runs", "load_stages", "load_series"),
    ),
    Migration(
        6,
        "outcomes: each record's derived facts, written as it is judged (processing time, owner, passed)",
        """
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    record_name TEXT NOT NULL, passed {INT} NOT NULL, expects_prospect {INT} NOT NULL, placements TEXT NOT NULL,
    processing_seconds {REAL}, processing_source TEXT, processing_resolution {REAL}, visible_after {REAL},
    PRIMARY KEY (run_id, phase, record_name)
);
CREATE INDEX IF NOT EXISTS outcomes_by_seq ON outcomes (run_id, phase, seq);
CREATE INDEX IF NOT EXISTS checks_by_record ON checks (run_id, phase, record_name)
""",
        tables=("outcomes",),
    ),
    Migration(
        7,
        "diagnoses: each phase's systemic findings as the run made them; phases.judged (records each check judged)",
        """
CREATE TABLE IF NOT EXISTS diagnoses (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq {INT} NOT NULL,
    "check" TEXT NOT NULL, stage TEXT NOT NULL, failed {INT} NOT NULL, judged {INT} NOT NULL, cause TEXT NOT NULL,
    fix TEXT NOT NULL, example_expected TEXT NOT NULL, example_actual TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, seq)
)
""",
        tables=("diagnoses",),
        columns=(("phases", "judged", "TEXT"),),
    ),
    Migration(
        8,
        "runs.kind: the mode that opened each run (bulk, load, stress, calibrate, monitor); older runs are bulk,"
        " or load/stress where the load tables say so",
        """
UPDATE runs SET kind = (SELECT load_runs.kind FROM load_runs WHERE load_runs.run_id = runs.run_id)
    WHERE run_id IN (SELECT run_id FROM load_runs);
CREATE INDEX IF NOT EXISTS runs_by_kind ON runs (kind, integration, started_at)
""",
        columns=(("runs", "kind", "TEXT NOT NULL DEFAULT 'bulk'"),),
    ),
    Migration(
        9,
        "problems: failures tracked across runs, the runs each appeared in, acks, mutes and resolutions",
        """
CREATE TABLE IF NOT EXISTS problems (
    problem_id TEXT PRIMARY KEY, integration TEXT NOT NULL, target TEXT NOT NULL, phase TEXT NOT NULL,
    "check" TEXT NOT NULL, cause TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, first_run_id TEXT NOT NULL, last_run_id TEXT NOT NULL,
    runs {INT} NOT NULL, records_affected {INT} NOT NULL, last_failed {INT} NOT NULL, last_judged {INT} NOT NULL,
    peak_share {REAL} NOT NULL, clean_runs {INT} NOT NULL, escalated {INT} NOT NULL, fix TEXT NOT NULL,
    detail TEXT NOT NULL, ack_by TEXT, ack_note TEXT, ack_at TEXT, ack_until TEXT, muted_until TEXT,
    resolved_at TEXT, resolved_by TEXT, runs_since_notice {INT} NOT NULL, reminders_sent {INT} NOT NULL,
    last_notice_at TEXT
);
CREATE INDEX IF NOT EXISTS problems_by_scope ON problems (integration, target, status);
CREATE TABLE IF NOT EXISTS problem_runs (
    problem_id TEXT NOT NULL REFERENCES problems (problem_id) ON DELETE CASCADE, bulk_run_id TEXT NOT NULL,
    seen_at TEXT NOT NULL, failed {INT} NOT NULL, judged {INT} NOT NULL, samples TEXT NOT NULL,
    PRIMARY KEY (problem_id, bulk_run_id)
);
CREATE TABLE IF NOT EXISTS problem_events (
    problem_id TEXT NOT NULL REFERENCES problems (problem_id) ON DELETE CASCADE, at TEXT NOT NULL,
    event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (problem_id, at, event)
)
""",
        tables=("problems", "problem_runs", "problem_events"),
    ),
    Migration(
        10,
        "run_progress: each run's funnel while it is in flight, for `serve`'s /live (bonzo_bulk.store.progress)",
        """
CREATE TABLE IF NOT EXISTS run_progress (
    run_id TEXT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE, test_name TEXT NOT NULL,
    integration TEXT NOT NULL, target TEXT NOT NULL, started_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    planned {INT} NOT NULL, sent {INT} NOT NULL, accepted {INT} NOT NULL, visible {INT} NOT NULL,
    expected {INT} NOT NULL, judged {INT} NOT NULL, failed {INT} NOT NULL, per_user TEXT NOT NULL,
    finished {INT} NOT NULL, passed {INT}
);
CREATE INDEX IF NOT EXISTS run_progress_by_update ON run_progress (updated_at)
""",
        tables=("run_progress",),
    ),
    Migration(
        11,
        "outcomes.unverified: why a record could not be checked (a listing that never reached its end), else NULL",
        "",
        columns=(("outcomes", "unverified", "TEXT"),),
    ),
    Migration(
        12,
        "outcomes.processing_low: processing time is an interval; processing_seconds is its upper end and "
        "processing_resolution its width",
        "",
        columns=(("outcomes", "processing_low", "{REAL}"),),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
TABLES: tuple[str, ...] = tuple(table for migration in MIGRATIONS for table in migration.tables)
"""Every table of the current schema, parents before children."""


def migrate(backend: Backend, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """Bring the store's schema up to the last migration; the migrations applied (none when current).

    Raises StoreError when the store is newer than this bonzo-bulk (it never downgrades).
    """
    latest = migrations[-1].version
    if _checked(backend, latest) == latest and not _skipped(backend, migrations, latest):
        return []
    applied: list[Migration] = []
    with backend.transaction(for_schema=True):
        version = _checked(backend, latest)
        for migration in migrations:
            if migration.version > version:
                migration.apply(backend)
                backend.set_schema_version(migration.version, migration.summary)
                applied.append(migration)
            elif migration in _skipped(backend, migrations, version):
                migration.apply(backend)  # its version was passed without it: its steps are all idempotent
                applied.append(migration)
    return applied


def _skipped(backend: Backend, migrations: Sequence[Migration], version: int) -> list[Migration]:
    """Migrations at or below ``version`` whose columns are missing: numbered below one a store already had (two
    branches appending at once), they were passed over. Each adds its columns and reruns its (idempotent) SQL."""
    return [
        m
        for m in migrations
        if m.version <= version and any(column not in backend.columns(table) for table, column, _ in m.columns)
    ]


def _checked(backend: Backend, latest: int) -> int:
    version = backend.schema_version()
    if version > latest:
        raise StoreError(
            f"run store {backend.label} has schema version {version}, newer than this bonzo-bulk "
            f"understands ({latest}); upgrade bonzo-bulk or use another --store"
        )
    return version
