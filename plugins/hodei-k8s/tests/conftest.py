"""A Kubernetes API over real HTTP for the backend tests: kmock's emulator, in a thread of its own.

The official client talks to it through a kubeconfig file, exactly as it talks to a cluster. The
emulator runs on its own event loop in a background thread, so tests stay synchronous and call the
hooks with ``anyio.run`` the way the contract suite does; no pytest-asyncio setting is involved.

kmock's emulator stores objects and serves them back; it ignores label selectors and fills in no
metadata. ``FakeCluster`` adds what the tests rely on from a real API server: ``uid``,
``creationTimestamp`` and ``namespace`` on creation, answers to access reviews, and on request a
403, a 401 or an answer that never comes.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hodei import Provider
from hodei.testing import backend_unavailable

# The real-cluster test runs only where KUBECONFIG names a cluster. Elsewhere it is not collected at
# all: no machine here has a cluster, and the emulator tests below cover the same contract.
collect_ignore = [] if os.environ.get("KUBECONFIG") else ["test_real_cluster.py"]

try:
    import kmock
except ImportError:  # the `test` extra is not installed
    kmock = None

# kmock's actions, as the Kubernetes verbs RBAC speaks of.
VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create", "UPDATE": "patch", "DELETE": "delete"}
USER = "system:serviceaccount:hodei:hodei"
TOKEN = "kubeconfig-bearer-token-do-not-log"


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": code,
            "reason": reason, "message": message}


if kmock is not None:
    import aiohttp.web

    class Emulator(kmock.KubernetesEmulator):
        """kmock's emulator plus the behaviour of a real API server that the provider depends on."""

        def __init__(self, cluster: FakeCluster) -> None:
            super().__init__()
            self.cluster = cluster

        async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
            cluster = self.cluster
            plural = request.resource.plural if request.resource is not None else None
            verb = VERBS.get(request.action.name) if request.action is not None else None
            if cluster.unauthenticated:
                return aiohttp.web.json_response(_status(401, "Unauthorized", "Unauthorized"), status=401)
            if (verb, plural) in cluster.hanging:
                await cluster.release.wait()
                return aiohttp.web.json_response(_status(504, "Timeout", "released"), status=504)
            if (verb, plural) in cluster.forbidden:
                where = f' in the namespace "{request.namespace}"' if request.namespace else ""
                message = (f'{plural} is forbidden: User "{USER}" cannot {verb} resource "{plural}" '
                           f'in API group ""{where}')
                return aiohttp.web.json_response(_status(403, "Forbidden", message), status=403)
            if (verb, plural) in cluster.invalid:  # what the API server answers a pod spec it refuses
                message = f'{plural} "x" is invalid: spec.containers[0].image: Invalid value: "": must be set'
                return aiohttp.web.json_response(_status(422, "Invalid", message), status=422)
            if plural == "selfsubjectaccessreviews":
                # Computed by the authorizer, never stored: answer from what this fake forbids.
                attributes = request.data["spec"]["resourceAttributes"]
                allowed = (attributes["verb"], attributes["resource"]) not in cluster.forbidden
                return aiohttp.web.json_response({**request.data, "status": {"allowed": allowed}}, status=201)
            if verb == "create" and isinstance(request.data, dict):
                metadata = request.data.setdefault("metadata", {})
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", "2026-01-02T03:04:05Z")
                if request.namespace:
                    metadata.setdefault("namespace", request.namespace)
            return await super()._handle(request)


class FakeCluster:
    """The emulator on 127.0.0.1, its kubeconfig, and the switches that make it misbehave."""

    def __init__(self, directory: Path) -> None:
        self.forbidden: set[tuple[str, str]] = set()
        self.hanging: set[tuple[str, str]] = set()
        self.invalid: set[tuple[str, str]] = set()
        self.unauthenticated = False
        self._directory = directory
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True,
                                        name="hodei-k8s-fake-cluster")

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.release = asyncio.Event()
        self._stop = asyncio.Event()
        async with Emulator(self) as emulator, kmock.Server(emulator) as server:
            emulator.resources["v1/pods"] = {}
            emulator.resources["v1/nodes"] = {}
            emulator.resources["v1/secrets"] = {}
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            self.release.set()  # let hung requests end, so the server can close

    def start(self) -> FakeCluster:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Kubernetes API did not start")
        self.kubeconfig_path = self._directory / "kubeconfig.json"
        self.kubeconfig_path.write_text(json.dumps(self.kubeconfig()))
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def kubeconfig(self, context: str = "fake") -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "hodei", "user": {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "hodei"}}],
        }

    def _in_loop(self, func: Any) -> Any:
        async def call() -> Any:
            return func()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    # -- state --------------------------------------------------------------------------------

    def objects(self, plural: str, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """Live objects by name, as the server stores them."""
        def read() -> dict[str, dict[str, Any]]:
            return {name: copy.deepcopy(obj.raw) for (resource, ns, name), obj in self.emulator.objects.items()
                    if resource.plural == plural and (namespace is None or ns == namespace) and not obj.deleted}
        return self._in_loop(read)

    def put(self, plural: str, obj: dict[str, Any]) -> None:
        """Store an object as if someone else had created it."""
        namespace = obj["metadata"].get("namespace")

        def store() -> None:
            self.emulator.objects[f"v1/{plural}", namespace, obj["metadata"]["name"]] = obj
        self._in_loop(store)

    def mark_deleting(self, namespace: str, name: str) -> None:
        """What a real server does on delete while the kubelet stops the container: set deletionTimestamp."""
        def patch() -> None:
            self.emulator.objects["v1/pods", namespace, name].patch(
                {"metadata": {"deletionTimestamp": datetime.datetime.now(datetime.UTC).isoformat()}})
        self._in_loop(patch)

    def requests(self) -> list[Any]:
        return self._in_loop(lambda: list(self.emulator))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    if kmock is None:
        backend_unavailable("kmock is not installed: pip install -e 'plugins/hodei-k8s[test]'")
    from hodei_k8s import backend, client

    fake = FakeCluster(tmp_path).start()
    try:
        yield fake
    finally:
        client.forget_clients()
        backend.forget_nodes()
        fake.stop()


NAMESPACE = "hodei-jobs"


def k8s_config(**overrides: Any) -> dict[str, Any]:
    from hodei_k8s import hodei_validate_config

    config = {"type": "kubernetes", "namespace": NAMESPACE, "service_account": "hodei-worker",
              "default_image": "hodei-jobs-worker:latest", **overrides}
    return hodei_validate_config(provider_type="kubernetes", config=config)


@pytest.fixture
def make_provider(cluster: FakeCluster):
    """A provider on the fake cluster, its config normalised by the plugin as the core does."""
    def make(**overrides: Any) -> Provider:
        config = k8s_config(**{"kubeconfig_path": str(cluster.kubeconfig_path), **overrides})
        return Provider(id=uuid.uuid4(), name="fake cluster", provider_type="kubernetes", config=config)
    return make


@pytest.fixture
def provider(make_provider) -> Provider:
    return make_provider()
