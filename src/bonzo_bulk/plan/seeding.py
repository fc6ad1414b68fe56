"""What a sandbox is seeded with for a config: its test users and the hooks a run of it posts to.

One function for both doors, so a sandbox served on its own (``bonzo-bulk sandbox --config X``) and the
one a run of X starts hold the same users and the same hooks (type, source label, routing), and so turn
the same record into the same prospect.
"""

from __future__ import annotations

from typing import Any

from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import BulkConfig
from bonzo_bulk.plan.integration import Integration, load_integration, search_dirs
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.target.seed import SandboxSeed


def plan_seed(plan: RunPlan) -> SandboxSeed:
    """The seed of the sandbox a run of ``plan`` starts: the hooks of its phases (a plan without phases,
    as cleanup makes, gets a hook of the config's integration type)."""
    primary, control = plan.phase("primary"), plan.phase("control")
    return sandbox_seed(
        plan.loaded.config, primary.integration if primary else None, control.integration if control else None
    )


def config_seed(loaded: LoadedConfig) -> SandboxSeed:
    """The seed of the sandbox served for a config: the config's integration and (when it names one and
    ``control`` is on) its control integration."""
    config = loaded.config
    search = search_dirs(loaded.base_dir)
    integration = load_integration(config.integration_type, search=search)
    name = integration.manifest.control
    control = load_integration(name, search=search) if config.control and name is not None else None
    return sandbox_seed(config, integration, control)


def sandbox_seed(config: BulkConfig, primary: Integration | None, control: Integration | None) -> SandboxSeed:
    """The config's test users and the hooks a run posts to: the primary integration's (with its routing)
    and the control's.

    Both hooks carry the config's ``integration_type`` as their source label (what a lenient sandbox stores
    in ``source``); a strict sandbox sets ``source`` from the hook type instead.
    """
    hook: dict[str, Any] = {
        "type": primary.manifest.target_hook_type if primary else config.integration_type,
        "source": config.integration_type,
    }
    routing = primary.manifest.owner.routing if primary else None
    if routing is not None:
        # The sandbox's stand-in for the hook's routing policy: the same rule, over the test users in order.
        hook["routing"] = (
            {"kind": "fixed", "user_id": routing.user_id}
            if routing.kind == "fixed"
            else {"kind": "round_robin", "user_ids": [u.user_id for u in config.test_users]}
        )
    control_hook = (
        {"type": control.manifest.target_hook_type, "source": config.integration_type} if control is not None else None
    )
    return SandboxSeed(_users(config), hook, control_hook)


def _users(config: BulkConfig) -> tuple[dict[str, Any], ...]:
    """The config's test users as ``POST /__sandbox/seed`` takes them."""
    return tuple(
        {
            "name": u.name,
            "email": u.email,
            "user_id": u.user_id,
            "team_id": u.team_id,
            "team_name": u.team_name,
            "external_id": u.external_id,
        }
        for u in config.test_users
    )
