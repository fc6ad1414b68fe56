"""The sandbox answers as its own OpenAPI document says (Schemathesis): no server errors, no mismatches.

Bounded on purpose: a few examples per operation over a served, seeded sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sandbox_helpers import FAST, SEED_USERS
from schemathesis.core.result import Err

from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

EXAMPLES = 8
HOOKS = [{"type": "monitorbase"}, {"type": "general"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxServer, str]]:
    db = tmp_path_factory.mktemp("openapi") / "s.sqlite3"
    with SandboxServer(SandboxOptions(db_path=Path(db), processing=FAST)) as server:
        seeded = server.seed(SEED_USERS, HOOKS)
        yield server, str(seeded["superuser_token"])


def test_the_sandbox_answers_as_its_openapi_says(served: tuple[SandboxServer, str]) -> None:
    server, token = served
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for found in schema.get_all_operations():
        assert not isinstance(found, Err), f"an operation of the document is invalid: {found.err()}"
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: Any) -> None:
            try:
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
            finally:
                _restore(server)

        try:
            conforms()
        except BaseExceptionGroup as group:
            failures.append(f"{operation.label}: {_short(group)}")
        except AssertionError as exc:
            failures.append(f"{operation.label}: {_short(exc)}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)


def _short(exc: BaseException) -> str:
    """The failure's first lines: which check, what was received, how to reproduce."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines[:14])


def _restore(server: SandboxServer) -> None:
    """Undo what a generated admin call may have switched on (API faults, a tiny rate limit, a reset)."""
    server.admin("PUT", "faults", {})
    server.admin("PUT", "settings", {"rate_limit_per_minute": None})
    server.seed(SEED_USERS, HOOKS)


@pytest.mark.parametrize("kind", [["drop"], {"drop": 1}, 7, None])
def test_a_fault_kind_that_is_not_a_name_is_422_not_500(served: tuple[SandboxServer, str], kind: object) -> None:
    server, _ = served
    with pytest.raises(SandboxError, match=r"-> 422: .*faults\[0\]\.kind"):
        server.admin("PUT", "faults", {"faults": [{"kind": kind}]})
