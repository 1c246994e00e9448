"""AWS region names, Lambda layer version ARNs and function names, checked without asking AWS.

Each ``check_*`` function returns its argument or raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Every AWS region is <geography>[-<partition flavour>]-<compass direction>-<number>: us-east-1,
# us-gov-west-1, us-isob-east-1, eu-isoe-west-1, eusc-de-east-1, cn-northwest-1. Listing the
# directions (rather than any word, as botocore does) catches typos such as "us-eats-1".
_DIRECTIONS = "central|north|south|east|west|northeast|northwest|southeast|southwest"
_REGION = rf"(?:eusc-)?[a-z]{{2}}(?:-gov|-iso[a-z]?)?-(?:{_DIRECTIONS})-[1-9][0-9]?"
_REGION_RE = re.compile(_REGION)

# The partition an ARN must name for a region, by region prefix (botocore's partitions.json).
_PARTITIONS = (
    ("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"), ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"), ("eu-isoe-", "aws-iso-e"), ("eusc-", "aws-eusc"),
)

# AWS account ids have 12 digits, but the product spec's own example has 9 and must validate:
# accept 1 to 12, which still refuses a value that can never be an account id.
_LAYER_VERSION_ARN_RE = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{1,12})"
    r":layer:(?P<name>[A-Za-z0-9_-]{1,140}):(?P<version>[1-9][0-9]*)"
)
_LAYER_VERSION_ARN_SHAPE = "arn:aws:lambda:<region>:<account id>:layer:<name>:<version>"

# A function is named by its name or its ARN, either optionally followed by a version or an alias
# (Lambda's own rules: names of 1 to 64 characters, qualifiers of 1 to 128). A function's ARN
# comes from the console or IaC output, so its account id must be a real one of 12 digits.
_QUALIFIER = r"(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?"
_FUNCTION_NAME_RE = re.compile(rf"(?P<name>[A-Za-z0-9_-]{{1,64}}){_QUALIFIER}")
_FUNCTION_ARN_RE = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12})"
    rf":function:(?P<name>[A-Za-z0-9_-]{{1,64}}){_QUALIFIER}"
)
_FUNCTION_SHAPES = "a function name ('hodei-worker'), optionally with a version or alias ('hodei-worker:live'), " \
                   "or its ARN (arn:aws:lambda:<region>:<account id>:function:<name>[:<version or alias>])"


@dataclass(frozen=True)
class LayerVersionArn:
    partition: str
    region: str
    account: str
    name: str
    version: int

    @property
    def layer(self) -> str:
        """The layer itself, whatever its version."""
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:layer:{self.name}"


def check_region(region: str) -> str:
    if not _REGION_RE.fullmatch(region):
        raise ValueError(f"must be an AWS region name such as 'us-east-1' or 'eu-central-2', got {region!r}")
    return region


def partition_of(region: str) -> str:
    """``aws``, ``aws-cn``, ``aws-us-gov``...: the partition whose ARNs name ``region``."""
    return next((partition for prefix, partition in _PARTITIONS if region.startswith(prefix)), "aws")


def parse_layer_version_arn(arn: str) -> LayerVersionArn:
    match = _LAYER_VERSION_ARN_RE.fullmatch(arn)
    if match is None:
        raise ValueError(f"must be a layer version ARN ({_LAYER_VERSION_ARN_SHAPE}), got {arn!r}")
    region = match["region"]
    if not _REGION_RE.fullmatch(region):
        raise ValueError(f"names {region!r}, which is not an AWS region name, in {arn!r}")
    if match["partition"] != partition_of(region):
        raise ValueError(f"names partition {match['partition']!r}, but region {region!r} is in "
                         f"{partition_of(region)!r}, got {arn!r}")
    return LayerVersionArn(match["partition"], region, match["account"], match["name"], int(match["version"]))


def check_function(function: str, region: str | None) -> str:
    """A function name or ARN that Lambda's Invoke accepts; an ARN must be in ``region``.

    ``region`` is ``None`` when the region itself was refused, so only the shape is checked.
    """
    if _FUNCTION_NAME_RE.fullmatch(function):
        return function
    match = _FUNCTION_ARN_RE.fullmatch(function)
    if match is None:
        raise ValueError(f"must be {_FUNCTION_SHAPES}, got {function!r}")
    if region is not None and match["region"] != region:
        # The client calls the provider's region; Lambda refuses a function of another one.
        raise ValueError(f"is in region {match['region']!r}, but the provider's region is {region!r}")
    if match["partition"] != partition_of(match["region"]):
        raise ValueError(f"names partition {match['partition']!r}, but region {match['region']!r} is in "
                         f"{partition_of(match['region'])!r}, got {function!r}")
    return function
