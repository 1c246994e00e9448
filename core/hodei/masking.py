"""Secrets in provider configs are shown as ``***`` everywhere Hodei shows a config, and ``***``
written back means "keep the secret stored".

A secret field is a dotted path a plugin declares (``registry_auth.password``). It is masked by its
path whatever the shape of the config: when a value on the way to it is not an object (a row edited
in SQL holding ``"registry_auth": "user:pass"``), that whole value is masked, so an invalid row shows
no more than a valid one. A password inside a URL anywhere in a config (``tcp://user:pass@host``,
``?password=``) is shown as ``***`` too; written back as shown, the stored value is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from hodei.errors import Problem
from hodei.redaction import MASK, scrub

__all__ = ["MASK", "keep_masked_secrets", "mask_secrets", "masked_config", "secret_values"]


def _secret_spots(config: Mapping[str, Any], secret_fields: Iterable[str]) -> list[tuple[str, ...]]:
    """The paths inside ``config`` holding a secret: each declared path, or the first value on the way
    to it that is not an object."""
    spots = []
    for path in secret_fields:
        parts = tuple(path.split("."))
        node: Any = config
        for depth, part in enumerate(parts):
            if not isinstance(node, Mapping) or node.get(part) is None:
                break
            node = node[part]
            if depth == len(parts) - 1 or not isinstance(node, Mapping):
                spots.append(parts[:depth + 1])
                break
    return spots


def _set(config: dict[str, Any], spot: tuple[str, ...], value: Any) -> None:
    node = config
    for part in spot[:-1]:
        node = node[part]
    node[spot[-1]] = value


def _get(config: Any, spot: tuple[str, ...]) -> Any:
    node = config
    for part in spot:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    return value


def _unscrubbed(value: Any, stored: Any) -> Any:
    """``value`` with each text that is ``stored``'s text at the same place, credentials scrubbed,
    put back to what is stored."""
    if isinstance(value, str):
        return stored if isinstance(stored, str) and value != stored and scrub(stored) == value else value
    if isinstance(value, Mapping):
        old = stored if isinstance(stored, Mapping) else {}
        return {key: _unscrubbed(item, old.get(key)) for key, item in value.items()}
    if isinstance(value, list):
        old_items = stored if isinstance(stored, list) else []
        return [_unscrubbed(item, old_items[i] if i < len(old_items) else None) for i, item in enumerate(value)]
    return value


def mask_secrets(config: Mapping[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """A copy of ``config`` with every present secret (by path, whatever its shape) replaced by ``***``,
    and every credential in a URL too."""
    masked = _scrubbed(dict(config))
    for spot in _secret_spots(masked, secret_fields):
        _set(masked, spot, MASK)
    return masked


def masked_config(config: Any, secret_fields: Iterable[str] | None) -> Any:
    """``config`` with its type's secret fields shown as ``***``. ``secret_fields`` is ``None`` when the
    type's plugin is not loaded: nothing then says which values are secrets, so all of it is hidden."""
    if secret_fields is None:
        return MASK
    return mask_secrets(config, secret_fields) if isinstance(config, Mapping) else _scrubbed(config)


def secret_values(config: Any, secret_fields: Iterable[str] | None) -> list[str]:
    """The texts a message must not show: each secret value, as given and as ``repr`` quotes it."""
    if not isinstance(config, Mapping):
        return []
    found = []
    for spot in _secret_spots(config, secret_fields or ()):
        value = _get(config, spot)
        text = value if isinstance(value, str) else repr(value)
        found += [text, repr(value)] if text else []
    return found


def keep_masked_secrets(config: Any, stored: Any, secret_fields: Iterable[str] | None,
                        ) -> tuple[Any, list[Problem]]:
    """``config`` as it is to be written, every ``***`` where a secret goes replaced by the secret
    ``stored`` holds at that place; ``stored`` is ``None`` when there is nothing to keep (a new
    provider, or one whose type changes). A mask with nothing behind it is a problem naming the field:
    storing ``***`` as the password would lose the secret without saying so.
    """
    if config == MASK:  # the whole config, as shown when the type's plugin is not loaded
        if stored is not None:
            return copy.deepcopy(stored), []
        return config, [Problem("config", f"is {MASK}, the mask shown in place of a config whose plugin is "
                                          "not loaded, and there is no stored config to keep: give the config")]
    if not isinstance(config, Mapping):
        return config, []
    kept = _unscrubbed(dict(config), stored) if isinstance(stored, Mapping) else copy.deepcopy(dict(config))
    problems = []
    for spot in _secret_spots(kept, secret_fields or ()):
        if _get(kept, spot) != MASK:
            continue
        previous = _get(stored, spot)
        if previous is None:
            problems.append(Problem("config." + ".".join(spot),
                                    f"is {MASK}, the mask shown in place of a secret, and there is no stored "
                                    "secret to keep: give the secret itself"))
        else:
            _set(kept, spot, copy.deepcopy(previous))
    return kept, problems
