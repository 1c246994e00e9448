"""The health check: AWS accepts the credentials, and the worker function is there, Active and as configured.

Healthy: both hold. Degraded: the credentials work but the function is missing, not Active,
differs from the config, or a permission is denied. Unhealthy: no usable credentials, or the
endpoint does not answer (refused, broken, too slow, or not speaking AWS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from hodei import HealthResult, Provider, run_blocking


async def check(provider: Provider, timeout: float) -> HealthResult:
    with anyio.move_on_after(timeout):
        return await run_blocking(_check, provider, timeout)
    return HealthResult.unhealthy(f"{_endpoint(provider)} did not answer within {timeout:g}s")


def _endpoint(provider: Provider) -> str:
    return provider.config["endpoint_url"] or f"AWS in {provider.config['region']}"


def _check(provider: Provider, timeout: float) -> HealthResult:
    from hodei_lambda import aws  # loads boto3 in this worker thread, never on the event loop

    config = provider.config
    function = config["function_name"]
    budget = timeout / 2  # two calls, one after the other
    try:
        identity = aws.client(provider, "sts", budget).get_caller_identity()
    except Exception as exc:
        failed = aws.failure(exc)
        if failed is None:
            raise
        if failed.kind is aws.Kind.TIMEOUT:
            return HealthResult.unhealthy(f"{_endpoint(provider)} did not answer in time: {failed.text}")
        if failed.kind is aws.Kind.UNREACHABLE:
            return HealthResult.unhealthy(f"cannot reach {_endpoint(provider)}: {failed.text}")
        if failed.kind is aws.Kind.CREDENTIALS:
            return HealthResult.unhealthy(f"no usable AWS credentials: {failed.text}")
        return HealthResult.unhealthy(f"{_endpoint(provider)} did not confirm the credentials "
                                      f"(sts:GetCallerIdentity): {failed.text}")
    try:
        found = aws.client(provider, "lambda", budget).get_function_configuration(FunctionName=function)
    except Exception as exc:
        failed = aws.failure(exc)
        if failed is None:
            raise
        if failed.kind is aws.Kind.TIMEOUT:
            return HealthResult.unhealthy(f"Lambda at {_endpoint(provider)} did not answer in time: {failed.text}")
        if failed.kind is aws.Kind.UNREACHABLE:
            return HealthResult.unhealthy(f"cannot reach Lambda at {_endpoint(provider)}: {failed.text}")
        if failed.kind is aws.Kind.CREDENTIALS:
            return HealthResult.unhealthy(f"Lambda refuses the credentials of {identity['Arn']}: {failed.text}")
        if failed.kind is aws.Kind.NOT_FOUND:
            return HealthResult.degraded(f"worker function {function!r} not found in {config['region']}: "
                                         f"{failed.text}")
        if failed.kind is aws.Kind.DENIED:
            return HealthResult.degraded(f"permission denied to {identity['Arn']}: lambda:GetFunctionConfiguration "
                                         f"on {function!r}: {failed.text}")
        return HealthResult.degraded(f"Lambda answered an error about {function!r}: {failed.text}")
    state = found.get("State", "Active")  # functions from before Lambda had states have none, and run
    if state != "Active":
        because = f": {found['StateReason']}" if found.get("StateReason") else ""
        return HealthResult.degraded(f"worker function {function!r} is {state}, not Active{because}")
    differences = config_differences(config, found)
    if differences:
        return HealthResult.degraded(f"worker function {function!r} differs from the provider's config: "
                                     + "; ".join(differences))
    return HealthResult.healthy(f"worker function {function!r} is Active; credentials of {identity['Arn']}")


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
