"""Shared by every suite; the bonzo-bulk pytest plugin (entry point) provides the integration fixtures."""

# In-process pytester sessions (``pytester.runpytest``) forget, when they end, every module they imported first.
# Imported here, before any of them, the HTTP stack stays one copy: a second ``yarl`` beside the one aiohttp holds
# made aiohttp refuse our URLs ("Constructor parameter should be str") in whichever test ran next.
import aiohttp  # noqa: F401
import yarl  # noqa: F401

import bonzo_bulk.bonzo.client
import bonzo_bulk.deliver.sender  # noqa: F401

pytest_plugins = ["pytester"]
