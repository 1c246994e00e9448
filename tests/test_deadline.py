"""``hodei.Deadline`` and ``hodei.run_sdk_call``: the one deadline helper and the one way plugins load SDKs."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import hodei
import pytest
from hodei import Deadline, DeadlineExceeded, run_sdk_call


def test_a_deadline_ends_a_little_before_the_timeout() -> None:
    assert 4.4 < Deadline(5).remaining() <= 4.5  # a tenth of the timeout...
    assert 59.4 < Deadline(60).remaining() <= 59.5  # ...at most half a second
    assert 1.9 < Deadline(2, margin=0).remaining() <= 2.0
    assert Deadline(5).timeout == 5, "the timeout itself is kept, for messages"


def test_each_request_gets_what_is_left_and_then_none() -> None:
    deadline = Deadline(0.05, margin=0)
    assert 0 < deadline.request_timeout() <= 0.05
    assert not deadline.expired
    time.sleep(0.06)
    assert deadline.remaining() == 0.0 and deadline.expired
    with pytest.raises(DeadlineExceeded, match=r"timed out after 0\.05s") as info:
        deadline.request_timeout()
    assert isinstance(info.value, TimeoutError), "callers that know TimeoutError need nothing new"


def test_applied_makes_it_current_for_the_block_only_and_per_thread() -> None:
    deadline = Deadline(10, margin=0)
    assert Deadline.current() is None
    seen_in_thread: list[Deadline | None] = []
    with deadline.applied() as bound:
        assert Deadline.current() is bound is deadline
        with deadline.applied(reserve=4) as earlier:
            assert Deadline.current() is earlier
            assert 5.9 < earlier.remaining() <= 6.0 and earlier.timeout == 10
        assert Deadline.current() is deadline
        other = threading.Thread(target=lambda: seen_in_thread.append(Deadline.current()))
        other.start()
        other.join()
    assert Deadline.current() is None
    assert seen_in_thread == [None], "another thread's requests are not bound by this block"


@pytest.fixture
def sdk_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module standing for a plugin's SDK-using module: it records the thread that imports it."""
    name = f"fake_sdk_module_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import threading, time
        IMPORTED_IN = threading.current_thread().name

        def call(x, deadline):
            return (x, deadline, threading.current_thread().name)

        def hang(deadline):
            time.sleep(5)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_run_sdk_call_imports_the_module_in_the_worker_thread(sdk_module: str) -> None:
    async def main():
        started = time.monotonic()
        return started, await run_sdk_call(f"{sdk_module}:call", 42, timeout=3.0)

    started, (x, deadline, ran_in) = anyio.run(main)
    module = sys.modules[sdk_module]
    loop_thread = threading.current_thread().name
    assert x == 42
    assert loop_thread not in (module.IMPORTED_IN, ran_in)
    assert isinstance(deadline, Deadline) and deadline.timeout == 3.0
    assert deadline.expires <= started + 3.0, "the deadline starts when the hook is called, not in the thread"


def test_run_sdk_call_is_abandoned_at_the_timeout_without_stalling_the_loop(sdk_module: str) -> None:
    ticks = 0

    async def main():
        nonlocal ticks

        async def tick():
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(tick)
            started = time.monotonic()
            with pytest.raises(TimeoutError), anyio.fail_after(0.3):
                await run_sdk_call(f"{sdk_module}:hang", timeout=0.3)
            tasks.cancel_scope.cancel()
        return time.monotonic() - started

    assert anyio.run(main) < 1.0
    assert ticks > 10, "the event loop was blocked while the SDK call hung"


def test_run_sdk_call_takes_a_started_deadline_and_checks_its_target(sdk_module: str) -> None:
    deadline = Deadline(2)
    assert anyio.run(lambda: run_sdk_call(f"{sdk_module}:call", 1, timeout=deadline))[1] is deadline
    with pytest.raises(ValueError, match=r"package\.module:function"):
        anyio.run(lambda: run_sdk_call(sdk_module, timeout=1))


def test_the_helpers_are_exported_for_plugins() -> None:
    assert {"Deadline", "DeadlineExceeded", "run_sdk_call", "run_blocking"} <= set(hodei.__all__)
