"""Load and stress on Locust: arrival-rate scenarios, end-to-end lag under load, the capacity knee.

The senders are Locust ``FastHttpUser``s in child processes (:mod:`.child`, :mod:`.locustfile`); this
process keeps the asyncio engine: it plans the leads, samples Bonzo while the load runs and judges
every lead at the end (:mod:`.runner`). No module of this package imports Locust except the
locustfile, which only Locust's own processes load.
"""
