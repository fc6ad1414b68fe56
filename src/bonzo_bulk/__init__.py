"""bonzo-bulk: prove, in bulk and end to end, that a webhook -> Bonzo integration works.

The library API is the same the CLI and the pytest plugin use::

    from bonzo_bulk import load_config, run_bulk

    loaded = load_config("tests/configs/monitorbase_test_config.yaml")
    result = run_bulk(loaded)          # plan -> deliver -> settle -> verify
    print(result.passed, result.primary.metrics.assignment_accuracy)
"""

from __future__ import annotations

from bonzo_bulk.config import LoadedConfig, load_config
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
from bonzo_bulk.run import RunPlan, execute, plan_run, publish, run_bulk
from bonzo_bulk.settings import BulkConfig

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
