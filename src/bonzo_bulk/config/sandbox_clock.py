"""The config's ``sandbox.clock:`` section: how the sandbox writes time, for the variants the reference leaves open.

``reference/bonzo-api.md`` documents ``created_at`` from one source (§2.4, ``2023-06-26T10:43:40.000000Z``)
and says nothing of Bonzo's clock or of the zone a stamp is written in. Each switch is one way a real
Bonzo could differ (``docs/sandbox.md`` names the reference row that makes each plausible), so the team's
tests can prove processing times stay honest on every one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bonzo_bulk.config.contract import CreatedAtPin

DAY = 86_400.0


class SandboxClock(BaseModel):
    """How the sandbox writes ``created_at`` / ``updated_at`` and its ``Date`` header."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    zone: str | None = Field(
        default=None,
        description="write stamps in this zone (IANA name or -06:00) instead of UTC with Z; see naive",
    )
    naive: bool = Field(default=True, description="with zone: write no offset (a naive stamp), else write the offset")
    whole_seconds: bool = Field(default=False, description="cut stamps down to the whole second")
    offset_seconds: float = Field(
        default=0.0, ge=-DAY, le=DAY, description="the sandbox's clock runs this far ahead (stamps and Date headers)"
    )

    def model_post_init(self, context: object) -> None:
        if self.zone is not None:
            CreatedAtPin(zone=self.zone)  # the same zone names and the same error as the contract's pin

    @property
    def plain(self) -> bool:
        """Stamps as the lenient sandbox always wrote them: UTC with Z and microseconds, on the true clock."""
        return self.zone is None and not self.whole_seconds and self.offset_seconds == 0.0
