"""ProspectView reads every shape the reference knows for the fields whose shape is not settled."""

from __future__ import annotations

import pytest

from bonzo_bulk.bonzo.view import ProspectView, parse_timestamp


@pytest.mark.parametrize(
    "prospect",
    [
        {"assigned_to": 42, "business_entity_id": 3},
        {"assigned_user": {"id": 42, "email": "lo@x.test"}, "business": {"id": 3, "name": "T"}},
        {"assigned_to": "42", "assigned_user": {"id": 42}, "business": {"id": "3"}},
    ],
)
def test_owner_and_team_from_any_known_shape(prospect: dict[str, object]) -> None:
    view = ProspectView(prospect)
    assert (view.owner_id, view.team_id) == (42, 3)


def test_disagreeing_owner_fields_are_both_reported() -> None:
    assert ProspectView({"assigned_to": 1, "assigned_user": {"id": 2}}).owner_ids == {1, 2}


@pytest.mark.parametrize(
    "prospect",
    [
        {"custom_fields": {"custom_1": "r1"}},
        {"custom_fields": [{"key": "custom_1", "value": "r1"}]},
        {"custom": [{"key": "custom_1", "value": "r1"}]},
        {"custom": {"Custom 1": "r1"}},
        {"custom_1": "r1"},
    ],
)
def test_custom_field_in_every_known_shape(prospect: dict[str, object]) -> None:
    assert ProspectView(prospect).value("custom_fields.custom_1") == "r1"


def test_missing_custom_field_reads_none() -> None:
    assert ProspectView({"custom_fields": []}).value("custom_fields.custom_1") is None


def test_tags_as_names_or_objects() -> None:
    assert ProspectView({"tags": [{"id": 1, "name": "VIP", "sequence_start": None}, "new "]}).tag_names == [
        "new",
        "vip",
    ]


def test_timestamp_resolution_follows_the_stamp() -> None:
    whole = parse_timestamp("2023-06-26T10:43:40.000000Z")
    fine = parse_timestamp("2023-06-26T10:43:40.120000Z")
    assert whole is not None and whole[1] == 1.0
    assert fine is not None and fine[1] < 0.001
    assert parse_timestamp("yesterday") is None


def test_flatten_puts_custom_fields_under_one_prefix() -> None:
    flat = ProspectView({"id": 1, "custom": [{"key": "a", "value": 2}], "mortgage": {"zip": "1"}}).flatten()
    assert flat["custom_fields.a"] == 2 and flat["mortgage.zip"] == "1" and flat["tags"] == []
