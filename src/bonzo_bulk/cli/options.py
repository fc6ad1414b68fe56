"""The flags commands share: the config options (from :data:`options.OPTIONS`), the store's and the common ones.

Cheap to import: ``bonzo-bulk --help`` builds every command's flags from here without loading the config schema.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bonzo_bulk.config.options import DEFAULT_CONFIG, OPTIONS, Option

F = TypeVar("F", bound=Callable[..., Any])
ConfigChooser = Callable[[dict[str, Any]], Path | None]

DEFAULT_STORE = "reports/runs.sqlite3"
"""``store.DEFAULT_STORE_PATH`` as text (a test keeps them equal; importing the store would slow ``--help``)."""

SELF_CONTAINED_HELP = "embed plotly.js in the dashboard: one file to share (else it loads assets/ beside it)"
_STORE = next(option for option in OPTIONS if option.name == "store-url")
_REPORTS = next(option for option in OPTIONS if option.name == "reports-dir")


def log_level_option() -> Any:
    """``--log-level``, default WARNING."""
    return typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR")


def json_option(help_text: str = "print JSON on stdout instead of tables") -> Any:
    """``--json``."""
    return typer.Option(False, "--json", help=help_text)


def store_option() -> Any:
    """``--store-url`` (alias ``--store``): a SQLite path or a postgresql:// URL.

    It comes from the one ``store-url`` declaration in ``options.OPTIONS`` (its help), so every command names the
    store the same way; :func:`store_for` turns it and ``--reports-dir`` into the store
    (``BONZO_BULK_STORE_URL`` is read there, below both flags).
    """
    return typer.Option(_STORE.flag, "--store", help=_STORE.help)


def reports_dir_option() -> Any:
    """``--reports-dir``, as the config commands take it (``options.OPTIONS``): the store is its runs.sqlite3."""
    return typer.Option(_REPORTS.flag, help=_REPORTS.help)


StoreUrl = Annotated[str | None, store_option()]
"""``--store-url`` / ``--store`` of a command without a config (default None: see :func:`store_for`)."""
ReportsDir = Annotated[str | None, reports_dir_option()]
"""``--reports-dir`` of a command without a config (default None: see :func:`store_for`)."""


def store_for(store_url: str | None, reports_dir: str | None) -> str | Path:
    """The store a command without a config names (:func:`~bonzo_bulk.config.store_location.resolve_store`):
    ``--store-url``, else ``<--reports-dir>/runs.sqlite3``, else the environment's, else ``reports/runs.sqlite3``."""
    from bonzo_bulk.config.store_location import resolve_store, store_from_environment

    return resolve_store(store_url, reports_dir, configured=store_from_environment())


def config_options(func: F, *, choose_config: ConfigChooser | None = None) -> F:
    """Add ``--config``, ``--allow-literal-secrets`` and every :data:`OPTIONS` flag to a typer command.

    The wrapped function receives ``loaded=LoadedConfig`` instead of the individual flags, so each
    option is declared once (in ``options.OPTIONS``) and reaches every command the same way. Without
    ``--config``, ``choose_config(command's other arguments)`` may name the file (``health
    --integration``); else the default config is used.
    """
    signature = inspect.signature(func)
    kept = [p for p in signature.parameters.values() if p.name != "loaded"]
    added = [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None, "--config", "-c", help="YAML config of the bulk test", show_default=str(DEFAULT_CONFIG)
            ),
            annotation=Path | None,
        ),
        inspect.Parameter(
            "allow_literal_secrets",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                False, "--allow-literal-secrets", help="run even if the config file holds a literal token (warned)"
            ),
            annotation=bool,
        ),
    ]
    for option in OPTIONS:
        # Numbers arrive as text and are checked with the config, so a bad one is named with its value.
        kind: Any = _choices(option) if option.choices else str
        added.append(
            inspect.Parameter(
                option.dest,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    None,
                    option.flag,
                    help=option.help,
                    metavar=None if option.choices else option.kind.__name__.upper(),
                ),
                annotation=kind | None,
            )
        )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bonzo_bulk.cli.exits import errors_logged_under, handle_errors
        from bonzo_bulk.config.loader import load_config
        from bonzo_bulk.report.terminal import console

        config_path = kwargs.pop("config")
        allow = kwargs.pop("allow_literal_secrets")
        overrides = {option.dest: _plain(kwargs.pop(option.dest)) for option in OPTIONS}
        with errors_logged_under(overrides.get("reports_dir")) as error_log, handle_errors():
            if config_path is None:
                config_path = (choose_config(kwargs) if choose_config else None) or DEFAULT_CONFIG
            loaded = load_config(config_path, overrides=overrides, allow_literal_secrets=allow)
            error_log.folder = loaded.config.reports_dir
            for warning in loaded.warnings:
                console.print(f"[bold red]{warning}[/]")
            return func(*args, loaded=loaded, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    # typer resolves the annotations it is shown; ``loaded`` is not one, so its (heavy) type need not be imported.
    wrapper.__annotations__ = {k: v for k, v in func.__annotations__.items() if k != "loaded"}
    return wrapper  # type: ignore[return-value]


@functools.cache
def _choices(option: Option) -> Any:
    """The option's choices as one enum shared by every command (making one per command costs ``--help`` ~40 ms)."""
    return enum.StrEnum(option.dest, {c: c for c in option.choices})


def with_config(*, choose_config: ConfigChooser | None = None) -> Callable[[F], F]:
    """:func:`config_options` as a decorator that takes arguments (``@with_config(choose_config=...)``)."""
    return functools.partial(config_options, choose_config=choose_config)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value
