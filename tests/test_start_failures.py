"""``hodei serve`` that cannot take its addresses fails at start, as systemd and a second daemon need it to.

A port held by another process when the daemon starts is a start-up failure: the daemon exits non-zero
before it says "ready", naming the setting, the address and (when this user may see it) the holder.
Nothing retries the port afterwards: the addresses are not reloadable.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hodei.testing.serve import clean_environment, hodei_command, serve


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test process listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def write_config(folder: Path, api: str, metrics: str) -> Path:
    path = folder / "hodei.toml"
    path.write_text(f'[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "{api}"\n'
                    f'[metrics]\nlisten = "{metrics}"\n[logging]\nformat = "json"\n', encoding="utf-8")
    return path


def serve_once(config: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hodei_command(), "serve"], cwd=config.parent, env=clean_environment(HODEI_CONFIG=str(config)),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("which, setting", [("api", "[api] listen"), ("metrics", "[metrics] listen")])
def test_a_held_port_stops_the_daemon_before_it_is_ready(tmp_path: Path, held_port: int, which: str,
                                                          setting: str) -> None:
    address = f"127.0.0.1:{held_port}"
    config = write_config(tmp_path, api=address if which == "api" else "127.0.0.1:0",
                          metrics=address if which == "metrics" else "127.0.0.1:0")
    done = serve_once(config)  # a daemon retrying forever would hit the timeout here
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("hodei: error: ") and "Traceback" not in done.stderr, done.stderr
    assert setting in last and f"cannot listen on {address}" in last, last
    assert "held by python" in last and f"(pid {os.getpid()})" in last, last
    assert '"ready' not in done.stderr and "READY" not in done.stderr


def test_a_second_daemon_on_the_same_ports_names_the_first(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        api_port = probe.getsockname()[1]
    first_folder, second_folder = tmp_path / "first", tmp_path / "second"
    first_folder.mkdir()
    second_folder.mkdir()
    # The second one also takes the first's API address; metrics on a free port so the API is what fails.
    config = write_config(first_folder, api=f"127.0.0.1:{api_port}", metrics="127.0.0.1:0")
    with serve(config) as first:
        second = serve_once(write_config(second_folder, api=f"127.0.0.1:{api_port}", metrics="127.0.0.1:0"))
        assert second.returncode == 1, second.stderr
        assert f"cannot listen on 127.0.0.1:{api_port}" in second.stderr
        assert f"(pid {first.process.pid})" in second.stderr, second.stderr
        assert first.process.poll() is None, "the first daemon must keep running"
    assert first.process.returncode == 0
