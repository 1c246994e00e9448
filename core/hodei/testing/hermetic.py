"""A test run never reads or writes the host's or the user's Hodei settings and databases.

Before any test module is imported, :func:`isolate` takes every ``HODEI_*`` variable of the caller out of
this process's environment (the test suite's own ``HODEI_TEST_*`` and ``HODEI_REQUIRE_BACKENDS`` stay),
points ``$XDG_CONFIG_HOME`` and ``$XDG_DATA_HOME`` at empty folders of the run, and ``$HODEI_SYSTEM_CONFIG``
at a file that does not exist, so neither ``~/.config/hodei/hodei.toml``, the per-user database, nor
``/etc/hodei/hodei.toml`` (and the database it names) can be found by any ``hodei`` a test runs, in-process
or as a child process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hodei.settings import SYSTEM_CONFIG_ENV

# The test run's own settings: which backends to use, and whether a missing one fails.
_KEPT_PREFIXES = ("HODEI_TEST_",)
_KEPT = ("HODEI_REQUIRE_BACKENDS",)


def _caller_variables() -> list[str]:
    return [name for name in os.environ
            if name.startswith("HODEI_") and not name.startswith(_KEPT_PREFIXES) and name not in _KEPT]


_scratch: Path | None = None


def isolate() -> Path:
    """Isolate this process (and the children it starts) from the caller's Hodei settings; idempotent.
    Returns the run's scratch folder, which holds the XDG homes."""
    global _scratch
    if _scratch is not None:
        return _scratch
    for name in _caller_variables():
        del os.environ[name]
    scratch = Path(tempfile.mkdtemp(prefix="hodei-test-home-"))
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")
    os.environ[SYSTEM_CONFIG_ENV] = str(scratch / "etc" / "hodei" / "hodei.toml")
    _scratch = scratch
    return scratch


def remove() -> None:
    """Delete the run's scratch folder (at the end of the run)."""
    if _scratch is not None:
        shutil.rmtree(_scratch, ignore_errors=True)
