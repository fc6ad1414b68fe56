"""The pytest plugin (``pytest11`` entry point): options, markers, the session-scoped bulk run, failure
tables and the pytest-html "Integration health" section.

The plugin is loaded in every pytest run, so it does nothing until a test asks for one of its
fixtures. The bulk run happens once per session, lazily, with only the phases the selected tests
need (``superuser``-marked tests need the control hook, the others the primary hook)::

    def test_user_assignment_accuracy(primary_phase, bulk_checks):
        bulk_checks.expect(primary_phase, "User assignment", stage=Stage.ASSIGNMENT, verdict="assignment_accuracy")

Options come from :data:`bonzo_bulk.config.OPTIONS` (flag ``--test-records``, ini key
``bonzo_test_records``); precedence: defaults < YAML < environment < ini key < command line.
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import shutil
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import pytest

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.models import (
    CheckResult,
    Diagnosis,
    PhaseKind,
    PhaseResult,
    RunResult,
    Stage,
    Target,
    ThresholdVerdict,
)
from bonzo_bulk.options import DEFAULT_CONFIG, OPTIONS, Option
from bonzo_bulk.secrets import RedactingFilter, redact

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.config import LoadedConfig
    from bonzo_bulk.delivery import ProbeResult
    from bonzo_bulk.generate import PlanFiles
    from bonzo_bulk.plan import RunPlan
    from bonzo_bulk.publishing import Published

# The plugin loads in every pytest session of a project that installs bonzo-bulk: the engine, the
# config schema and the reporters are imported by the fixtures and hooks that use them, never here.

log = logging.getLogger("bonzo_bulk")

MARKERS = {
    "integration": "end-to-end integration test: reads the session's bulk run (webhook -> Bonzo)",
    "webhook": "checks webhook delivery (availability, acceptance, response times)",
    "api": "checks what Bonzo's API shows (creation, owner, team, On-Behalf-Of visibility)",
    "data_integrity": "checks field mapping, required and custom fields, transformations",
    "superuser": "the control hook (explicit user_id); selecting only these runs only the control phase",
    "slow": "waits on processing times (records settling through the API)",
}
DRY_RUN_SKIP = "--dry-run: nothing was sent"
RUN_FIXTURES = frozenset({"bulk_plan", "bulk_run", "primary_phase", "control_phase", "hook_availability"})


@dataclass
class _State:
    """Everything the plugin keeps for one pytest session (in ``config.stash``)."""

    loaded: LoadedConfig | None = None
    plan: RunPlan | None = None
    plan_files: PlanFiles | None = None
    result: RunResult | None = None
    published: Published | None = None
    beside: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_STATE = pytest.StashKey[_State]()
_EXTRAS = pytest.StashKey[list[str]]()


def _dest(option: Option) -> str:
    return f"bonzo_{option.dest}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """One group, generated from :data:`OPTIONS`, plus the run-level switches; each also an ini key."""
    group = parser.getgroup("bonzo-bulk", "bonzo-bulk: bulk webhook -> Bonzo integration tests")
    group.addoption(
        "--config",
        dest="bonzo_config",
        default=None,
        metavar="YAML",
        help=f"config of the bulk test (default {DEFAULT_CONFIG}; ini: bonzo_config)",
    )
    parser.addini("bonzo_config", "default for --config", default=str(DEFAULT_CONFIG))
    group.addoption(
        "--dry-run",
        dest="bonzo_dry_run",
        action="store_true",
        default=None,
        help="send nothing: plan, check and write the payloads; tests that need the network are skipped",
    )
    parser.addini("bonzo_dry_run", "default for --dry-run", type="bool", default=False)
    group.addoption(
        "--allow-literal-secrets",
        dest="bonzo_allow_literal_secrets",
        action="store_true",
        default=False,
        help="run even if the config file holds a literal token (warned)",
    )
    for option in OPTIONS:
        env = f"; env {option.env}" if option.env else ""
        group.addoption(
            option.flag,
            dest=_dest(option),
            default=None,
            type=option.kind,
            choices=list(option.choices) or None,
            metavar=option.dest.upper(),
            help=f"{option.help} (ini: {_dest(option)}{env})",
        )
        parser.addini(_dest(option), f"default for {option.flag}: {option.help}", default="")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and the session state; the html reporter when pytest-html is present."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[_STATE] = _State()
    if hasattr(config.hook, "pytest_html_results_summary"):
        config.pluginmanager.register(HealthReport(config), "bonzo-bulk-health")


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE]


_KIND_WORDS: dict[type, str] = {int: "a whole number, e.g. 20", float: "a number, e.g. 2.5"}


def _overrides(config: pytest.Config) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for option in OPTIONS:
        value = config.getoption(_dest(option))
        raw = str(config.getini(_dest(option)) or "").strip()
        if value is None and raw:
            try:
                value = option.kind(raw)
            except ValueError as exc:
                wanted = _KIND_WORDS.get(option.kind, option.kind.__name__)
                raise pytest.UsageError(f"bonzo-bulk: ini key {_dest(option)} = {raw!r}: not {wanted}") from exc
            if option.choices and value not in option.choices:
                raise pytest.UsageError(
                    f"bonzo-bulk: ini key {_dest(option)} = {raw!r}: choose one of {', '.join(option.choices)}"
                )
        overrides[option.dest] = value
    return overrides


def _dry_run(config: pytest.Config) -> bool:
    flag = config.getoption("bonzo_dry_run")
    return bool(flag if flag is not None else config.getini("bonzo_dry_run"))


def _needed_phases(session: pytest.Session) -> tuple[PhaseKind, ...]:
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
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    for name in ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler"):
        handler = getattr(plugin, name, None)
        if isinstance(handler, logging.Handler) and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def _fail(exc: BonzoBulkError) -> NoReturn:
    pytest.fail(f"{type(exc).__name__}: {redact(str(exc))}", pytrace=False)


def _loaded(config: pytest.Config) -> LoadedConfig:
    """The session's config, loaded once (raises :class:`ConfigError` for a bad one)."""
    from bonzo_bulk.config import load_config

    state = _state(config)
    if state.loaded is None:
        _install_redaction(config)
        path = config.getoption("bonzo_config") or config.getini("bonzo_config")
        state.loaded = load_config(
            path,
            overrides=_overrides(config),
            allow_literal_secrets=config.getoption("bonzo_allow_literal_secrets"),
        )
        for warning in state.loaded.warnings:
            log.warning(warning)
    return state.loaded


