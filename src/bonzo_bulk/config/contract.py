"""The config's ``contract:`` section: the prospect fields a user declares their webhook to store.

Only the schema lives here; building a phase's contract from the integration, the declarations and a
learned file is the plan's work (:mod:`bonzo_bulk.plan.contract`).
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Provenance = Literal["documented", "declared", "learned"]
"""On whose word a field is checked: Bonzo's reference, the user's declaration, or a calibration run."""

Transform = Literal["none", "lower", "phone", "strip", "tags", "notes"]
"""How Bonzo changes a value on the way in; ``notes`` counts the non-empty notes a value makes."""


class ContractField(BaseModel):
    """One promise about a prospect field: it holds a payload value (``from``) or a fixed ``value``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str = Field(alias="to", description="the prospect field (tolerant paths: custom_fields.<name>, tags)")
    source: str | None = Field(default=None, alias="from", description="payload path whose value must arrive")
    value: Any = Field(default=None, description="a fixed expected value, e.g. source: monitorbase")
    transform: Transform = "none"
    by: Provenance = "declared"

    @model_validator(mode="after")
    def _one_expectation(self) -> ContractField:
        if (self.source is None) == (self.value is None):
            raise ValueError(f"contract field {self.field!r}: give exactly one of 'from:' (a payload path) or 'value:'")
        return self

    @property
    def compare_as(self) -> str:
        """The normalisation applied to the stored value before comparing (a notes count compares as is)."""
        return "none" if self.transform == "notes" else self.transform


_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def fixed_offset(text: str) -> timezone | None:
    """``+05:30`` / ``-0600`` as a fixed zone, or None when the text is not such an offset."""
    match = _OFFSET.match(text.strip())
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


class CreatedAtPin(BaseModel):
    """What the contract pins about ``created_at``: the zone a naive stamp is written in (an IANA name such as
    ``America/Chicago``, ``UTC``, or a fixed offset such as ``-06:00``). The run still checks it against the
    evidence; a pin the evidence contradicts is a diagnosis, never a silent override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str = Field(description="IANA zone (America/Chicago), UTC, or a fixed offset (-06:00) of naive stamps")

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if fixed_offset(value) is not None:
            return value.strip()
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError) as exc:
            close = sorted(z for z in available_timezones() if z.lower().endswith(value.strip().lower()[-6:]))[:3]
            hint = f"; did you mean {', '.join(close)}" if close else ""
            raise ValueError(
                f"{value!r} is not a time zone: give an IANA name (America/Chicago), UTC or an offset (-06:00){hint}"
            ) from exc
        return value.strip()

    @property
    def tz(self) -> tzinfo:
        """The zone as a ``tzinfo``."""
        return fixed_offset(self.zone) or ZoneInfo(self.zone)


class ContractSettings(BaseModel):
    """The config's ``contract:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(default=None, description="a learned contract written by `bonzo-bulk calibrate`")
    primary: list[ContractField] = Field(default_factory=list, description="declared fields of the primary hook")
    control: list[ContractField] = Field(default_factory=list, description="declared fields of the control hook")
    created_at: CreatedAtPin | None = Field(
        default=None, description="pin the zone of naive created_at stamps, e.g. {zone: America/Chicago}"
    )
