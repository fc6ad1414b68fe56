"""The spec's integration suites: thin tests over the session's bulk run (see bonzo_bulk.pytest_plugin)."""