@pytest.fixture(scope="session")
def bonzo_config(pytestconfig: pytest.Config) -> LoadedConfig:
    """The loaded config: ``--config`` (or ini ``bonzo_config``) with the command-line options applied."""
    try:
        return _loaded(pytestconfig)
    except BonzoBulkError as exc:
        _fail(exc)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the ``validation_rule`` fixture with the config's rules (ids: the rule's field)."""
    if "validation_rule" not in metafunc.fixturenames:
        return
    try:
        rules = [r for r in _loaded(metafunc.config).config.validation_rules if r.phase != "control"]
    except (BonzoBulkError, pytest.UsageError):
        return  # reported once, as a usage error, by pytest_collection_modifyitems
    metafunc.parametrize("validation_rule", rules, ids=[rule.field for rule in rules], scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Load the config as soon as a selected test needs it, so a bad one stops pytest with one line
    (``ERROR: bonzo-bulk: ...``, exit code 4) instead of a traceback per test."""
    needs = RUN_FIXTURES | {"bonzo_config", "validation_rule"}
    if not any(needs & set(getattr(item, "fixturenames", ())) for item in items):
        return
    try:
        _loaded(config)
    except BonzoBulkError as exc:
        raise pytest.UsageError(f"bonzo-bulk: {redact(str(exc))}") from None


