"""Workers and a provider's history page like the providers: ListWorkers and GetProviderHistory answer a
page (``limit``) and a ``next_page_token`` keyed on the page's last row, so pages joined are the whole
listing, each row once, even when rows are inserted between two pages (rows sharing a time included);
the CLI follows the pages or stops at ``--limit``, the same in both modes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.cli import main
from hodei.daemon import Daemon
from hodei.models import ProviderHistoryRow, WorkerRow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session

from tests.test_api_server import Client, api_server, bad_request, new, refused

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# Few distinct times, so rows share one and the id decides between them.
times = st.integers(min_value=0, max_value=5).map(lambda s: EPOCH + timedelta(seconds=s))


@pytest.fixture
def served(hodei_database_url: str) -> Iterator[tuple[Client, Any, Daemon]]:
    with api_server(hodei_database_url) as daemon, grpc.insecure_channel(daemon.api.address) as channel:
        yield Client(channel), wpb_grpc.WorkerServiceStub(channel), daemon


def add_workers(daemon: Daemon, provider_id: uuid.UUID, created: list[datetime]) -> list[str]:
    rows = [WorkerRow(id=f"w-{uuid.uuid4().hex[:12]}", provider_id=provider_id, provider_name="only",
                      state="TERMINATED", token_sha256="0" * 64, created_at=at, updated_at=at) for at in created]
    ids = [row.id for row in rows]
    with Session(daemon.store.engine) as session:
        session.add_all(rows)
        session.commit()
    return ids


def add_history(daemon: Daemon, provider_id: uuid.UUID, recorded: list[datetime]) -> list[str]:
    causes = [f"c-{uuid.uuid4().hex[:12]}" for _ in recorded]
    with Session(daemon.store.engine) as session:
        session.add_all([ProviderHistoryRow(provider_id=provider_id, provider_name="only", at=at, kind="status",
                                            new_value="ACTIVE", cause=cause) for at, cause in zip(recorded, causes,
                                                                                                  strict=True)])
        session.commit()
    return causes


def clear(daemon: Daemon) -> None:
    with Session(daemon.store.engine) as session:
        session.exec(delete(WorkerRow))  # type: ignore[call-overload]
        session.exec(delete(ProviderHistoryRow))  # type: ignore[call-overload]
        session.commit()


def provider(api: Client) -> uuid.UUID:
    try:
        return uuid.UUID(api.GetProvider(pb.GetProviderRequest(provider_id="only")).id)
    except grpc.RpcError:
        return uuid.UUID(api.CreateProvider(new("only")).id)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(times, max_size=14), size=st.integers(min_value=1, max_value=5),
       inserted=st.lists(st.lists(times, max_size=3), max_size=4))
def test_worker_pages_joined_hold_every_worker_once_under_inserts(
        served: tuple[Client, Any, Daemon], first: list[datetime], size: int,
        inserted: list[list[datetime]]) -> None:
    api, workers, daemon = served
    clear(daemon)
    owner = provider(api)
    before = set(add_workers(daemon, owner, first))
    request, seen, pages = wpb.ListWorkersRequest(all=True, limit=size), [], 0
    while True:
        answer = workers.ListWorkers(request, timeout=20)
        assert len(answer.workers) <= size
        seen += [(datetime.fromisoformat(w.created_at), w.id) for w in answer.workers]
        if pages < len(inserted):  # another client provisions between two pages
            add_workers(daemon, owner, inserted[pages])
        pages += 1
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    ids = [i for _, i in seen]
    assert len(ids) == len(set(ids))  # none twice
    assert before <= set(ids)  # none left out
    assert seen == sorted(seen, key=lambda s: (-s[0].timestamp(), s[1]))  # newest first, then by id


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(times, max_size=14), size=st.integers(min_value=1, max_value=5),
       inserted=st.lists(st.lists(times, max_size=3), max_size=4))
def test_history_pages_joined_hold_every_change_once_under_inserts(
        served: tuple[Client, Any, Daemon], first: list[datetime], size: int,
        inserted: list[list[datetime]]) -> None:
    api, _, daemon = served
    clear(daemon)
    owner = provider(api)
    before = set(add_history(daemon, owner, first))
    request, seen, pages = pb.GetProviderHistoryRequest(provider_id="only", limit=size), [], 0
    while True:
        answer = api.GetProviderHistory(request)
        assert len(answer.entries) <= size
        seen += [(e.at.ToDatetime(tzinfo=UTC), e.cause) for e in answer.entries]
        if pages < len(inserted):  # the health monitor records a change between two pages
            add_history(daemon, owner, inserted[pages])
        pages += 1
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    causes = [c for _, c in seen]
    assert len(causes) == len(set(causes))
    assert before <= set(causes)
    assert [at for at, _ in seen] == sorted((at for at, _ in seen), reverse=True)


def test_a_bad_page_token_is_refused_naming_it(served: tuple[Client, Any, Daemon]) -> None:
    api, workers, daemon = served
    owner = provider(api)
    add_workers(daemon, owner, [EPOCH, EPOCH])
    worker_token = workers.ListWorkers(wpb.ListWorkersRequest(all=True, limit=1), timeout=20).next_page_token
    assert worker_token
    for token in ("not-a-token", "W" * 100_000, worker_token):  # a workers token is not a history token
        error = refused(api.GetProviderHistory, pb.GetProviderHistoryRequest(provider_id="only", page_token=token))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and [f for f, _ in bad_request(error)] == ["page_token"]
    with pytest.raises(grpc.RpcError) as caught:
        workers.ListWorkers(wpb.ListWorkersRequest(all=True, page_token="not-a-token"), timeout=20)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in str(caught.value.details())


def test_the_cli_follows_pages_past_one_answer_and_stops_at_limit_in_both_modes(
        served: tuple[Client, Any, Daemon], hodei_database_url: str, config_file: Any) -> None:
    api, _, daemon = served
    owner = provider(api)
    workers = add_workers(daemon, owner, [EPOCH + timedelta(seconds=i) for i in range(1203)])
    causes = add_history(daemon, owner, [EPOCH + timedelta(seconds=i) for i in range(1203)])
    local_env = {"HODEI_DATABASE_URL": hodei_database_url, "HODEI_CONFIG": str(config_file), "HODEI_SERVER": None}
    remote_env = {**local_env, "HODEI_SERVER": daemon.api.address}
    outputs = []
    for env in (local_env, remote_env):
        listed = CliRunner().invoke(main, ["workers", "list", "--all", "--limit", "5000", "-o", "json"], env=env)
        assert listed.exit_code == 0, listed.output
        assert [w["id"] for w in json.loads(listed.stdout)] == workers[::-1]  # more than one page, newest first
        history = CliRunner().invoke(main, ["providers", "history", "only", "--limit", "1202", "-o", "json"],
                                     env=env)
        assert history.exit_code == 0, history.output
        # Newest first: the provider's creation, then the entries written in the past; one short of all.
        assert [h["cause"] for h in json.loads(history.stdout)] == ["created", *causes[::-1]][:1202]
        limited = [CliRunner().invoke(main, ["workers", "list", "--all", "--limit", "2"], env=env),
                   CliRunner().invoke(main, ["providers", "history", "only", "--limit", "2"], env=env)]
        assert all(r.exit_code == 0 for r in limited), [r.output for r in limited]
        outputs.append([r.stdout for r in limited])
    assert outputs[0] == outputs[1]
    shown_workers, shown_history = outputs[0]
    assert workers[-2] in shown_workers and workers[-3] not in shown_workers
    assert "created" in shown_history and causes[-1] in shown_history and causes[-2] not in shown_history
