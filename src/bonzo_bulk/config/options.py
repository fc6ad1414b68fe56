"""Every option reachable from YAML, environment and command line, declared once (and cheap to import).

The CLI flags (``cli.options.config_options``) and the pytest options (``pytest_plugin``) are generated
from :data:`OPTIONS`; ``config.load_config`` applies them. This module imports nothing heavy, so
``bonzo-bulk --help`` and pytest's start-up do not load the config schema to list the flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = Path("tests/configs/monitorbase_test_config.yaml")


@dataclass(frozen=True, slots=True)
class Option:
    """One option reachable from YAML, environment and command line, declared once."""

    name: str  # flag name without dashes, e.g. "test-records"
    path: tuple[str, ...]  # where it lands in the config
    kind: type
    help: str
    env: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("test-records", ("test_records",), int, "number of test records to send", "BONZO_BULK_TEST_RECORDS"),
    Option(
        "processing-delay",
        ("processing_delay",),
        float,
        "seconds a record may take to appear; the poller waits up to this, never blindly",
        "BONZO_BULK_PROCESSING_DELAY",
    ),
    Option(
        "distribution",
        ("distribution",),
        str,
        "how records are spread over the test users",
        "BONZO_BULK_DISTRIBUTION",
        ("even", "weighted", "custom"),
    ),
    Option(
        "target",
        ("target",),
        str,
        "auto: live when TEST_HOOK_URL and SUPERUSER_API_KEY are set, else the local sandbox",
        "BONZO_BULK_TARGET",
        ("auto", "sandbox", "live"),
    ),
    Option("seed", ("test_data_settings", "seed"), int, "Faker seed: the same seed gives the same records"),
    Option("concurrency", ("webhook_settings", "concurrent_requests"), int, "webhook requests in flight at once"),
    Option("rate", ("webhook_settings", "rate_limit"), float, "records per second to send (default: no limit)"),
    Option(
        "delivery-deadline",
        ("webhook_settings", "deadline"),
        float,
        "seconds the whole delivery may take; records not sent by then fail (default: as long as the records take "
        "when each is answered within its timeout on the first try, at least 300)",
    ),
    Option("poll-interval", ("polling", "interval"), float, "seconds between API polls while settling"),
    Option("deadline", ("polling", "deadline"), float, "seconds after the last delivery to stop waiting"),
    Option("faults", ("sandbox", "faults"), str, "sandbox fault profile (YAML file) to inject"),
    Option(
        "sandbox-strictness",
        ("sandbox", "strictness"),
        str,
        "strict: the sandbox keeps only what the Bonzo reference promises (custom fields only when mapped, ...)",
        "BONZO_BULK_SANDBOX_STRICTNESS",
        ("lenient", "strict"),
    ),
    Option("reports-dir", ("reports_dir",), str, "where reports and the run store go", "BONZO_BULK_REPORTS_DIR"),
    Option(
        "store-url",
        ("store_url",),
        str,
        "run store: a SQLite path or sqlite:///path (default <reports-dir>/runs.sqlite3), or "
        "postgresql://user@host:port/db with the password in PGPASSWORD",
        "BONZO_BULK_STORE_URL",
    ),
    Option(
        "cleanup",
        ("cleanup", "after_run"),
        str,
        "delete this run's test prospects afterwards",
        None,
        ("keep", "on_success", "always"),
    ),
)
