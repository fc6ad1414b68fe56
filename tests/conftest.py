"""Shared by every suite; the bonzo-bulk pytest plugin (entry point) provides the integration fixtures."""

pytest_plugins = ["pytester"]
