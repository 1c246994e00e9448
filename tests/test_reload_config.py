"""SIGHUP with hodei.toml caught halfway: an empty or cut-short file is refused like an invalid one
(the running configuration stays, the error is logged), and a reload compares with what runs, so
the real file restored reports nothing as changed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hodei import database
from hodei.daemon import Daemon
from hodei.settings import load_settings
from hodei.testing.daemon import running

pytestmark = pytest.mark.anyio

REAL = """\
[database]
url = "sqlite:///hodei.db"

[api]
listen = "127.0.0.1:0"

[metrics]
listen = ""

[daemon]
poll_seconds = 0.2
shutdown_grace_seconds = 1.0

[health]
interval_seconds = 7.0
unhealthy_after = 4

[workers]
max_attempts = 5
reconcile_seconds = 11.0
"""
tried: dict[str, int] = {}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def started(config: Path) -> Daemon:
    settings = load_settings(config)
    engine = database.create_engine(settings.database.url)
    database.upgrade(engine)
    engine.dispose()
    return Daemon(settings, config_path=config)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hodei.toml"
    path.write_text(REAL, encoding="utf-8")
    return path


def running_values(daemon: Daemon) -> tuple[object, ...]:
    settings = daemon.settings
    return (settings.health.interval_seconds, settings.health.unhealthy_after, settings.workers.max_attempts,
            settings.workers.reconcile_seconds, daemon.monitor.settings.interval_seconds,
            daemon.reconciler.settings.max_attempts, settings.api.listen, settings.daemon.poll_seconds)


EXPECTED = (7.0, 4, 5, 11.0, 7.0, 5, "127.0.0.1:0", 0.2)


async def test_an_empty_file_is_refused_and_the_running_configuration_stays(
        config: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running(started(config)) as daemon:
        assert running_values(daemon) == EXPECTED
        for text in ("", "\n", "   \n\n", "# the file is being rewritten\n", "\ufeff", "\x00" * 8):
            tried["empty"] = tried.get("empty", 0) + 1
            config.write_text(text, encoding="utf-8")
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="hodei.daemon"):
                assert await daemon.reload() == []
            assert running_values(daemon) == EXPECTED, repr(text)
            assert "reload refused, the running configuration is kept" in caplog.text, repr(text)
        config.write_text(REAL, encoding="utf-8")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hodei.daemon"):
            assert await daemon.reload() == []
        assert "no live setting changed" in caplog.text and "api" not in caplog.text
        assert running_values(daemon) == EXPECTED


async def test_a_file_cut_short_anywhere_never_resets_a_section_to_its_defaults(config: Path) -> None:
    """Every prefix of the real file, as a copy or an editor caught halfway leaves it: refused, or (cut
    inside the last section's keys, where no reader can tell) the keys it still has."""
    async with running(started(config)) as daemon:
        for cut in range(len(REAL)):
            tried["truncated"] = tried.get("truncated", 0) + 1
            config.write_text(REAL[:cut], encoding="utf-8")
            await daemon.reload()
            assert daemon.settings.health.interval_seconds == 7.0, (cut, REAL[:cut][-40:])
            assert daemon.settings.health.unhealthy_after == 4, (cut, REAL[:cut][-40:])
            config.write_text(REAL, encoding="utf-8")
            assert await daemon.reload() == [], cut
            assert running_values(daemon) == EXPECTED, cut
        # A cut before [workers] is refused whole: nothing of [workers] returns to its defaults.
        config.write_text(REAL.split("[workers]")[0], encoding="utf-8")
        await daemon.reload()
        assert daemon.settings.workers.max_attempts == 5


async def test_a_restart_only_section_changed_and_changed_back_is_no_change(
        config: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running(started(config)) as daemon:
        config.write_text(REAL.replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:1"', 1), encoding="utf-8")
        assert await daemon.reload() == ["api.listen"]
        assert daemon.settings.api.listen == "127.0.0.1:0"  # what runs: the API did not move
        without_api = REAL.replace('[api]\nlisten = "127.0.0.1:0"\n', "")
        config.write_text(without_api, encoding="utf-8")
        assert await daemon.reload() == ["api.listen"]
        config.write_text(REAL, encoding="utf-8")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hodei.daemon"):
            assert await daemon.reload() == []
        assert "need a restart" not in caplog.text
        assert running_values(daemon) == EXPECTED


async def test_a_section_removed_on_purpose_is_written_as_an_empty_header(config: Path) -> None:
    async with running(started(config)) as daemon:
        config.write_text(REAL.split("[health]")[0] + "[health]\n\n[workers]\nmax_attempts = 5\n"
                          "reconcile_seconds = 11.0\n", encoding="utf-8")
        assert await daemon.reload() == []
        assert daemon.settings.health.interval_seconds == 30.0 and daemon.settings.health.unhealthy_after == 3
        assert daemon.monitor.settings.interval_seconds == 30.0
