"""The ``lambda`` provider type: job workers as AWS Lambda invocations in one region.

Registration and config validation only, for now; the backend hooks come with the boto3 client.
Validation is pure, so this module must not import ``boto3``.
"""

from __future__ import annotations

from typing import Any

from hodei import ProviderType, hookimpl, provider_hook, validate_config_model

from hodei_lambda.config import TYPE, LambdaConfig


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as AWS Lambda invocations")]


@provider_hook(TYPE)
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(LambdaConfig, provider_type, config)
