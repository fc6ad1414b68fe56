"""bonzo-bulk: prove, in bulk and end to end, that a webhook -> Bonzo integration works.

The library API is the same the CLI and the pytest plugin use::

    from bonzo_bulk import load_config, run_bulk

    loaded = load_config("tests/configs/monitorbase_test_config.yaml")
    result = run_bulk(loaded)          # plan -> deliver -> settle -> verify (-> cleanup.after_run)
    print(result.passed, result.primary.metrics.assignment_accuracy)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bonzo_bulk._lazy import lazy_getattr
from bonzo_bulk.errors import (
    AuthError,
    BonzoAPIError,
    BonzoBulkError,
    CleanupError,
    ConfigError,
    DeliveryError,
    RateLimited,
    SandboxError,
    StoreError,
    TemplateError,
)

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig, load_config
    from bonzo_bulk.config.schema import BulkConfig
    from bonzo_bulk.library import execute, run_bulk
    from bonzo_bulk.models import (
        CheckResult,
        DeliveryResult,
        Observation,
        PhaseMetrics,
        PhaseResult,
        PlannedRecord,
        RunResult,
        Stage,
    )
    from bonzo_bulk.plan.files import write_plan
    from bonzo_bulk.plan.planner import RunPlan, plan_run
    from bonzo_bulk.report.publish import publish

# Imported on first use (PEP 562): `import bonzo_bulk` (and so the pytest plugin and `bonzo-bulk --help`)
# must not pay for aiohttp, pydantic, Faker, plotly and jinja2 before anything asks for them.
_LAZY = {
    "LoadedConfig": "bonzo_bulk.config.loader",
    "load_config": "bonzo_bulk.config.loader",
    "write_plan": "bonzo_bulk.plan.files",
    "CheckResult": "bonzo_bulk.models",
    "DeliveryResult": "bonzo_bulk.models",
    "Observation": "bonzo_bulk.models",
    "PhaseMetrics": "bonzo_bulk.models",
    "PhaseResult": "bonzo_bulk.models",
    "PlannedRecord": "bonzo_bulk.models",
    "RunResult": "bonzo_bulk.models",
    "Stage": "bonzo_bulk.models",
    "RunPlan": "bonzo_bulk.plan.planner",
    "execute": "bonzo_bulk.library",
    "plan_run": "bonzo_bulk.plan.planner",
    "publish": "bonzo_bulk.report.publish",
    "run_bulk": "bonzo_bulk.library",
    "BulkConfig": "bonzo_bulk.config.schema",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"
__all__ = [
    "AuthError",
    "BonzoAPIError",
    "BonzoBulkError",
    "BulkConfig",
    "CheckResult",
    "CleanupError",
    "ConfigError",
    "DeliveryError",
    "DeliveryResult",
    "LoadedConfig",
    "Observation",
    "PhaseMetrics",
    "PhaseResult",
    "PlannedRecord",
    "RateLimited",
    "RunPlan",
    "RunResult",
    "SandboxError",
    "Stage",
    "StoreError",
    "TemplateError",
    "__version__",
    "execute",
    "load_config",
    "plan_run",
    "publish",
    "run_bulk",
    "write_plan",
]
