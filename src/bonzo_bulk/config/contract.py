"""The config's ``contract:`` section: the prospect fields a user declares their webhook to store.

Only the schema lives here; building a phase's contract from the integration, the declarations and a
learned file is the plan's work (:mod:`bonzo_bulk.plan.contract`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class ContractSettings(BaseModel):
    """The config's ``contract:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(default=None, description="a learned contract written by `bonzo-bulk calibrate`")
    primary: list[ContractField] = Field(default_factory=list, description="declared fields of the primary hook")
    control: list[ContractField] = Field(default_factory=list, description="declared fields of the control hook")
