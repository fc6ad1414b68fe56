"""A load run says where it is at least every 10 s in any output (issue 24, finding 1: `stress | cat` printed
nothing for 10 minutes): the heartbeat repeats the latest status whenever it has been silent that long."""

from __future__ import annotations

import asyncio

from bonzo_bulk.engine.events import Polled
from bonzo_bulk.load.drive import PROGRESS_EVERY_S, Heartbeat


def test_the_heartbeat_says_the_latest_status_once_it_has_been_silent_long_enough() -> None:
    said: list[str] = []
    silent = Heartbeat(said.append, every=0.0)
    silent.status = lambda: "progress: 12 s of 140 s"
    silent.tick()
    silent(Polled(5, 9))
    assert said == ["progress: 12 s of 140 s", "settling: 5 of 9 leads seen in Bonzo"]
    chatty = Heartbeat(said.append, every=PROGRESS_EVERY_S)
    chatty.status = lambda: "progress: 1 s of 140 s"
    chatty.tick()
    chatty(Polled(1, 9))
    assert len(said) == 2, "nothing more until PROGRESS_EVERY_S of silence"


def test_the_ticker_keeps_beating_while_the_run_waits() -> None:
    said: list[str] = []
    heart = Heartbeat(said.append, every=0.0)
    heart.status = lambda: "settling: 0 of 9 leads seen in Bonzo"

    async def wait_for_two_beats() -> None:
        ticker = asyncio.create_task(heart.keep_beating())
        while len(said) < 2:
            await asyncio.sleep(0.05)
        ticker.cancel()

    asyncio.run(asyncio.wait_for(wait_for_two_beats(), 30))
    assert said[:2] == ["settling: 0 of 9 leads seen in Bonzo"] * 2


def test_polls_made_while_the_load_runs_leave_the_load_progress_as_the_status() -> None:
    said: list[str] = []
    heart = Heartbeat(said.append, every=0.0)
    heart.status = lambda: "progress: 30 s of 140 s"
    heart.loading = True
    heart(Polled(10, 20))
    assert said == ["progress: 30 s of 140 s"]
    heart.loading = False
    heart(Polled(20, 20))
    assert said[-1] == "settling: 20 of 20 leads seen in Bonzo"
