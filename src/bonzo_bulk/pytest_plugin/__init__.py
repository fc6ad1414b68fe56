"""The pytest plugin (``pytest11`` entry point ``bonzo_bulk``): options, markers, the session-scoped bulk
run, failure tables and the pytest-html "Integration health" section.

pytest loads this package in every session of a project that installs bonzo-bulk, so it imports nothing:
it names the modules pytest registers next (:mod:`.plugin`: options, markers, collection; :mod:`.fixtures`:
the bulk run), which import only pytest, the standard library, the option table and the error classes.
The config schema, the engine and the reporters are imported by the fixture or hook that first needs them.
The bulk run happens once per session, lazily, with only the phases the selected tests need
(``superuser``-marked tests need the control hook, the others the primary hook)::

    def test_user_assignment_accuracy(primary_phase, bulk_checks):
        bulk_checks.expect(primary_phase, "User assignment", stage=Stage.ASSIGNMENT, verdict="assignment_accuracy")

Options come from :data:`bonzo_bulk.config.options.OPTIONS` (flag ``--test-records``, ini key
``bonzo_test_records``); precedence: defaults < YAML < environment < ini key < command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bonzo_bulk._lazy import lazy_getattr

if TYPE_CHECKING:
    from bonzo_bulk.pytest_plugin.assertions import BulkChecks, IntegrationCheckFailed
    from bonzo_bulk.pytest_plugin.fixtures import HookAvailability
    from bonzo_bulk.pytest_plugin.plugin import MARKERS

# pytest imports and registers these as this package is registered (its documented ``pytest_plugins``).
pytest_plugins = ("bonzo_bulk.pytest_plugin.plugin", "bonzo_bulk.pytest_plugin.fixtures")

# What tests import from the plugin, imported on first use (PEP 562) so that loading the plugin stays free.
_LAZY = {
    "BulkChecks": "bonzo_bulk.pytest_plugin.assertions",
    "HookAvailability": "bonzo_bulk.pytest_plugin.fixtures",
    "IntegrationCheckFailed": "bonzo_bulk.pytest_plugin.assertions",
    "MARKERS": "bonzo_bulk.pytest_plugin.plugin",
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())

__all__ = ["MARKERS", "BulkChecks", "HookAvailability", "IntegrationCheckFailed"]
