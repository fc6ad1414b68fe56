"""Plan: decide every record of a run before a byte is sent — names, payloads, expected owners, the contract.

The records themselves are made on demand and the same each time (:meth:`PhasePlan.iter_records`),
so a 100k run streams them from the factory into the store and the sender.

Example::

    plan = plan_run(load_config("tests/configs/monitorbase_test_config.yaml"))
    [p.kind for p in plan.phases], len(plan.records)
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bonzo_bulk._paths import get_path
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import InvalidCase, ValidationRule
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import PhaseKind, PlannedRecord
from bonzo_bulk.plan.contract import PhaseContract, build_contract, load_contract_file
from bonzo_bulk.plan.integration import Integration, load_integration, search_dirs
from bonzo_bulk.plan.records import Factory, RunIdentity
from bonzo_bulk.plan.templates import load_template


@dataclass(frozen=True)
class PhasePlan:
    """The records of one phase, made on demand, and what judging them needs."""

    kind: PhaseKind
    integration: Integration
    factory: Factory
    contract: PhaseContract
    invalid: tuple[InvalidCase, ...] = ()

    @property
    def size(self) -> int:
        """How many records the phase sends."""
        return self.factory.size(invalid=self.invalid)

    def iter_records(self) -> Iterator[PlannedRecord]:
        """The phase's records one at a time, the same ones each time (the engine streams them)."""
        return self.factory.iter_plan(invalid=self.invalid)

    @functools.cached_property
    def records(self) -> tuple[PlannedRecord, ...]:
        """Every record at once (dry runs, small runs, tests; a streaming run never asks)."""
        return tuple(self.iter_records())


@dataclass(frozen=True)
class RunPlan:
    """Everything decided before a byte is sent."""

    loaded: LoadedConfig
    identity: RunIdentity
    phases: tuple[PhasePlan, ...]

    @property
    def run_id(self) -> str:
        return self.identity.run_id

    @property
    def records(self) -> list[PlannedRecord]:
        """Every record of every phase at once (dry runs and small runs; the engine streams instead)."""
        return [r for phase in self.phases for r in phase.records]

    @property
    def size(self) -> int:
        return sum(phase.size for phase in self.phases)

    def phase(self, kind: PhaseKind) -> PhasePlan | None:
        return next((p for p in self.phases if p.kind == kind), None)


def control_enabled(loaded: LoadedConfig, integration: Integration) -> bool:
    """The control phase runs when asked for, the integration names one, and a hook exists for it."""
    config = loaded.config
    if not config.control or integration.manifest.control is None:
        return False
    return loaded.target == "sandbox" or config.superuser_webhook_url is not None


def phase_contracts(loaded: LoadedConfig) -> dict[PhaseKind, tuple[Integration, PhaseContract]]:
    """Each phase's integration and the contract it is held to (documented, declared, learned)."""
    config = loaded.config
    search = search_dirs(loaded.base_dir)
    integration = load_integration(config.integration_type, search=search)
    learned = load_contract_file(loaded.resolve_path(config.contract.file)) if config.contract.file else None
    found: dict[PhaseKind, tuple[Integration, PhaseContract]] = {
        "primary": (integration, build_contract(integration, "primary", config.contract, learned=learned))
    }
    if control_enabled(loaded, integration):
        assert integration.manifest.control is not None
        control = load_integration(integration.manifest.control, search=search)
        found["control"] = (control, build_contract(control, "control", config.contract, learned=learned))
    return found


def plan_run(
    loaded: LoadedConfig,
    *,
    phases: Sequence[PhaseKind] = ("primary", "control"),
    identity: RunIdentity | None = None,
) -> RunPlan:
    """Decide every record of a run: names, payloads, expected owners and fields. Sends nothing."""
    config = loaded.config
    identity = identity or RunIdentity.new()
    contracts = phase_contracts(loaded)
    integration, contract = contracts["primary"]
    template = load_template(loaded.resolve_path(config.payload_template)) if config.payload_template else None
    planned: list[PhasePlan] = []
    users = loaded.users
    if "primary" in phases:
        factory = Factory(
            config=config, users=users, integration=integration, template=template, identity=identity, contract=contract
        )
        invalid = tuple(config.invalid_records)
        factory.check(invalid=invalid)
        planned.append(PhasePlan("primary", integration, factory, contract, invalid))
        check_payload_rules(config.validation_rules, planned[-1])
    if "control" in phases and "control" in contracts:
        control, contract = contracts["control"]
        control_template = (
            load_template(loaded.resolve_path(config.superuser_payload_template))
            if config.superuser_payload_template
            else None
        )
        factory = Factory(
            config=config,
            users=users,
            integration=control,
            template=control_template,
            identity=identity,
            phase="control",
            contract=contract,
        )
        factory.check()
        planned.append(PhasePlan("control", control, factory, contract))
        check_payload_rules(config.validation_rules, planned[-1])
    return RunPlan(loaded=loaded, identity=identity, phases=tuple(planned))


def check_payload_rules(rules: Sequence[ValidationRule], phase: PhasePlan) -> None:
    """Refuse, before anything is sent, a rule expecting ``payload:<path>`` that no template of the phase fills.

    Such a rule would fail on every record for a reason that is the config's, not the integration's.
    """
    wanted = [
        (number, rule.expected.removeprefix("payload:"))
        for number, rule in enumerate(rules)
        if rule.phase in (phase.kind, "both")
        and isinstance(rule.expected, str)
        and rule.expected.startswith("payload:")
    ]
    if not wanted:
        return
    variants = len(phase.factory.variants)
    samples = [record.payload for record in itertools.islice(phase.iter_records(), variants)]
    for number, path in wanted:
        if any(get_path(payload, path) is not None for payload in samples):
            continue
        keys = sorted({str(key) for payload in samples if isinstance(payload, Mapping) for key in payload})
        raise ConfigError(
            f"'validation_rules[{number}].expected': 'payload:{path}' names a value the {phase.integration.name} "
            f"{phase.kind} payload never holds (its keys: {', '.join(keys) or 'none'}); name one of them, or drop "
            "the rule; nothing was sent",
            key=f"validation_rules[{number}].expected",
        )
