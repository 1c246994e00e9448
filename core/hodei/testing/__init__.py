"""Helpers for testing Hodei and its plugins: fixtures, selection helpers, the contract suites."""

from __future__ import annotations

import os
from typing import NoReturn

REQUIRE_BACKENDS_ENV = "HODEI_REQUIRE_BACKENDS"


def backends_required() -> bool:
    return os.environ.get(REQUIRE_BACKENDS_ENV, "").strip().lower() in ("1", "true", "yes")


def backend_unavailable(reason: str) -> NoReturn:
    """Skip the current test because a backend is missing, or fail it where backends are required.

    CI sets ``HODEI_REQUIRE_BACKENDS=1`` so that a missing database or engine can never pass
    unnoticed as a skip.
    """
    # Imported here: tools and benchmarks use hodei.testing (its selection helpers) without pytest.
    import pytest

    if backends_required():
        pytest.fail(f"{reason} ({REQUIRE_BACKENDS_ENV} is set, so this is a failure, not a skip)")
    pytest.skip(reason)
