"""What the plugin keeps for one pytest session (in ``config.stash``, never a module global): the config,
loaded once from ``--config`` and the options, the plan, the run's result and where it was published."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from bonzo_bulk.config.options import OPTIONS, Option
from bonzo_bulk.errors import BonzoBulkError, Interrupted

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.models import PhaseKind, RunResult
    from bonzo_bulk.plan.files import PlanFiles
    from bonzo_bulk.plan.planner import RunPlan
    from bonzo_bulk.problems.track import RunProblems
    from bonzo_bulk.report.publish import Published

log = logging.getLogger("bonzo_bulk")

RUN_FIXTURES = frozenset({"bulk_plan", "bulk_run", "primary_phase", "control_phase", "hook_availability"})
CONFIG_FIXTURES = RUN_FIXTURES | {"bonzo_config", "validation_rule"}
_KIND_WORDS: dict[type, str] = {int: "a whole number, e.g. 20", float: "a number, e.g. 2.5"}


@dataclass
class SessionState:
    """Everything the plugin keeps for one pytest session."""

    loaded: LoadedConfig | None = None
    plan: RunPlan | None = None
    plan_files: PlanFiles | None = None
    result: RunResult | None = None
    problems: RunProblems | None = None
    """The run's problems (new or known), once it ran and they were tracked."""
    published: Published | None = None
    beside: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


STATE = pytest.StashKey[SessionState]()


def state(config: pytest.Config) -> SessionState:
    """The session's state (created by ``pytest_configure``)."""
    return config.stash[STATE]


def ini_name(option: Option) -> str:
    """The option's ini key and ``config.getoption`` dest, e.g. ``bonzo_test_records``."""
    return f"bonzo_{option.dest}"


def overrides(config: pytest.Config) -> dict[str, Any]:
    """Each option's value from the command line, else its ini key (checked like the flag), else None."""
    found: dict[str, Any] = {}
    for option in OPTIONS:
        value = config.getoption(ini_name(option))
        raw = str(config.getini(ini_name(option)) or "").strip()
        if value is None and raw:
            try:
                value = option.kind(raw)
            except ValueError as exc:
                wanted = _KIND_WORDS.get(option.kind, option.kind.__name__)
                raise pytest.UsageError(f"bonzo-bulk: ini key {ini_name(option)} = {raw!r}: not {wanted}") from exc
            if option.choices and value not in option.choices:
                raise pytest.UsageError(
                    f"bonzo-bulk: ini key {ini_name(option)} = {raw!r}: choose one of {', '.join(option.choices)}"
                )
        found[option.dest] = value
    return found


def dry_run(config: pytest.Config) -> bool:
    """``--dry-run``, else the ini key ``bonzo_dry_run``."""
    flag = config.getoption("bonzo_dry_run")
    return bool(flag if flag is not None else config.getini("bonzo_dry_run"))


def needed_phases(session: pytest.Session) -> tuple[PhaseKind, ...]:
    """The phases the selected tests read: by phase fixture, else by the ``superuser`` marker."""
    wanted: set[str] = set()
    for item in session.items:
        names = set(getattr(item, "fixturenames", ()))
        if not names & RUN_FIXTURES:
            continue
        explicit = {kind for kind in ("primary", "control") if f"{kind}_phase" in names}
        wanted |= explicit or {"control" if item.get_closest_marker("superuser") else "primary"}
    phases: tuple[PhaseKind, ...] = tuple(k for k in ("primary", "control") if k in wanted)
    return phases or ("primary",)


def _install_redaction(config: pytest.Config) -> None:
    """Redact secrets in every captured and live log line (pytest's handlers, not only the root's)."""
    from bonzo_bulk.secrets import RedactingFilter

    plugin = config.pluginmanager.get_plugin("logging-plugin")
    for name in ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler"):
        handler = getattr(plugin, name, None)
        if isinstance(handler, logging.Handler) and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def loaded_config(config: pytest.Config) -> LoadedConfig:
    """The session's config, loaded once (raises :class:`~bonzo_bulk.errors.ConfigError` for a bad one)."""
    from bonzo_bulk.config.loader import load_config

    current = state(config)
    if current.loaded is None:
        _install_redaction(config)
        path = config.getoption("bonzo_config") or config.getini("bonzo_config")
        current.loaded = load_config(
            path,
            overrides=overrides(config),
            allow_literal_secrets=config.getoption("bonzo_allow_literal_secrets"),
        )
        for warning in current.loaded.warnings:
            log.warning(warning)
    return current.loaded


def fail(exc: BonzoBulkError) -> NoReturn:
    """Fail the current test with the error's one redacted line, no traceback."""
    from bonzo_bulk.secrets import redact

    pytest.fail(f"{type(exc).__name__}: {redact(str(exc))}", pytrace=False)


def interrupt_session(exc: Interrupted) -> NoReturn:
    """Stop the whole session with pytest's interrupted exit (2), showing the run's redacted message (what was
    recorded, the cleanup command), not a failed test and a session that goes on."""
    from bonzo_bulk.secrets import redact

    pytest.exit(f"{type(exc).__name__}: {redact(str(exc))}", returncode=pytest.ExitCode.INTERRUPTED)
