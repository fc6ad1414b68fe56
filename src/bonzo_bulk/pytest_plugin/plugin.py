"""The plugin's session hooks: the options (one group, from the option table), the markers, the reporter's
registration, and the collection-time config load that turns a bad config into one usage error."""

from __future__ import annotations

import pytest

from bonzo_bulk.config.options import DEFAULT_CONFIG, OPTIONS
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.pytest_plugin.reporter import Reporter
from bonzo_bulk.pytest_plugin.session import CONFIG_FIXTURES, STATE, SessionState, ini_name, loaded_config

MARKERS = {
    "integration": "end-to-end integration test: reads the session's bulk run (webhook -> Bonzo)",
    "webhook": "checks webhook delivery (availability, acceptance, response times)",
    "api": "checks what Bonzo's API shows (creation, owner, team, On-Behalf-Of visibility)",
    "data_integrity": "checks field mapping, required and custom fields, transformations",
    "superuser": "the control hook (explicit user_id); selecting only these runs only the control phase",
    "slow": "waits on processing times (records settling through the API)",
}
REPORTER = "bonzo-bulk-reporter"


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
        "--fail-on-new-problems-only",
        dest="bonzo_fail_on_new_problems_only",
        action="store_true",
        default=None,
        help="for CI: a session whose failures are all known problems passes; a new (or reopened) one fails it",
    )
    parser.addini(
        "bonzo_fail_on_new_problems_only", "default for --fail-on-new-problems-only", type="bool", default=False
    )
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
            dest=ini_name(option),
            default=None,
            type=option.kind,
            choices=list(option.choices) or None,
            metavar=option.dest.upper(),
            help=f"{option.help} (ini: {ini_name(option)}{env})",
        )
        parser.addini(ini_name(option), f"default for {option.flag}: {option.help}", default="")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, the session state and the reporter object."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[STATE] = SessionState()
    config.pluginmanager.register(Reporter(config), REPORTER)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the reporter, so a second session in the same process (pytester) starts clean."""
    reporter = config.pluginmanager.get_plugin(REPORTER)
    if reporter is not None:
        config.pluginmanager.unregister(reporter)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the ``validation_rule`` fixture with the config's rules (ids: the rule's field)."""
    if "validation_rule" not in metafunc.fixturenames:
        return
    try:
        rules = [r for r in loaded_config(metafunc.config).config.validation_rules if r.phase != "control"]
    except (BonzoBulkError, pytest.UsageError):
        return  # reported once, as a usage error, by pytest_collection_modifyitems
    metafunc.parametrize("validation_rule", rules, ids=[rule.field for rule in rules], scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Load the config as soon as a selected test needs it, so a bad one stops pytest with one line
    (``ERROR: bonzo-bulk: ...``, exit code 4) instead of a traceback per test."""
    if not any(CONFIG_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        return
    try:
        loaded_config(config)
    except BonzoBulkError as exc:
        from bonzo_bulk.secrets import redact

        raise pytest.UsageError(f"bonzo-bulk: {redact(str(exc))}") from None
