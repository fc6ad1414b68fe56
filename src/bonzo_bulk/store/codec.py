"""How the run store's rows map to the typed stage data: columns, JSON and time encoding, inserts.

Column names are the dataclass field names (``models.py``), so a new field is a new column (one
migration in ``schema.py``) and nothing else here changes. The values suit both backends.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bonzo_bulk.models import (
    CheckResult,
    DeliveryResult,
    Diagnosis,
    LatencySummary,
    Observation,
    PhaseMetrics,
    PlannedRecord,
    Stage,
    ThresholdVerdict,
    TimingWidths,
    UserAccuracy,
    to_jsonable,
)
from bonzo_bulk.store.backend import Backend, Row

_JSON = json.JSONEncoder(separators=(",", ":"), default=to_jsonable)

_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every cell: ``json.dumps`` with separators builds a new one per call (a 10x cost per cell)."""


def dumps(value: Any) -> str:
    """Compact JSON; plain values go straight to the encoder, the rest through ``to_jsonable`` (same text).

    A check's expected and actual values are mostly one string, number or None: those are written here
    without the encoder's dispatch (the text ``JSONEncoder.encode`` gives them), millions of cells a big run.
    """
    kind = type(value)
    if kind is str:
        return _ascii_string(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    return _JSON.encode(value)


_ascii_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""What ``JSONEncoder.encode`` (``ensure_ascii``) does with a string."""


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def prospect_key(raw: object) -> int | str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw)
    return int(text) if text.isdigit() else text


def metrics_from_json(data: Mapping[str, Any]) -> PhaseMetrics:
    # Runs stored before visible_lag existed carry created_lag in its place.
    values = {f.name: data.get(f.name, data.get("created_lag", {})) for f in dataclasses.fields(PhaseMetrics)}
    for name in ("delivery_latency", "processing_time", "visible_lag"):
        values[name] = LatencySummary(**values[name])
    user_keys = [f.name for f in dataclasses.fields(UserAccuracy)]
    values["per_user"] = tuple(UserAccuracy(**{k: u[k] for k in user_keys if k in u}) for u in values["per_user"])
    values["thresholds"] = tuple(ThresholdVerdict(**t) for t in values["thresholds"])
    for name in ("owner_counts", "team_counts"):
        values[name] = tuple(tuple(cell) for cell in data.get(name, ()))
    values["unverified"] = int(data.get("unverified", 0))  # runs stored before migration 11 had none
    values["timing_widths"] = tuple(TimingWidths(**w) for w in data.get("timing_widths", ()))
    return PhaseMetrics(**values)


DELIVERY_COLUMNS = tuple(f.name for f in dataclasses.fields(DeliveryResult))
OBSERVATION_COLUMNS = tuple(f.name for f in dataclasses.fields(Observation))
CHECK_COLUMNS = tuple(f.name for f in dataclasses.fields(CheckResult))
DIAGNOSIS_COLUMNS = tuple(f.name for f in dataclasses.fields(Diagnosis) if f.name != "phase")
RECORD_COLUMNS = tuple(
    f.name for f in dataclasses.fields(PlannedRecord) if f.name not in {"run_id", "phase", "expected_user"}
)
USER_FIELDS = ("user_id", "email", "name", "team_id", "external_id")
USER_COLUMNS = (
    "expected_user_id",
    "expected_user_email",
    "expected_user_name",
    "expected_team_id",
    "expected_user_external_id",
)
JSON_COLUMNS = frozenset(
    {"prospects", "seen_in", "expected", "actual", "payload", "example_expected", "example_actual"}
)
TUPLE_COLUMNS = frozenset({"prospects", "seen_in"})
TIME_COLUMNS = frozenset({"sent_at", "answered_at", "first_seen_at"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Stage):
        return value.value
    return int(value) if isinstance(value, bool) else value


def encode(name: str, value: Any) -> Any:
    """A field value as its column holds it (JSON text, ISO time, stage name, 0/1)."""
    return dumps(value) if name in JSON_COLUMNS else _plain(value)


def encoders(columns: Sequence[str]) -> list[tuple[str, Callable[[Any], Any]]]:
    """Each column with its encoding function, looked up once per batch instead of once per value."""
    return [(c, dumps if c in JSON_COLUMNS else _plain) for c in columns]


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _stage(value: Stage) -> str:
    return value.value


def _column_coders() -> dict[str, Callable[[Any], Any] | None]:
    """Each stored field's encoding, read once from its dataclass annotation: JSON text, ISO time, stage name,
    0/1, or None where the value is stored as it is (what :func:`encode` does, without asking each value)."""
    coders: dict[str, Callable[[Any], Any] | None] = {}
    for kind in (DeliveryResult, Observation, CheckResult, Diagnosis, PlannedRecord):
        for f in dataclasses.fields(kind):
            annotation = str(f.type)
            coder: Callable[[Any], Any] | None = None
            if f.name in JSON_COLUMNS:
                coder = dumps
            elif "datetime" in annotation:
                coder = _time
            elif annotation == "Stage":
                coder = _stage
            elif annotation == "bool":
                coder = int
            if coders.setdefault(f.name, coder) is not coder:
                raise TypeError(f"{kind.__name__}.{f.name} is stored unlike the other fields of that name")
    return coders


_CODERS = _column_coders()


def encode_values(items: Iterable[Any], columns: Sequence[str]) -> Iterator[list[Any]]:
    """Each dataclass item's ``columns`` as the table holds them: one attribute fetch per item and an encoder
    only on the columns that need one (the same cells :func:`encode` gives, value by value)."""
    fetch = operator.attrgetter(*columns)
    coded = [(i, coder) for i, c in enumerate(columns) if (coder := _CODERS.get(c, _plain)) is not None]
    single = len(columns) == 1
    for item in items:
        values = [fetch(item)] if single else list(fetch(item))
        for i, coder in coded:
            values[i] = coder(values[i])
        yield values


def encode_rows(
    items: Sequence[Any], columns: Sequence[str], *, run_id: str, phase: str, start: int
) -> list[tuple[Any, ...]]:
    """Dataclass rows of one run and phase, numbered from ``start``, as the table holds them."""
    return [(run_id, phase, seq, *values) for seq, values in enumerate(encode_values(items, columns), start)]


def decode(row: Row, columns: Sequence[str]) -> dict[str, Any]:
    """Column values back into dataclass field values (JSON, times, stage, flags)."""
    values: dict[str, Any] = {}
    for name in columns:
        raw = row[name]
        if name in JSON_COLUMNS:
            raw = json.loads(raw)
            raw = tuple(raw) if name in TUPLE_COLUMNS else raw
        elif name in TIME_COLUMNS:
            raw = parse_time(raw)
        values[name] = raw
    if "stage" in values:
        values["stage"] = Stage(values["stage"])
    if "passed" in values:
        values["passed"] = bool(values["passed"])
    return values


_Row = TypeVar("_Row", bound=Sequence[Any])


KEYS: dict[str, tuple[str, ...]] = {
    "records": ("run_id", "phase", "name"),
    "deliveries": ("run_id", "phase", "record_name"),
    "observations": ("run_id", "phase", "record_name"),
    "checks": ("run_id", "phase", "seq"),
    "outcomes": ("run_id", "phase", "record_name"),
    "diagnoses": ("run_id", "phase", "seq"),
}
"""The primary key of each table written in numbered batches (a rewrite replaces the row)."""


def upsert_sql(table: str, columns: Sequence[str]) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` of ``run_id, phase, seq`` and ``columns`` (both dialects)."""
    every = ("run_id", "phase", "seq", *columns)
    names = ", ".join(f'"{c}"' for c in every)
    marks = ", ".join("?" for _ in every)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in every if c not in KEYS[table])
    key = ", ".join(KEYS[table])
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {updates}"  # noqa: S608


def insert(
    db: Backend,
    table: str,
    run_id: str,
    phase: str,
    start: int,
    items: Sequence[Any],
    columns: Sequence[str],
) -> None:
    """Insert (or replace) dataclass rows whose fields are the table's columns, numbered from ``start``."""
    rows = encode_rows(items, columns, run_id=run_id, phase=phase, start=start)
    if "seq" not in KEYS[table]:  # numbered rows cannot repeat a key
        rows = last_per_key(rows, ("run_id", "phase", "seq", *columns), KEYS[table])
    db.executemany(upsert_sql(table, columns), rows)


def last_per_key(rows: Sequence[_Row], columns: Sequence[str], key: Sequence[str]) -> list[_Row]:
    """The rows with the last one kept where a key repeats (what upserting them one by one would leave)."""
    where = [columns.index(c) for c in key]
    unique = {tuple(row[i] for i in where): row for row in rows}
    return list(unique.values()) if len(unique) != len(rows) else list(rows)
