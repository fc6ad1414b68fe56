"""The one exception tree of bonzo-bulk.

Every error the tool raises on purpose is a ``BonzoBulkError``; third-party errors are mapped at
the one boundary where they enter (``raise Ours(...) from exc``)::

    BonzoBulkError
    ├── ConfigError            bad config, flag or environment (exit 2, nothing sent)
    ├── TemplateError          a payload template that cannot render (exit 2)
    ├── DeliveryError          the webhook could not be reached at all
    ├── BonzoAPIError          Bonzo's API answered with an error (carries the status)
    │   ├── AuthError          401 / 403: bad token, missing scope, On-Behalf-Of refused
    │   ├── NotFoundError      404
    │   ├── MethodNotAllowed   405 (e.g. PATCH, or DELETE where Bonzo has none)
    │   ├── RateLimited        429 after every retry was spent, or a wait that would pass the deadline
    │   ├── BudgetExhausted    the run's API request budget is spent (api_settings.request_budget)
    │   ├── RedirectRefused    a redirect to another host, or more same-host redirects than allowed
    │   ├── UnreadableAnswer   an answer whose body is not JSON (an HTML maintenance page, say)
    │   └── ListingIncomplete  a listing walked short of its end: a repeated page, a next page on another
    │                          host or outside the API, the deadline (the records it might hold are unverified)
    ├── PreflightError         a check before sending failed: bad key, unreachable user or hook (exit 2)
    ├── SandboxError           the local Bonzo stand-in failed to start or answer
    ├── StoreError             the run store (SQLite or PostgreSQL) failed
    │   ├── StoreUnreachable   the store's server is down or refused us (exit 2, nothing sent)
    │   ├── StoreUnusable      the store file is no database, or a damaged one (exit 2, nothing sent)
    │   └── UnknownRun         no run with the id given (exit 2: a bad --run, export or baseline id)
    ├── MonitorLocked          a previous monitor run still holds the lock (exit 75, nothing sent)
    ├── CleanupError           cleanup refused or could not finish
    ├── ReportError            a report could not be written (after the verdict; exit 2 for a bad flag)
    ├── RunUnfinished          records were sent but the run could not be judged to the end (its store or
    │                          Bonzo's API failed): the verdict from what it knew, the cleanup command (exit 1)
    └── Interrupted            SIGINT / SIGTERM during a run (exit 130; says how to clean up)

Messages name the key or value that is wrong and the fix. No message ever carries a secret: callers
pass values through :func:`bonzo_bulk.secrets.redact` before building one.
"""

from __future__ import annotations


class BonzoBulkError(Exception):
    """Root of every error bonzo-bulk raises on purpose."""

    exit_code: int = 1


class ConfigError(BonzoBulkError):
    """A config file, flag or environment variable is wrong; nothing was sent."""

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.key = key
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{message}")


class TemplateError(ConfigError):
    """A payload template cannot be parsed or rendered."""


class DeliveryError(BonzoBulkError):
    """The webhook could not be reached at all (not a per-record failure)."""


class BonzoAPIError(BonzoBulkError):
    """Bonzo's API answered with an error status."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "", path: str = "") -> None:
        self.status = status
        self.method = method
        self.path = path
        where = f"{method} {path} " if method else ""
        code = f"-> {status}: " if status is not None else ""
        super().__init__(f"{where}{code}{message}")


class AuthError(BonzoAPIError):
    """401 or 403: the token is wrong, lacks a scope, or may not act On-Behalf-Of."""


class NotFoundError(BonzoAPIError):
    """404 from Bonzo's API."""


class MethodNotAllowed(BonzoAPIError):
    """405 from Bonzo's API (PATCH, or DELETE where it is not offered)."""


class RateLimited(BonzoAPIError):
    """429 from Bonzo's API after every retry was spent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class BudgetExhausted(BonzoAPIError):
    """The run has sent as many API requests as ``api_settings.request_budget`` allows."""


class RedirectRefused(BonzoAPIError):
    """Bonzo's API redirected a call to another origin (never followed), or redirected it too many times."""


class UnreadableAnswer(BonzoAPIError):
    """Bonzo's API answered with a body that is not JSON (an HTML maintenance page, a proxy's error page)."""


class ListingIncomplete(BonzoAPIError):
    """A listing could not be walked to the end the API names: ``reason`` says why (``repeated_page``,
    ``repeated_next``, ``foreign_next``, ``bad_next``, ``deadline``); ``pages`` is how many pages were read."""

    def __init__(self, message: str, *, reason: str, pages: int, **kwargs: object) -> None:
        self.reason = reason
        self.pages = pages
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class PreflightError(BonzoBulkError):
    """A check before the first record is sent failed; nothing was POSTed."""

    exit_code = 2


class SandboxError(BonzoBulkError):
    """The local Bonzo stand-in could not start or answer."""


class StoreError(BonzoBulkError):
    """The run store (SQLite or PostgreSQL) failed."""


class StoreUnreachable(StoreError):
    """The run store's database server is down or refused the connection; nothing was sent."""

    exit_code = 2


class StoreUnusable(StoreError):
    """The run store file is not a SQLite database, or a damaged or truncated one; nothing was sent."""

    exit_code = 2


class UnknownRun(StoreError):
    """The run store holds no run with the id the user gave."""

    exit_code = 2


class MonitorLocked(BonzoBulkError):
    """A previous ``monitor run`` of the same monitor is still going; this one is skipped (no overlap)."""

    exit_code = 75


class CleanupError(BonzoBulkError):
    """Cleanup was refused (safety) or could not finish."""


class ReportError(BonzoBulkError):
    """A report file could not be written; the verdict stands, the report is missing."""

    def __init__(self, message: str, *, path: str, from_flag: bool = False) -> None:
        self.path = path
        self.exit_code = 2 if from_flag else 1
        super().__init__(message)


class RunUnfinished(BonzoBulkError):
    """A run sent records but could not be judged to the end; the message is its verdict from what it knew, the
    records it could not check (unverified) and the exact cleanup command."""

    def __init__(self, message: str, *, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(message)


class Interrupted(BonzoBulkError):
    """A run stopped by SIGINT or SIGTERM; the message names the run and the exact cleanup command."""

    exit_code = 130

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)
