"""``prospects --user``: a user id, an email or ``ex:<id>`` is who the listing acts as; anything else is refused."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.bonzo import acting_user
from bonzo_bulk.cli import app
from bonzo_bulk.sandbox import SandboxServer


@pytest.mark.parametrize(
    ("given", "acting"),
    [("101", 101), (" 101 ", 101), ("lo.one@lender.test", "lo.one@lender.test"), ("ex:crm-7", "ex:crm-7")],
)
def test_the_three_forms_are_accepted(given: str, acting: int | str) -> None:
    assert acting_user(given) == acting


@pytest.mark.parametrize("given", ["abc", "0", "-5", "1.5", "lo@", "ex:", "", "12345678901234567"])
def test_anything_else_is_none(given: str) -> None:
    assert acting_user(given) is None


@pytest.mark.parametrize("user", ["101", "lo.one@lender.test"])
def test_prospects_acts_as_the_user_given(
    sandbox: SandboxServer, users: list[dict[str, object]], tmp_path: Path, user: str
) -> None:
    seeded = sandbox.seed(users, [{"type": "monitorbase", "source": "monitorbase"}])
    email = f"acting.{len(user)}@lender.test"  # not a test record: no cleanup of another test selects it
    created = urllib.request.Request(  # noqa: S310 - the sandbox on loopback
        f"{sandbox.url}/api/v3/prospects",
        data=json.dumps({"first_name": "Acting", "last_name": "Listing", "email": email}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {seeded['superuser_token']}",
            "On-Behalf-Of": "101",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(created, timeout=10) as answer:  # noqa: S310
        assert answer.status in (200, 201)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "webhook_url": "{TEST_HOOK_URL}",
                "superuser_api_key": "{SUPERUSER_API_KEY}",
                "test_users": users,
                "reports_dir": str(tmp_path / "reports"),
            }
        )
    )
    env = {
        "TEST_HOOK_URL": seeded["hooks"][0]["url"],
        "SUPERUSER_API_KEY": seeded["superuser_token"],
        "BONZO_API_URL": sandbox.url,
    }
    result = CliRunner().invoke(
        app, ["prospects", "--config", str(config), "--user", user, "--everything", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert email in {row["email"] for row in rows}  # 101's own prospect: the listing acted as 101
    assert all(row["acting_as"] == acting_user(user) for row in rows)
