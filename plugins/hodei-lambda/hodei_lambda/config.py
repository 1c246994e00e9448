"""The ``lambda`` provider's config: the region, the function each worker runs as, and how to reach AWS.

The plugin does not deploy the function: ``runtime``, ``timeout_seconds``, ``memory_mb`` and
``layers`` describe the function the operator deployed, and the health check reports a function
that differs from them. No field holds a secret: credentials come from the standard AWS chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from hodei import NonEmptyStr, ProviderConfigModel
from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from hodei_lambda.aws_names import check_function, check_region, parse_layer_version_arn

TYPE: Final = "lambda"

# Limits of a standard Lambda function, from the product spec.
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 1, 900
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240
MAX_LAYERS = 5

# Lambda's runtime identifiers (botocore 1.44's API model) without the deprecated ones, on which
# Lambda no longer creates or updates functions.
RUNTIMES = (
    "provided.al2023", "provided.al2",
    "python3.15", "python3.14", "python3.13", "python3.12", "python3.11", "python3.10", "python3.9",
    "nodejs26.x", "nodejs24.x", "nodejs22.x", "nodejs20.x", "nodejs18.x",
    "java25", "java21", "java17", "java17.al2023", "java11", "java11.al2023", "java8.al2", "java8.al2023",
    "dotnet10", "dotnet8",
    "ruby4.0", "ruby3.4", "ruby3.3", "ruby3.2",
)
DEPRECATED_RUNTIMES = frozenset({
    "provided", "python2.7", "python3.6", "python3.7", "python3.8", "nodejs", "nodejs4.3", "nodejs4.3-edge",
    "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x", "nodejs14.x", "nodejs16.x", "java8", "go1.x",
    "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1", "dotnet6", "ruby2.5", "ruby2.7",
})


def _check_runtime(runtime: str) -> str:
    if runtime in DEPRECATED_RUNTIMES:
        raise ValueError(f"{runtime!r} is deprecated: Lambda no longer creates or updates functions on it")
    if runtime not in RUNTIMES:
        raise ValueError(f"must be a Lambda runtime identifier ({', '.join(RUNTIMES)}), got {runtime!r}")
    return runtime


def _check_layer(arn: str, info: ValidationInfo) -> str:
    layer = parse_layer_version_arn(arn)
    region = info.data.get("region")  # absent when the region itself was refused
    if region is not None and layer.region != region:
        raise ValueError(f"is in region {layer.region!r}, but a function can only use layers of its own "
                         f"region {region!r}")
    return arn


def _check_function(function: str, info: ValidationInfo) -> str:
    return check_function(function, info.data.get("region"))


def _check_endpoint_url(url: str) -> str:
    shape = "must be an http:// or https:// URL such as 'https://lambda.example.com'"
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"{shape}, got {url!r}") from None
    if "@" in parts.netloc:
        # Never echo the value: it holds what looks like a password.
        raise ValueError("must not carry a user name or password: credentials come from the AWS credential chain")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise ValueError(f"{shape}, got {url!r} (bad port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
        raise ValueError(f"{shape}, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment, got {url!r}")
    return url


Region = Annotated[str, AfterValidator(check_region)]
Runtime = Annotated[str, AfterValidator(_check_runtime)]
LayerVersionArn = Annotated[str, AfterValidator(_check_layer)]
FunctionName = Annotated[str, AfterValidator(_check_function)]
EndpointUrl = Annotated[str, AfterValidator(_check_endpoint_url)]


class LambdaConfig(ProviderConfigModel):
    """One AWS region; each worker runs as an invocation of a function with these settings."""

    type: Literal["lambda"] = TYPE
    # Declared before layers: a layer's region is checked against it.
    region: Region = "us-east-1"
    runtime: Runtime = "provided.al2023"
    timeout_seconds: Annotated[int, Field(ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS)] = 300
    memory_mb: Annotated[int, Field(ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)] = 1024
    layers: Annotated[list[LayerVersionArn], Field(max_length=MAX_LAYERS)] = []
    """Layer version ARNs, in the order Lambda applies them."""
    function_name: FunctionName = "hodei-worker"
    """The deployed worker function each worker is an invocation of: name or ARN, maybe qualified."""
    endpoint_url: EndpointUrl | None = None
    """Where to send Lambda and STS calls instead of AWS's regional endpoints (an emulator, a proxy)."""
    profile: NonEmptyStr | None = None
    """The credentials profile of the shared AWS config files; the default credential chain when null."""

    @field_validator("layers")
    @classmethod
    def _one_version_per_layer(cls, layers: list[str]) -> list[str]:
        # Lambda refuses two versions of one layer (and so the same ARN twice) on a function.
        first_index: dict[str, int] = {}
        for index, arn in enumerate(layers):
            layer = parse_layer_version_arn(arn).layer
            if layer in first_index:
                raise ValueError(f"layers[{first_index[layer]}] and layers[{index}] are both versions of {layer!r}: "
                                 "a function takes at most one version of each layer")
            first_index[layer] = index
        return layers


def endpoint(config: Mapping[str, Any]) -> str:
    """Where the provider's calls go, as an operator would name it in a reason."""
    return config["endpoint_url"] or f"AWS in {config['region']}"