@pytest.fixture(scope="session")
def bulk_plan(request: pytest.FixtureRequest, bonzo_config: LoadedConfig) -> RunPlan:
    """The session's records, planned once (with ``--dry-run`` also written to ``<reports_dir>/dry_run``)."""
    from bonzo_bulk.generate import write_plan
    from bonzo_bulk.plan import plan_run

    state = _state(request.config)
    if state.plan is None:
        phases = _needed_phases(request.session)
        try:
            state.plan = plan_run(bonzo_config, phases=phases)
            if _dry_run(request.config):
                state.plan_files = write_plan(state.plan, Path(bonzo_config.config.reports_dir) / "dry_run")
                log.info(
                    "Dry run: %d payloads planned (%s), nothing sent; written to %s",
                    state.plan_files.records,
                    ", ".join(phases),
                    state.plan_files.payloads,
                )
        except BonzoBulkError as exc:
            _fail(exc)
    return state.plan


@pytest.fixture(scope="session")
def bulk_run(request: pytest.FixtureRequest, bulk_plan: RunPlan) -> RunResult:
    """The bulk run (deliver, settle, verify), once per session; published at the session's end."""
    from bonzo_bulk._http import run_async
    from bonzo_bulk.run import execute

    if _dry_run(request.config):
        pytest.skip(DRY_RUN_SKIP)
    state = _state(request.config)
    if state.result is None:
        try:
            state.result = run_async(execute(bulk_plan))
        except BonzoBulkError as exc:
            _fail(exc)
    assert state.result is not None
    return state.result


@pytest.fixture(scope="session")
def primary_phase(bulk_run: RunResult) -> PhaseResult:
    """The primary hook's results (records routed by ``lo_email``)."""
    assert bulk_run.primary is not None, "the primary phase was not planned"
    return bulk_run.primary


@pytest.fixture(scope="session")
def control_phase(bulk_run: RunResult, bonzo_config: LoadedConfig) -> PhaseResult:
    """The control hook's results (records carrying ``user_id``); skipped when no control hook is configured."""
    if bulk_run.control is None:
        why = "control: false in the config" if not bonzo_config.config.control else "SUPERUSER_WEBHOOK_URL is not set"
        pytest.skip(f"no control run: {why}")
    return bulk_run.control


@dataclass(frozen=True)
class HookAvailability:
    """Whether the webhook answers: a side-effect-free probe (live), or every POST of the run (sandbox)."""

    target: Target
    how: str
    checks: tuple[CheckResult, ...]
    probe: ProbeResult | None = None

    @property
    def reachable(self) -> bool:
        return all(c.passed for c in self.checks)


@pytest.fixture(scope="session")
def hook_availability(request: pytest.FixtureRequest, bonzo_config: LoadedConfig) -> HookAvailability:
    """Live: HEAD/GET/OPTIONS the hook (no lead is created, works with ``--dry-run``). Sandbox: the hook
    exists only during the run, so availability is every POST of the run having had an HTTP answer."""
    from bonzo_bulk._http import run_async
    from bonzo_bulk.delivery import probe

    config = bonzo_config.config
    if bonzo_config.target == "live" and config.webhook_url is not None:
        try:
            found = run_async(
                probe(config.webhook_url.get_secret_value(), attempts=1, timeout=config.webhook_settings.timeout)
            )
        except BonzoBulkError as exc:
            _fail(exc)
        answer = f"HTTP answer in {found.latency_p50_ms:.0f} ms" if found.latency_p50_ms is not None else "answered"
        check = CheckResult(
            "webhook", "reachable", Stage.DELIVERY, found.reachable, "an HTTP answer", found.error or answer
        )
        return HookAvailability("live", f"probe of {found.url} (HEAD, GET, OPTIONS; no lead created)", (check,), found)
    result: RunResult = request.getfixturevalue("bulk_run")
    assert result.primary is not None
    checks = tuple(
        CheckResult(
            d.record_name,
            "answered",
            Stage.DELIVERY,
            d.status is not None,
            "an HTTP status",
            d.status if d.status is not None else d.error_category,
            redact(d.error or ""),
        )
        for d in (o.delivery for o in result.primary.outcomes)
        if d is not None
    )
    return HookAvailability("sandbox", "every POST of the run (the sandbox hook lives only during the run)", checks)


