"""Provider listings page: the API's ListProviders answers at most a page (page_size, next_page_token)
whatever the number of providers, and the CLI fetches the pages transparently or stops at --limit, the
same through the server and on the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from hodei.api.v1 import providers_pb2 as pb
from hodei.cli import main
from hodei.daemon import Daemon
from hodei.services import listing

from tests.test_api_server import Client, api_server, bad_request, new, refused


@pytest.fixture
def served(hodei_database_url: str) -> Iterator[tuple[Client, Daemon]]:
    with api_server(hodei_database_url) as daemon, grpc.insecure_channel(daemon.api.address) as channel:
        yield Client(channel), daemon


def every_page(api: Client, **fields: Any) -> tuple[list[str], int]:
    request, names, pages = pb.ListProvidersRequest(**fields), [], 0
    while True:
        answer = api.ListProviders(request)
        pages += 1
        assert len(answer.providers) <= (request.page_size or listing.DEFAULT_PAGE)
        names += [p.config.name for p in answer.providers]
        if not answer.next_page_token:
            return names, pages
        request.page_token = answer.next_page_token


def test_pages_joined_are_the_whole_list_by_name_each_once(served: tuple[Client, Daemon]) -> None:
    api, _ = served
    names = [f"p-{i:02d}" for i in range(23)]
    for i, name in enumerate(reversed(names)):
        api.CreateProvider(new(name, status="DISABLED" if i % 3 == 0 else "ACTIVE"))
    for size in (1, 5, 7, 23, 1000):
        found, pages = every_page(api, page_size=size)
        assert found == names and pages in (-(-23 // size), -(-23 // size) + 1), size
    disabled = sorted(n for i, n in enumerate(reversed(names)) if i % 3 == 0)
    assert every_page(api, page_size=3, status="DISABLED")[0] == disabled
    answer = api.ListProviders(pb.ListProvidersRequest(page_size=5))
    api.DeleteProvider(pb.DeleteProviderRequest(provider_id="p-06"))  # the next page starts after p-04 still
    rest = api.ListProviders(pb.ListProvidersRequest(page_size=5, page_token=answer.next_page_token))
    assert [p.config.name for p in rest.providers] == ["p-05", "p-07", "p-08", "p-09", "p-10"]


def test_a_bad_page_is_refused_naming_the_field(served: tuple[Client, Daemon]) -> None:
    api, _ = served
    for request, field in ((pb.ListProvidersRequest(page_size=listing.MAX_PAGE + 1), "page_size"),
                           (pb.ListProvidersRequest(page_size=-1), "page_size"),
                           (pb.ListProvidersRequest(page_token="not-a-token"), "page_token"),
                           (pb.ListProvidersRequest(page_token="W" * 100_000), "page_token")):
        error = refused(api.ListProviders, request)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request(error)] == [field]


def test_a_name_that_is_not_utf8_pages_like_any_other(sqlite_hodei: Any) -> None:
    hodei = sqlite_hodei
    for name in ("a", "b", "c", "d"):
        hodei.ok("providers", "add", name, "--type", "static")
    hodei.sql("UPDATE provider_configs SET name = CAST(x'62ff' AS TEXT) WHERE name = 'b'")
    hodei.sql("UPDATE provider_configs SET name = x'63ff' WHERE name = 'c'")  # bytes: sorted after all text
    from hodei.plugins import make_plugin_manager
    from hodei.services.providers import LocalProviders
    from hodei.storage.provider_state import ProviderStates
    from hodei.store import Store

    store = Store.open(hodei.url, make_plugin_manager(enable=["static"]))
    providers = LocalProviders(store, ProviderStates(store.engine), store.pm)
    seen, token = [], ""
    for _ in range(10):
        page, token = providers.page(page_size=1, page_token=token)
        seen += [view.document["name"] for view in page]
        if not token:
            break
    assert seen == ["a", "b\\xff", "d", "c\\xff"]
    store.close()


def test_the_cli_pages_transparently_and_stops_at_limit_the_same_in_both_modes(
        served: tuple[Client, Daemon], hodei_database_url: str, config_file: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, daemon = served
    names = [f"n-{i:04d}" for i in range(1203)]  # more than one page of the largest size
    store = daemon.store
    store.apply([{"name": n, "provider_type": "static"} for n in names], dry_run=False, prune=False)
    local_env = {"HODEI_DATABASE_URL": hodei_database_url, "HODEI_CONFIG": str(config_file), "HODEI_SERVER": None}
    remote_env = {**local_env, "HODEI_SERVER": daemon.api.address}
    outputs = []
    for env in (local_env, remote_env):
        listed = CliRunner().invoke(main, ["providers", "list", "-o", "json"], env=env)
        assert listed.exit_code == 0, listed.output
        assert [p["name"] for p in json.loads(listed.stdout)] == names
        limited = CliRunner().invoke(main, ["providers", "list", "--limit", "3"], env=env)
        assert limited.exit_code == 0, limited.output
        outputs.append(limited.stdout)
    assert outputs[0] == outputs[1] and "n-0002" in outputs[0] and "n-0003" not in outputs[0]


def test_the_other_listings_are_bounded_at_a_page(served: tuple[Client, Daemon]) -> None:
    from hodei import limits
    from hodei.api.v1 import workers_pb2 as wpb
    from hodei.api.v1 import workers_pb2_grpc as wpb_grpc

    api, daemon = served
    api.CreateProvider(new("only"))
    error = refused(api.GetProviderHistory, pb.GetProviderHistoryRequest(provider_id="only",
                                                                         limit=limits.LISTED + 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and [f for f, _ in bad_request(error)] == ["limit"]
    assert api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="only", limit=limits.LISTED))
    with grpc.insecure_channel(daemon.api.address) as channel:
        workers = wpb_grpc.WorkerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            workers.ListWorkers(wpb.ListWorkersRequest(all=True, limit=2**31 - 1), timeout=20)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert not workers.ListWorkers(wpb.ListWorkersRequest(all=True, limit=limits.LISTED), timeout=20).workers
