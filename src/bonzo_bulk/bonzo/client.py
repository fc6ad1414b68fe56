"""Async client of Bonzo's v3 API, shaped like ``httpx.AsyncClient`` but running on aiohttp.

Bearer auth, ``On-Behalf-Of`` per call, ``{"data": …}`` unwrapping, listings walked as the API names
their pages (:mod:`bonzo_bulk.bonzo.listing`), bounded concurrency, retries of 5xx / network failures
with backoff, 429 waits on ``Retry-After``, redirects followed only within the API's own host
(:mod:`bonzo_bulk.bonzo.redirects`), and a count of every request actually sent (retries and redirect
hops included) so a run can report its API cost.
Errors come out as :mod:`bonzo_bulk.errors` types; no message ever carries the key.

Example::

    async with BonzoClient(base_url="https://app.getbonzo.com", api_key=key, settings=ApiSettings()) as bonzo:
        async for prospect in bonzo.iter_prospects(on_behalf_of="lo@example.com", search="TestRecord"):
            print(prospect["id"], prospect["email"])
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, TypeAlias

import aiohttp
from pydantic import SecretStr
from yarl import URL

from bonzo_bulk._http import (
    REDIRECT_STATUSES,
    RETRYABLE,
    RetryPolicy,
    TransientError,
    categorize_exception,
    categorize_status,
    describe_exception,
    is_permanent_connect_error,
    make_session,
    parse_retry_after,
    retry_transient,
)
from bonzo_bulk.bonzo.clock import ClockTracker
from bonzo_bulk.bonzo.listing import ListedPage, page_of, walk_pages
from bonzo_bulk.bonzo.pacing import Pacer
from bonzo_bulk.bonzo.redirects import Hop, Redirects
from bonzo_bulk.config.schema import ApiSettings
from bonzo_bulk.errors import (
    AuthError,
    BonzoAPIError,
    BudgetExhausted,
    MethodNotAllowed,
    NotFoundError,
    RateLimited,
    UnreadableAnswer,
)
from bonzo_bulk.models import Prospect
from bonzo_bulk.secrets import redact, redact_cut, redact_url, register_secret

__all__ = ["BonzoClient", "OnBehalfOf", "ProspectPage", "acting_user"]

log = logging.getLogger("bonzo_bulk")

OnBehalfOf: TypeAlias = int | str
"""A Bonzo user to act as: numeric user id, email, or ``ex:<external id>``."""
_ACTING_USER = re.compile(r"^(?:[1-9][0-9]{0,15}|[^@\s]+@[^@\s]+\.[^@\s]+|ex:\S+)$")


def acting_user(text: str) -> OnBehalfOf | None:
    """``text`` as an ``On-Behalf-Of`` value (a user id becomes an int), or None when it is none of the three forms.

    >>> acting_user("65013"), acting_user("lo@lender.test"), acting_user("ex:crm-7"), acting_user("abc")
    (65013, 'lo@lender.test', 'ex:crm-7', None)
    """
    value = text.strip()
    if not _ACTING_USER.match(value):
        return None
    return int(value) if value.isdigit() else value


API_PREFIX: Final = "/api/v3"
SAY_WAITS_FROM: Final = 5.0
"""A 429 wait at least this long (seconds) is logged: what it waits for and until when."""
_SUMMARY_CHARS: Final = 300
_BODY_READ: Final = 65536
"""How much of a body that is not JSON is decoded for its excerpt (redacted, then cut to 200 characters)."""
_ID_SEGMENT = re.compile(r"^(?:\d+|ex:.+|[0-9a-fA-F-]{32,36})$")


@dataclass(frozen=True, slots=True)
class ProspectPage:
    """One page of a prospect listing; the meta fields are None when Bonzo sent no ``meta``."""

    data: tuple[Prospect, ...]
    current_page: int
    last_page: int | None
    per_page: int | None
    total: int | None


def _api_root(base_url: str) -> URL:
    """``https://app.getbonzo.com`` (or one already ending in ``/api/v3``) -> the v3 root URL."""
    text = base_url.rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)]
    root = URL(text + API_PREFIX)
    if root.scheme not in ("http", "https") or not root.host:
        raise ValueError(f"api base_url {redact_url(base_url)!r} is not an http(s) URL with a host")
    return root