class _Writer(Protocol):
    def line(self, s: str = "", **markup: bool) -> None: ...


def _text(table: Table, width: int = 120) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False, soft_wrap=False).print(table)
    return buffer.getvalue()


def _verdict_line(verdict: ThresholdVerdict) -> str:
    from bonzo_bulk.metrics import verdict_text

    measured, wanted = verdict_text(verdict)
    mark = "ok" if verdict.passed else "FAILED"
    return f"{verdict.name}: {measured} (threshold {wanted}) {mark}"


class IntegrationCheckFailed(AssertionError):
    """A test's checks failed: carries the failing records, shown as a table instead of a traceback."""

    def __init__(
        self,
        headline: str,
        failures: Sequence[CheckResult],
        verdicts: Sequence[ThresholdVerdict],
        diagnoses: Sequence[Diagnosis] = (),
    ) -> None:
        self.headline = headline
        systemic = {d.check for d in diagnoses}
        self.diagnoses = tuple(diagnoses)
        self.failures = tuple(c for c in failures if c.check not in systemic)
        self.verdicts = tuple(verdicts)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [self.headline, *(_verdict_line(v) for v in self.verdicts)]
        for diagnosis in self.diagnoses:
            lines.append(f"Systemic: {redact(diagnosis.headline)}")
            lines.append(f"  fix: {redact(diagnosis.fix)}")
        if self.failures:
            records = len({c.record_name for c in self.failures})
            lines.append(f"{records} record(s) failed {len(self.failures)} check(s):")
            lines.append(failure_text(self.failures))
        return "\n".join(lines)


def _short(value: Any, limit: int = 48) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_text(failures: Sequence[CheckResult], *, limit: int = 25) -> str:
    """Failing checks as a compact plain-text table: record, stage, check, expected, actual, note."""
    header = ("record", "stage", "check", "expected", "actual", "note")
    rows = [
        (c.record_name, c.stage.value, c.check, _short(c.expected), _short(c.actual), _short(c.message, 60))
        for c in failures[:limit]
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 4)
    if len(failures) > limit:
        lines.append(f"… and {len(failures) - limit} more in the JSON summary and the dashboard")
    return "\n".join(line.rstrip() for line in lines)


class _FailureRepr:
    """The report body of an :class:`IntegrationCheckFailed`: its table, sized to the terminal."""

    def __init__(self, error: IntegrationCheckFailed, path: str, lineno: int) -> None:
        self.error = error
        self.reprcrash = _Crash(path, lineno, error.headline)

    def toterminal(self, tw: _Writer) -> None:
        for line in self.error.render().splitlines():
            tw.line(line, red=line.startswith(self.error.headline) or line.endswith(" FAILED"))

    def __str__(self) -> str:
        return self.error.render()


@dataclass(frozen=True)
class _Crash:
    path: str
    lineno: int
    message: str


