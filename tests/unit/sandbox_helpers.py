"""Helpers for the sandbox's own tests: the app in-process (httpx.ASGITransport, lifespan running)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxApp, SandboxOptions, create_app

FAST = ProcessingDelayModel(distribution="fixed", seconds=0.05)
SEED_USERS = [
    {"name": "LO One", "email": "LO.One@lender.test", "user_id": 101, "team_id": 11, "team_name": "Alpha"},
    {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 12, "external_id": "ext-2"},
    {"name": "LO Three", "email": "lo.three@lender.test", "user_id": 103, "team_id": 12},
]


@dataclass
class Sandbox:
    """An in-process sandbox, seeded: client, tokens and hook URLs."""

    app: SandboxApp
    client: httpx.AsyncClient
    superuser_token: str
    user_tokens: dict[str, str]
    hooks: dict[str, str]

    def su(self, on_behalf_of: str | int | None = None) -> dict[str, str]:
        """Superuser headers, optionally acting On-Behalf-Of a user."""
        headers = {"Authorization": f"Bearer {self.superuser_token}"}
        if on_behalf_of is not None:
            headers["On-Behalf-Of"] = str(on_behalf_of)
        return headers

    def as_user(self, user_id: int) -> dict[str, str]:
        """Headers with a user's own token."""
        return {"Authorization": f"Bearer {self.user_tokens[str(user_id)]}"}

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the intake worker has processed every accepted lead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (await self.client.get("/__sandbox/pending")).json()["pending"]:
            assert loop.time() < deadline, "the intake worker did not drain the queue in time"
            await asyncio.sleep(0.02)

    async def prospects(self, user_id: int, **params: Any) -> list[dict[str, Any]]:
        """One page of a user's prospects (superuser On-Behalf-Of)."""
        response = await self.client.get("/api/v3/prospects", headers=self.su(user_id), params=params)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async def faults(self, *faults: dict[str, Any], seed: int = 1) -> None:
        """Replace the fault profile."""
        response = await self.client.put("/__sandbox/faults", json={"seed": seed, "faults": list(faults)})
        assert response.status_code == 200, response.text

    async def truth(self) -> list[dict[str, Any]]:
        """The ground truth entries."""
        entries: list[dict[str, Any]] = (await self.client.get("/__sandbox/ground-truth")).json()["faults"]
        return entries


def lead(n: int, lo_email: str = "lo.one@lender.test", **extra: Any) -> dict[str, Any]:
    """A Monitorbase payload for record n."""
    return {
        "source": "Monitorbase",
        "first_name": f"TestRecord_MonitorBase_{n:03d}",
        "last_name": "MonitorBase",
        "email": f"test.monitorbase.{n:03d}@bonzobuddy.test",
        "cell_phone": f"555-010-{n:04d}",
        "lo_email": lo_email,
        "city": "TestCity",
        **extra,
    }


@contextlib.asynccontextmanager
async def start_sandbox(tmp_path: Path, *, strict: bool = False, **options: Any) -> AsyncIterator[Sandbox]:
    """Create the app, run its lifespan, seed users and hooks, and yield it.

    ``strict=True`` gives the sandbox that keeps only what the Bonzo reference promises (no custom field
    unless ``mapped_custom_fields`` maps it, the general hook's own source, list-shaped custom fields, ...).
    """
    options.setdefault("processing", FAST)
    options.setdefault("strictness", "strict" if strict else "lenient")
    app = create_app(SandboxOptions(db_path=tmp_path / "sandbox.sqlite3", **options))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
            seeded = await client.post(
                "/__sandbox/seed",
                json={
                    "users": SEED_USERS,
                    "hooks": [{"type": "monitorbase"}, {"type": "general", "source": "SuperUser"}],
                },
            )
            assert seeded.status_code == 200, seeded.text
            body = seeded.json()
            yield Sandbox(
                app, client, body["superuser_token"], body["user_tokens"], {h["type"]: h["url"] for h in body["hooks"]}
            )
