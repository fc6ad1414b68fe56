"""The store's row encoding: the per-column fast path writes the cells the generic encoder writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from builders import RunSpec, build_run

from bonzo_bulk.models import CheckResult, DeliveryResult, Observation, Stage, to_jsonable
from bonzo_bulk.store import codec


def test_dumps_writes_what_the_json_encoder_writes() -> None:
    reference = json.JSONEncoder(separators=(",", ":"), default=to_jsonable)
    values = ["", "plain", 'quote " and \\', "ünïcødé ✓", "\n\t\x00", 0, -7, 2**70, True, False, None, 1.5]
    values += [float("nan"), [1, "a", None], {"b": [True, {"c": 1.25}]}, (1, 2), Stage.MAPPING]
    for value in values:
        assert codec.dumps(value) == reference.encode(value), value


def test_encoded_rows_equal_the_generic_encoding_column_by_column() -> None:
    result = build_run(RunSpec(records=6, control=2, invalid=1, run_id="run_codec"))
    outcomes = [o for phase in result.phases for o in phase.outcomes]
    zone = timezone(timedelta(hours=-6))
    odd = [
        DeliveryResult("r1", None, 3, 1.5, 9.0, datetime(2025, 1, 2, 3, 4, 5, tzinfo=zone), None, "timeout", "x"),
        CheckResult("r1", "owner", Stage.ASSIGNMENT, False, {"id": [1, None]}, "✓ 7", "mismatch"),
        Observation("r1", ({"id": 5, "tags": ["a"]},), (3, 1), datetime(2025, 1, 2, tzinfo=UTC), 4, None),
    ]
    groups: list[tuple[Sequence[Any], tuple[str, ...]]] = [
        ([o.record for o in outcomes], codec.RECORD_COLUMNS),
        ([o.delivery for o in outcomes if o.delivery] + odd[:1], codec.DELIVERY_COLUMNS),
        ([c for o in outcomes for c in o.checks] + odd[1:2], codec.CHECK_COLUMNS),
        ([o.observation for o in outcomes if o.observation] + odd[2:], codec.OBSERVATION_COLUMNS),
        ([d for phase in result.phases for d in phase.diagnoses], codec.DIAGNOSIS_COLUMNS),
    ]
    for items, columns in groups:
        rows = codec.encode_rows(items, columns, run_id="run_codec", phase="primary", start=10)
        assert len(rows) == len(items)
        for seq, (row, item) in enumerate(zip(rows, items, strict=True), 10):
            generic = tuple(codec.encode(c, getattr(item, c)) for c in columns)
            assert row == ("run_codec", "primary", seq, *generic)
            assert [type(v) for v in row[3:]] == [type(v) for v in generic]
