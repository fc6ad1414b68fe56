"""The probe: a side-effect-free look at the webhook (reachability, TLS, methods, latency) before sending.

It asks HEAD, GET and OPTIONS a few times each and never POSTs, so it creates no lead.

Example::

    found = await probe(hook_url, attempts=3, timeout=5.0)
    assert found.reachable and found.tls_ok is not False
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from yarl import URL

from bonzo_bulk._http import categorize_exception, describe_exception, is_permanent_connect_error, make_session
from bonzo_bulk.deliver.sender import usable_url
from bonzo_bulk.errors import DeliveryError
from bonzo_bulk.secrets import redact_url

PROBE_METHODS: Final = ("HEAD", "GET", "OPTIONS")

_perf = time.perf_counter


@dataclass(frozen=True, slots=True)
class MethodProbe:
    """How the webhook answered one HTTP method across the probe's attempts."""

    method: str
    statuses: tuple[int, ...]
    """Every status this method got, in order (failed attempts leave no status)."""
    failures: int
    error_category: str | None = None
    """Category of the last failed attempt, if any."""
    error: str | None = None
    allow: str | None = None
    """The ``Allow`` header, when the server sent one (usually on OPTIONS or a 405)."""

    @property
    def answered(self) -> bool:
        return bool(self.statuses)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a side-effect-free look at the webhook found: reachability, TLS, methods, latency.

    The probe never POSTs, so it creates no lead.
    """

    url: str
    """The probed URL, redacted."""
    reachable: bool
    """At least one request got an HTTP answer (DNS, connect and, for https, TLS all worked)."""
    tls_ok: bool | None
    """None for plain http; False when a TLS handshake or certificate check failed."""
    methods: tuple[MethodProbe, ...]
    latency_p50_ms: float | None
    latency_max_ms: float | None
    probes: int
    error: str | None = None
    """Why the webhook is unreachable, when it is."""


@dataclass
class _Answers:
    """What the probe's requests got so far, method by method."""

    statuses: dict[str, list[int]] = field(default_factory=lambda: {m: [] for m in PROBE_METHODS})
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROBE_METHODS, 0))
    last_error: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Each method's last failure: (category, description)."""
    allow: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    tls_failed: bool = False

    def methods(self) -> tuple[MethodProbe, ...]:
        return tuple(
            MethodProbe(
                method=m,
                statuses=tuple(self.statuses[m]),
                failures=self.failures[m],
                error_category=self.last_error[m][0] if m in self.last_error else None,
                error=self.last_error[m][1] if m in self.last_error else None,
                allow=self.allow.get(m),
            )
            for m in PROBE_METHODS
        )


async def probe(
    url: str,
    *,
    attempts: int,
    timeout: float,  # noqa: ASYNC109 - a per-request limit, not a deadline for the whole probe
    session: aiohttp.ClientSession | None = None,
) -> ProbeResult:
    """Check a webhook without creating data: HEAD, GET and OPTIONS ``attempts`` times each.

    Raises :class:`DeliveryError` only for a URL that cannot be used at all.
    """
    target = usable_url(url)
    shown = redact_url(url)
    request_timeout = aiohttp.ClientTimeout(total=timeout)
    own_session = session is None
    active = session if session is not None else make_session(limit=2, timeout=timeout)
    answers = _Answers()
    try:
        for _ in range(max(1, attempts)):
            for method in PROBE_METHODS:
                await _ask(active, method, target, request_timeout, shown, answers)
    finally:
        if own_session:
            await active.close()
    reachable = bool(answers.latencies)
    error = None
    if not reachable:
        reasons = sorted({detail for _, detail in answers.last_error.values()})
        error = f"{shown} did not answer any probe: " + "; ".join(reasons)
    latencies = answers.latencies
    return ProbeResult(
        url=shown,
        reachable=reachable,
        tls_ok=reachable and not answers.tls_failed if target.scheme == "https" else None,
        methods=answers.methods(),
        latency_p50_ms=statistics.median(latencies) if latencies else None,
        latency_max_ms=max(latencies) if latencies else None,
        probes=max(1, attempts) * len(PROBE_METHODS),
        error=error,
    )


async def _ask(
    session: aiohttp.ClientSession,
    method: str,
    target: URL,
    request_timeout: aiohttp.ClientTimeout,
    shown: str,
    answers: _Answers,
) -> None:
    """One probing request; its answer (or failure) is added to ``answers``."""
    started = _perf()
    try:
        async with session.request(method, target, timeout=request_timeout, allow_redirects=False) as answer:
            await answer.read()
            answers.statuses[method].append(answer.status)
            if "Allow" in answer.headers:
                answers.allow[method] = answer.headers["Allow"]
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise DeliveryError(f"webhook URL {shown!r} is not usable: {describe_exception(exc)}") from exc
    except Exception as exc:
        category = categorize_exception(exc)
        if category is None:
            raise
        answers.tls_failed = answers.tls_failed or is_permanent_connect_error(exc)
        answers.failures[method] += 1
        answers.last_error[method] = (category, describe_exception(exc))
        return
    answers.latencies.append((_perf() - started) * 1000.0)
