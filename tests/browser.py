"""Chromium for the browser tests: Debian's package at /usr/bin/chromium, driven by Playwright's Python
package (`executable_path`; Playwright's own browser download cannot reach its host here). `make test`
installs it when missing (Makefile target `browser`). Without it the browser tests skip, except when
POVRISK_REQUIRE_BROWSER is set (as `.ci/run` does): then they fail."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

CHROMIUM = Path(os.environ.get("POVRISK_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER_ENV = "POVRISK_REQUIRE_BROWSER"
SCREENSHOTS = Path(os.environ.get("POVRISK_SCREENSHOTS", Path(__file__).resolve().parents[1] / "screenshots"))
"""Where the browser tests write their screenshots (the README names this folder)."""
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def browser_unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_BROWSER_ENV, "").strip() not in ("", "0"):
        pytest.fail(f"{reason}; {REQUIRE_BROWSER_ENV} is set, so the browser tests must run")
    pytest.skip(reason)


def chromium_path() -> str:
    if not CHROMIUM.is_file():
        browser_unavailable(f"Chromium not found at {CHROMIUM} (make test installs Debian's package)")
    return str(CHROMIUM)
