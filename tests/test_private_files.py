"""Every file Hodei writes that may hold a secret is its owner's only (0600) from the moment it holds a
byte, whatever the umask, and replaced atomically: `hodei config init` (the database URL may carry a
password) and the SQLite database (provider configs with their secrets, and its -wal and -shm files).
Hodei writes no other such file: API tokens and TLS keys are files the operator makes, which Hodei
only reads."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hodei import private_files
from hodei.cli import main

PASSWORD = "Pa55-w0rd-never-shown"
URL = f"postgresql+psycopg://hodei:{PASSWORD}@db.example:5432/hodei"
UMASKS = [0o000, 0o022, 0o077, 0o277]  # the most open, the usual, the strictest, one taking the owner's write bit


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", UMASKS, ids=oct)
def test_config_init_writes_a_file_only_its_owner_reads(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "etc" / "hodei.toml"
    with umask(mask):
        result = CliRunner().invoke(main, ["config", "init", str(path), "--database-url", URL])
    assert result.exit_code == 0, result.stderr
    assert mode(path) == 0o600
    assert PASSWORD in path.read_text(encoding="utf-8")
    assert PASSWORD not in result.stdout + result.stderr
    assert "mode 0600" in result.stdout
    assert sorted(p.name for p in path.parent.iterdir()) == ["hodei.toml"]  # no temporary file left


def test_config_init_force_replaces_an_open_file_with_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "hodei.toml"
    path.write_text("# world-readable\n", encoding="utf-8")
    path.chmod(0o644)
    result = CliRunner().invoke(main, ["config", "init", str(path), "--force", "--database-url", URL])
    assert result.exit_code == 0, result.stderr
    assert mode(path) == 0o600 and PASSWORD in path.read_text(encoding="utf-8")


def test_the_secret_is_never_in_a_file_anyone_else_can_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While it is written (at the flush to disk, with every byte in it) the file is 0600 already."""
    seen: list[tuple[str, int, int]] = []
    fsync = os.fsync

    def watching(descriptor: int) -> None:
        status = os.fstat(descriptor)
        if stat.S_ISREG(status.st_mode):
            seen.append((os.readlink(f"/proc/self/fd/{descriptor}"), stat.S_IMODE(status.st_mode), status.st_size))
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", watching)
    path = tmp_path / "hodei.toml"
    with umask(0):
        assert CliRunner().invoke(main, ["config", "init", str(path), "--database-url", URL]).exit_code == 0
    size = path.stat().st_size
    assert [(Path(name).parent, file_mode, written) for name, file_mode, written in seen] == [
        (tmp_path, 0o600, size)]
    assert Path(seen[0][0]).name != "hodei.toml"  # written beside it, then renamed over it


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hodei.toml"
    path.write_text("# the old one\n", encoding="utf-8")

    def full(_descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        private_files.write_private(path, b"# the new one\n")
    assert path.read_text(encoding="utf-8") == "# the old one\n"
    assert [p.name for p in tmp_path.iterdir()] == ["hodei.toml"]


@pytest.mark.parametrize("mask", UMASKS, ids=oct)
def test_the_sqlite_database_is_private_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "data" / "hodei.db"}"\n', encoding="utf-8")
    env = {"HODEI_CONFIG": str(config), "HODEI_DATABASE_URL": None}
    with umask(mask):
        for args in (["db", "upgrade"], ["providers", "add", "a", "--type", "static",
                                         "--config", '{"latency_ms": 1}']):
            result = CliRunner().invoke(main, args, env=env)
            assert result.exit_code == 0, result.stderr
    files = sorted((tmp_path / "data").glob("hodei.db*"))
    assert "hodei.db" in {f.name for f in files}
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
