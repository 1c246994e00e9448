"""The client layer: paging, deadlines, and error reasons an operator can act on."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import urllib3
from hodei import Deadline, DeadlineExceeded
from hodei_k8s.client import Api, ApiException, ClientConfigError, describe


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()
        self.released = False

    def release_conn(self) -> None:
        self.released = True


def test_every_page_of_a_list_is_read_with_the_continue_token() -> None:
    pages = {None: {"items": [{"n": 1}, {"n": 2}], "metadata": {"continue": "t1"}},
             "t1": {"items": [{"n": 3}], "metadata": {"continue": ""}}}
    calls: list[dict[str, Any]] = []
    responses: list[Response] = []

    def list_namespaced_pod(namespace: str, **kwargs: Any) -> Response:
        calls.append({"namespace": namespace, **kwargs})
        responses.append(Response(pages[kwargs.get("_continue")]))
        return responses[-1]

    api = Api.__new__(Api)
    items = api._every_page(list_namespaced_pod, "ns", deadline=Deadline(5), label_selector="a=b")
    assert items == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [c.get("_continue") for c in calls] == [None, "t1"]
    assert all(c["limit"] == 500 and c["label_selector"] == "a=b" and not c["_preload_content"] for c in calls)
    assert all(0 < c["_request_timeout"] <= 5 for c in calls)
    assert all(r.released for r in responses)


def test_a_deadline_gives_each_call_what_is_left_and_then_refuses() -> None:
    timeouts: list[float] = []

    def read_namespaced_pod(**kwargs: Any) -> Response:
        timeouts.append(kwargs["_request_timeout"])
        return Response({})

    deadline = Deadline(0.05, margin=0)
    Api._json(read_namespaced_pod, deadline=deadline)
    assert 0 < timeouts[0] <= 0.05
    time.sleep(0.06)
    with pytest.raises(DeadlineExceeded, match=r"timed out after 0\.05s"):  # a TimeoutError
        Api._json(read_namespaced_pod, deadline=deadline)
    assert len(timeouts) == 1, "no request is made once the deadline has passed"


def forbidden() -> ApiException:
    error = ApiException(status=403, reason="Forbidden")
    error.body = json.dumps({"kind": "Status", "code": 403, "message": 'pods is forbidden: User "u" cannot list'})
    return error


@pytest.mark.parametrize("error, reason", [
    (forbidden(), 'the API server answered 403: pods is forbidden: User "u" cannot list'),
    (ApiException(status=401, reason="Unauthorized"), "the API server refused the credentials (401 Unauthorized)"),
    (ApiException(status=500, reason="Internal Server Error"), "the API server answered 500: Internal Server Error"),
    (ApiException(status=0, reason="SSLError\ncertificate verify failed"), "TLS failure: SSLError"),
    (urllib3.exceptions.ReadTimeoutError(None, "/api", "read timed out"), "the API server did not answer within 3s"),
    (TimeoutError("timed out after 3s"), "the API server did not answer within 3s"),
    (urllib3.exceptions.NewConnectionError(
        urllib3.connection.HTTPConnection("127.0.0.1", 9),
        "Failed to establish a new connection: [Errno 111] Connection refused"),
     "the API server is unreachable: HTTPConnection(host='127.0.0.1', port=9): Failed to establish a new "
     "connection: [Errno 111] Connection refused"),
    (ClientConfigError("cannot load kubeconfig '/x': Invalid kube-config file."),
     "cannot load kubeconfig '/x': Invalid kube-config file."),
])
def test_errors_are_described_in_one_line(error: BaseException, reason: str) -> None:
    assert describe(error, 3) == reason