class BulkChecks:
    """Assert a phase's checks and threshold verdicts by name; failures list the records as a table."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item

    def expect(
        self,
        phase: PhaseResult,
        title: str,
        *,
        stage: Stage | None = None,
        checks: Iterable[str] = (),
        prefix: str | None = None,
        verdict: str | Sequence[str] = (),
    ) -> list[CheckResult]:
        """Judge the phase's checks of a stage / by name / by prefix (see :meth:`expect_all`)."""
        names = set(checks)
        selected = [
            c
            for c in phase.checks()
            if (stage is None or c.stage is stage)
            and (not names or c.check in names)
            and (prefix is None or c.check.startswith(prefix))
        ]
        if not selected:
            verdicts = self._verdicts(phase, verdict)
            upstream = [c for c in phase.failures() if c.check in ("delivered", "created")]
            self._note(phase, f"{title} [{phase.kind}]", [], upstream, verdicts)
            raise IntegrationCheckFailed(f"{title} [{phase.kind}]: no record reached this check", upstream, verdicts)
        self.expect_all(title, selected, phase=phase, verdict=verdict)
        return selected

    def expect_all(
        self,
        title: str,
        results: Sequence[CheckResult],
        *,
        phase: PhaseResult | None = None,
        verdict: str | Sequence[str] = (),
    ) -> None:
        """Fail when a named verdict of ``phase`` failed and ``results`` hold failures (failures within
        the configured tolerance pass, noted in the report); with no verdict, on any failure. Nothing to
        judge is a failure too."""
        verdicts = self._verdicts(phase, verdict) if phase is not None else []
        failures = [c for c in results if not c.passed]
        label = f"{title} [{phase.kind}]" if phase is not None else title
        self._note(phase, label, results, failures, verdicts)
        if not results:
            raise IntegrationCheckFailed(f"{label}: nothing to check", [], verdicts)
        failed_verdicts = [v for v in verdicts if not v.passed]
        if failures and (failed_verdicts or not verdicts):
            records = {c.record_name for c in results}
            bad = {c.record_name for c in failures}
            failing = {c.check for c in failures}
            diagnoses = [d for d in phase.diagnoses if d.check in failing] if phase is not None else []
            raise IntegrationCheckFailed(
                f"{label}: {len(records) - len(bad)}/{len(records)} records passed", failures, verdicts, diagnoses
            )

    def expect_verdicts(self, phase: PhaseResult, title: str, *names: str, stage: Stage | None = None) -> None:
        """Fail when any named threshold verdict failed; list the failing checks of ``stage``."""
        verdicts = self._verdicts(phase, names)
        failures = phase.failures(stage=stage) if stage is not None else []
        label = f"{title} [{phase.kind}]"
        self._note(phase, label, [], failures, verdicts)
        if any(not v.passed for v in verdicts):
            raise IntegrationCheckFailed(f"{label}: threshold not met", failures, verdicts)

    @staticmethod
    def _verdicts(phase: PhaseResult, names: str | Sequence[str]) -> list[ThresholdVerdict]:
        wanted = [names] if isinstance(names, str) else list(names)
        by_name = {v.name: v for v in phase.metrics.thresholds}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise IntegrationCheckFailed(
                f"no verdict named {', '.join(missing)} in the {phase.kind} phase (have: {', '.join(by_name)})", [], []
            )
        return [by_name[n] for n in wanted]

    def _note(
        self,
        phase: PhaseResult | None,
        label: str,
        selected: Sequence[CheckResult],
        failures: Sequence[CheckResult],
        verdicts: Sequence[ThresholdVerdict],
    ) -> None:
        from bonzo_bulk.report.pytest_html import failure_rows_html

        lines = [html.escape(_verdict_line(v)) for v in verdicts]
        if selected:
            lines.append(f"{len(selected) - len(failures)}/{len(selected)} checks passed")
        if failures and all(v.passed for v in verdicts) and verdicts:
            lines.append(f"{len(failures)} failing check(s) within the configured tolerance")
        body = "<br>".join(lines) + (failure_rows_html(failures) if failures else "")
        self._extra(label, body)
        for verdict in verdicts:
            assert phase is not None
            self.item.user_properties.append((f"bonzo_{phase.kind}_{verdict.name}", round(verdict.actual, 4)))

    def _extra(self, label: str, body: str) -> None:
        self.item.stash.setdefault(_EXTRAS, []).append(
            f'<div class="bonzo-extra"><strong>{html.escape(label)}</strong><br>{body}</div>'
        )


