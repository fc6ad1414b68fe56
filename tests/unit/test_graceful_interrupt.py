"""The first Ctrl-C of a load run asks it to stop (it then settles and reports); the SIGINTs one Ctrl-C makes
in a process group (the terminal's, a launcher's forwarded copy) count once; a later one, or SIGTERM, aborts.

Issue 24, finding 2: the forwarded copy of one Ctrl-C aborted the load, which then lost its run.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bonzo_bulk import _http
from bonzo_bulk._http import graceful_interrupt, run_async, signalled


async def _ctrl_c(stops: asyncio.Event, seen: list[int], *, then: int) -> str:
    """One Ctrl-C (its SIGINT and a forwarded copy), and once it was heard, ``then`` more SIGINTs."""

    def first() -> None:
        seen.append(1)
        stops.set()

    with graceful_interrupt(first):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(stops.wait(), 30)
        for _ in range(then):
            os.kill(os.getpid(), signal.SIGINT)
        for _ in range(50):  # let the loop run every handler the signals queued
            await asyncio.sleep(0)
    return "stopped gracefully"


def test_one_ctrl_c_signalled_twice_asks_for_a_graceful_stop_once() -> None:
    seen: list[int] = []
    assert run_async(_ctrl_c(asyncio.Event(), seen, then=0)) == "stopped gracefully"
    assert seen == [1]


def test_a_sigint_within_a_second_of_the_first_is_the_same_ctrl_c() -> None:
    seen: list[int] = []
    assert run_async(_ctrl_c(asyncio.Event(), seen, then=1)) == "stopped gracefully"
    assert seen == [1]


def test_a_second_ctrl_c_after_the_first_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "SAME_CTRL_C_S", 0.0)
    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        run_async(_ctrl_c(asyncio.Event(), seen, then=1))
    assert seen == [1]


async def _terminated() -> int | None:
    with graceful_interrupt(lambda: None):
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return signalled()
    return None


def test_sigterm_is_never_graceful() -> None:
    assert run_async(_terminated()) == signal.SIGTERM