def _route_template(path: str) -> str:
    """``/prospects/123/notes`` -> ``/prospects/{id}/notes``, so counts group by endpoint."""
    segments = [("{id}" if _ID_SEGMENT.match(part) else part) for part in path.strip("/").split("/") if part]
    return "/" + "/".join(segments)


def _summarise_error_body(raw: bytes) -> str:
    """Bonzo's ``message`` and ``errors`` from an error body, short and redacted."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = jsonlib.loads(text) if text else None
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error")
        if message:
            parts.append(str(message))
        errors = body.get("errors")
        if isinstance(errors, Mapping):
            for field, messages in errors.items():
                listed = messages if isinstance(messages, list) else [messages]
                parts.append(f"{field}: " + ", ".join(str(m) for m in listed))
        elif errors:
            parts.append(str(errors))
    elif text:
        parts.append(" ".join(text.split()))
    return redact_cut("; ".join(parts) or "no error body", _SUMMARY_CHARS)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one request got back: enough to decide on a redirect, a retry, an error or the data."""

    status: int
    raw: bytes
    retry_after: float | None
    location: str | None


class BonzoClient:
    """Async client of Bonzo's v3 API; use it with ``async with`` (one pooled session for its life)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | str,
        settings: ApiSettings,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._root = _api_root(base_url)
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        register_secret(key.get_secret_value())
        self._headers: Final = {
            "Authorization": f"Bearer {key.get_secret_value()}",
            "Accept": "application/json",
        }
        self._settings = settings
        self._session = session
        self._owns_session = session is None
        self._limit = asyncio.Semaphore(settings.concurrent_requests)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._policy = RetryPolicy(
            retries=settings.retry_attempts,
            base_delay=settings.retry_delay,
            max_delay=max(settings.retry_delay, 30.0),
            default_retry_after=settings.default_retry_after,
            retry_after_cap=max(settings.max_wait, settings.default_retry_after),
        )
        self.requests_made = 0
        """Every HTTP request actually sent, retries included."""
        self.request_counts: Counter[tuple[str, str]] = Counter()
        """Requests sent per (method, route template), e.g. ``("GET", "/prospects/{id}")``."""
        self.clock = ClockTracker()
        """Bonzo's clock against ours, from every answer's ``Date`` header."""
        self.pacer = Pacer(settings.max_requests_per_minute)
        self.budget = settings.request_budget
        """Most requests this client may send (None: no limit)."""
        self.deadline: float | None = None
        """A ``time.monotonic()`` instant no 429 wait may reach past (set by whoever polls to a deadline)."""
        self.deadline_name = "the run's deadline"
        """What :attr:`deadline` is, for the message of a wait it refuses."""
        self.rate_limited_seconds = 0.0
        """Seconds spent waiting on 429 answers (``Retry-After``)."""
        self.rate_limited_answers = 0
        self.redirects = Redirects(self._root)
        """Redirects: same-origin ones followed (a few per call, counted), any other refused."""

    def __repr__(self) -> str:
        return f"BonzoClient(base_url={redact_url(str(self._root))!r}, api_key=SecretStr('**********'))"

    @property
    def base_url(self) -> str:
        """The v3 API root every path is joined to."""
        return str(self._root)

    async def __aenter__(self) -> BonzoClient:
        self._ensure_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = make_session(limit=self._settings.concurrent_requests, timeout=self._settings.timeout)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        on_behalf_of: OnBehalfOf | None = None,
        params: Mapping[str, str | int | float | None] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one API call (retried as the settings say) and return its unwrapped ``data``."""
        payload = await self._send(method, path, on_behalf_of=on_behalf_of, params=params, json=json)
        if isinstance(payload, Mapping) and "data" in payload:
            return payload["data"]
        return payload

    async def _send(
        self,
        method: str,
        path: str,
        *,
        on_behalf_of: OnBehalfOf | None,
        params: Mapping[str, str | int | float | None] | None,
        json: Any,
    ) -> Any:
        """Send one API call and return the decoded JSON body, envelope and all."""
        verb = method.upper()
        route = _route_template(path)
        shown_path = redact(f"/{path.lstrip('/')}")
        url = self._root.joinpath(path.strip("/")) if path.strip("/") else self._root
        headers = self._headers if on_behalf_of is None else {**self._headers, "On-Behalf-Of": str(on_behalf_of)}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        session = self._ensure_session()

        tries = [0]

        async def attempt() -> Any:
            tries[0] += 1
            hop = Hop.first(url, verb)
            answer = await self._exchange(session, hop, query or None, json, headers, route, shown_path)
            while answer.status in REDIRECT_STATUSES:
                hop = self.redirects.next_hop(answer.status, answer.location, hop, method=verb, path=shown_path)
                body = json if hop.keeps_body else None
                answer = await self._exchange(session, hop, None, body, headers, route, shown_path)
            status, raw, retry_after = answer.status, answer.raw, answer.retry_after
            if status == 429:
                self._note_rate_limited(retry_after, verb, shown_path, retrying=tries[0] <= self._policy.retries)
            if status >= 400:
                category = categorize_status(status)
                if category in RETRYABLE and category is not None:
                    raise TransientError(
                        category, _summarise_error_body(raw), status=status, retry_after=retry_after, outcome=raw
                    )
                raise self._error(status, raw, verb, shown_path, on_behalf_of)
            return self._decode(raw, status, verb, shown_path)

        try:
            return await retry_transient(attempt, self._policy)
        except TransientError as failure:
            cause = failure.__cause__ or failure
            raise self._gave_up(failure, verb, shown_path) from cause

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        hop: Hop,
        query: Mapping[str, str | int | float] | None,
        json: Any,
        headers: Mapping[str, str],
        route: str,
        shown_path: str,
    ) -> _Answer:
        """One HTTP request of a call (the call's own, or a redirect's hop), counted, paced and under the budget.

        Never follows a redirect itself: the caller decides (:class:`~bonzo_bulk.bonzo.redirects.Redirects`).
        """
        async with self._limit:
            self._check_budget(hop.method, shown_path)
            await self.pacer.wait()
            self.requests_made += 1
            self.request_counts[(hop.method, route)] += 1
            try:
                left = time.time()
                async with session.request(
                    hop.method,
                    hop.url,
                    params=query,
                    json=json,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    raw = await response.read()
                    self.clock.observe(response.headers.get("Date"), left, time.time())
                    self.pacer.learn(response.status, response.headers)
                    return _Answer(
                        response.status,
                        raw,
                        parse_retry_after(response.headers.get("Retry-After")),
                        response.headers.get("Location"),
                    )
            except Exception as exc:
                category = categorize_exception(exc)
                if category is None:
                    raise
                detail = describe_exception(exc)
                if category in RETRYABLE and not is_permanent_connect_error(exc):
                    raise TransientError(category, detail) from exc
                raise BonzoAPIError(
                    f"could not reach Bonzo's API at {redact_url(str(self._root))} ({category}: {detail}); "
                    "check api_settings.base_url / BONZO_API_URL and the network",
                    method=hop.method,
                    path=shown_path,
                ) from exc

    def _gave_up(self, failure: TransientError, method: str, path: str) -> BonzoAPIError:
        """The error of a call that kept failing transiently until its retries ran out."""
        tries = self._policy.retries + 1
        if failure.status == 429:
            return RateLimited(
                f"Bonzo kept answering 429 Too Many Attempts after {tries} tries ({failure.detail}); "
                "lower api_settings.concurrent_requests or wait and run again",
                retry_after=failure.retry_after,
                status=429,
                method=method,
                path=path,
            )
        if failure.status is not None:
            return BonzoAPIError(
                f"Bonzo's API failed {tries} tries: {failure.detail}", status=failure.status, method=method, path=path
            )
        return BonzoAPIError(
            f"could not reach Bonzo's API at {redact_url(str(self._root))} after {tries} tries "
            f"({failure.category}: {failure.detail}); check api_settings.base_url / BONZO_API_URL and the network",
            method=method,
            path=path,
        )

    def _check_budget(self, method: str, path: str) -> None:
        """Refuse a request past the run's API budget."""
        if self.budget is not None and self.requests_made >= self.budget:
            raise BudgetExhausted(
                f"the run's API budget of {self.budget} requests is spent "
                "(api_settings.request_budget); raise it or verify fewer records",
                method=method,
                path=path,
            )

    def _note_rate_limited(self, retry_after: float | None, method: str, path: str, *, retrying: bool) -> None:
        """Count a 429's wait and, when one follows, say what it waits for and until when; or give up at once
        when Bonzo asks for more than ``api_settings.max_wait`` or the wait would pass :attr:`deadline`."""
        wait = retry_after if retry_after is not None else self._policy.default_retry_after or self._policy.base_delay
        self.rate_limited_answers += 1
        limit = self._settings.max_wait
        if retry_after is not None and retry_after > limit:
            raise RateLimited(
                f"Bonzo asked to wait {retry_after:g} s (429 Retry-After), more than api_settings.max_wait "
                f"({limit:g} s); not waited: run again later, or raise api_settings.max_wait",
                retry_after=retry_after,
                status=429,
                method=method,
                path=path,
            )
        if self.deadline is not None and time.monotonic() + wait > self.deadline:
            raise RateLimited(
                f"Bonzo asked to wait {wait:g} s (429), past {self.deadline_name}; the deadline is kept",
                retry_after=retry_after,
                status=429,
                method=method,
                path=path,
            )
        self.rate_limited_seconds += wait
        if retrying and wait >= SAY_WAITS_FROM:
            until = (datetime.now(UTC) + timedelta(seconds=wait)).strftime("%H:%M:%S UTC")
            why = "its Retry-After" if retry_after is not None else "api_settings.default_retry_after (no Retry-After)"
            log.warning(
                "Bonzo's API answered 429 Too Many Attempts to %s %s: waiting %.0f s for %s, until %s",
                method,
                path,
                wait,
                why,
                until,
            )

    @contextlib.contextmanager
    def waits_within(self, seconds: float, name: str) -> Iterator[None]:
        """Inside, no 429 wait may reach past ``seconds`` from now (``name`` says whose limit that is)."""
        previous = self.deadline, self.deadline_name
        self.deadline, self.deadline_name = time.monotonic() + seconds, name
        try:
            yield
        finally:
            self.deadline, self.deadline_name = previous

    @staticmethod
    def _decode(raw: bytes, status: int, method: str, path: str) -> Any:
        if not raw.strip():
            return None
        try:
            return jsonlib.loads(raw)
        except ValueError as exc:
            head = raw[:_BODY_READ]
            excerpt = redact_cut(" ".join(head.decode("utf-8", "replace").split()), 200, clipped=len(raw) > len(head))
            raise UnreadableAnswer(
                f"answered {status} with a body that is not JSON ({excerpt!r}); "
                "is api_settings.base_url Bonzo's API host (https://app.getbonzo.com)?",
                status=status,
                method=method,
                path=path,
            ) from exc

    @staticmethod
    def _error(status: int, raw: bytes, method: str, path: str, on_behalf_of: OnBehalfOf | None) -> BonzoAPIError:
        summary = _summarise_error_body(raw)
        if status in (401, 403):
            acting = f"; and that it may act On-Behalf-Of {on_behalf_of!s}" if on_behalf_of is not None else ""
            hint = (
                "check that SUPERUSER_API_KEY is a valid, unexpired Bonzo personal access token"
                if status == 401
                else "check that the token has the needed scope (e.g. 'prospects')"
            )
            return AuthError(f"{summary}: {hint}{acting}", status=status, method=method, path=path)
        if status == 404:
            return NotFoundError(f"{summary}: no such resource", status=status, method=method, path=path)
        if status == 405:
            return MethodNotAllowed(
                f"{summary}: Bonzo does not offer {method} here (use PUT to update prospects)",
                status=status,
                method=method,
                path=path,
            )
        return BonzoAPIError(summary, status=status, method=method, path=path)

    async def list_prospects(
        self,
        *,
        on_behalf_of: OnBehalfOf,
        search: str | None = None,
        page: int = 1,
        per_page: int | None = None,
        order: str | None = None,
    ) -> ProspectPage:
        """One page of the prospects ``on_behalf_of`` owns (preflight's check); to read a whole list, walk it with
        :meth:`walk_prospects`. ``per_page`` defaults to the settings' maximum."""
        size = per_page if per_page is not None else self._settings.max_prospects_per_request
        payload = await self._send(
            "GET",
            "prospects",
            on_behalf_of=on_behalf_of,
            params={"page": page, "per_page": size, "search": search, "order": order},
            json=None,
        )
        data, hints, _, _ = page_of(payload, "/prospects")
        return ProspectPage(
            data=data,
            current_page=hints.current_page or page,
            last_page=hints.last_page,
            per_page=hints.per_page or size,
            total=hints.total,
        )

    def walk_prospects(
        self,
        *,
        on_behalf_of: OnBehalfOf,
        search: str | None = None,
        per_page: int | None = None,
        order: str | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[ListedPage, None]:
        """Every page of the prospects ``on_behalf_of`` owns, as the API names them (:mod:`bonzo_bulk.bonzo.listing`).

        ``deadline`` is a ``time.monotonic()`` instant no page may start after (default: now plus
        ``api_settings.listing_timeout``); a walk cut short raises :class:`~bonzo_bulk.errors.ListingIncomplete`.
        """
        size = per_page if per_page is not None else self._settings.max_prospects_per_request

        async def fetch(path: str, params: Mapping[str, str]) -> Any:
            return await self._send("GET", path, on_behalf_of=on_behalf_of, params=params, json=None)

        return walk_pages(
            fetch,
            root=self._root,
            path="prospects",
            params={"page": 1, "per_page": size, "search": search, "order": order},
            deadline=deadline if deadline is not None else time.monotonic() + self._settings.listing_timeout,
        )

    async def iter_prospects(
        self,
        *,
        on_behalf_of: OnBehalfOf,
        search: str | None = None,
        per_page: int | None = None,
        order: str | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Prospect]:
        """Every prospect of every page of :meth:`walk_prospects`, in order."""
        pages = self.walk_prospects(
            on_behalf_of=on_behalf_of, search=search, per_page=per_page, order=order, deadline=deadline
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                for prospect in page.data:
                    yield prospect

    async def get_prospect(self, prospect_id: int | str, *, on_behalf_of: OnBehalfOf | None = None) -> Prospect:
        """One prospect by id (404 -> :class:`NotFoundError`)."""
        return self._one(await self.request("GET", f"prospects/{prospect_id}", on_behalf_of=on_behalf_of), "GET")

    async def create_prospect(self, data: Mapping[str, Any], *, on_behalf_of: OnBehalfOf | None = None) -> Prospect:
        """Create a prospect, owned by ``on_behalf_of`` when given."""
        created = await self.request("POST", "prospects", on_behalf_of=on_behalf_of, json=dict(data))
        return self._one(created, "POST")

    async def update_prospect(
        self, prospect_id: int | str, data: Mapping[str, Any], *, on_behalf_of: OnBehalfOf | None = None
    ) -> Prospect:
        """Replace a prospect's fields with PUT (Bonzo has no PATCH; send the whole object)."""
        updated = await self.request("PUT", f"prospects/{prospect_id}", on_behalf_of=on_behalf_of, json=dict(data))
        return self._one(updated, "PUT")

    async def delete_prospect(self, prospect_id: int | str, *, on_behalf_of: OnBehalfOf | None = None) -> None:
        """Delete a prospect (Bonzo may answer 405 where it offers no delete)."""
        await self.request("DELETE", f"prospects/{prospect_id}", on_behalf_of=on_behalf_of)

    @staticmethod
    def _one(value: Any, method: str) -> Prospect:
        if not isinstance(value, Mapping):
            raise BonzoAPIError(
                f"answered with {type(value).__name__} where one prospect object was expected",
                method=method,
                path="/prospects",
            )
        return value
