"""The record factory: names, emails, distributions, seeds, invalid cases, expected fields."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.schema import BulkConfig, InvalidCase
from bonzo_bulk.models import PhaseKind, User
from bonzo_bulk.plan.integration import load_integration
from bonzo_bulk.plan.records import Factory, RunIdentity, assign_users

IDENTITY = RunIdentity(run_id="r20250101-000000-abcd", started_at=datetime(2025, 1, 1, tzinfo=UTC))


def config(**extra: object) -> BulkConfig:
    users = [
        {"name": "A", "email": "a@x.test", "user_id": 1, "team_id": 10, "weight": 3, "count": 1},
        {"name": "B", "email": "b@x.test", "user_id": 2, "team_id": 20, "weight": 1, "count": 2},
    ]
    return BulkConfig.model_validate({"test_users": users, "test_records": 3, **extra})


def users_of(cfg: BulkConfig) -> list[User]:
    return [User(u.name, u.email, u.user_id, u.team_id) for u in cfg.test_users]


def factory(cfg: BulkConfig, identity: RunIdentity = IDENTITY, phase: PhaseKind = "primary") -> Factory:
    integration = load_integration("monitorbase" if phase == "primary" else "bonzo")
    return Factory(cfg, users_of(cfg), integration, integration.template, identity, phase)


def test_names_and_emails_follow_the_pattern_and_carry_the_run() -> None:
    records = factory(config(test_records=12)).plan()
    assert [r.name for r in records[:2]] == ["TestRecord_MonitorBase_001", "TestRecord_MonitorBase_002"]
    assert records[0].email == "test.monitorbase.001+r20250101-000000-abcd@bonzobuddy.test"
    assert records[0].record_id == "20250101_000000_001"
    assert records[0].payload["custom_1"] == IDENTITY.run_id
    assert IDENTITY.run_id in records[0].payload["tags"]
    control = factory(config(test_records=2), phase="control").plan()
    assert control[0].name == "TestRecord_MonitorBase_SU_001"
    assert control[0].payload["user_id"] == 1  # an integer, not "1"


def test_expected_fields_follow_the_mapping_contract() -> None:
    record = factory(config()).plan()[0]
    assert record.expected["phone"].startswith("+1555")
    assert record.expected["email"] == record.email.lower()
    assert "source" not in record.expected  # undocumented for hook-created prospects: checked only when declared
    assert "custom_fields.custom_1" not in record.expected  # custom fields reach Bonzo only where mapped
    assert record.payload["lo_email"] == record.expected_user.email


def test_same_seed_same_records_different_seed_different_phones() -> None:
    one = factory(config(test_data_settings={"seed": 7})).plan()
    two = factory(config(test_data_settings={"seed": 7})).plan()
    three = factory(config(test_data_settings={"seed": 8})).plan()
    assert [r.body for r in one] == [r.body for r in two]
    assert [r.phone for r in one] != [r.phone for r in three]


def test_drawn_values_are_the_ones_fakers_own_methods_give_for_the_seed() -> None:
    """Phones and figures are drawn from the seeded generator directly (cheaper than Faker's proxy and regexes);
    they must be exactly what numerify and random_int gave, so the same seed plans the same records."""
    records = factory(config(test_data_settings={"seed": 7}, test_records=40)).plan()
    faker = Faker("en_US")
    faker.seed_instance(7)
    used: set[str] = set()
    for record in records:
        while (phone := f"555-{faker.numerify('%##')}-{faker.numerify('####')}") in used:
            pass
        used.add(phone)
        days = faker.random_int(0, 3)
        figures = [str(faker.random_int(40, 95)), str(faker.random_int(180, 1500) * 1000)]
        figures.append(str(faker.random_int(100, 900) * 1000))
        assert record.phone == phone
        assert record.payload["alert_date"] == f"{IDENTITY.started_at - timedelta(days=days):%Y-%m-%d}"
        assert [record.payload["current_ltv"], record.payload["home_value"]] == figures[:2]


def test_distributions() -> None:
    cfg = config(test_records=8, distribution="weighted")
    assert Counter(u.user_id for u in assign_users(users_of(cfg), cfg, 8)) == {1: 6, 2: 2}
    cfg = config(test_records=3, distribution="custom")
    assert Counter(u.user_id for u in assign_users(users_of(cfg), cfg, 3)) == {1: 1, 2: 2}
    cfg = config(test_records=5)
    owners = assign_users(users_of(cfg), cfg, 5)
    assert [u.user_id for u in owners] == [1, 2, 1, 2, 1]


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 400), weights=st.lists(st.floats(0.1, 10), min_size=1, max_size=6))
def test_weighted_split_always_sums_and_is_near_the_weights(count: int, weights: list[float]) -> None:
    users = [
        {"name": f"U{i}", "email": f"u{i}@x.test", "user_id": i + 1, "team_id": 1, "weight": w}
        for i, w in enumerate(weights)
    ]
    cfg = BulkConfig.model_validate({"test_users": users, "test_records": count, "distribution": "weighted"})
    counts = Counter(u.user_id for u in assign_users(users_of(cfg), cfg, count))
    assert sum(counts.values()) == count
    for i, weight in enumerate(weights):
        assert abs(counts.get(i + 1, 0) - weight / sum(weights) * count) < 1


def test_invalid_cases_are_broken_as_declared() -> None:
    cases = [
        InvalidCase(kind="unknown_lo_email"),
        InvalidCase(kind="no_contact"),
        InvalidCase(kind="malformed_phone", expect="accept"),
    ]
    records = factory(config()).plan(invalid=cases)
    unknown, no_contact, bad_phone = records[3:]
    assert unknown.name == "TestRecord_MonitorBase_INV_001"
    assert unknown.payload["lo_email"].startswith("unknown.lo.")
    assert no_contact.payload["email"] == "" and no_contact.payload["cell_phone"] == ""
    assert bad_phone.payload["cell_phone"] == "12-34" and "phone" not in bad_phone.expected
    assert IDENTITY.run_id in no_contact.last_name  # still findable by the run's search


def test_run_ids_are_unique_and_lower_case() -> None:
    ids = {RunIdentity.new().run_id for _ in range(50)}
    assert len(ids) == 50
    assert all(i == i.lower() for i in ids)


def test_shipped_config_plans_21_even_records() -> None:
    loaded = load_config("tests/configs/monitorbase_test_config.yaml", environ={})
    from bonzo_bulk.plan.planner import plan_run

    plan = plan_run(loaded)
    primary = plan.phase("primary")
    assert primary is not None
    valid = [r for r in primary.records if r.is_valid]
    assert len(valid) == 21
    assert set(Counter(r.expected_user.user_id for r in valid).values()) == {7}
    control = plan.phase("control")
    assert control is not None and len(control.records) == 21


@pytest.mark.parametrize("domain", ["bonzobuddy.test", "example.test"])
def test_email_domain_setting(domain: str) -> None:
    record = factory(config(test_data_settings={"email_domain": domain})).plan()[0]
    assert record.email.endswith("@" + domain)
