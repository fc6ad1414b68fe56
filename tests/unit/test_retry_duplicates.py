"""Two prospects for one record after our sender POSTed it twice (it gave up on an attempt the hook had in fact
accepted) are a duplicate after our retry, told apart from the integration creating two from one POST."""

from __future__ import annotations

import dataclasses

from builders import DUPLICATE, THRESHOLDS, build_run

from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.judge.diagnosis import diagnose
from bonzo_bulk.judge.verify import verify_record
from bonzo_bulk.models import RETRY_DUPLICATE_CHECK, CheckResult, RecordOutcome


def _rejudged(outcome: RecordOutcome, *, attempts: int, extra_prospects: int = 0) -> list[CheckResult]:
    """The judge's checks of a built outcome, its delivery tried ``attempts`` times (and more prospects, if asked)."""
    assert outcome.delivery is not None and outcome.observation is not None
    delivery = dataclasses.replace(outcome.delivery, attempts=attempts)
    prospects = outcome.observation.prospects + tuple(
        {**outcome.observation.prospects[0], "id": 95_000 + n} for n in range(extra_prospects)
    )
    observation = dataclasses.replace(outcome.observation, prospects=prospects)
    view = ProspectView(observation.oldest_first()[0])
    return verify_record(
        outcome.record,
        delivery,
        observation,
        view,
        outcome.processing,
        rules=(),
        thresholds=THRESHOLDS,
        integration_type="monitorbase",
    )


def _duplicate_checks(checks: list[CheckResult]) -> list[CheckResult]:
    return [c for c in checks if c.check in ("duplicate", RETRY_DUPLICATE_CHECK)]


def test_a_duplicate_after_our_retry_is_named_and_diagnosed_apart_from_the_integrations() -> None:
    run = build_run(records=12, control=0, invalid=0, faults={4: DUPLICATE, 5: DUPLICATE, 6: DUPLICATE})
    by_index = {o.record.index: o for o in run.phases[0].outcomes}

    (retried,) = _duplicate_checks(_rejudged(by_index[4], attempts=2))
    assert (retried.check, retried.passed, retried.actual) == (RETRY_DUPLICATE_CHECK, False, 2)
    assert retried.message.startswith("duplicate after our retry (2 attempts)")

    (integration,) = _duplicate_checks(_rejudged(by_index[5], attempts=1))
    assert (integration.check, integration.passed) == ("duplicate", False)
    assert "retry" not in integration.message

    # More prospects than POSTs sent: our retry explains one at most, the integration made the rest.
    (more,) = _duplicate_checks(_rejudged(by_index[6], attempts=2, extra_prospects=1))
    assert (more.check, more.actual) == ("duplicate", 3)

    (single,) = _duplicate_checks(_rejudged(by_index[1], attempts=3))
    assert (single.check, single.passed) == ("duplicate", True)

    checks = [c for index in (1, 2, 3, 7, 8) for c in _rejudged(by_index[index], attempts=1)]
    checks += _rejudged(by_index[4], attempts=2) + _rejudged(by_index[5], attempts=1)
    found = {d.check: d for d in diagnose("primary", checks)}
    assert set(found) == {RETRY_DUPLICATE_CHECK}, "one retry duplicate is said; one integration duplicate is not"
    said = found[RETRY_DUPLICATE_CHECK]
    assert said.failed == 1 and "duplicate after our retry" in said.cause and "not the integration" in said.cause
    assert "webhook_settings.timeout" in said.fix
