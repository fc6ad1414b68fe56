"""Field paths read the same whether the fast dotted reader or JMESPath answers."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from bonzo_bulk._paths import get_path

DOCUMENTS: list[Any] = [
    {"assigned_user": {"email": "a@b.test", "id": 7}, "tags": [{"name": "x"}], "custom_fields": None},
    {"assigned_user": None, "data_json": {"email": ["one", "two"]}, "null": {"true": 1}},
    {"assigned_user": "not an object", "business": {"id": 0, "name": ""}},
    [{"assigned_user": {"email": "in a list"}}],
    None,
    "text",
    {"a": {"b": {"c": {"d": False}}}},
]
PATHS = [
    "assigned_user.email",
    "assigned_user.id",
    "assigned_user",
    "business.id",
    "business.name",
    "data_json.email",
    "null.true",
    "a.b.c.d",
    "a.b.missing.d",
    "tags[0].name",
    "data_json.email[1]",
    "tags[*].name",
    "custom_fields",
]


@pytest.mark.parametrize("path", PATHS)
def test_every_path_reads_what_jmespath_reads(path: str) -> None:
    for document in DOCUMENTS:
        assert get_path(document, path) == jmespath.search(path, document), (path, document)
