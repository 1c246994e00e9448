"""The labels that mark a container as a Hodei worker, and which provider and worker it belongs to."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

RESERVED_PREFIX = "hodei."
MANAGED = "hodei.managed"
PROVIDER_ID = "hodei.provider-id"
WORKER_ID = "hodei.worker-id"


def worker_labels(extra: Mapping[str, str], provider_id: uuid.UUID, worker_id: str) -> dict[str, str]:
    # Hodei's own labels last: config validation refuses `hodei.` keys, but they must win regardless.
    return {**extra, MANAGED: "true", PROVIDER_ID: str(provider_id), WORKER_ID: worker_id}


def provider_filter(provider_id: uuid.UUID) -> dict[str, list[str]]:
    """The engine-side filter for one provider's containers: another provider's are never returned."""
    return {"label": [f"{MANAGED}=true", f"{PROVIDER_ID}={provider_id}"]}