@pytest.fixture
def bulk_checks(request: pytest.FixtureRequest) -> BulkChecks:
    """Assertions on the session's checks and verdicts (see :class:`BulkChecks`)."""
    return BulkChecks(request.node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show :class:`IntegrationCheckFailed` as its table, and attach the per-test html extras."""
    report: pytest.TestReport = yield
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, IntegrationCheckFailed) and report.failed:
        path, lineno, _ = item.location
        report.longrepr = _FailureRepr(error, path, (lineno or 0) + 1)  # type: ignore[assignment]
    extras = item.stash.get(_EXTRAS, [])
    if report.when == "call" and extras:
        report.extras = [  # type: ignore[attr-defined]
            *getattr(report, "extras", []),
            {
                "name": "bonzo-bulk",
                "format_type": "html",
                "content": "".join(extras),
                "mime_type": None,
                "extension": None,
            },
        ]
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Publish the run (JSON summary + dashboard) once; copy the JSON beside ``--html`` / ``--junitxml``."""
    from bonzo_bulk.publishing import publish

    state = session.config.stash.get(_STATE, None)
    if state is None or state.result is None or state.loaded is None or state.published is not None:
        return
    try:
        # pytest-html's --self-contained-html asks for one file to share: the dashboard embeds plotly.js too.
        self_contained = bool(session.config.getoption("self_contained_html", default=False))
        state.published = publish(state.result, state.loaded, self_contained=self_contained)
    except BonzoBulkError as exc:
        state.notes.append(f"publishing the run failed: {redact(str(exc))}")
        return
    regressed = bool(state.published.regressions) and state.loaded.config.regression.fail_on_regression
    if regressed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        state.notes.append("the run regressed and regression.fail_on_regression is set: the session fails")
    for option in ("htmlpath", "xmlpath"):
        target = session.config.getoption(option, default=None)
        if target:
            beside = Path(os.path.expandvars(str(target))).expanduser().with_suffix(".health.json")
            beside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(state.published.summary_json, beside)
            state.beside.append(beside)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run's verdict tables and where its reports went."""
    from bonzo_bulk.console import phase_table
    from bonzo_bulk.regression import regression_line

    state = terminalreporter.config.stash.get(_STATE, None)
    if state is None or (state.result is None and state.plan_files is None):
        return
    terminalreporter.write_sep("=", "bonzo-bulk integration health")
    width = max(80, min(shutil.get_terminal_size().columns, 160))
    if state.plan_files is not None and state.result is None:
        terminalreporter.write_line(
            f"dry run: {state.plan_files.records} payloads planned, nothing sent -> {state.plan_files.payloads}"
        )
    if state.result is not None:
        result = state.result
        where = "SANDBOX (local stand-in, nothing sent to Bonzo)" if result.target == "sandbox" else "LIVE"
        terminalreporter.write_line(f"run {result.run_id} · target {where} · {'PASSED' if result.passed else 'FAILED'}")
        for phase in result.phases:
            terminalreporter.write(_text(phase_table(phase), width))
    if state.published is not None:
        for regression in state.published.regressions:
            terminalreporter.write_line(regression_line(regression, state.published.baseline_run_id), red=True)
        terminalreporter.write_line(f"JSON summary: {state.published.summary_json}")
        terminalreporter.write_line(f"Dashboard:    {state.published.dashboard}")
    for path in state.beside:
        terminalreporter.write_line(f"JSON summary beside the report: {path}")
    for note in state.notes:
        terminalreporter.write_line(note, red=True)


class HealthReport:
    """pytest-html hooks: the "Integration health" section (registered only when pytest-html is active)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        """Put the health section above the results table."""
        from bonzo_bulk.report.pytest_html import health_html

        html_path = Path(os.path.expandvars(str(self.config.getoption("htmlpath")))).expanduser()
        state = _state(self.config)
        section = health_html(
            result=state.result,
            plan_files=state.plan_files,
            published=state.published,
            report_dir=html_path.resolve().parent,
        )
        if section:
            postfix.append(section)
