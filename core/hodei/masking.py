"""Secrets in provider configs are shown as ``***`` everywhere Hodei shows a config."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"


def mask_secrets(config: Mapping[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """A copy of ``config`` with every present dotted path in ``secret_fields`` replaced by ``***``."""
    masked = copy.deepcopy(dict(config))
    for path in secret_fields:
        *parents, leaf = path.split(".")
        node: Any = masked
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) is not None:
            node[leaf] = MASK
    return masked


def masked_config(config: Any, secret_fields: Iterable[str] | None) -> Any:
    """``config`` with its type's secret fields shown as ``***``. ``secret_fields`` is ``None`` when the
    type's plugin is not loaded: nothing then says which values are secrets, so all of it is hidden."""
    if secret_fields is None:
        return MASK
    return mask_secrets(config, secret_fields) if isinstance(config, Mapping) else config
