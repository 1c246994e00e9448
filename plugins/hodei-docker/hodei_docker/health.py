"""Is the engine usable by this provider? Blocking; runs in a worker thread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import docker
from hodei import Deadline, HealthResult, Provider

from hodei_docker.client import client_for, describe, engine_address, is_not_found
from hodei_docker.labels import provider_filter
from hodei_docker.workers import registry_auth


def check(provider: Provider, deadline: Deadline) -> HealthResult:
    """Unhealthy when the engine cannot list containers, or when no worker could start (its network or its
    image is missing and cannot be pulled); Degraded when that could not be checked.

    The seed's terms: Unhealthy "cannot accept new workers", Degraded "has issues but works". A provider
    whose every provision must fail is not one that works, so selection must leave it out rather than
    send it jobs that fail over.
    """
    config = provider.config
    with deadline.applied():
        try:
            api = client_for(config)
            # The spec's health probe for Docker: list containers (only ours, so the answer stays small).
            api.containers(all=True, limit=1, filters=provider_filter(provider.id))
        except Exception as exc:
            return HealthResult.unhealthy(f"Docker engine at {engine_address(config)} {describe(exc, deadline)}")
        findings = [finding for finding in (_network_problem(api, config, deadline),
                                            _image_problem(api, config, deadline)) if finding]
    blocking = [problem for problem, fatal in findings if fatal]
    if blocking:
        return HealthResult.unhealthy("no worker can start: " + "; ".join(blocking))
    if findings:
        return HealthResult.degraded("; ".join(problem for problem, _ in findings))
    return HealthResult.healthy()


# A problem found, and whether it stops every worker from starting (else it only could not be checked).
Finding = tuple[str, bool]


def _network_problem(api: docker.APIClient, config: Mapping[str, Any], deadline: Deadline) -> Finding | None:
    network = config["network"]
    try:
        api.inspect_network(network)
    except Exception as exc:
        if is_not_found(exc):
            return f"network {network!r} does not exist on the engine", True
        return f"cannot check network {network!r}: the engine {describe(exc, deadline)}", False
    return None


def _image_problem(api: docker.APIClient, config: Mapping[str, Any], deadline: Deadline) -> Finding | None:
    image = config["default_image"]
    try:
        api.inspect_image(image)
        return None
    except Exception as exc:
        if not is_not_found(exc):
            return f"cannot check default_image {image!r}: the engine {describe(exc, deadline)}", False
    try:
        # Asks the registry, through the engine, whether the image exists and the credentials are
        # good, without downloading it: the first provision pulls it.
        api.inspect_distribution(image, auth_config=registry_auth(config))
    except Exception as exc:
        return (f"default_image {image!r} is not present on the engine and cannot be pulled: "
                f"{describe(exc, deadline)}", True)
    return None
