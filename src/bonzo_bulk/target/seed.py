"""What a local sandbox is seeded with for a run: the config's test users and the hooks the run posts to.

Plain data, as ``POST /__sandbox/seed`` takes it: the plan computes it (:mod:`bonzo_bulk.plan.seeding`), the
target opens a seeded sandbox with it, and ``bonzo-bulk sandbox --config`` serves one seeded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxSeed:
    """The test users, the primary phase's hook and (for a run with a control phase) the control's hook."""

    users: tuple[dict[str, Any], ...]
    primary: dict[str, Any]
    control: dict[str, Any] | None = None

    @property
    def hooks(self) -> list[dict[str, Any]]:
        """The hooks to create, the primary's first."""
        return [self.primary] if self.control is None else [self.primary, self.control]

    def body(self) -> dict[str, Any]:
        """The ``POST /__sandbox/seed`` body."""
        return {"users": list(self.users), "hooks": self.hooks}
