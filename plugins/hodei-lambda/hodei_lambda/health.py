"""The health check: AWS accepts the credentials, and the worker function is there, Active and as configured.

Healthy: both hold. Degraded: the credentials work but the function is missing, not Active,
differs from the config, or a permission is denied. Unhealthy: no usable credentials, or the
endpoint does not answer (refused, broken, too slow, or not speaking AWS).

Blocking, and imports boto3 (through :mod:`hodei_lambda.aws`): the hook runs :func:`check` in a
worker thread with ``hodei.run_sdk_call``, which imports this module there, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hodei import Deadline, HealthResult, Provider

from hodei_lambda import aws
from hodei_lambda.aws import Failure, Kind
from hodei_lambda.config import endpoint


def _endpoint(provider: Provider) -> str:
    return endpoint(provider.config)


def check(provider: Provider, deadline: Deadline) -> HealthResult:
    config = provider.config
    function = config["function_name"]
    # Two calls, one after the other. From the hook's timeout, not what is left of it: clients are
    # cached per budget (aws.client), so the budget must not change from one call to the next.
    budget = deadline.timeout / 2
    try:
        identity = aws.client(provider, "sts", budget).get_caller_identity()
    except Exception as exc:
        failed = aws.failure(exc)
        if failed is None:
            raise
        return _credentials_failed(provider, failed)
    try:
        found = aws.client(provider, "lambda", budget).get_function_configuration(FunctionName=function)
    except Exception as exc:
        failed = aws.failure(exc)
        if failed is None:
            raise
        return _function_failed(provider, identity["Arn"], failed)
    state = found.get("State", "Active")  # functions from before Lambda had states have none, and run
    if state != "Active":
        because = f": {found['StateReason']}" if found.get("StateReason") else ""
        return HealthResult.degraded(f"worker function {function!r} is {state}, not Active{because}")
    differences = config_differences(config, found)
    if differences:
        return HealthResult.degraded(f"worker function {function!r} differs from the provider's config: "
                                     + "; ".join(differences))
    return HealthResult.healthy(f"worker function {function!r} is Active; credentials of {identity['Arn']}")


def _credentials_failed(provider: Provider, failed: Failure) -> HealthResult:
    """sts:GetCallerIdentity failed: the credentials are unusable, or the endpoint does not answer."""
    if failed.kind is Kind.TIMEOUT:
        return HealthResult.unhealthy(f"{_endpoint(provider)} did not answer in time: {failed.text}")
    if failed.kind is Kind.UNREACHABLE:
        return HealthResult.unhealthy(f"cannot reach {_endpoint(provider)}: {failed.text}")
    if failed.kind is Kind.CREDENTIALS:
        return HealthResult.unhealthy(f"no usable AWS credentials: {failed.text}")
    return HealthResult.unhealthy(f"{_endpoint(provider)} did not confirm the credentials "
                                  f"(sts:GetCallerIdentity): {failed.text}")


def _function_failed(provider: Provider, arn: str, failed: Failure) -> HealthResult:
    """lambda:GetFunctionConfiguration failed for the credentials of ``arn``, which sts accepted."""
    function = provider.config["function_name"]
    if failed.kind is Kind.TIMEOUT:
        return HealthResult.unhealthy(f"Lambda at {_endpoint(provider)} did not answer in time: {failed.text}")
    if failed.kind is Kind.UNREACHABLE:
        return HealthResult.unhealthy(f"cannot reach Lambda at {_endpoint(provider)}: {failed.text}")
    if failed.kind is Kind.CREDENTIALS:
        return HealthResult.unhealthy(f"Lambda refuses the credentials of {arn}: {failed.text}")
    if failed.kind is Kind.NOT_FOUND:  # nothing to invoke: the seed's Unhealthy, "cannot accept new workers"
        return HealthResult.unhealthy(f"no worker can start: worker function {function!r} not found in "
                                      f"{provider.config['region']}: {failed.text}")
    if failed.kind is Kind.DENIED:
        return HealthResult.degraded(f"permission denied to {arn}: lambda:GetFunctionConfiguration "
                                     f"on {function!r}: {failed.text}")
    return HealthResult.degraded(f"Lambda answered an error about {function!r}: {failed.text}")


def config_differences(config: Mapping[str, Any], function: Mapping[str, Any]) -> list[str]:
    """How the deployed function differs from what the config says it is.

    The config is what capacity reports and what the in-flight count trusts (an invocation counts
    until ``timeout_seconds``), so a function that differs makes both wrong.
    """
    found = {
        "memory_mb": function.get("MemorySize"),
        "timeout_seconds": function.get("Timeout"),
        "layers": [layer["Arn"] for layer in function.get("Layers", [])],
    }
    # A container image brings its own runtime: there is none to compare.
    if function.get("PackageType", "Zip") == "Zip":
        found["runtime"] = function.get("Runtime")
    return [f"{key} is {value!r} on the function, {config[key]!r} in the config"
            for key, value in found.items() if value != config[key]]
