"""A job's requirements are bounded at the door (hodei.limits, docs/limits.md), what a refused Select
carries in its trailers fits what every gRPC client accepts, and selecting never runs on the event loop
(which answers every other call and the health checks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hodei import limits
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import selection_pb2 as spb
from hodei.cli import main
from hodei.daemon import Daemon
from hodei.errors import InvalidInput
from hodei.selection.requirements import parse_requirements

from tests.test_api_server import Client, api_server, bad_request, new, refused

TOO_MUCH = [
    ({"required_labels": {"env": "x" * 20_000}}, "required_labels"),
    ({"required_labels": {f"k{i}": "v" for i in range(limits.LABELS + 1)}}, "required_labels"),
    ({"required_labels": {"k" * (limits.TEXT_CHARS + 1): "v"}}, "required_labels"),
    ({"required_annotations": {"note": "x" * (limits.ANNOTATION_VALUE_CHARS + 1)}}, "required_annotations"),
    ({"allowed_regions": [f"r{i}" for i in range(200_000)]}, "allowed_regions"),
    ({"allowed_regions": ["r" * (limits.TEXT_CHARS + 1)]}, "allowed_regions"),
    ({"preferred_region": "r" * (limits.TEXT_CHARS + 1)}, "preferred_region"),
]
# At every limit, and matching nothing: the largest a reason can be made to get.
AT_THE_LIMITS = {
    "required_labels": {f"label-{i:03d}-" + "k" * 180: "v" * limits.LABEL_VALUE_CHARS for i in range(limits.LABELS)},
    "required_annotations": {f"note-{i:03d}-" + "k" * 180: "v" * 1000 for i in range(20)},
    "allowed_regions": [f"region-{i:04d}-" + "r" * 180 for i in range(limits.REGIONS)],
    "preferred_region": "p" * limits.TEXT_CHARS,
}


def struct(document: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(document, struct_pb2.Struct())


@pytest.mark.parametrize("document, field", TOO_MUCH)
def test_requirements_past_a_limit_are_refused_naming_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_requirements(document)
    assert [p.field for p in caught.value.problems] == [field]
    assert len(str(caught.value)) < 300  # the refusal quotes nothing at length
    parse_requirements(AT_THE_LIMITS)  # at every limit: accepted


@pytest.fixture
def served(hodei_database_url: str) -> Iterator[tuple[Client, Daemon]]:
    with api_server(hodei_database_url) as daemon, grpc.insecure_channel(daemon.api.address) as channel:
        yield Client(channel), daemon


def test_the_api_refuses_requirements_past_a_limit_as_invalid_argument(served: tuple[Client, Daemon]) -> None:
    api, _ = served
    for document, field in TOO_MUCH:
        error = refused(api.Select, spb.SelectRequest(requirements=struct(document)))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (field, error.code(), error.details())
        assert [f for f, _ in bad_request(error)] == [field]


def test_a_refused_select_at_the_limits_fits_its_trailers_and_pages_for_the_rest(
        served: tuple[Client, Daemon]) -> None:
    api, _ = served
    names = [f"provider-{i:02d}-" + "n" * 150 for i in range(25)]
    for name in names:
        api.CreateProvider(new(name, required_labels={"env": "prod"}, allowed_regions=["eu-1"],
                               annotations={"team": "a"}))
    request = spb.SelectRequest(requirements=struct(AT_THE_LIMITS), page_size=20)
    seen: list[str] = []
    for _ in range(len(names)):
        error = refused(api.Select, request)
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION, (error.code(), error.details())
        trailers = sum(len(k) + len(v) for k, v in error.trailing_metadata())
        assert trailers + len(error.details() or "") < 8 * 1024
        status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
        answer = spb.SelectResponse()
        assert any(detail.Unpack(answer) for detail in status.details)
        assert answer.rejected and answer.rejected_total == len(names)
        seen += [r.name for r in answer.rejected]
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    assert seen == sorted(names)


def test_the_cli_through_the_server_prints_a_refused_select_at_the_limits(
        served: tuple[Client, Daemon], tmp_path: Any) -> None:
    api, daemon = served
    for i in range(12):
        api.CreateProvider(new(f"p{i:02d}-" + "n" * 150, required_labels={"env": "prod"}))
    job = tmp_path / "job.json"
    import json
    job.write_text(json.dumps(AT_THE_LIMITS), encoding="utf-8")
    result = CliRunner().invoke(main, ["--server", daemon.api.address, "select", "-r", str(job)],
                                env={"HODEI_SERVER": None, "HODEI_TOKEN_FILE": None, "HODEI_TLS": None})
    assert result.exit_code == 3, result.output
    assert "0/12 providers available" in result.stdout and "... (" in result.stdout


def test_health_answers_while_a_selection_is_still_running(served: tuple[Client, Daemon],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A selection as slow as a large request makes it must not hold the event loop: health checks
    (and every other call) are answered meanwhile."""
    api, daemon = served
    api.CreateProvider(new("only"))
    started, release = threading.Event(), threading.Event()
    selection = daemon.api.services.selection
    original = selection.select

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(selection, "select", slow)
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(api.Select(spb.SelectRequest())))
    caller.start()
    try:
        assert started.wait(10)
        with grpc.insecure_channel(daemon.api.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        # Answered within its deadline (this test server runs no health monitor, so it says NOT_SERVING).
        assert health.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)
        listed = api.ListProviders(pb.ListProvidersRequest())
        assert [p.config.name for p in listed.providers] == ["only"]
    finally:
        release.set()
        caller.join(30)
    assert answers and answers[0].selected == "only"
