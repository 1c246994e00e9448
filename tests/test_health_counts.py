"""One truth for health: results counted in the database, whichever daemon found them (SQLite and
PostgreSQL). Two daemons' results for one provider make one run of failures, one change of health
and one status change in the history; a result written twice (a retry after a timeout that had
committed after all) or older than the last one counted is not counted again."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hodei.domain import HealthResult, HealthStatus, ProviderState, ProviderStatus
from hodei.health import next_status, status_cause
from hodei.settings import HealthSettings
from hodei.storage.health_results import Result, record_results
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store

SETTINGS = HealthSettings(unhealthy_after=3, healthy_after=2)
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def decide(status: ProviderStatus, state: ProviderState) -> tuple[ProviderStatus, str] | None:
    wanted = next_status(status, state, SETTINGS)
    return None if wanted is None else (wanted, status_cause(wanted, state))


def failed(provider_id, second: int) -> Result:
    return Result(provider_id, HealthResult(HealthStatus.UNHEALTHY, "disk full",
                                            checked_at=START + timedelta(seconds=second)))


def passed(provider_id, second: int) -> Result:
    return Result(provider_id, HealthResult(HealthStatus.HEALTHY, checked_at=START + timedelta(seconds=second)))


def test_failures_found_by_two_daemons_are_one_run(hodei_store: Store) -> None:
    provider = hodei_store.create({"name": "edge", "provider_type": "static"}).id
    engine = hodei_store.engine
    # Daemon A checks, then B (after a handover), then A again: three failures in a row.
    assert record_results(engine, [passed(provider, 0)], decide)[0].state.consecutive_successes == 1
    first = record_results(engine, [failed(provider, 1)], decide)[0]
    assert first.health_changed and first.state.consecutive_failures == 1 and not first.transitions
    assert record_results(engine, [failed(provider, 2)], decide)[0].state.consecutive_failures == 2
    third = record_results(engine, [failed(provider, 3)], decide)[0]
    assert third.state.consecutive_failures == 3 and third.status is ProviderStatus.UNHEALTHY
    assert third.transitions == ((ProviderStatus.ACTIVE, ProviderStatus.UNHEALTHY,
                                  "3 consecutive failed health checks: disk full"),)
    # The same write again (a retry) and an older result (a late daemon): nothing is counted.
    again = record_results(engine, [failed(provider, 3), failed(provider, 2), passed(provider, 1)], decide)[0]
    assert again.state.consecutive_failures == 3 and not again.transitions and not again.health_changed
    history = [(h.kind, h.old_value, h.new_value) for h in ProviderStates(engine).history("edge")]
    assert history.count(("health", "Healthy", "Unhealthy")) == 1
    assert history.count(("status", "ACTIVE", "UNHEALTHY")) == 1
    assert hodei_store.get("edge").status == "UNHEALTHY"
    # Two passes, from either daemon, bring it back, once.
    record_results(engine, [passed(provider, 4)], decide)
    back = record_results(engine, [passed(provider, 5)], decide)[0]
    assert back.status is ProviderStatus.ACTIVE and len(back.transitions) == 1


def test_an_operators_status_is_never_changed_and_a_deleted_provider_is_skipped(hodei_store: Store) -> None:
    parked = hodei_store.create({"name": "parked", "provider_type": "static", "status": "MAINTENANCE"}).id
    gone = hodei_store.create({"name": "gone", "provider_type": "static"}).id
    hodei_store.delete("gone")
    recorded = record_results(hodei_store.engine, [failed(parked, s) for s in range(5)] + [failed(gone, 1)], decide)
    assert [(r.name, r.state.consecutive_failures, r.status) for r in recorded] == [
        ("parked", 5, ProviderStatus.MAINTENANCE)]


def test_daemons_recording_at_once_lose_nothing_and_never_deadlock(hodei_store: Store) -> None:
    """Two daemons writing batches of the same providers at the same time (a handover): every result
    is counted once, in time order per provider; the row locks are taken in one order."""
    ids = [hodei_store.create({"name": f"p{i}", "provider_type": "static"}).id for i in range(6)]
    errors: list[BaseException] = []

    def daemon(seconds: range) -> None:
        try:
            for second in seconds:
                record_results(hodei_store.engine, [failed(p, second) for p in reversed(ids)], decide)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=daemon, args=(range(start, 40, 2),)) for start in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    states = ProviderStates(hodei_store.engine).all()
    for provider in ids:
        state = states[provider]
        # Each daemon's results are in time order; the other's older ones are skipped, never double counted.
        assert 20 <= state.consecutive_failures <= 40 and state.checked_at == START + timedelta(seconds=39)
        history = ProviderStates(hodei_store.engine).history(str(provider))
        assert [h.new_value for h in history if h.kind == "status"] == ["UNHEALTHY"]
        assert [h.new_value for h in history if h.kind == "health"] == ["Unhealthy"]
