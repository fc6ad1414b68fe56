"""Scheduled monitoring: one bounded, locked run per tick of the platform's scheduler, an alert policy, apprise.

``monitor run`` is the unit (``runner``); ``monitor install`` writes the schedule for cron, systemd,
GitHub Actions or Kubernetes (``install``); the alert policy is a pure state machine (``policy``)
whose state lives in the run store (``state``); notifications and dead-man's-switch pings go out
through apprise and aiohttp (``notify``), their text from one function (``message``).
"""
