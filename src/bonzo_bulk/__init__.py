"""bonzo-bulk: prove, in bulk and end to end, that a webhook -> Bonzo integration works.

The library API is the same the CLI and the pytest plugin use::

    from bonzo_bulk import load_config, run_bulk

    loaded = load_config("tests/configs/monitorbase_test_config.yaml")
    result = run_bulk(loaded)          # plan -> deliver -> settle -> verify
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
    from bonzo_bulk.config import LoadedConfig, load_config
    from bonzo_bulk.generate import write_plan
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
    from bonzo_bulk.plan import RunPlan, plan_run
    from bonzo_bulk.publishing import publish
    from bonzo_bulk.run import execute, run_bulk
    from bonzo_bulk.settings import BulkConfig

# Imported on first use (PEP 562): `import bonzo_bulk` (and so the pytest plugin and `bonzo-bulk --help`)
# must not pay for aiohttp, pydantic, Faker, plotly and jinja2 before anything asks for them.
_LAZY = {
    "LoadedConfig": "bonzo_bulk.config",
    "load_config": "bonzo_bulk.config",
    "write_plan": "bonzo_bulk.generate",
    "CheckResult": "bonzo_bulk.models",
    "DeliveryResult": "bonzo_bulk.models",
    "Observation": "bonzo_bulk.models",
    "PhaseMetrics": "bonzo_bulk.models",
    "PhaseResult": "bonzo_bulk.models",
    "PlannedRecord": "bonzo_bulk.models",
    "RunResult": "bonzo_bulk.models",
    "Stage": "bonzo_bulk.models",
    "RunPlan": "bonzo_bulk.plan",
    "execute": "bonzo_bulk.run",
    "plan_run": "bonzo_bulk.plan",
    "publish": "bonzo_bulk.publishing",
    "run_bulk": "bonzo_bulk.run",
    "BulkConfig": "bonzo_bulk.settings",
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
