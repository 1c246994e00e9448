"""One Kubernetes API client per provider, and every call through it bounded by a deadline.

This module imports the ``kubernetes`` SDK: only the backend hooks import it, never validation.
Everything here blocks; the hooks run it in a worker thread (``hodei.run_sdk_call``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from hodei import Deadline, DeadlineExceeded
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

ApiException = k8s.ApiException


class ClientConfigError(Exception):
    """The client cannot be built: no kubeconfig, no such context, not running in a cluster."""


@dataclass(frozen=True)
class _Key:
    kubeconfig_path: str | None
    kubeconfig_context: str | None


class Api:
    """The calls the provider makes, each a JSON dict in and out, each bounded by what is left of ``deadline``."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.authorization = k8s.AuthorizationV1Api(api_client)

    def close(self) -> None:
        self.api_client.close()

    # Raw JSON, not the SDK's models: nothing is lost to a model the SDK version does not know, and a
    # partial object (from a proxy, or an older server) does not fail client-side validation.
    @staticmethod
    def _json(call: Callable[..., Any], *args: Any, deadline: Deadline, **kwargs: Any) -> dict[str, Any]:
        try:
            response = call(*args, _preload_content=False, _request_timeout=deadline.request_timeout(), **kwargs)
            try:
                return json.loads(response.data or b"{}")
            finally:
                response.release_conn()
        except Exception as error:
            if isinstance(error, DeadlineExceeded) or not is_timeout(error):
                raise
            # The request had what was left of the deadline: the hook's time is up. Still a TimeoutError,
            # so the core counts it as a timeout, with the bound an operator set.
            raise DeadlineExceeded(f"the API server did not answer within {deadline.timeout:g}s") from error

    def list_pods(self, namespace: str, deadline: Deadline, **kwargs: Any) -> dict[str, Any]:
        return self._json(self.core.list_namespaced_pod, namespace, deadline=deadline, **kwargs)

    def _every_page(self, call: Callable[..., Any], *args: Any, deadline: Deadline, **kwargs: Any) -> list[dict]:
        """All items, page by page: reconciliation must never take a partial list for the whole."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = self._json(call, *args, deadline=deadline, limit=500, **kwargs,
                              **({"_continue": token} if token else {}))
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def list_all_pods(self, namespace: str, label_selector: str, deadline: Deadline) -> list[dict[str, Any]]:
        return self._every_page(self.core.list_namespaced_pod, namespace, deadline=deadline,
                                label_selector=label_selector)

    def list_nodes(self, label_selector: str | None, deadline: Deadline) -> list[dict[str, Any]]:
        selector = {"label_selector": label_selector} if label_selector else {}
        return self._every_page(self.core.list_node, deadline=deadline, **selector)

    def create_pod(self, namespace: str, pod: Mapping[str, Any], deadline: Deadline) -> dict[str, Any]:
        return self._json(self.core.create_namespaced_pod, namespace, pod, deadline=deadline)

    def create_secret(self, namespace: str, secret: Mapping[str, Any], deadline: Deadline) -> dict[str, Any]:
        return self._json(self.core.create_namespaced_secret, namespace, secret, deadline=deadline)

    def delete_pod(self, namespace: str, name: str, deadline: Deadline) -> None:
        # Background: return once the deletion is accepted; the kubelet stops the container within
        # the pod's grace period and the garbage collector then deletes the token Secret.
        self._json(self.core.delete_namespaced_pod, namespace=namespace, name=name,
                   propagation_policy="Background", deadline=deadline)

    def can_i(self, verb: str, resource: str, namespace: str | None, deadline: Deadline) -> bool | None:
        """Whether these credentials may ``verb`` ``resource``; ``None`` when the server will not say."""
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "group": "",
                                                  **({"namespace": namespace} if namespace else {})}}}
        answer = self._json(self.authorization.create_self_subject_access_review, review, deadline=deadline)
        allowed = (answer.get("status") or {}).get("allowed")
        return allowed if isinstance(allowed, bool) else None


def _build(key: _Key) -> Api:
    configuration = k8s.Configuration()
    try:
        if key.kubeconfig_path is None:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            # persist_config=False: never write refreshed credentials back into the operator's file.
            k8s_config.load_kube_config(config_file=key.kubeconfig_path, context=key.kubeconfig_context,
                                        client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, ValueError, TypeError) as error:
        where = "in-cluster configuration" if key.kubeconfig_path is None else f"kubeconfig {key.kubeconfig_path!r}"
        raise ClientConfigError(f"cannot load {where}: {_first_line(error)}") from None
    # No urllib3 retries: each call is bounded by the hook's deadline, and a retry would outlive it.
    configuration.retries = False
    configuration.debug = False  # debug logging would print request headers, the bearer token among them
    api = Api(k8s.ApiClient(configuration))
    api.api_client.user_agent = "hodei-k8s"
    return api


_clients: dict[uuid.UUID, tuple[_Key, Api]] = {}
_clients_lock = threading.Lock()


def api_for(provider_id: uuid.UUID, config: Mapping[str, Any], deadline: Deadline) -> Api:
    """The provider's client, built on first use and reused; rebuilt when its connection settings change.

    Loading a kubeconfig may run an exec credential plugin, so it is built in the caller's thread.
    """
    key = _Key(config["kubeconfig_path"], config["kubeconfig_context"])
    with _clients_lock:
        cached = _clients.get(provider_id)
        if cached is not None and cached[0] == key:
            return cached[1]
    deadline.request_timeout()  # raises hodei.DeadlineExceeded (a TimeoutError) when no time is left
    api = _build(key)
    with _clients_lock:
        cached = _clients.get(provider_id)
        if cached is not None and cached[0] == key:  # another thread won the race: use its client
            api.close()
            return cached[1]
        _clients[provider_id] = (key, api)
    if cached is not None:
        cached[1].close()
    return api


def forget_clients() -> None:
    """Close every cached client (tests; a daemon shutting down)."""
    with _clients_lock:
        cached = list(_clients.values())
        _clients.clear()
    for _, api in cached:
        api.close()


# -- errors -----------------------------------------------------------------------------------

def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def status_message(error: ApiException) -> str:
    """The API server's own message from its Status body (it names the user, verb and resource), else the reason."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else str(error.reason or "no reason given")


def is_timeout(error: BaseException) -> bool:
    if isinstance(error, urllib3.exceptions.MaxRetryError):
        error = error.reason or error
    # urllib3 makes a refused connection a kind of connect timeout; it is an unreachable server here.
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(error, TimeoutError | urllib3.exceptions.TimeoutError)


def describe(error: BaseException, seconds: float) -> str:
    """A one-line reason for an operator; never a body that could echo what was sent."""
    if isinstance(error, ClientConfigError):
        return str(error)
    if is_timeout(error):
        return f"the API server did not answer within {seconds:g}s"
    if isinstance(error, ApiException):
        if error.status == 0:  # the SDK's way of reporting a TLS failure
            return f"TLS failure: {_first_line(Exception(error.reason))}"
        if error.status == 401:
            return "the API server refused the credentials (401 Unauthorized)"
        return f"the API server answered {error.status}: {status_message(error)}"
    if isinstance(error, urllib3.exceptions.HTTPError):
        reason = getattr(error, "reason", None) or error
        return f"the API server is unreachable: {_first_line(reason)}"
    return f"{type(error).__name__}: {_first_line(error)}"
