"""Finding a Chromium for the browser tests: skip with the install hint locally, fail when ``CI=true``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
INSTALL_HINT = (
    "no Chromium found (looked for chromium, chromium-browser, google-chrome on PATH and Playwright's own "
    "browser): install one with `apt-get install -y chromium` (Debian/Ubuntu; CI's .ci/run does) or "
    "`uv run playwright install chromium`"
)


def _playwright_chromium() -> str | None:
    """The Chromium build Playwright downloaded (``playwright install chromium``), if any."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        path = playwright.chromium.executable_path
    return path if path and os.access(path, os.X_OK) else None


def find_chromium() -> str | None:
    """A system Chromium or Chrome on PATH, else Playwright's own, else None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return _playwright_chromium()


def in_ci() -> bool:
    """Whether we run in CI (``CI=true``, as CI services and .ci/run set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_chromium() -> Path:
    """The Chromium to use; without one, skip (on a developer's machine) or fail (in CI)."""
    found = find_chromium()
    if found:
        return Path(found)
    if in_ci():
        pytest.fail(f"{INSTALL_HINT}. CI=true, so the browser tests must run, not skip", pytrace=False)
    pytest.skip(INSTALL_HINT)
