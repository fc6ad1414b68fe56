"""The ``monitor:`` section of a config: run bounds, where notification and ping URLs come from, the alert policy.

Notification and ping URLs are secrets: the config names the environment variable that holds them
(or an apprise config file), never the URL itself.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AlertPolicy(_Section):
    """When a monitor notifies: escalation, reminders, recovery, degraded, flapping."""

    failures_before_alert: int = Field(default=2, ge=1, description="alert after this many failed runs in a row")
    minutes_before_alert: float | None = Field(
        default=None, gt=0, description="or once the failures have lasted this long (minutes)"
    )
    remind_every_runs: int | None = Field(default=None, ge=1, description="while down, remind every N failed runs")
    remind_every_minutes: float | None = Field(default=None, gt=0, description="while down, remind every M minutes")
    max_reminders: int = Field(default=3, ge=0, description="at most this many reminders per outage")
    recovery: bool = Field(default=True, description="say so when a failing monitor passes again")
    degraded: bool = Field(default=True, description="notify (once per episode) when a run passes but is degraded")
    near_limit: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="degraded when a threshold has less than this share of its room left (0.1: 90 % used)",
    )
    flapping_failures: int = Field(default=3, ge=2, description="flapping: this many failures ...")
    flapping_window: int = Field(default=10, ge=2, description="... within this many runs, without an alert")

    @model_validator(mode="after")
    def _window_fits(self) -> AlertPolicy:
        if self.flapping_failures > self.flapping_window:
            raise ValueError(
                f"flapping_failures ({self.flapping_failures}) cannot exceed flapping_window "
                f"({self.flapping_window}); raise the window or lower the count"
            )
        return self


class ProblemSettings(_Section):
    """How failures are tracked across runs as problems (``bonzo-bulk problems``) and when they page."""

    resolve_after: int = Field(
        default=2, ge=1, description="a problem is resolved after its check ran clean in this many runs in a row"
    )
    escalate_share: float = Field(
        default=0.5, gt=0, le=1, description="escalated when its share of the records judged reaches this"
    )
    alerts: bool = Field(
        default=True,
        description="monitor alerts per problem (new, reopened, escalated, resolved, reminders) instead of per "
        "failed run; a run that could not finish, degraded and flapping are still said per run",
    )
    sample_records: int = Field(default=5, ge=1, le=50, description="sample records kept per problem and run")


class MonitorSettings(_Section):
    """How ``bonzo-bulk monitor run`` runs and whom it tells."""

    name: str | None = Field(default=None, description="the monitor's name (default: the integration)")
    max_duration: float = Field(default=600.0, gt=0, description="seconds one monitor run may take, cleanup included")
    cleanup: Literal["always", "on_success", "keep"] = Field(
        default="always", description="delete the run's test prospects afterwards (always: even when it failed)"
    )
    notify_env: str = Field(
        default="BONZO_BULK_NOTIFY_URLS",
        description="environment variable holding the apprise URL(s), comma or space separated",
    )
    apprise_config: str | None = Field(default=None, description="an apprise config file (YAML or text) of URLs")
    ping_env: str = Field(
        default="BONZO_BULK_PING_URL",
        description="environment variable holding a healthchecks-style ping URL (/start, /fail, success)",
    )
    ping_timeout: float = Field(default=10.0, gt=0, description="seconds per dead-man's-switch ping")
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    problems: ProblemSettings = Field(default_factory=ProblemSettings)

    @field_validator("notify_env", "ping_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name; name the variable (e.g. BONZO_BULK_NOTIFY_URLS), "
                "never the URL itself"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError(f"{value!r} must be letters, digits, '_', '.' or '-' (it names files and units)")
        return value
